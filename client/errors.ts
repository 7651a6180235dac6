/**
 * The broker refused or failed a request, or could not be reached. `code` is the broker's `error`
 * (`forbidden`, `connection_not_found`, `reauthorization_required`, `provider_unavailable`,
 * `service_unavailable`, ...), or
 * one of the client's own: `network_error` (status 0: no answer), `invalid_request` (status 0: the
 * client would not send it), `unexpected_response` (an answer that is not the broker's JSON).
 * The message never carries a token or a code.
 */
export class BrokerClientError extends Error {
  /** The HTTP status, or 0 when there was no answer. */
  readonly status: number;
  readonly code: string;
  /**
   * From a `Retry-After` header: wait this long before asking again. The 503s carry it: `provider_unavailable`
   * (Wise) and `service_unavailable` (the broker's storage, encryption service or credentials store).
   */
  readonly retryAfterSeconds?: number;

  constructor(
    message: string,
    options: { status: number; code: string; retryAfterSeconds?: number | undefined; cause?: unknown },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BrokerClientError';
    this.status = options.status;
    this.code = options.code;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
}
