import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { StdoutAuditTrail } from '#shared/adapters/stdout-audit-trail.ts';
import { countByDimension, flushMetrics, logger, MetricName } from '#shared/observability.ts';
import type { AuditEntry, AuditTrail } from '#shared/ports/audit-trail.ts';
import { errorToResponse } from './responses.ts';
import { fromRestEvent, isRestEvent } from './rest-event.ts';

export type ApiEvent = APIGatewayProxyEventV2;

/** How long API Gateway waits for the function before it answers 504 itself. */
export const API_GATEWAY_TIMEOUT_MS = 29_000;

/** When a request's work must be over: the function's timeout or API Gateway's, whichever comes first. */
export function requestEndsAt(now: number, context: Pick<Context, 'getRemainingTimeInMillis'>): number {
  return now + Math.min(context.getRemainingTimeInMillis(), API_GATEWAY_TIMEOUT_MS);
}
export type ApiResult = APIGatewayProxyResultV2;

/** What a handler learns about its request, for the log lines that follow and for the audit entry. */
export type RequestFacts = Partial<Omit<AuditEntry, 'status'>>;

/**
 * One request as the audit trail and the logs see it. What a handler notes (the connection, the vended
 * generation) goes into the request's audit entry, and the connection and caller into every log line
 * written until the request ends.
 */
export class ApiRequest {
  readonly facts: RequestFacts;

  constructor(event: ApiEvent) {
    this.facts = {};
    const principal = verifiedPrincipal(event);
    if (principal !== undefined) this.note({ callerArn: principal });
    const requestId = event.requestContext?.requestId;
    if (typeof requestId === 'string') this.facts.requestId = requestId;
  }

  /** Adds facts about the request; `connectionId`, `clientToken` and `callerArn` join its log lines. */
  note(facts: RequestFacts): void {
    Object.assign(this.facts, facts);
    const keys: Record<string, unknown> = {};
    if (facts.callerArn !== undefined) keys.callerArn = facts.callerArn;
    if (facts.connectionId !== undefined) keys.connectionId = facts.connectionId;
    if (facts.clientToken !== undefined) keys.clientToken = facts.clientToken;
    if (Object.keys(keys).length > 0) logger.appendKeys(keys);
  }
}

/** The IAM principal API Gateway verified, when there is one. */
function verifiedPrincipal(event: ApiEvent): string | undefined {
  const context = event.requestContext as { authorizer?: { iam?: { userArn?: unknown } } } | undefined;
  const arn = context?.authorizer?.iam?.userArn;
  return typeof arn === 'string' && arn.length > 0 ? arn : undefined;
}

/** Maps every error to the broker's response, in one place; logs the unexpected ones. */
export function httpErrors(): middy.MiddlewareObj<ApiEvent, ApiResult> {
  return {
    onError: async (request) => {
      const { error } = request;
      const response = errorToResponse(error);
      if (response.statusCode !== undefined && response.statusCode < 500) {
        const code = errorCode(response);
        if (code !== undefined) countByDimension(MetricName.requestRefused, 'error', code);
        logger.info('Request refused', { outcome: 'refused', error: error?.name, reason: error?.message });
      } else {
        logger.error('Request failed', { outcome: 'failed', error: error as Error });
      }
      request.response = response;
    },
  };
}

function errorCode(response: { body?: string | undefined }): string | undefined {
  try {
    const body = JSON.parse(response.body ?? '') as { error?: unknown };
    return typeof body.error === 'string' ? body.error : undefined;
  } catch {
    return undefined;
  }
}

/** Where a handler's audit entries go: its runtime's trail, or standard output when none can be built. */
export type AuditTrailSource = () => AuditTrail;

const fallbackTrail = new StdoutAuditTrail();
const requests = new WeakMap<object, ApiRequest>();

/**
 * Writes the request's audit entry when it ends, with the status it answered: one line for every request
 * whose handler named its action, refused and failed ones included.
 */
function auditTrail(source: AuditTrailSource): middy.MiddlewareObj<ApiEvent, ApiResult> {
  const write = (event: ApiEvent, result: ApiResult | null | undefined) => {
    const facts = requests.get(event)?.facts;
    if (facts?.action === undefined) return;
    const status = typeof result === 'object' && result?.statusCode !== undefined ? result.statusCode : 200;
    const entry: AuditEntry = {
      ...facts,
      action: facts.action,
      status,
      outcome: facts.outcome ?? (status >= 500 ? 'failed' : status >= 400 ? 'refused' : 'ok'),
    };
    const error =
      facts.error ?? (status >= 400 && typeof result === 'object' ? errorCode(result ?? {}) : undefined);
    if (error !== undefined) entry.error = error;
    let trail: AuditTrail;
    try {
      trail = source();
    } catch {
      trail = fallbackTrail;
    }
    trail.record(entry);
  };
  return {
    after: async (request) => write(request.event, request.response),
    onError: async (request) => write(request.event, request.response),
  };
}

/**
 * Reads the private REST API's payload format 1.0 as the HTTP API's 2.0, before anything else sees the
 * event; the results both APIs take are the same (`statusCode`, `headers`, `body`).
 */
function restPayload(): middy.MiddlewareObj<ApiEvent, ApiResult> {
  return {
    before: async (request) => {
      if (isRestEvent(request.event)) request.event = fromRestEvent(request.event);
    },
  };
}

/**
 * Wraps an API route's function with the house middleware: Lambda context in the logs, metrics flushed,
 * the audit entry written, errors mapped to responses (last, so it sees every error). `run` notes what it
 * learns on the {@link ApiRequest} it is given; the caller's principal is noted already.
 */
export function apiHandler(
  audit: AuditTrailSource,
  run: (event: ApiEvent, context: Context, request: ApiRequest) => Promise<ApiResult>,
) {
  return middy<ApiEvent, ApiResult>()
    .use(restPayload())
    .use(injectLambdaContext(logger, { clearState: true }))
    .use(flushMetrics())
    .use(auditTrail(audit))
    .use(httpErrors())
    .handler((event, context) => {
      const request = new ApiRequest(event);
      requests.set(event, request);
      return run(event, context, request);
    });
}
