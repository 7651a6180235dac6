import type { NodeHttpHandlerOptions } from '@smithy/types';

/**
 * How long a deployed function's AWS SDK calls may take, per attempt: a DynamoDB, KMS, Secrets Manager,
 * EventBridge or CloudWatch Logs endpoint that accepts and never answers fails the attempt with the SDK's
 * `TimeoutError` (which the SDK retries: four attempts for DynamoDB, three for the others) instead of
 * holding the invocation until the Lambda timeout. Four attempts of at most
 * {@link AWS_CLIENT_TIMEOUTS.requestTimeout} each, with the SDK's back-off, end within the
 * {@link STORE_RESERVE_MS} (5 s) a refresh keeps for storing Wise's answer, and far inside the
 * functions' 28 s timeout; an answering endpoint takes milliseconds.
 *
 * @see STORE_RESERVE_MS in `#shared/use-cases/refresh-record.ts`
 */
export const AWS_CLIENT_TIMEOUTS = {
  /** Milliseconds to open the connection (TCP) before the attempt is abandoned. */
  connectionTimeout: 1_000,
  /** Milliseconds the whole attempt (request and response) may take. */
  requestTimeout: 1_000,
} as const;

/**
 * The settings every deployed function's AWS SDK client is built with: the bounded timeouts above (the
 * request timeout throws rather than only warning). Region, credentials and any endpoint
 * (`AWS_ENDPOINT_URL_*`) still come from the Lambda environment.
 */
export function deployedClientConfig(): { requestHandler: NodeHttpHandlerOptions } {
  return { requestHandler: { ...AWS_CLIENT_TIMEOUTS, throwOnRequestTimeout: true } };
}
