import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';
import type { RecordKey } from '#shared/domain/records.ts';

const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'wise-token-broker';
const namespace = process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'WiseTokenBroker';

/**
 * Structured JSON logs. Never give it a token, a code, a secret or Wise's `invalid_token` description.
 *
 * Every function names the things operators filter on with the same key (the audit trail too):
 * - `connectionId`: the connection a line is about (the client-credentials token: `clientToken: true`);
 * - `callerArn`: the IAM principal that signed the request, as API Gateway reports it;
 * - `outcome`: what came of a refresh or a request (`refreshed`, `needs_reauth`, `refused`, ...);
 * - `traceId`: Wise's `x-trace-id` response header, for Wise support;
 * - `correlationId`: the `X-External-Correlation-Id` the broker sent to Wise;
 * - `error`: the error's class name (`InvalidRequestError`), or the error itself with its stack.
 */
export const logger = new Logger({ serviceName });

/** How a log line names a record: `{connectionId}`, or `{clientToken: true}` for the client token. */
export function recordKeys(key: RecordKey): { connectionId: string } | { clientToken: true } {
  return key.kind === 'connection' ? { connectionId: key.connectionId } : { clientToken: true };
}

/** CloudWatch metrics in the embedded metric format, flushed after every invocation. */
export const metrics = new Metrics({ namespace, serviceName });

/** The metric names the broker emits; the CDK alarms and dashboard use the same names. */
export const MetricName = {
  refreshSucceeded: 'RefreshSucceeded',
  refreshFailed: 'RefreshFailed',
  reauthorizationRequired: 'ReauthorizationRequired',
  /** A connection lost by the broker: Wise refused a refresh token an earlier attempt spent without storing the answer. */
  connectionLostToCrash: 'ConnectionLostToCrash',
  invalidClient: 'InvalidClient',
  providerUnavailable: 'ProviderUnavailable',
  tokenVended: 'TokenVended',
  /** Seconds a successful refresh ran after its token's refresh was due (0 when on time or early). */
  refreshLateness: 'RefreshLateness',
  /** Seconds of life the replaced access token had left when its refresh succeeded. */
  tokenLifeLeftAtRefresh: 'TokenLifeLeftAtRefresh',
  /**
   * Per sweep: the records it found due and could not refresh that have less than `refresh.atRiskShare` of
   * their token's lifetime left.
   */
  connectionsAtRisk: 'ConnectionsAtRisk',
  /** Refreshes Wise refused, by {@link RefusalClass} in the `class` dimension. */
  refreshRefused: 'RefreshRefused',
  /** Requests the broker refused (4xx), by error code in the `error` dimension. */
  requestRefused: 'RequestRefused',
  /** Reported rejections (`rejectedGeneration`) not honoured: Wise still took the token, or one was checked within the minute. */
  rejectionNotHonoured: 'RejectionNotHonoured',
} as const;

/** The classes of refused refreshes: the `class` dimension of {@link MetricName.refreshRefused}. */
export const REFUSAL_CLASSES = [
  'invalid_grant',
  'invalid_client',
  'rate_limited',
  'provider_unavailable',
  'invalid_request',
] as const;
export type RefusalClass = (typeof REFUSAL_CLASSES)[number];

/** Where published metrics go: a function given each EMF document as one JSON line. */
export type MetricsSink = (emfLine: string) => void;

let sink: MetricsSink | undefined;
/** One `Metrics` per dimension and value, for the metrics counted by class; flushed with the others. */
const dimensioned = new Map<string, Metrics>();

/**
 * Sends every metric published from now on to `next` instead of standard output (where Lambda turns the
 * EMF lines into CloudWatch metrics); `undefined` goes back to standard output. The local run keeps them in
 * a file of its data folder this way.
 */
export function setMetricsSink(next: MetricsSink | undefined): void {
  sink = next;
}

/** Counts one occurrence of `name` under a dimension, such as `RefreshRefused` with `class=invalid_grant`. */
export function countByDimension(name: string, dimension: string, value: string): void {
  const id = `${dimension}\u0000${value}`;
  let byValue = dimensioned.get(id);
  if (!byValue) {
    byValue = new Metrics({ namespace, serviceName, defaultDimensions: { [dimension]: value } });
    dimensioned.set(id, byValue);
  }
  byValue.addMetric(name, MetricUnit.Count, 1);
}

function publish(instance: Metrics): void {
  if (!instance.hasStoredMetrics()) return;
  if (sink === undefined) {
    instance.publishStoredMetrics();
    return;
  }
  try {
    sink(JSON.stringify(instance.serializeMetrics()));
  } finally {
    instance.clearMetrics();
    instance.clearDimensions();
    instance.clearMetadata();
  }
}

/** Publishes every metric recorded since the last publication. */
export function publishMetrics(): void {
  publish(metrics);
  for (const byValue of dimensioned.values()) publish(byValue);
}

/**
 * Middy middleware that publishes the invocation's metrics when it recorded any. Powertools' own
 * `logMetrics` warns on every invocation that records none, which for most requests is the normal case.
 */
export function flushMetrics(): MiddlewareObj {
  const flush = async () => publishMetrics();
  return { after: flush, onError: flush };
}
