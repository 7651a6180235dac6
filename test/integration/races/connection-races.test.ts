import { describe, expect, it } from 'vitest';
import { createConnectionsHandler } from '#functions/connections/handler.ts';
import { CONNECTION_EVENTS } from '#shared/domain/connection-event-schemas.ts';
import type { TokenStore } from '#shared/ports/token-store.ts';
import { ADMIN_ARN, type BrokerHarness, invoke } from '../../support/broker.ts';
import {
  brokerPerTest,
  instanceRuntime,
  TOKEN_LIFETIME_MS,
  type VendBody,
  wiseAccepts,
} from '../lifecycle/refresh-support.ts';
import {
  CallerLog,
  expectLiveConnection,
  failedRefreshGrants,
  Gate,
  HELD_REFRESHES,
  instances,
  observedStore,
  pausingWise,
  portWith,
  reauthorizationEvents,
  refreshGrants,
  storedAccessToken,
} from './race-support.ts';

/** The default refresh lease (`refresh.leaseSeconds` 120). */
const LEASE_MS = 120_000;

const brokerWithConnection = brokerPerTest();
const connected = (options: { rotateRefreshTokens?: boolean } = {}) =>
  brokerWithConnection({ simulator: { rotateRefreshTokens: options.rotateRefreshTokens ?? false } });

/** A sweep instance whose calls to Wise stop at `held`, at the given point. */
function heldSweeper(harness: BrokerHarness, at: 'beforeRefresh' | 'afterRefresh', held: Gate) {
  const [sweeper] = instances(harness, 1, {
    name: 'sweeper',
    parts: () => ({ wise: pausingWise(harness.runtime.wise, { [at]: held }) }),
  });
  if (!sweeper) throw new Error('No sweeper instance.');
  return sweeper;
}

/** Every vend `caller` makes goes through `log`; a vend that does not answer 200 is recorded as nothing. */
async function vendAs(
  log: CallerLog,
  caller: string,
  instance: { vend(body: unknown): Promise<{ statusCode: number; json: unknown }> } | undefined,
) {
  const response = await instance?.vend({ connectionId: 'acme-1' });
  if (response?.statusCode === 200) log.record(caller, response.json as VendBody);
  return response?.statusCode;
}

describe('a delete during a refresh', () => {
  it.each(HELD_REFRESHES)(
    'leaves the connection gone when the refresh held $pause goes on: no record, no token, nothing vends (rotation $rotateRefreshTokens)',
    async ({ at, rotateRefreshTokens }) => {
      const { broker } = await connected({ rotateRefreshTokens });
      const held = new Gate();
      const sweeper = heldSweeper(broker, at, held);
      const fleet = instances(broker, 3);
      const log = new CallerLog();
      for (const [index, instance] of fleet.entries()) await vendAs(log, `caller-${index}`, instance);
      const admin = createConnectionsHandler(() => broker.runtime);
      const request = { route: '/connections/{id}', pathParameters: { id: 'acme-1' }, caller: ADMIN_ARN };
      broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
      const grantsBefore = refreshGrants(broker);

      const sweep = sweeper.sweep();
      await held.reached;
      const deleted = await invoke(admin, { method: 'DELETE', ...request });
      held.open();
      const summary = await sweep;
      const vends = await Promise.all(
        fleet.map((instance, index) => vendAs(log, `caller-${index}`, instance)),
      );
      const [newcomer] = instances(broker, 1, { name: 'newcomer' });
      const newcomerVend = await vendAs(log, 'newcomer', newcomer);
      broker.clock.advance(TOKEN_LIFETIME_MS);
      const later = await sweeper.sweep();
      const status = await invoke(admin, { method: 'GET', ...request });

      expect(deleted.statusCode).toBe(204);
      expect(summary).toMatchObject({ due: 1, refreshed: 0, skipped: 1 });
      expect(refreshGrants(broker) - grantsBefore).toBe(1);
      expect([...vends, newcomerVend]).toEqual([404, 404, 404, 404]);
      expect(later).toMatchObject({ due: 0, refreshed: 0 });
      expect(refreshGrants(broker) - grantsBefore).toBe(1);
      expect(status.statusCode).toBe(404);
      const stored = await broker.runtime.store.getConnection('acme-1');
      expect(stored?.status).toBe('disconnected');
      for (const field of ['dataKey', 'accessToken', 'refreshToken', 'nextRefreshAt', 'lease'] as const) {
        expect(stored?.[field], field).toBeUndefined();
      }
      const items = (await broker.scanTable()).filter((item) => String(item.pk).includes('acme-1'));
      expect(items.filter((item) => 'accessToken' in item || 'refreshToken' in item)).toEqual([]);
      log.expectNeverOlder();
    },
  );
});

describe('a re-connect during a refresh', () => {
  it.each(HELD_REFRESHES)(
    'keeps the newer grant when the refresh held $pause goes on, and announces no reauthorization (rotation $rotateRefreshTokens)',
    async ({ at, rotateRefreshTokens }) => {
      const { broker, connection } = await connected({ rotateRefreshTokens });
      const held = new Gate();
      const sweeper = heldSweeper(broker, at, held);
      const fleet = instances(broker, 3);
      const log = new CallerLog();
      for (const [index, instance] of fleet.entries()) await vendAs(log, `caller-${index}`, instance);
      broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
      const grantsBefore = refreshGrants(broker);

      const sweep = sweeper.sweep();
      await held.reached;
      // The same Wise user authorizes again: Wise ends the refresh token the held refresh is spending.
      const reconnected = await broker.connect('acme-1');
      const newToken = await storedAccessToken(broker, reconnected);
      held.open();
      const summary = await sweep;
      const vends = await Promise.all(
        fleet.map((instance, index) => vendAs(log, `caller-${index}`, instance)),
      );

      expect(reconnected.generation).toBe(connection.generation + 1);
      expect(summary).toMatchObject({ due: 1, refreshed: 0, needsReauth: 0 });
      expect(refreshGrants(broker) - grantsBefore).toBe(at === 'afterRefresh' ? 1 : 0);
      expect(failedRefreshGrants(broker)).toBe(at === 'afterRefresh' ? 0 : 1);
      expect(vends).toEqual([200, 200, 200]);
      expect(new Set(log.latest().map((token) => token.accessToken))).toEqual(new Set([newToken]));
      expect(new Set(log.latest().map((token) => token.generation))).toEqual(
        new Set([reconnected.generation]),
      );
      log.expectNeverOlder();
      const stored = await broker.runtime.store.getConnection('acme-1');
      expect(stored?.generation).toBe(reconnected.generation);
      expect(stored?.lastError).toBeUndefined();
      expect(await expectLiveConnection(broker, 'acme-1')).toBe(newToken);
      expect(reauthorizationEvents(broker)).toEqual([]);

      // The newer grant's refresh token is the one stored: the next due refresh works.
      broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
      expect(await sweeper.sweep()).toMatchObject({ due: 1, refreshed: 1 });
      await expectLiveConnection(broker, 'acme-1');
    },
  );

  it('keeps the newer grant when a refresh runs while the callback holds Wise’s grant before storing it', async () => {
    const { broker, connection } = await connected();
    const [sweeper] = instances(broker, 1, { name: 'sweeper' });
    const granted = new Gate();
    const callback = instanceRuntime(broker, 'callback-instance', {
      wise: pausingWise(broker.runtime.wise, { afterExchange: granted }),
    });
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);

    const reconnecting = broker.connect('acme-1', { runtime: callback });
    await granted.reached;
    // Wise already ended the stored refresh token: this refresh can only meet invalid_grant.
    const summary = await sweeper?.sweep();
    granted.open();
    const reconnected = await reconnecting;
    const vended = await sweeper?.vendOk({ connectionId: 'acme-1' });

    // Until the grant is stored, nothing tells the refresh that Wise's refusal came from it: the connection
    // is marked and announced in between (what remains of this race), then the newer grant replaces it.
    expect(summary).toMatchObject({ due: 1, refreshed: 0, needsReauth: 1 });
    expect(reauthorizationEvents(broker)).toMatchObject([
      { connectionId: 'acme-1', reason: 'invalid_grant' },
    ]);
    expect(failedRefreshGrants(broker)).toBe(1);
    expect(reconnected.generation).toBeGreaterThan(connection.generation);
    const stored = await broker.runtime.store.getConnection('acme-1');
    expect(stored).toMatchObject({ status: 'active', generation: reconnected.generation });
    expect(stored?.lastError).toBeUndefined();
    const newToken = await expectLiveConnection(broker, 'acme-1');
    expect(vended).toMatchObject({ generation: reconnected.generation, accessToken: newToken });
    const lastEvent = broker.aws.recordedEvents.at(-1);
    expect(lastEvent?.detailType).toBe(CONNECTION_EVENTS.connected.detailType);
    expect(JSON.parse(lastEvent?.detail ?? '{}')).toMatchObject({
      connectionId: 'acme-1',
      previousStatus: 'needs_reauth',
    });
  });
});

describe('a lease holder that stalls past its lease and then writes', () => {
  /**
   * A vend instance whose on-demand refresh stops at `at`; `answered` receives the access token Wise gave
   * it. Its caller's vend starts once the token is due; the clock then moves past the lease, `meanwhile`
   * runs (a takeover, or nothing), and the holder goes on.
   */
  async function stallPastLease<Meanwhile>(
    harness: BrokerHarness,
    log: CallerLog,
    meanwhile: () => Promise<Meanwhile>,
    options: { at?: 'beforeRefresh' | 'afterRefresh' } = {},
  ) {
    const held = new Gate();
    const answered: string[] = [];
    const at = options.at ?? 'afterRefresh';
    const [stalled] = instances(harness, 1, {
      name: 'stalled',
      parts: () => ({ wise: pausingWise(harness.runtime.wise, { [at]: held, refreshedTokens: answered }) }),
    });
    harness.clock.advance(0.8 * TOKEN_LIFETIME_MS);
    const stalledVend = vendAs(log, 'stalled-caller', stalled);
    await held.reached;
    harness.clock.advance(LEASE_MS + 1);
    const during = await meanwhile();
    held.open();
    return { stalledStatus: await stalledVend, during, answered };
  }

  it('is refused after the takeover stored its token: the stale token is neither stored nor vended', async () => {
    const { broker, connection } = await connected();
    const [takeover] = instances(broker, 1, { name: 'takeover' });
    const log = new CallerLog();

    const stall = await stallPastLease(broker, log, async () => takeover?.sweep());
    await vendAs(log, 'other-caller', takeover);

    expect(stall.during).toMatchObject({ due: 1, refreshed: 1 });
    expect(refreshGrants(broker)).toBe(2);
    expect(stall.stalledStatus).toBe(200);
    const stored = await broker.runtime.store.getConnection('acme-1');
    expect(stored?.generation).toBe(connection.generation + 1);
    const current = await expectLiveConnection(broker, 'acme-1');
    expect(stall.answered).toHaveLength(1);
    expect(current).not.toBe(stall.answered[0]);
    await expect(wiseAccepts(broker, stall.answered[0] ?? '')).resolves.toBe(false);
    expect(log.all().map((token) => token.accessToken)).toEqual([current, current]);
    expect(log.all().map((token) => token.generation)).toEqual([stored?.generation, stored?.generation]);
  });

  it('is refused while the takeover still holds the lease, and its caller gets the takeover’s token', async () => {
    const { broker, connection } = await connected();
    const held = new Gate();
    const takeoverHeld = new Gate();
    const answered: string[] = [];
    // The stalled vend waits for the takeover's refresh through the store the takeover writes with.
    const observed = observedStore(broker.runtime.store);
    const staleWrite = Promise.withResolvers<unknown>();
    const [stalled] = instances(broker, 1, {
      name: 'stalled',
      parts: () => ({
        wise: pausingWise(broker.runtime.wise, { afterRefresh: held, refreshedTokens: answered }),
        store: portWith<TokenStore>(broker.runtime.store, {
          completeRefresh: (real) => async (key, options) => {
            const written = await real(key, options);
            staleWrite.resolve(written);
            return written;
          },
        }),
      }),
      waitForOther: observed.sleep,
    });
    const [takeover] = instances(broker, 1, {
      name: 'takeover',
      parts: () => ({
        store: observed.store,
        wise: pausingWise(broker.runtime.wise, { afterRefresh: takeoverHeld }),
      }),
    });
    const log = new CallerLog();
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);

    const stalledVend = vendAs(log, 'stalled-caller', stalled);
    await held.reached;
    broker.clock.advance(LEASE_MS + 1);
    const sweep = takeover?.sweep();
    await takeoverHeld.reached;
    held.open();
    const refused = await staleWrite.promise;
    takeoverHeld.open();
    const [summary, stalledStatus] = await Promise.all([sweep, stalledVend]);

    expect(refused).toBeUndefined();
    expect(summary).toMatchObject({ due: 1, refreshed: 1 });
    expect(stalledStatus).toBe(200);
    const stored = await broker.runtime.store.getConnection('acme-1');
    expect(stored?.generation).toBe(connection.generation + 1);
    const current = await expectLiveConnection(broker, 'acme-1');
    expect(current).not.toBe(answered[0]);
    expect(log.all()).toMatchObject([{ accessToken: current, generation: connection.generation + 1 }]);
  });

  it('does not ask Wise at all when it stalled before asking, so the takeover’s token stays alive', async () => {
    const { broker, connection } = await connected();
    const [takeover] = instances(broker, 1, { name: 'takeover' });
    const log = new CallerLog();

    const stall = await stallPastLease(broker, log, async () => takeover?.sweep(), { at: 'beforeRefresh' });

    expect(stall.during).toMatchObject({ due: 1, refreshed: 1 });
    expect(stall.stalledStatus).toBe(200);
    expect(stall.answered).toEqual([]);
    expect(refreshGrants(broker)).toBe(1);
    expect(failedRefreshGrants(broker)).toBe(0);
    const current = await expectLiveConnection(broker, 'acme-1');
    expect(log.all()).toMatchObject([{ accessToken: current, generation: connection.generation + 1 }]);
  });

  it('still stores its answer when no one took the lease over: the fence refuses only a superseded writer', async () => {
    const { broker, connection } = await connected();
    const log = new CallerLog();

    const stall = await stallPastLease(broker, log, async () => undefined);

    expect(stall.stalledStatus).toBe(200);
    expect(refreshGrants(broker)).toBe(1);
    const stored = await broker.runtime.store.getConnection('acme-1');
    expect(stored?.generation).toBe(connection.generation + 1);
    expect(await expectLiveConnection(broker, 'acme-1')).toBe(stall.answered[0]);
    expect(log.all()).toMatchObject([
      { accessToken: stall.answered[0], generation: connection.generation + 1 },
    ]);
  });

  it('with rotating refresh tokens, is refused, and the takeover says the connection was lost by the broker', async () => {
    const { broker } = await connected({ rotateRefreshTokens: true });
    const [takeover] = instances(broker, 1, { name: 'takeover' });
    const log = new CallerLog();

    // The stalled holder's refresh already rotated the refresh token the takeover finds stored.
    const stall = await stallPastLease(broker, log, async () => takeover?.sweep());

    expect(stall.during).toMatchObject({ due: 1, needsReauth: 1 });
    expect(stall.stalledStatus).toBe(409);
    expect(log.all()).toEqual([]);
    expect(await broker.runtime.store.getConnection('acme-1')).toMatchObject({
      status: 'needs_reauth',
      lastError: { code: 'refresh_token_lost' },
    });
    expect(reauthorizationEvents(broker)).toMatchObject([
      { connectionId: 'acme-1', reason: 'refresh_token_lost' },
    ]);
  });
});
