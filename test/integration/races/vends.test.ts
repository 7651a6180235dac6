import { describe, expect, it } from 'vitest';
import type { TokenStore } from '#shared/ports/token-store.ts';
import type { BrokerHarness } from '../../support/broker.ts';
import {
  brokerPerTest,
  TOKEN_LIFETIME_MS,
  type VendBody,
  wiseAccepts,
} from '../lifecycle/refresh-support.ts';
import {
  barrier,
  CallerLog,
  expectLiveConnection,
  Gate,
  HELD_REFRESHES,
  instances,
  observedStore,
  pausingWise,
  portWith,
  refreshGrants,
} from './race-support.ts';

const VENDS = 100;
const INSTANCES = 10;

const brokerWithConnection = brokerPerTest();
const connected = (options: { rotateRefreshTokens?: boolean } = {}) =>
  brokerWithConnection({ simulator: { rotateRefreshTokens: options.rotateRefreshTokens ?? false } });

/** Asserts every distinct token the callers hold last is accepted by Wise (the simulator). */
async function expectAllAccepted(harness: BrokerHarness, tokens: VendBody[]): Promise<void> {
  for (const accessToken of new Set(tokens.map((token) => token.accessToken))) {
    await expect(wiseAccepts(harness, accessToken)).resolves.toBe(true);
  }
}

describe('a hundred concurrent vends of one connection', () => {
  it.each([
    { state: 'a fresh token, every cache cold', warm: false, ageShare: 0, refreshes: 0 },
    { state: 'a fresh token, every cache warm', warm: true, ageShare: 0, refreshes: 0 },
    { state: 'a token due and near its expiry, every cache cold', warm: false, ageShare: 0.97, refreshes: 1 },
    { state: 'a token past its expiry', warm: true, ageShare: 1.01, refreshes: 1 },
  ])(
    'with $state: $refreshes Wise refresh, and no caller is handed an older token than it had',
    async ({ warm, ageShare, refreshes }) => {
      const { broker, connection } = await connected();
      const observed = observedStore(broker.runtime.store);
      const fleet = instances(broker, INSTANCES, {
        parts: () => ({ store: observed.store }),
        waitForOther: observed.sleep,
      });
      const log = new CallerLog();
      const callers = Array.from({ length: VENDS }, (_, index) => ({
        name: `caller-${index}`,
        instance: fleet[index % INSTANCES] ?? fleet[0],
      }));
      if (warm) {
        for (const caller of callers.slice(0, INSTANCES)) {
          log.record(caller.name, (await caller.instance?.vendOk({ connectionId: 'acme-1' })) as VendBody);
        }
      }
      broker.clock.advance(ageShare * TOKEN_LIFETIME_MS);
      const grantsBefore = refreshGrants(broker);
      const vendRound = () =>
        Promise.all(
          callers.map(async (caller) => {
            log.record(caller.name, (await caller.instance?.vendOk({ connectionId: 'acme-1' })) as VendBody);
          }),
        );

      await vendRound();
      const firstRound = log.latest();
      await vendRound();

      expect(refreshGrants(broker) - grantsBefore).toBe(refreshes);
      const generation = connection.generation + refreshes;
      expect(new Set(firstRound.map((token) => token.generation))).toEqual(new Set([generation]));
      expect(new Set(log.latest().map((token) => token.generation))).toEqual(new Set([generation]));
      log.expectNeverOlder();
      await expectAllAccepted(broker, log.latest());
      const stored = await expectLiveConnection(broker, 'acme-1');
      expect(new Set(log.latest().map((token) => token.accessToken))).toEqual(new Set([stored]));
    },
  );
});

describe('vends during a refresh', () => {
  it.each(HELD_REFRESHES)(
    'wait for the sweep held $pause and get its token (rotation $rotateRefreshTokens)',
    async ({ at, rotateRefreshTokens }) => {
      const { broker, connection } = await connected({ rotateRefreshTokens });
      const observed = observedStore(broker.runtime.store);
      const held = new Gate();
      const [sweeper] = instances(broker, 1, {
        name: 'sweeper',
        parts: () => ({ store: observed.store, wise: pausingWise(broker.runtime.wise, { [at]: held }) }),
      });
      // Each vend tries the lease once while the sweep holds it, then waits for it to be given back.
      const leaseTried = barrier(20);
      const vendStore = portWith<TokenStore>(observed.store, {
        acquireLease: (real) => async (key, options) => {
          try {
            return await real(key, options);
          } finally {
            void leaseTried.arrive();
          }
        },
      });
      const fleet = instances(broker, 4, {
        parts: () => ({ store: vendStore }),
        waitForOther: observed.sleep,
      });
      const callers = Array.from({ length: 20 }, (_, index) => ({
        name: `caller-${index}`,
        instance: fleet[index % fleet.length],
      }));
      const log = new CallerLog();
      const vendAll = () =>
        Promise.all(
          callers.map(async (caller) => {
            log.record(caller.name, (await caller.instance?.vendOk({ connectionId: 'acme-1' })) as VendBody);
          }),
        );
      await vendAll();
      broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
      const grantsBefore = refreshGrants(broker);

      const sweep = sweeper?.sweep();
      await held.reached;
      const vends = vendAll();
      await leaseTried.done;
      held.open();
      const [summary] = await Promise.all([sweep, vends]);

      expect(summary).toMatchObject({ due: 1, refreshed: 1 });
      expect(refreshGrants(broker) - grantsBefore).toBe(1);
      expect(new Set(log.latest().map((token) => token.generation))).toEqual(
        new Set([connection.generation + 1]),
      );
      log.expectNeverOlder();
      const stored = await expectLiveConnection(broker, 'acme-1');
      expect(new Set(log.latest().map((token) => token.accessToken))).toEqual(new Set([stored]));
    },
  );
});
