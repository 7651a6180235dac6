import type { TokenState } from './records.ts';

type TokenTimes = Pick<TokenState, 'accessTokenExpiresAt' | 'nextRefreshAt' | 'lastRefreshAt' | 'createdAt'>;

/** How long after its due time a refresh started at `now` ran; 0 when on time, early, or never due. */
export function refreshLatenessMs(record: Pick<TokenTimes, 'nextRefreshAt'>, now: number): number {
  return record.nextRefreshAt === undefined ? 0 : Math.max(0, now - record.nextRefreshAt);
}

/** How much life the stored access token has left at `now`; 0 when it has expired or there is none. */
export function lifeLeftMs(record: Pick<TokenTimes, 'accessTokenExpiresAt'>, now: number): number {
  return Math.max(0, (record.accessTokenExpiresAt ?? now) - now);
}

/**
 * Whether a record is at risk: its token has less than `share` of its lifetime left (issued at its last
 * refresh, or when the record was made). A record without a token is at risk.
 */
export function isAtRisk(record: TokenTimes, now: number, share: number): boolean {
  if (record.accessTokenExpiresAt === undefined) return true;
  const issuedAt = record.lastRefreshAt ?? record.createdAt;
  const lifetime = Math.max(0, record.accessTokenExpiresAt - issuedAt);
  return lifeLeftMs(record, now) < share * lifetime;
}
