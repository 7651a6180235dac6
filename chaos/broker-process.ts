/**
 * The broker of the chaos run, as a process of its own: the local broker (embedded DynamoDB, local KMS,
 * the handlers behind the SigV4 gateway) against a Wise simulator that runs in another process, keeping
 * its data in the folder it is given, and sweeping for due refreshes without pause. It prints one line,
 * `ready <gateway URL>`, once it serves; the chaos run kills it with SIGKILL at any moment and starts it
 * again on the same folder.
 *
 * Usage: node chaos/broker-process.ts <settings JSON>
 */
import { startLocalBroker } from '#local/local-broker.ts';
import { LocalSettings } from '#local/local-config.ts';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';

/** Where connect sessions send the user back, with the completion code (nothing listens there). */
export const RETURN_URL = 'http://127.0.0.1:9/connected';

/** What the chaos run hands the broker process. */
export interface ChaosBrokerSettings {
  port: number;
  dataDir: string;
  simulatorUrl: string;
  clientId: string;
  clientSecret: string;
  caller: { principal: string; accessKeyId: string; secretAccessKey: string };
  /** The refresh fraction: how early in a token's life it is refreshed. */
  fraction: number;
  /** Pause between two sweeps. */
  sweepPauseMs: number;
}

async function main(): Promise<void> {
  const settings = JSON.parse(process.argv[2] ?? '') as ChaosBrokerSettings;
  const { caller } = settings;
  const broker = await startLocalBroker(
    {
      source: 'the chaos run',
      broker: parseBrokerConfig(
        {
          stage: 'chaos',
          callers: [{ principal: caller.principal, use: ['chaos-*'], administer: ['chaos-*'] }],
          returnUrls: [RETURN_URL],
          refresh: { fraction: settings.fraction, sweepSeconds: 60, leaseSeconds: 30 },
          wise: {
            apiUrl: settings.simulatorUrl,
            authorizeUrl: `${settings.simulatorUrl}/oauth/authorize/`,
            clientId: settings.clientId,
          },
        },
        'the chaos run',
      ),
      local: LocalSettings.parse({
        port: settings.port,
        dataDir: settings.dataDir,
        credentials: [caller],
        wiseCredentials: { clientId: settings.clientId, clientSecret: settings.clientSecret },
      }),
    },
    { schedule: false },
  );
  console.log(`ready ${broker.url}`);
  for (;;) {
    await broker.sweep().catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, settings.sweepPauseMs));
  }
}

if (import.meta.main) await main();
