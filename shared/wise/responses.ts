import { once } from '#shared/once.ts';
import type { TokenGrant, WiseProfile, WiseUser } from '#shared/ports/wise-oauth.ts';
import * as z from '#shared/validation.ts';

/**
 * Wise's documented access-token lifetime (12 hours less a second), assumed only when a token response
 * carries neither `expires_in` nor `expires_at`.
 */
export const DOCUMENTED_ACCESS_TOKEN_SECONDS = 43_199;

/** A parsed body, or the reason it could not be parsed (never quoting the body, which holds tokens). */
export type Parsed<T> = { ok: true; value: T; warnings: string[] } | { ok: false; reason: string };

// Optional fields are read leniently: a field of the wrong type counts as missing rather than failing
// a response that carries a perfectly good token. Built on first use: a function instance whose vends are
// all served from the store never parses an answer from Wise.
const schemas = once(() => {
  const lenientString = z.catch(z.nullish(z.string()), undefined);
  /** A number, or a string of digits read as one. */
  function numeric(digits: RegExp, number: z.ZodMiniNumber<number>) {
    return z.union([number, z.pipe(z.string().check(z.trim(), z.regex(digits)), z.transform(Number))]);
  }
  const lenientSeconds = z.catch(z.nullish(numeric(/^\d+(\.\d+)?$/, z.number())), undefined);
  const lenientId = numeric(/^\d+$/, z.int());

  const TokenResponse = z.object({
    access_token: z.string().check(z.minLength(1)),
    token_type: lenientString,
    expires_in: lenientSeconds,
    expires_at: lenientString,
    refresh_token: lenientString,
    refresh_token_expires_in: lenientSeconds,
    refresh_token_expires_at: lenientString,
    scope: lenientString,
  });

  const UserResponse = z.object({
    id: lenientId,
    email: lenientString,
    name: lenientString,
  });

  const ProfileResponse = z.object({
    id: lenientId,
    type: z.string(),
    name: lenientString,
    fullName: lenientString,
    businessName: lenientString,
    firstName: lenientString,
    lastName: lenientString,
    details: z.catch(
      z.nullish(
        z.object({
          name: lenientString,
          firstName: lenientString,
          lastName: lenientString,
        }),
      ),
      undefined,
    ),
  });
  return { TokenResponse, UserResponse, ProfileResponse };
});

/** Reads JSON without ever quoting the text in the failure reason. */
function readJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** The earlier of the defined instants, or undefined when none is. */
function earliest(...instants: Array<number | undefined>): number | undefined {
  const known = instants.filter((instant): instant is number => instant !== undefined);
  return known.length === 0 ? undefined : Math.min(...known);
}

function afterSeconds(nowMs: number, seconds: number | null | undefined): number | undefined {
  return seconds === undefined || seconds === null || !Number.isFinite(seconds) || seconds < 0
    ? undefined
    : nowMs + seconds * 1000;
}

function instant(iso: string | null | undefined): number | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : ms;
}

function nonEmpty(value: string | null | undefined): string | undefined {
  return value === undefined || value === null || value === '' ? undefined : value;
}

/**
 * Parses a token endpoint's 2xx body. The access token expires at the earlier of `now + expires_in` and
 * `expires_at`; a missing refresh token stays undefined so the caller keeps the one it has.
 */
export function parseTokenResponse(text: string, nowMs: number, traceId?: string): Parsed<TokenGrant> {
  const json = readJson(text);
  if (!json.ok) return { ok: false, reason: 'the body is not JSON' };
  const result = schemas().TokenResponse.safeParse(json.value);
  if (!result.success) return { ok: false, reason: 'the body has no access_token' };
  const body = result.data;
  if (body.token_type && body.token_type.toLowerCase() !== 'bearer') {
    return { ok: false, reason: `the token type "${body.token_type.slice(0, 20)}" is not bearer` };
  }

  const warnings: string[] = [];
  let expiresAt = earliest(afterSeconds(nowMs, body.expires_in), instant(body.expires_at));
  if (expiresAt === undefined) {
    warnings.push('Wise gave no expiry for the access token; assuming its documented lifetime.');
    expiresAt = nowMs + DOCUMENTED_ACCESS_TOKEN_SECONDS * 1000;
  }
  const grant: TokenGrant = { accessToken: body.access_token, tokenType: 'bearer', expiresAt };
  const refreshToken = nonEmpty(body.refresh_token);
  if (refreshToken !== undefined) grant.refreshToken = refreshToken;
  const refreshTokenExpiresAt = earliest(
    afterSeconds(nowMs, body.refresh_token_expires_in),
    instant(body.refresh_token_expires_at),
  );
  if (refreshTokenExpiresAt !== undefined) grant.refreshTokenExpiresAt = refreshTokenExpiresAt;
  const scope = nonEmpty(body.scope);
  if (scope !== undefined) grant.scope = scope;
  if (traceId !== undefined) grant.traceId = traceId;
  return { ok: true, value: grant, warnings };
}

/** Parses `GET /v1/me`. */
export function parseUserResponse(text: string): Parsed<WiseUser> {
  const json = readJson(text);
  if (!json.ok) return { ok: false, reason: 'the body is not JSON' };
  const result = schemas().UserResponse.safeParse(json.value);
  if (!result.success) return { ok: false, reason: 'the body has no numeric user id' };
  const user: WiseUser = { id: result.data.id };
  const email = nonEmpty(result.data.email);
  if (email !== undefined) user.email = email;
  const name = nonEmpty(result.data.name);
  if (name !== undefined) user.name = name;
  return { ok: true, value: user, warnings: [] };
}

function profileName(profile: z.infer<ReturnType<typeof schemas>['ProfileResponse']>): string | undefined {
  const details = profile.details;
  const joined = (first?: string | null, last?: string | null) =>
    nonEmpty([first, last].filter((part) => part).join(' '));
  return (
    nonEmpty(profile.name) ??
    nonEmpty(profile.fullName) ??
    nonEmpty(profile.businessName) ??
    nonEmpty(details?.name) ??
    joined(profile.firstName, profile.lastName) ??
    joined(details?.firstName, details?.lastName)
  );
}

/** Parses `GET /v2/profiles`; an entry without an id or type is skipped with a warning. */
export function parseProfilesResponse(text: string): Parsed<WiseProfile[]> {
  const json = readJson(text);
  if (!json.ok) return { ok: false, reason: 'the body is not JSON' };
  if (!Array.isArray(json.value)) return { ok: false, reason: 'the body is not a list of profiles' };
  const profiles: WiseProfile[] = [];
  const warnings: string[] = [];
  for (const entry of json.value) {
    const result = schemas().ProfileResponse.safeParse(entry);
    if (!result.success) {
      warnings.push('Wise listed a profile without a numeric id or a type; it was skipped.');
      continue;
    }
    const profile: WiseProfile = { id: result.data.id, type: result.data.type };
    const name = profileName(result.data);
    if (name !== undefined) profile.name = name;
    profiles.push(profile);
  }
  return { ok: true, value: profiles, warnings };
}
