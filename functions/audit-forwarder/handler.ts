import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { CloudWatchAuditLog } from '#shared/adapters/cloudwatch-audit-log.ts';
import { logger } from '#shared/observability.ts';
import { deployedClientConfig } from '#shared/runtime/aws-client-config.ts';
import { MissingSettingError } from '#shared/runtime/function-environment.ts';
import {
  type AuditLogWriter,
  type ForwardSummary,
  forwardAuditLines,
  SubscriptionEvent,
} from '#shared/use-cases/forward-audit.ts';

/**
 * The audit forwarder, the destination of a subscription filter on each broker function's log group:
 * copies the marked audit lines into the audit log group (`AUDIT_LOG_GROUP`).
 */
export function createAuditForwarderHandler(writer: () => AuditLogWriter) {
  return middy<unknown, ForwardSummary, Error, Context>()
    .use(injectLambdaContext(logger, { clearState: true }))
    .handler(async (event) => {
      const summary = await forwardAuditLines(writer(), SubscriptionEvent.parse(event));
      logger.info('Audit lines forwarded', { ...summary });
      return summary;
    });
}

let auditLog: AuditLogWriter | undefined;

export const handler = createAuditForwarderHandler(() => {
  const logGroupName = process.env.AUDIT_LOG_GROUP;
  if (!logGroupName) {
    throw new MissingSettingError(
      'The environment variable AUDIT_LOG_GROUP is not set; the CDK stack sets it.',
    );
  }
  auditLog ??= new CloudWatchAuditLog({
    client: new CloudWatchLogsClient(deployedClientConfig()),
    logGroupName,
  });
  return auditLog;
});
