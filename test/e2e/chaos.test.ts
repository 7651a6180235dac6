import { describe, expect, it } from 'vitest';
import { runChaos, summary } from '../../chaos/run.ts';
import { writeReliabilityReport } from '../support/reliability/report.ts';

// A short chaos run: the broker process is killed with SIGKILL at random moments while it refreshes
// rotating refresh tokens, and started again on its data folder, against a simulator process that is
// never killed. `npm run chaos` is the long one.
describe('the broker killed at random moments while refreshing', () => {
  it('leaves every connection vending a token Wise accepts, or marked as lost by the broker', async () => {
    const result = await runChaos({ seconds: 20, connections: 3, killEveryMs: [1_500, 5_000] });
    console.log(`chaos (short run): ${summary(result)}`);
    writeReliabilityReport({
      source: 'chaos run',
      scenarios: 1,
      faults: result.kills,
      kills: result.kills,
      refreshes: result.refreshes,
      lost: result.lost,
      markedLost: result.lostReported,
    });

    expect(result.kills).toBeGreaterThan(0);
    expect(result.refreshes).toBeGreaterThan(result.kills);
    // No connection is left silently dead: each one that lost its token says it was lost by the broker.
    expect(result.lostReported).toBe(result.lost);
    expect(result.live + result.lost).toBe(result.connections);
  }, 240_000);
});
