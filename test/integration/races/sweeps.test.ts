import { describe, expect, it } from 'vitest';
import type { TokenStore } from '#shared/ports/token-store.ts';
import type { SweepSummary } from '#shared/use-cases/refresh-due.ts';
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
  instances,
  pausingWise,
  portWith,
  refreshGrants,
} from './race-support.ts';

const SWEEPS = 10;
const CONNECTIONS = ['acme-1', 'acme-2', 'acme-3', 'acme-4', 'acme-5'];

const brokerWithConnection = brokerPerTest();

/**
 * A broker with five connections (one Wise user each) whose refresh is due, each vended once to a caller
 * of its own before it was due; `vendEach` vends each to its caller again.
 */
async function dueConnections(rotateRefreshTokens: boolean) {
  const { broker } = await brokerWithConnection({ simulator: { rotateRefreshTokens } });
  for (const connectionId of CONNECTIONS.slice(1)) await broker.connect(connectionId);
  const [vendor] = instances(broker, 1, { name: 'vendor' });
  const log = new CallerLog();
  const vendEach = async () => {
    for (const connectionId of CONNECTIONS) {
      log.record(`caller-of-${connectionId}`, (await vendor?.vendOk({ connectionId })) as VendBody);
    }
  };
  await vendEach();
  broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
  return { broker, log, vendEach };
}

function total(summaries: SweepSummary[], field: 'refreshed' | 'busy' | 'skipped' | 'failed'): number {
  return summaries.reduce((sum, summary) => sum + summary[field], 0);
}

/**
 * Each connection moved exactly one generation; its caller, asking again, gets that token, never an older
 * one, and Wise accepts it; the token the caller had before is dead.
 */
async function expectRefreshedOnce(
  harness: BrokerHarness,
  { log, vendEach }: Pick<Awaited<ReturnType<typeof dueConnections>>, 'log' | 'vendEach'>,
) {
  const before = log.latest();
  await vendEach();
  log.expectNeverOlder();
  for (const [index, connectionId] of CONNECTIONS.entries()) {
    const old = before[index];
    const now = log.latest()[index];
    expect(now?.generation, connectionId).toBe((old?.generation ?? 0) + 1);
    expect(await expectLiveConnection(harness, connectionId)).toBe(now?.accessToken);
    await expect(wiseAccepts(harness, old?.accessToken ?? '')).resolves.toBe(false);
  }
}

describe('ten sweeps at once over the same due connections', () => {
  it.each([{ rotateRefreshTokens: false }, { rotateRefreshTokens: true }])(
    'make one Wise refresh per connection when all ten reach every lease while Wise is answering (rotation $rotateRefreshTokens)',
    async ({ rotateRefreshTokens }) => {
      const { broker, ...callers } = await dueConnections(rotateRefreshTokens);
      // Every sweep lists the same due records before any starts; Wise's answers wait (after Wise answered,
      // before the write) until each of the ten sweeps has tried the lease of each of the five connections.
      const listed = barrier(SWEEPS);
      const leaseTried = barrier(SWEEPS * CONNECTIONS.length);
      const answered = new Gate();
      const store = portWith<TokenStore>(broker.runtime.store, {
        listDue: (real) => async (options) => {
          const due = await real(options);
          await listed.arrive();
          return due;
        },
        acquireLease: (real) => async (key, options) => {
          try {
            return await real(key, options);
          } finally {
            void leaseTried.arrive();
          }
        },
      });
      const wise = pausingWise(broker.runtime.wise, { afterRefresh: answered });
      const sweepers = instances(broker, SWEEPS, { parts: () => ({ store, wise }) });
      const grantsBefore = refreshGrants(broker);

      const running = Promise.all(sweepers.map((instance) => instance.sweep()));
      await leaseTried.done;
      answered.open();
      const summaries = await running;

      expect(refreshGrants(broker) - grantsBefore).toBe(CONNECTIONS.length);
      expect(answered.passes).toBe(CONNECTIONS.length);
      expect(summaries.map((summary) => summary.due)).toEqual(Array(SWEEPS).fill(CONNECTIONS.length));
      expect(total(summaries, 'refreshed')).toBe(CONNECTIONS.length);
      expect(total(summaries, 'busy')).toBe((SWEEPS - 1) * CONNECTIONS.length);
      expect(total(summaries, 'failed')).toBe(0);
      await expectRefreshedOnce(broker, callers);
    },
  );

  it('make one Wise refresh per connection when nine sweeps take the leases after the first stored its refreshes', async () => {
    const { broker, ...callers } = await dueConnections(true);
    // All ten list the same due records; then each tries its leases only once the sweep before it is over,
    // with the list it read before any refresh: the need is checked again under the lease.
    const listed = barrier(SWEEPS);
    const over = Array.from({ length: SWEEPS }, () => Promise.withResolvers<void>());
    const sweepers = instances(broker, SWEEPS, {
      parts: (index) => ({
        store: portWith<TokenStore>(broker.runtime.store, {
          listDue: (real) => async (options) => {
            const due = await real(options);
            await listed.arrive();
            return due;
          },
          acquireLease: (real) => async (key, options) => {
            await over[index - 1]?.promise;
            return real(key, options);
          },
        }),
      }),
    });
    const grantsBefore = refreshGrants(broker);

    const [firstSummary, ...others] = await Promise.all(
      sweepers.map((instance, index) => instance.sweep().finally(() => over[index]?.resolve())),
    );

    expect(refreshGrants(broker) - grantsBefore).toBe(CONNECTIONS.length);
    expect(firstSummary).toMatchObject({ due: CONNECTIONS.length, refreshed: CONNECTIONS.length });
    for (const summary of others) {
      expect(summary).toMatchObject({ due: CONNECTIONS.length, refreshed: 0, skipped: CONNECTIONS.length });
    }
    await expectRefreshedOnce(broker, callers);
  });
});
