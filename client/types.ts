import { z } from 'zod';

/**
 * A token from `POST /tokens`. Cache it until `validUntil`; after a 401 from Wise, send its `generation`
 * back as `rejectedGeneration`.
 */
export interface VendedToken {
  accessToken: string;
  tokenType: 'Bearer';
  /** ISO-8601: when Wise stops accepting the token. */
  expiresAt: string;
  /** ISO-8601: the broker does not replace the token before then; cache it until then. */
  validUntil: string;
  /** Grows with every new access token of the connection. */
  generation: number;
  scope?: string;
  connectionId?: string;
  profileId?: number;
}

/** Whose token to vend: a connection of a Wise user, or the application's client-credentials token. */
export type TokenTarget = { connectionId: string } | { kind: 'client' };

/** How `getToken` may ask. */
export interface GetTokenOptions {
  /**
   * Passed to the broker when it is asked. The broker never replaces a token before its `validUntil`, so
   * a cached token is used until then whatever this says; check `expiresAt` when it matters.
   */
  minValiditySeconds?: number;
  /** The generation Wise just rejected with a 401: a cached token of that generation is not used again. */
  rejectedGeneration?: number;
}

/** A connection as the broker shows it: state and times (ISO-8601), never a secret; absent values are `null`. */
export interface ConnectionStatus {
  connectionId: string;
  /** `active`, `needs_reauth` (the Wise user must connect again) or `disconnected`. */
  status: 'active' | 'needs_reauth' | 'disconnected';
  profileId: number | null;
  grant: 'authorization_code' | 'registration_code';
  accessTokenExpiresAt: string | null;
  nextRefreshAt: string | null;
  lastRefreshAt: string | null;
  lastError: { code: string; message: string; at: string } | null;
  /**
   * Only in the answer of a new grant (registration, completion): the connection the same Wise user was
   * connected as before, which the grant ended at Wise (it now needs reauthorization).
   */
  replacedConnectionId?: string;
}

/**
 * The answer to `POST /connect-sessions`: send the Wise user's browser to `startUrl` (it works once, in
 * the browser that opens it, until `expiresAt`).
 */
export interface ConnectSession {
  startUrl: string;
  expiresAt: string;
}

const isoTime = z.string().refine((value) => !Number.isNaN(Date.parse(value)));

/** What a `POST /tokens` answer must hold before the client hands it out. */
export const VendedTokenBody = z.object({
  accessToken: z.string().min(1),
  tokenType: z.literal('Bearer'),
  expiresAt: isoTime,
  validUntil: isoTime,
  generation: z.number().int().min(0),
  scope: z.string().exactOptional(),
  connectionId: z.string().exactOptional(),
  profileId: z.number().exactOptional(),
}) satisfies z.ZodType<VendedToken>;

export const ConnectSessionBody = z.object({
  startUrl: z.string(),
  expiresAt: isoTime,
}) satisfies z.ZodType<ConnectSession>;

/** Unknown fields a newer broker may add pass through as they came. */
export const ConnectionStatusBody = z.looseObject({
  connectionId: z.string(),
  status: z.enum(['active', 'needs_reauth', 'disconnected']),
  profileId: z.number().nullable(),
  grant: z.enum(['authorization_code', 'registration_code']),
  accessTokenExpiresAt: isoTime.nullable(),
  nextRefreshAt: isoTime.nullable(),
  lastRefreshAt: isoTime.nullable(),
  lastError: z.object({ code: z.string(), message: z.string(), at: isoTime }).nullable(),
  replacedConnectionId: z.string().exactOptional(),
}) satisfies z.ZodType<ConnectionStatus>;

export const ConnectionPageBody = z.object({
  connections: z.array(ConnectionStatusBody),
  nextToken: z.string().min(1).exactOptional(),
});
