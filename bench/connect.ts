import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileAuditTrail } from '#local/audit-file.ts';
import type { LocalBroker } from '#local/local-broker.ts';
import type { AuditTrail } from '#shared/ports/audit-trail.ts';
import { systemClock } from '#shared/ports/clock.ts';
import { BrokerClient } from '../client/index.ts';
import { approveAtSimulator } from '../test/support/local-broker.ts';

export interface BenchCaller {
  principal: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/**
 * Connects each id to a Wise user of its own at the simulator (a second grant for one user would end the
 * first connection's refresh token, as at Wise), `parallel` at a time, through the broker's own routes.
 */
export async function connectMany(
  broker: LocalBroker,
  caller: BenchCaller,
  connectionIds: readonly string[],
  parallel = 8,
): Promise<void> {
  const simulator = broker.simulator?.url;
  if (simulator === undefined) throw new Error('The benchmark needs the Wise simulator.');
  const client = new BrokerClient({
    baseUrl: broker.url,
    region: 'us-east-1',
    credentials: caller.credentials,
  });
  let next = 0;
  const worker = async () => {
    while (next < connectionIds.length) {
      const connectionId = connectionIds[next++] ?? '';
      const created = await fetch(`${simulator}/__control/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: `${connectionId}@bench.example` }),
      });
      const user = (await created.json()) as { id: number };
      const session = await client.createConnectSession({ connectionId });
      const { callback } = await approveAtSimulator(broker, session.startUrl, { userId: user.id });
      if (callback.status !== 200) throw new Error(`Connecting ${connectionId} answered ${callback.status}.`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, connectionIds.length) }, worker));
}

/**
 * Where a benchmark's broker writes its audit lines: a file in a folder removed when the process exits, so
 * each vend still writes its line (as a deployed function does) without filling the benchmark's output.
 */
export function benchAudit(): AuditTrail {
  const folder = mkdtempSync(join(tmpdir(), 'broker-bench-audit-'));
  process.once('exit', () => rmSync(folder, { recursive: true, force: true }));
  return new FileAuditTrail({
    file: join(folder, 'audit.log'),
    clock: systemClock,
    service: 'wise-broker-bench',
  });
}
