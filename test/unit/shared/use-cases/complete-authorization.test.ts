import { afterEach, describe, expect, it, vi } from 'vitest';
import { nextRefreshAt } from '#shared/domain/refresh-rule.ts';
import { hashSecret } from '#shared/domain/secret-hash.ts';
import { logger, MetricName, metrics } from '#shared/observability.ts';
import type { NewConnection } from '#shared/ports/token-store.ts';
import {
  type AuthorizationCallback,
  completeAuthorization,
  saveNewConnection,
} from '#shared/use-cases/complete-authorization.ts';
import {
  WiseInvalidClientError,
  WiseInvalidGrantError,
  WiseInvalidRequestError,
  WiseInvalidTokenError,
  WiseRateLimitedError,
  WiseUnavailableError,
} from '#shared/wise/errors.ts';
import { openStored } from '../../../support/fake-envelope.ts';
import {
  type FakeRuntime,
  fakeRuntime,
  recordPrepareAndGrant,
  START,
  storedConnection,
} from './connect-fakes.ts';

const ACME = { kind: 'connection', connectionId: 'acme-1' } as const;

const STATE = 'S'.repeat(43);
/** The secret of the browser that opened the start URL, as its cookie holds it. */
const BROWSER = 'B'.repeat(43);

/** A session already opened at its start URL by the browser whose secret is {@link BROWSER}. */
async function session(runtime: FakeRuntime, options: { connectionId?: string; returnUrl?: string } = {}) {
  await runtime.store.putConnectSession({
    stateHash: hashSecret('state', STATE),
    browserHash: hashSecret('browser', BROWSER),
    connectionId: options.connectionId ?? 'acme-1',
    createdBy: 'arn:aws:iam::111122223333:role/partner-app',
    createdAt: START,
    expiresAt: START + 600_000,
    ...(options.returnUrl ? { returnUrl: options.returnUrl } : {}),
  });
}

function decode(bytes: Uint8Array | undefined): string {
  return new TextDecoder().decode(bytes);
}

/** The callback as the browser that started the flow brings it, with its cookie. */
function fromBrowser(runtime: FakeRuntime, callback: AuthorizationCallback) {
  return completeAuthorization(runtime, callback, { browserSecret: BROWSER });
}

afterEach(() => {
  vi.restoreAllMocks();
});

/** Silences the logger and the metrics; the spies say what was logged and counted. */
function observe() {
  return {
    addMetric: vi.spyOn(metrics, 'addMetric').mockImplementation(() => metrics),
    warn: vi.spyOn(logger, 'warn').mockImplementation(() => {}),
    error: vi.spyOn(logger, 'error').mockImplementation(() => {}),
  };
}

const down = () => new WiseUnavailableError('down', { status: 503 });

describe('completeAuthorization', () => {
  it('exchanges the code and stores the tokens encrypted for the connection, with the personal profile', async () => {
    const runtime = fakeRuntime();
    await session(runtime);

    const result = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(result).toMatchObject({ kind: 'connected', connectionId: 'acme-1' });
    expect(runtime.wise.calls[0]).toEqual({ method: 'exchangeCode', args: [{ code: 'the-code' }] });
    const stored = await runtime.store.getConnection('acme-1');
    expect(stored).toMatchObject({
      status: 'active',
      grant: 'authorization_code',
      profileId: 16550001,
      userId: 5550001,
      scope: 'transfers',
      generation: 1,
      lastRefreshAt: START,
      accessTokenExpiresAt: START + 43_199_000,
      refreshTokenExpiresAt: START + 628_639_555_000,
    });
    const access = stored && (await openStored(runtime.cipher, ACME, stored, 'access_token'));
    const refresh = stored && (await openStored(runtime.cipher, ACME, stored, 'refresh_token'));
    expect([access, refresh]).toEqual(['access-token-1', 'refresh-token-1']);
    expect(decode(stored?.accessToken)).not.toContain('access-token-1');
  });

  it('schedules the first refresh by the refresh rule', async () => {
    const runtime = fakeRuntime();
    await session(runtime);

    await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    const stored = await runtime.store.getConnection('acme-1');
    expect(stored?.nextRefreshAt).toBe(nextRefreshAt(START, START + 43_199_000, 0.8, () => 0.5));
  });

  it("keeps the profile Wise sent back when it is one of the user's", async () => {
    const runtime = fakeRuntime();
    await session(runtime);

    await fromBrowser(runtime, { state: STATE, code: 'the-code', profileId: 16550002 });

    expect((await runtime.store.getConnection('acme-1'))?.profileId).toBe(16550002);
  });

  it("refuses a profile that is not the user's and stores nothing", async () => {
    const runtime = fakeRuntime();
    await session(runtime);

    const result = await fromBrowser(runtime, { state: STATE, code: 'the-code', profileId: 999 });

    expect(result).toEqual({ kind: 'refused', reason: 'profile_not_owned', connectionId: 'acme-1' });
    expect(await runtime.store.getConnection('acme-1')).toBeUndefined();
  });

  it('takes the first profile when the user has no personal one', async () => {
    const runtime = fakeRuntime();
    runtime.wise.profiles = [{ id: 77, type: 'BUSINESS' }];
    await session(runtime);

    await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect((await runtime.store.getConnection('acme-1'))?.profileId).toBe(77);
  });

  it('consumes the state: the same state works only once', async () => {
    const runtime = fakeRuntime();
    await session(runtime);
    await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    const second = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(second).toEqual({ kind: 'refused', reason: 'unknown_state' });
    expect(runtime.wise.called('exchangeCode')).toBe(1);
  });

  it('refuses a callback without the browser cookie before reading the session or calling Wise', async () => {
    const runtime = fakeRuntime();
    await session(runtime);
    const consume = vi.spyOn(runtime.store, 'consumeConnectSession');

    const result = await completeAuthorization(runtime, { state: STATE, code: 'the-code' });

    expect(result).toEqual({ kind: 'refused', reason: 'other_browser' });
    expect(consume).not.toHaveBeenCalled();
    expect(runtime.wise.calls).toEqual([]);
  });

  it("refuses another browser's cookie and leaves the session to the browser that opened it", async () => {
    const runtime = fakeRuntime();
    await session(runtime);

    const stranger = await completeAuthorization(
      runtime,
      { state: STATE, code: 'the-code' },
      { browserSecret: 'C'.repeat(43) },
    );
    const owner = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(stranger).toEqual({ kind: 'refused', reason: 'unknown_state' });
    expect(owner.kind).toBe('connected');
    expect(runtime.wise.called('exchangeCode')).toBe(1);
  });

  it('refuses an unknown state without calling Wise', async () => {
    const runtime = fakeRuntime();

    const result = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(result).toEqual({ kind: 'refused', reason: 'unknown_state' });
    expect(runtime.wise.calls).toEqual([]);
  });

  it('refuses a state that has expired, with the return URL, without exchanging the code', async () => {
    const runtime = fakeRuntime();
    await session(runtime, { returnUrl: 'https://app.example.com/return/' });
    runtime.advance(600_000);

    const result = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(result).toEqual({
      kind: 'refused',
      reason: 'expired_state',
      connectionId: 'acme-1',
      returnUrl: 'https://app.example.com/return/',
    });
    expect(runtime.wise.calls).toEqual([]);
  });

  it('accepts a state one millisecond before it expires', async () => {
    const runtime = fakeRuntime();
    await session(runtime);
    runtime.advance(599_999);

    const result = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(result.kind).toBe('connected');
  });

  it('reports denied consent and burns the state', async () => {
    const runtime = fakeRuntime();
    await session(runtime);

    const result = await fromBrowser(runtime, { state: STATE, error: 'access_denied' });
    const again = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(result).toEqual({ kind: 'refused', reason: 'denied', connectionId: 'acme-1' });
    expect(again.kind).toBe('refused');
    expect(runtime.wise.calls).toEqual([]);
  });

  it('reports another OAuth error from Wise as a failed authorization', async () => {
    const runtime = fakeRuntime();
    await session(runtime);

    const result = await fromBrowser(runtime, { state: STATE, error: 'server_error' });

    expect(result).toMatchObject({ kind: 'refused', reason: 'authorization_failed' });
  });

  it('reports a code Wise rejected and stores nothing', async () => {
    const runtime = fakeRuntime();
    runtime.wise.exchangeFailure = new WiseInvalidGrantError('used', {
      status: 400,
      wiseError: 'invalid_grant',
    });
    await session(runtime);

    const result = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(result).toMatchObject({ kind: 'refused', reason: 'code_rejected', connectionId: 'acme-1' });
    expect(await runtime.store.getConnection('acme-1')).toBeUndefined();
  });

  it.each([
    [
      'Wise is down and names a wait',
      new WiseUnavailableError('down', { status: 503, retryAfterSeconds: 30 }),
      30,
    ],
    ['Wise is down without a wait', new WiseUnavailableError('down', { status: 503 }), 60],
    ['Wise rate limits', new WiseRateLimitedError('slow', { status: 429, retryAfterSeconds: 12 }), 12],
  ])('reports Wise unavailable when %s', async (_case, failure, seconds) => {
    const runtime = fakeRuntime();
    runtime.wise.exchangeFailure = failure;
    await session(runtime);

    const result = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(result).toEqual({ kind: 'unavailable', retryAfterSeconds: seconds, connectionId: 'acme-1' });
  });

  it.each([
    ['invalid_client', new WiseInvalidClientError('bad secret', { status: 401 })],
    ['wise_error', new WiseInvalidRequestError('bad request', { status: 400 })],
  ])('reports a failure of the broker itself at Wise as %s', async (reason, failure) => {
    const runtime = fakeRuntime();
    runtime.wise.exchangeFailure = failure;
    await session(runtime);

    const result = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(result).toEqual({ kind: 'failed', reason, connectionId: 'acme-1' });
  });

  it('counts invalid_client for the operator alarm and logs it as an error', async () => {
    const { addMetric, error } = observe();
    const runtime = fakeRuntime();
    runtime.wise.exchangeFailure = new WiseInvalidClientError('bad secret', { status: 401 });
    await session(runtime);

    await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(addMetric).toHaveBeenCalledWith(MetricName.invalidClient, 'Count', 1);
    expect(error).toHaveBeenCalledWith(
      expect.stringContaining('client credentials'),
      expect.objectContaining({ connectionId: 'acme-1' }),
    );
  });

  it('counts no invalid_client when Wise is only unavailable', async () => {
    const { addMetric } = observe();
    const runtime = fakeRuntime();
    runtime.wise.exchangeFailure = down();
    await session(runtime);

    await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(addMetric).not.toHaveBeenCalledWith(
      MetricName.invalidClient,
      expect.anything(),
      expect.anything(),
    );
  });

  it("keeps the good grant when /v1/me and /v2/profiles stay unavailable, leaving out the query's unverified profile", async () => {
    const { warn } = observe();
    const runtime = fakeRuntime();
    vi.spyOn(runtime.wise, 'getCurrentUser').mockRejectedValue(down());
    vi.spyOn(runtime.wise, 'listProfiles').mockRejectedValue(
      new WiseRateLimitedError('slow', { status: 429, retryAfterSeconds: 5 }),
    );
    await session(runtime);

    const result = await fromBrowser(runtime, {
      state: STATE,
      code: 'the-code',
      profileId: 424242,
    });

    expect(result).toMatchObject({ kind: 'connected', connectionId: 'acme-1' });
    const stored = await runtime.store.getConnection('acme-1');
    expect(stored).toMatchObject({ status: 'active', generation: 1 });
    expect(stored).not.toHaveProperty('userId');
    expect(stored).not.toHaveProperty('profileId');
    const refresh = stored && (await openStored(runtime.cipher, ACME, stored, 'refresh_token'));
    expect(refresh).toBe('refresh-token-1');
    expect(warn).toHaveBeenCalledWith(
      expect.stringMatching(/without a profile/),
      expect.objectContaining({ connectionId: 'acme-1', profileId: 424242, profileVerified: false }),
    );
  });

  it('gives Wise calls deadlines that leave time to store the grant before the request ends', async () => {
    const runtime = fakeRuntime();
    const exchange = vi.spyOn(runtime.wise, 'exchangeCode');
    const user = vi.spyOn(runtime.wise, 'getCurrentUser');
    const profiles = vi.spyOn(runtime.wise, 'listProfiles');
    await session(runtime);

    await completeAuthorization(
      runtime,
      { state: STATE, code: 'the-code' },
      { endsAt: START + 12_000, browserSecret: BROWSER },
    );

    // 12 s left: 3 s kept for storing, 6 s for the lookups, the exchange gets the rest.
    expect(exchange).toHaveBeenCalledWith({ code: 'the-code' }, { deadlineMs: START + 3_000 });
    expect(user).toHaveBeenCalledWith(expect.any(String), { deadlineMs: START + 6_000 });
    expect(profiles).toHaveBeenCalledWith(expect.any(String), { deadlineMs: START + 6_000 });
  });

  it('keeps the good grant without a profile when the query named none and the profiles stay unavailable', async () => {
    observe();
    const runtime = fakeRuntime();
    vi.spyOn(runtime.wise, 'listProfiles').mockRejectedValue(down());
    await session(runtime);

    const result = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(result.kind).toBe('connected');
    const stored = await runtime.store.getConnection('acme-1');
    expect(stored).toMatchObject({ userId: 5550001 });
    expect(stored).not.toHaveProperty('profileId');
  });

  it('verifies the profile with the profiles Wise listed when only /v1/me stays unavailable', async () => {
    observe();
    const runtime = fakeRuntime();
    vi.spyOn(runtime.wise, 'getCurrentUser').mockRejectedValue(down());
    await session(runtime);

    const connected = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(connected.kind).toBe('connected');
    const stored = await runtime.store.getConnection('acme-1');
    expect(stored).toMatchObject({ profileId: 16550001 });
    expect(stored).not.toHaveProperty('userId');
  });

  it("still refuses a profile the listed profiles show is not the user's while /v1/me is unavailable", async () => {
    observe();
    const runtime = fakeRuntime();
    vi.spyOn(runtime.wise, 'getCurrentUser').mockRejectedValue(down());
    await session(runtime);

    const result = await fromBrowser(runtime, { state: STATE, code: 'the-code', profileId: 999 });

    expect(result).toEqual({ kind: 'refused', reason: 'profile_not_owned', connectionId: 'acme-1' });
    expect(await runtime.store.getConnection('acme-1')).toBeUndefined();
  });

  it('keeps the grant when a lookup fails for a reason other than unavailability', async () => {
    observe();
    const runtime = fakeRuntime();
    vi.spyOn(runtime.wise, 'getCurrentUser').mockRejectedValue(
      new WiseInvalidTokenError('rejected', { status: 401 }),
    );
    await session(runtime);

    const result = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(result).toMatchObject({ kind: 'connected', connectionId: 'acme-1' });
    const stored = await runtime.store.getConnection('acme-1');
    expect(stored).toMatchObject({ status: 'active', generation: 1 });
    expect(stored).not.toHaveProperty('userId');
    expect(stored && (await openStored(runtime.cipher, ACME, stored, 'refresh_token'))).toBe(
      'refresh-token-1',
    );
  });

  it('makes the data key before the code is exchanged, so nothing but the write follows the grant', async () => {
    const runtime = fakeRuntime();
    const order = recordPrepareAndGrant(runtime, 'exchangeCode');
    await session(runtime);

    await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(order).toEqual(['prepare', 'grant']);
  });

  it('throws what is not a Wise failure', async () => {
    const runtime = fakeRuntime();
    vi.spyOn(runtime.store, 'saveConnection').mockRejectedValue(new Error('table gone'));
    await session(runtime);

    await expect(fromBrowser(runtime, { state: STATE, code: 'the-code' })).rejects.toThrow('table gone');
  });

  it('replaces the tokens of an earlier connection and grows its generation', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(
      storedConnection('acme-1', {
        generation: 5,
        version: 9,
        lastError: { code: 'invalid_grant', message: 'x', at: 1 },
      }),
    );
    await session(runtime);

    await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    const stored = await runtime.store.getConnection('acme-1');
    expect(stored).toMatchObject({ generation: 6, version: 10, status: 'active' });
    expect(stored?.lastError).toBeUndefined();
    expect(stored && (await openStored(runtime.cipher, ACME, stored, 'access_token'))).toBe('access-token-1');
  });

  it('connects again over a tombstone', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(
      storedConnection('acme-1', { status: 'disconnected', generation: 2, version: 4 }),
    );
    await session(runtime);

    const result = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(result.kind).toBe('connected');
    expect(await runtime.store.getConnection('acme-1')).toMatchObject({ status: 'active', generation: 3 });
  });

  it('tries the save again when another writer changed the connection in between', async () => {
    const runtime = fakeRuntime();
    const save = vi.spyOn(runtime.store, 'saveConnection').mockResolvedValueOnce(undefined);
    await session(runtime);

    const result = await fromBrowser(runtime, { state: STATE, code: 'the-code' });

    expect(result.kind).toBe('connected');
    expect(save).toHaveBeenCalledTimes(2);
  });

  it('gives up after three lost saves in a row', async () => {
    const runtime = fakeRuntime();
    vi.spyOn(runtime.store, 'saveConnection').mockResolvedValue(undefined);
    await session(runtime);

    await expect(fromBrowser(runtime, { state: STATE, code: 'the-code' })).rejects.toThrow(/kept changing/);
  });
});

describe('saveNewConnection', () => {
  it('seals a grant again for the generation above the stored one when the connection moved on since it was sealed', async () => {
    const runtime = fakeRuntime();
    // Sealed for generation 2 (as a pending completion is, at the callback) ...
    const sealer = await runtime.cipher.prepare({ record: ACME, generation: 2 });
    const pending: NewConnection = {
      connectionId: 'acme-1',
      status: 'active',
      grant: 'authorization_code',
      generation: 2,
      dataKey: sealer.dataKey,
      accessToken: sealer.seal('access-pending', 'access_token'),
      refreshToken: sealer.seal('refresh-pending', 'refresh_token'),
      accessTokenExpiresAt: START + 43_199_000,
      nextRefreshAt: START + 34_000_000,
    };
    // ... while the connection was refreshed twice and fenced at generation 3 before the code came back.
    runtime.store.seedConnection(storedConnection('acme-1', { generation: 3, version: 5 }));
    await runtime.store.raiseFence(ACME, 3);

    const saved = await saveNewConnection(runtime, pending);

    expect(saved).toMatchObject({ generation: 4, version: 6 });
    const stored = await runtime.store.getConnection('acme-1');
    expect(stored && (await openStored(runtime.cipher, ACME, stored, 'refresh_token'))).toBe(
      'refresh-pending',
    );
    expect(await runtime.store.getFence(ACME)).toBe(4);
  });
});
