/** How the next token-endpoint requests fail, as `POST /__control/faults` sets it. */
export interface Fault {
  /** Status to answer; omitted or 200 with `delayMs` means: delay, then serve normally. */
  status?: number | undefined;
  /** How many requests in a row. */
  count: number;
  /** `Retry-After` seconds to send with the failure. */
  retryAfter?: number | undefined;
  /** Wait this long before answering (or dropping). */
  delayMs?: number | undefined;
  /** Destroy the socket without an answer. */
  drop?: boolean | undefined;
}

/** The one pending fault; setting a new one replaces it. */
export class FaultPlan {
  #fault: Fault | undefined;
  #remaining = 0;

  set(fault: Fault): void {
    this.#fault = fault;
    this.#remaining = fault.count;
  }

  clear(): void {
    this.#fault = undefined;
    this.#remaining = 0;
  }

  /** The fault for this request, counting it off; `undefined` when none is pending. */
  take(): Fault | undefined {
    if (!this.#fault || this.#remaining <= 0) return undefined;
    this.#remaining--;
    return this.#fault;
  }
}
