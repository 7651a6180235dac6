/** Tells the partner's other systems that a connection needs the Wise user to authorize again. */
export interface ReauthorizationRequiredEvent {
  connectionId: string;
  /** Why, without secrets: `invalid_grant`, or `replaced_by_connection` (see `replacedBy`). */
  reason: string;
  /** With `replaced_by_connection`: the connection id the same Wise user is now connected as. */
  replacedBy?: string;
  /** Epoch ms. */
  at: number;
}

/** A grant stored a connection (the authorization page, a registration code or an import). */
export interface ConnectedEvent {
  connectionId: string;
  grant: 'authorization_code' | 'registration_code';
  imported: boolean;
  profileId?: number;
  generation: number;
  /** The status of the record the grant replaced; absent for a new id. */
  previousStatus?: 'active' | 'needs_reauth' | 'disconnected';
  /** Epoch ms. */
  at: number;
}

/** A refresh succeeded after failed ones. */
export interface RecoveredEvent {
  connectionId: string;
  failedRefreshes: number;
  lastErrorCode?: string;
  generation: number;
  /** Epoch ms. */
  at: number;
}

/** An administrator disconnected the connection. */
export interface DisconnectedEvent {
  connectionId: string;
  /** Epoch ms. */
  at: number;
}

/**
 * The events of a connection's life (their schemas: `#shared/domain/connection-events.ts`). The broker
 * publishes "reauthorization required" before it marks the connection, and again when either step failed,
 * so it arrives at least once; the others follow the change they report, which is already stored. Every
 * event may arrive more than once: consumers should treat a repeat as harmless.
 */
export interface BrokerEvents {
  reauthorizationRequired(event: ReauthorizationRequiredEvent): Promise<void>;
  connected(event: ConnectedEvent): Promise<void>;
  recovered(event: RecoveredEvent): Promise<void>;
  disconnected(event: DisconnectedEvent): Promise<void>;
}
