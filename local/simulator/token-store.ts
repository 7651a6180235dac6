import { createHash } from 'node:crypto';
import { z } from 'zod';
import { noteSecret } from '../leak-watch.ts';
import type { SimulatorClock } from './clock.ts';
import { opaqueToken } from './opaque-token.ts';

/** Lifetimes and the rotation switch the store needs. */
export interface TokenRules {
  accessTokenSeconds: number;
  refreshTokenSeconds: number;
  codeSeconds: number;
  rotateRefreshTokens: boolean;
}

const EpochMs = z.number().int();
const UserId = z.number().int().positive();
const Token = z.string().min(1);

/** A live access token: an application token, or a user token with its user. */
export const AccessGrant = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('client'), expiresAt: EpochMs }),
  z.object({ kind: z.literal('user'), userId: UserId, expiresAt: EpochMs }),
]);
export type AccessGrant = z.infer<typeof AccessGrant>;

/** A live refresh token. */
const RefreshRecord = z.object({
  userId: UserId,
  expiresAt: EpochMs,
  /** The access token granted last from this refresh token; the next refresh kills it. */
  accessToken: Token,
});
type RefreshRecord = z.infer<typeof RefreshRecord>;

/**
 * The live access and refresh tokens, each with the token itself, as a state file keeps them. Codes are
 * left out: they live minutes, and a user whose code a restart lost just approves again.
 */
export const TokenSnapshot = z.object({
  accessTokens: z.array(z.tuple([Token, AccessGrant])),
  refreshTokens: z.array(z.tuple([Token, RefreshRecord])),
});
export type TokenSnapshot = z.infer<typeof TokenSnapshot>;

/** What a grant hands out; `refresh` only for user tokens. */
export interface IssuedTokens {
  accessToken: string;
  accessExpiresAt: number;
  createdAt: number;
  refresh?: { token: string; expiresAt: number };
}

interface CodeRecord {
  userId: number;
  redirectUri: string;
  expiresAt: number;
  /** The PKCE S256 challenge the authorization request carried, when PKCE is honoured. */
  codeChallenge?: string | undefined;
}

/**
 * Authorization codes, access tokens and refresh tokens with Wise's rules: codes are single-use and
 * expire; a refresh kills the access token granted before it; a new code or registration grant kills the
 * user's previous refresh token (its last access token lives on until it expires).
 */
export class TokenStore {
  readonly #codes = new Map<string, CodeRecord>();
  readonly #access: Map<string, AccessGrant>;
  readonly #refresh: Map<string, RefreshRecord>;
  readonly #rules: TokenRules;
  readonly #clock: SimulatorClock;

  /** `saved`: the tokens of an earlier run, which go on living by the same rules. */
  constructor(rules: TokenRules, clock: SimulatorClock, saved?: TokenSnapshot) {
    this.#rules = rules;
    this.#clock = clock;
    this.#access = new Map(saved?.accessTokens);
    this.#refresh = new Map(saved?.refreshTokens);
  }

  /** The tokens that are still live, for a state file. */
  snapshot(): TokenSnapshot {
    const now = this.#clock.now();
    const live = <Entry extends { expiresAt: number }>(tokens: Map<string, Entry>) =>
      [...tokens].filter(([, record]) => record.expiresAt > now);
    return { accessTokens: live(this.#access), refreshTokens: live(this.#refresh) };
  }

  issueCode(userId: number, redirectUri: string, codeChallenge?: string): string {
    const code = opaqueToken();
    noteSecret('authorization_code', code);
    const expiresAt = this.#clock.now() + this.#rules.codeSeconds * 1000;
    this.#codes.set(code, { userId, redirectUri, expiresAt, codeChallenge });
    return code;
  }

  /**
   * Consumes the code whatever the outcome; its user when it was live, issued for this redirect URI, and,
   * for a code issued with a PKCE challenge, `codeVerifier` matches it (a verifier for a code issued
   * without a challenge is refused too).
   */
  redeemCode(code: string, redirectUri: string, codeVerifier?: string): number | undefined {
    const record = this.#codes.get(code);
    this.#codes.delete(code);
    if (!record || record.expiresAt <= this.#clock.now() || record.redirectUri !== redirectUri)
      return undefined;
    if (record.codeChallenge === undefined) return codeVerifier === undefined ? record.userId : undefined;
    if (codeVerifier === undefined) return undefined;
    const challenge = createHash('sha256').update(codeVerifier).digest('base64url');
    return challenge === record.codeChallenge ? record.userId : undefined;
  }

  mintClientToken(): IssuedTokens {
    return this.#issueAccess(undefined);
  }

  /** A fresh user token after an authorization or registration grant; the user's old refresh tokens die. */
  grantUserTokens(userId: number): IssuedTokens {
    for (const [token, record] of this.#refresh) {
      if (record.userId === userId) this.#refresh.delete(token);
    }
    const issued = this.#issueAccess(userId);
    const refresh = this.#newRefreshToken(issued.createdAt);
    this.#refresh.set(refresh.token, {
      userId,
      expiresAt: refresh.expiresAt,
      accessToken: issued.accessToken,
    });
    return { ...issued, refresh };
  }

  /** A new access token for a live refresh token; `undefined` when it is unknown, revoked or expired. */
  refresh(refreshToken: string): IssuedTokens | undefined {
    const record = this.#refresh.get(refreshToken);
    if (!record) return undefined;
    if (record.expiresAt <= this.#clock.now()) {
      this.#refresh.delete(refreshToken);
      return undefined;
    }
    this.#access.delete(record.accessToken);
    const issued = this.#issueAccess(record.userId);
    if (!this.#rules.rotateRefreshTokens) {
      record.accessToken = issued.accessToken;
      return { ...issued, refresh: { token: refreshToken, expiresAt: record.expiresAt } };
    }
    this.#refresh.delete(refreshToken);
    const rotated = this.#newRefreshToken(issued.createdAt);
    this.#refresh.set(rotated.token, {
      ...record,
      expiresAt: rotated.expiresAt,
      accessToken: issued.accessToken,
    });
    return { ...issued, refresh: rotated };
  }

  /** The grant behind a live access token; `undefined` when it is unknown, replaced, revoked or expired. */
  liveAccess(accessToken: string): AccessGrant | undefined {
    const grant = this.#access.get(accessToken);
    if (!grant) return undefined;
    if (grant.expiresAt <= this.#clock.now()) {
      this.#access.delete(accessToken);
      return undefined;
    }
    return grant;
  }

  /**
   * Kills one access token and nothing else (its refresh token lives on), as when Wise ends a token early;
   * `false` when it was not live.
   */
  revokeAccessToken(accessToken: string): boolean {
    return this.liveAccess(accessToken) !== undefined && this.#access.delete(accessToken);
  }

  /** Kills every refresh and access token of the user, as when the user revokes the partner's access. */
  revokeUser(userId: number): { refreshTokens: number; accessTokens: number } {
    const revoked = { refreshTokens: 0, accessTokens: 0 };
    for (const [token, record] of this.#refresh) {
      if (record.userId !== userId) continue;
      this.#refresh.delete(token);
      revoked.refreshTokens++;
    }
    for (const [token, grant] of this.#access) {
      if (grant.kind !== 'user' || grant.userId !== userId) continue;
      this.#access.delete(token);
      revoked.accessTokens++;
    }
    return revoked;
  }

  /** An access token for the user, or for the application when `userId` is undefined. */
  #issueAccess(userId: number | undefined): IssuedTokens {
    const now = this.#clock.now();
    const accessToken = opaqueToken();
    noteSecret('access_token', accessToken);
    const expiresAt = now + this.#rules.accessTokenSeconds * 1000;
    this.#access.set(
      accessToken,
      userId === undefined ? { kind: 'client', expiresAt } : { kind: 'user', userId, expiresAt },
    );
    return { accessToken, accessExpiresAt: expiresAt, createdAt: now };
  }

  #newRefreshToken(now: number): { token: string; expiresAt: number } {
    const token = opaqueToken();
    noteSecret('refresh_token', token);
    return { token, expiresAt: now + this.#rules.refreshTokenSeconds * 1000 };
  }
}
