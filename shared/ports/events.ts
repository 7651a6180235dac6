/** Tells the partner's other systems that a connection needs the Wise user to authorize again. */
export interface ReauthorizationRequiredEvent {
  connectionId: string;
  /** Why, without secrets: e.g. `invalid_grant`. */
  reason: string;
  /** Epoch ms. */
  at: number;
}

export interface BrokerEvents {
  reauthorizationRequired(event: ReauthorizationRequiredEvent): Promise<void>;
}
