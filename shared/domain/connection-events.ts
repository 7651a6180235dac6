/**
 * The connection events the broker publishes: their `source` and each kind's EventBridge `detail-type`,
 * which is all a function needs to publish one. The schemas of their `detail` are in
 * `connection-event-schemas.ts`, read by the stack (the schema registry) and the tests, never by a function.
 */

/** The `source` of every event the broker publishes. */
export const EVENT_SOURCE = 'wise-token-broker';

/** The EventBridge `detail-type` of each kind of connection event, the string a partner's rule matches. */
export const CONNECTION_EVENT_TYPES = {
  /** A grant stored a connection: the authorization page, a registration code, or an import. */
  connected: 'Connection Connected',
  /** Wise refused the connection's refresh token: the user must authorize again (the connection stops refreshing). */
  reauthorizationRequired: 'Connection Reauthorization Required',
  /** A refresh succeeded after one or more failed ones (Wise down, rate limiting, a network error). */
  recovered: 'Connection Recovered',
  /** An administrator deleted the connection: its tokens are destroyed and a tombstone is left. */
  disconnected: 'Connection Disconnected',
} as const;

/** One kind of connection event. */
export type ConnectionEventKind = keyof typeof CONNECTION_EVENT_TYPES;
