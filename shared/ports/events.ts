/** Tells the partner's other systems that a connection needs the Wise user to authorize again. */
export interface ReauthorizationRequiredEvent {
  connectionId: string;
  /** Why, without secrets: e.g. `invalid_grant`. */
  reason: string;
  /** Epoch ms. */
  at: number;
}

/**
 * The broker publishes before it marks the connection, and publishes again when either step failed, so an
 * event arrives at least once: consumers should treat a repeat as harmless.
 */
export interface BrokerEvents {
  reauthorizationRequired(event: ReauthorizationRequiredEvent): Promise<void>;
}
