import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';

const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'wise-token-broker';

/** Structured JSON logs. Never give it a token, a code, a secret or Wise's `invalid_token` description. */
export const logger = new Logger({ serviceName });

/** CloudWatch metrics in the embedded metric format, flushed after every invocation. */
export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'WiseTokenBroker',
  serviceName,
});

/** The metric names the broker emits; the CDK alarms and dashboard use the same names. */
export const MetricName = {
  refreshSucceeded: 'RefreshSucceeded',
  refreshFailed: 'RefreshFailed',
  reauthorizationRequired: 'ReauthorizationRequired',
  invalidClient: 'InvalidClient',
  providerUnavailable: 'ProviderUnavailable',
  tokenVended: 'TokenVended',
} as const;

/**
 * Middy middleware that publishes the invocation's metrics when it recorded any. Powertools' own
 * `logMetrics` warns on every invocation that records none, which for most requests is the normal case.
 */
export function flushMetrics(): MiddlewareObj {
  const flush = async () => {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  };
  return { after: flush, onError: flush };
}
