import { describe, expect, it } from 'vitest';
import { BACKOFF_CAP_MS } from '#shared/domain/refresh-rule.ts';
import type { SweepSummary } from '#shared/use-cases/refresh-due.ts';
import type { BrokerHarness } from '../../support/broker.ts';
import { brokerPerTest, wiseAccepts } from '../lifecycle/refresh-support.ts';
import { faultRoutes, publishedMetrics } from './wise-faults-support.ts';

/**
 * A Wise outage of one hour and of six hours on the clock the simulator and the broker share, starting
 * when the first refresh falls due (a token refreshed at 80 % of its life has 20 %, 2.4 hours, left).
 * The other connections fall due in its last hour, so more of them than Wise's per-minute limit are due
 * when it ends. The schedule ticks every five
 * minutes (`refresh.sweepSeconds` 300) throughout. Tokens keep being vended while they live; afterwards
 * the sweep catches up within Wise's rate limit, with no 429 at all.
 */

const connected = brokerPerTest();
const metrics = publishedMetrics();

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** More than Wise lets through in a minute, and than one sweep may start at that limit (3). */
const CONNECTIONS = 12;
/** The schedule's period (`refresh.sweepSeconds`): every five minutes keeps six hours of it quick to run. */
const SWEEP_MS = 5 * MINUTE;
/** The broker's `refresh.tokenCallsPerMinute` and the simulator's per-minute limit: the same number. */
const TOKEN_CALLS_PER_MINUTE = 10;
/** A refresh's calls to Wise when every one fails: the Wise client's attempts. */
const ATTEMPTS_PER_REFRESH = 4;

function tokenRequests(broker: BrokerHarness) {
  const { grants, failedGrants, rateLimited } = broker.simulator.stats();
  return { refreshed: grants.refresh_token, failed: failedGrants.refresh_token, rateLimited };
}

describe.each([
  { hours: 1, expiredDuringOutage: false },
  { hours: 6, expiredDuringOutage: true },
])('a Wise outage of $hours hour(s)', ({ hours, expiredDuringOutage }) => {
  it('keeps vending live tokens, backs off, and afterwards catches up within the rate limit', async () => {
    const { broker } = await connected({
      config: {
        refresh: {
          tokenCallsPerMinute: TOKEN_CALLS_PER_MINUTE,
          sweepSeconds: SWEEP_MS / 1000,
          concurrency: 4,
          shards: 1,
        },
      },
      simulator: {
        rotateRefreshTokens: true,
        rateLimit: { perSecond: 5, perMinute: TOKEN_CALLS_PER_MINUTE },
      },
    });
    // acme-1 falls due first and the outage starts then; the others were connected later, five minutes
    // apart, so their refreshes fall due through the outage's last hour.
    const ids = ['acme-1'];
    broker.clock.advance((hours - 1) * HOUR);
    for (let index = 2; index <= CONNECTIONS; index++) {
      broker.clock.advance(5 * MINUTE);
      await broker.connect(`acme-${index}`);
      ids.push(`acme-${index}`);
    }
    const routes = faultRoutes(broker);
    const initial = await Promise.all(ids.map((id) => routes.status(id)));
    const firstDue = Math.min(...initial.map((status) => Date.parse(status.nextRefreshAt ?? '')));
    const expiresAt = new Map(
      initial.map((status) => [status.connectionId, Date.parse(status.accessTokenExpiresAt ?? '')]),
    );
    broker.clock.advance(firstDue - broker.clock.now());
    const outageEndsAt = broker.clock.now() + hours * HOUR;
    await broker.control('faults', { status: 503, forSeconds: hours * 3600 });

    // The outage: the schedule's sweeps, and four times in it each caller asks for its token.
    const vends: Array<{ at: number; live: boolean; status: number; accepted: boolean }> = [];
    let sweeps = 0;
    let nextVendAt = broker.clock.now();
    while (broker.clock.now() < outageEndsAt) {
      await routes.sweep();
      sweeps++;
      if (broker.clock.now() >= nextVendAt) {
        for (const connectionId of ids) {
          const live = broker.clock.now() < (expiresAt.get(connectionId) ?? 0);
          const response = await routes.vend({ connectionId });
          const token = response.json as { accessToken?: string } | undefined;
          const accepted = token?.accessToken ? await wiseAccepts(broker, token.accessToken) : false;
          vends.push({ at: broker.clock.now(), live, status: response.statusCode, accepted });
        }
        nextVendAt += (hours * HOUR) / 4;
      }
      broker.clock.advance(SWEEP_MS);
    }
    const during = tokenRequests(broker);
    const duringMetrics = metrics.counts();

    // After it: the schedule goes on until every connection is refreshed.
    const summaries: SweepSummary[] = [];
    const refreshedAt: number[] = [];
    const catchUpStartedAt = broker.clock.now();
    for (let tick = 0; tick < 12 && refreshedAt.length < CONNECTIONS; tick++) {
      const before = tokenRequests(broker).refreshed;
      const summary = await routes.sweep();
      summaries.push(summary);
      for (let i = before; i < tokenRequests(broker).refreshed; i++) refreshedAt.push(broker.clock.now());
      broker.clock.advance(SWEEP_MS);
    }
    const after = tokenRequests(broker);
    const statuses = await Promise.all(ids.map((id) => routes.status(id)));
    const finalVends = await Promise.all(ids.map((id) => routes.callerVend(id)));

    // While the tokens lived they were vended and Wise took them; once expired, a 503 and no token.
    const whileLive = vends.filter((vend) => vend.live);
    const afterExpiry = vends.filter((vend) => !vend.live);
    expect(whileLive.length).toBeGreaterThan(0);
    expect(whileLive.every((vend) => vend.status === 200 && vend.accepted)).toBe(true);
    expect(afterExpiry.length > 0).toBe(expiredDuringOutage);
    expect(afterExpiry.every((vend) => vend.status === 503)).toBe(true);
    // During the outage every refresh failed, and backed off: at most one try per connection per
    // back-off step (30 s doubling to at least half of the 15-minute cap), each of the client's attempts.
    expect(during.refreshed).toBe(0);
    const steps = 6 + Math.ceil((hours * HOUR) / (BACKOFF_CAP_MS / 2));
    expect(during.failed).toBeGreaterThan(0);
    expect(during.failed).toBeLessThanOrEqual(CONNECTIONS * steps * ATTEMPTS_PER_REFRESH);
    expect(duringMetrics.RefreshSucceeded ?? 0).toBe(0);
    expect(duringMetrics['RefreshRefused.provider_unavailable']).toBe(duringMetrics.RefreshFailed);
    // Afterwards: every connection refreshed with the refresh token it had (none lost), no 429 from Wise,
    // and never more refreshes in a minute than the limit.
    expect(refreshedAt).toHaveLength(CONNECTIONS);
    expect(after.rateLimited).toBe(0);
    expect(summaries.every((summary) => summary.failedBy.rateLimited === 0)).toBe(true);
    expect(metrics.total('RefreshRefused', ['class', 'rate_limited'])).toBe(0);
    for (const at of refreshedAt) {
      const inWindow = refreshedAt.filter((other) => other > at - MINUTE && other <= at);
      expect(inWindow.length).toBeLessThanOrEqual(TOKEN_CALLS_PER_MINUTE);
    }
    // Done within the last back-off plus the sweeps the due connections need at the sweep's budget.
    const budget = summaries[0]?.budget ?? 1;
    expect(budget).toBeLessThan(CONNECTIONS);
    expect(Math.max(...refreshedAt) - catchUpStartedAt).toBeLessThanOrEqual(
      BACKOFF_CAP_MS + Math.ceil(CONNECTIONS / budget) * SWEEP_MS,
    );
    expect(statuses.map((status) => [status.status, status.lastError])).toEqual(
      ids.map(() => ['active', null]),
    );
    expect(finalVends).toEqual(ids.map(() => ({ status: 200, accepted: true, reported: false })));
    console.log(
      `outage ${hours} h: ${sweeps} sweeps, ${during.failed} refresh calls refused during it, ` +
        `${CONNECTIONS} connections caught up in ${Math.round((Math.max(...refreshedAt) - catchUpStartedAt) / MINUTE)} min ` +
        `over ${summaries.length} sweeps, ${after.rateLimited} answered 429`,
    );
  });
});
