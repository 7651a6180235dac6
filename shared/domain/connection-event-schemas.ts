import { CONNECTION_EVENT_TYPES, type ConnectionEventKind } from '#shared/domain/connection-events.ts';
import * as z from '#shared/validation.ts';

/**
 * The events of a connection's life, each with the EventBridge `detail-type` a partner's rule matches and
 * the schema of its `detail`. Details carry ids, statuses and times, never a token, a code or personal data.
 * Times are ISO 8601.
 */
export const CONNECTION_EVENTS = {
  /** A grant stored a connection: the authorization page, a registration code, or an import. */
  connected: {
    detailType: CONNECTION_EVENT_TYPES.connected,
    detail: z.strictObject({
      connectionId: z.string(),
      grant: z.enum(['authorization_code', 'registration_code']),
      /** True when the connection came from another system through `POST /connections/{id}/import`. */
      imported: z.boolean(),
      profileId: z.nullable(z.int()),
      /** The connection's generation after this grant; a consumer can drop an event older than one it has seen. */
      generation: z.int(),
      /** What the grant replaced: `needs_reauth` when the user authorized again; `null` for a new id. */
      previousStatus: z.nullable(z.enum(['active', 'needs_reauth', 'disconnected'])),
      at: z.iso.datetime(),
    }),
  },
  /** Wise refused the connection's refresh token: the user must authorize again (the connection stops refreshing). */
  reauthorizationRequired: {
    detailType: CONNECTION_EVENT_TYPES.reauthorizationRequired,
    detail: z.strictObject({
      connectionId: z.string(),
      /** Why, such as `invalid_grant`, or `replaced_by_connection` (see `replacedBy`). */
      reason: z.string(),
      /** With `replaced_by_connection`: the connection id the same Wise user is now connected as. */
      replacedBy: z.optional(z.string()),
      at: z.iso.datetime(),
    }),
  },
  /** A refresh succeeded after one or more failed ones (Wise down, rate limiting, a network error). */
  recovered: {
    detailType: CONNECTION_EVENT_TYPES.recovered,
    detail: z.strictObject({
      connectionId: z.string(),
      /** How many refreshes in a row had failed. */
      failedRefreshes: z.int(),
      /** The last failure's code, such as `wise_unavailable`. */
      lastErrorCode: z.nullable(z.string()),
      generation: z.int(),
      at: z.iso.datetime(),
    }),
  },
  /** An administrator deleted the connection: its tokens are destroyed and a tombstone is left. */
  disconnected: {
    detailType: CONNECTION_EVENT_TYPES.disconnected,
    detail: z.strictObject({
      connectionId: z.string(),
      at: z.iso.datetime(),
    }),
  },
} as const satisfies Record<ConnectionEventKind, { detailType: string; detail: z.ZodMiniType }>;

/** The `detail` of one kind of connection event. */
export type ConnectionEventDetail<K extends ConnectionEventKind> = z.output<
  (typeof CONNECTION_EVENTS)[K]['detail']
>;

/** The JSON Schema (draft 4, as EventBridge's schema registry reads it) of one kind's `detail`. */
export function connectionEventJsonSchema(kind: ConnectionEventKind): Record<string, unknown> {
  return z.toJSONSchema(CONNECTION_EVENTS[kind].detail, { target: 'draft-04' }) as Record<string, unknown>;
}
