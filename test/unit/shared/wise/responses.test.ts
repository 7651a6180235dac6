import { describe, expect, it } from 'vitest';
import {
  DOCUMENTED_ACCESS_TOKEN_SECONDS,
  parseProfilesResponse,
  parseTokenResponse,
  parseUserResponse,
} from '#shared/wise/responses.ts';

const NOW = Date.parse('2026-11-26T10:00:00.000Z');

function grantOf(body: unknown) {
  const parsed = parseTokenResponse(JSON.stringify(body), NOW, 'trace-1');
  if (!parsed.ok) throw new Error(`expected a grant, got: ${parsed.reason}`);
  return parsed;
}

describe('parseTokenResponse', () => {
  it('reads a full user-token response', () => {
    const { value } = grantOf({
      access_token: 'access-1',
      token_type: 'bearer',
      refresh_token: 'refresh-1',
      expires_in: 43199,
      expires_at: '2026-11-26T21:59:59.000Z',
      refresh_token_expires_in: 628639555,
      refresh_token_expires_at: '2046-11-26T10:00:00.000Z', // later than now + 628639555 s
      scope: 'transfers',
      created_at: '2026-11-26T10:00:00.000Z',
    });

    expect(value).toEqual({
      accessToken: 'access-1',
      tokenType: 'bearer',
      expiresAt: Date.parse('2026-11-26T21:59:59.000Z'),
      refreshToken: 'refresh-1',
      refreshTokenExpiresAt: NOW + 628639555 * 1000,
      scope: 'transfers',
      traceId: 'trace-1',
    });
  });

  it('computes the expiry from expires_in when expires_at is missing', () => {
    const { value } = grantOf({ access_token: 'a', token_type: 'bearer', expires_in: 43199 });

    expect(value.expiresAt).toBe(NOW + 43199 * 1000);
  });

  it('takes expires_at when it is earlier than now + expires_in', () => {
    const { value } = grantOf({ access_token: 'a', expires_in: 43199, expires_at: '2026-11-26T11:00:00Z' });

    expect(value.expiresAt).toBe(Date.parse('2026-11-26T11:00:00Z'));
  });

  it('takes now + expires_in when it is earlier than expires_at', () => {
    const { value } = grantOf({ access_token: 'a', expires_in: 60, expires_at: '2026-11-26T11:00:00Z' });

    expect(value.expiresAt).toBe(NOW + 60_000);
  });

  it('uses expires_at alone when expires_in is missing', () => {
    const { value } = grantOf({ access_token: 'a', expires_at: '2026-11-26T12:00:00Z' });

    expect(value.expiresAt).toBe(Date.parse('2026-11-26T12:00:00Z'));
  });

  it('accepts expires_in sent as a numeric string', () => {
    const { value } = grantOf({ access_token: 'a', expires_in: '120' });

    expect(value.expiresAt).toBe(NOW + 120_000);
  });

  it('assumes the documented lifetime, with a warning, when no expiry is given', () => {
    const parsed = grantOf({ access_token: 'a', token_type: 'bearer' });

    expect(parsed.value.expiresAt).toBe(NOW + DOCUMENTED_ACCESS_TOKEN_SECONDS * 1000);
    expect(parsed.warnings).toHaveLength(1);
  });

  it('leaves the refresh token undefined when a refresh returns none', () => {
    const { value } = grantOf({ access_token: 'a', token_type: 'bearer', expires_in: 43199 });

    expect(value).not.toHaveProperty('refreshToken');
    expect(value).not.toHaveProperty('refreshTokenExpiresAt');
  });

  it('treats an empty or null refresh token as none', () => {
    expect(grantOf({ access_token: 'a', expires_in: 1, refresh_token: '' }).value).not.toHaveProperty(
      'refreshToken',
    );
    expect(grantOf({ access_token: 'a', expires_in: 1, refresh_token: null }).value).not.toHaveProperty(
      'refreshToken',
    );
  });

  it('computes the refresh-token expiry as the earlier of its two fields', () => {
    const { value } = grantOf({
      access_token: 'a',
      expires_in: 1,
      refresh_token: 'r',
      refresh_token_expires_in: 3600,
      refresh_token_expires_at: '2026-11-26T10:30:00Z',
    });

    expect(value.refreshTokenExpiresAt).toBe(Date.parse('2026-11-26T10:30:00Z'));
  });

  it('ignores optional fields of the wrong type instead of failing', () => {
    const { value } = grantOf({
      access_token: 'a',
      expires_in: 30,
      expires_at: { nonsense: true },
      scope: 42,
      refresh_token_expires_at: 'not a date',
    });

    expect(value).toEqual({
      accessToken: 'a',
      tokenType: 'bearer',
      expiresAt: NOW + 30_000,
      traceId: 'trace-1',
    });
  });

  it('accepts a token of any size and shape', () => {
    const token = `${'x'.repeat(5000)}.~/+=é`;

    expect(grantOf({ access_token: token, expires_in: 1 }).value.accessToken).toBe(token);
  });

  it('accepts the token type in any case', () => {
    expect(grantOf({ access_token: 'a', token_type: 'Bearer', expires_in: 1 }).value.tokenType).toBe(
      'bearer',
    );
  });

  it('rejects a token type other than bearer', () => {
    const parsed = parseTokenResponse(JSON.stringify({ access_token: 'a', token_type: 'mac' }), NOW);

    expect(parsed.ok).toBe(false);
  });

  it('rejects a body without an access token', () => {
    const parsed = parseTokenResponse(JSON.stringify({ token_type: 'bearer', expires_in: 1 }), NOW);

    expect(parsed.ok).toBe(false);
  });

  it('rejects a body that is not JSON without quoting it', () => {
    const parsed = parseTokenResponse('<html>secret-looking-body</html>', NOW);

    expect(parsed).toEqual({ ok: false, reason: 'the body is not JSON' });
  });
});

describe('parseUserResponse', () => {
  it('reads the id, email and name', () => {
    const parsed = parseUserResponse(
      JSON.stringify({ id: 101, email: 'a@example.com', name: 'A B', active: true }),
    );

    expect(parsed).toEqual({
      ok: true,
      value: { id: 101, email: 'a@example.com', name: 'A B' },
      warnings: [],
    });
  });

  it('leaves missing optional fields out', () => {
    const parsed = parseUserResponse(JSON.stringify({ id: '7' }));

    expect(parsed).toEqual({ ok: true, value: { id: 7 }, warnings: [] });
  });

  it('rejects a user without an id', () => {
    expect(parseUserResponse(JSON.stringify({ email: 'a@example.com' })).ok).toBe(false);
  });
});

describe('parseProfilesResponse', () => {
  it('reads profiles and their names from the shapes Wise uses', () => {
    const parsed = parseProfilesResponse(
      JSON.stringify([
        { id: 1, type: 'PERSONAL', fullName: 'Ada Lovelace' },
        { id: 2, type: 'BUSINESS', businessName: 'Engines Ltd' },
        { id: 3, type: 'personal', details: { firstName: 'Charles', lastName: 'Babbage' } },
        { id: 4, type: 'business', details: { name: 'Analytical Ltd' } },
        { id: 5, type: 'PERSONAL' },
      ]),
    );

    expect(parsed).toEqual({
      ok: true,
      value: [
        { id: 1, type: 'PERSONAL', name: 'Ada Lovelace' },
        { id: 2, type: 'BUSINESS', name: 'Engines Ltd' },
        { id: 3, type: 'personal', name: 'Charles Babbage' },
        { id: 4, type: 'business', name: 'Analytical Ltd' },
        { id: 5, type: 'PERSONAL' },
      ],
      warnings: [],
    });
  });

  it('skips a profile without an id, with a warning', () => {
    const parsed = parseProfilesResponse(JSON.stringify([{ type: 'PERSONAL' }, { id: 9, type: 'BUSINESS' }]));

    expect(parsed.ok && parsed.value).toEqual([{ id: 9, type: 'BUSINESS' }]);
    expect(parsed.ok && parsed.warnings).toHaveLength(1);
  });

  it('rejects a body that is not a list', () => {
    expect(parseProfilesResponse(JSON.stringify({ id: 1 })).ok).toBe(false);
  });
});
