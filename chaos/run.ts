/**
 * The chaos run: the broker, in a process of its own, is killed with SIGKILL at random moments while it
 * refreshes rotating refresh tokens, and started again on the same data folder, against a Wise simulator
 * in another process that is never killed. At the end every connection must vend a token the simulator
 * accepts, or be marked as lost; the run prints `kills, refreshes, connections, lost`.
 *
 * `npm run chaos` runs it for five minutes with 24 connections (`-- --seconds N --connections N` to
 * change); the test suite runs a short one (test/e2e/chaos.test.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BrokerClient } from '../client/index.ts';
import { type ChaosBrokerSettings, RETURN_URL } from './broker-process.ts';

export interface ChaosOptions {
  /** How long the broker is killed and restarted. */
  seconds: number;
  connections: number;
  /** The pause before each kill is drawn uniformly from this range. */
  killEveryMs: [number, number];
  /** Where `chaos/broker-process.ts` and the broker's code are; this checkout by default. */
  root?: string;
  /** Draws in [0, 1); `Math.random` by default. */
  random?: () => number;
  log?: (line: string) => void;
}

export interface ChaosResult {
  kills: number;
  /** Refresh-token grants the simulator served. */
  refreshes: number;
  connections: number;
  /** Connections that vend no token the simulator accepts at the end. */
  lost: number;
  /** Of the lost, those the broker marked as lost by itself (`refresh_token_lost`), not revoked by the user. */
  lostReported: number;
  /** Connections that vend a token the simulator accepts at the end. */
  live: number;
}

const CLIENT_ID = 'chaos-client';
const CLIENT_SECRET = 'chaos-client-secret';
const CALLER = {
  principal: 'arn:aws:iam::000000000000:role/chaos',
  accessKeyId: 'AKIACHAOS00000000000',
  secretAccessKey: 'chaos-secret-access-key',
};
/** The simulator's access-token lifetime: short, so refreshes come often. */
const ACCESS_TOKEN_SECONDS = 30;
/** How long a start may take before the run gives up. */
const START_TIMEOUT_MS = 60_000;
/** The lease (30 s) of a killed refresh must run out, and the due refreshes be made, before the check. */
const SETTLE_MS = 45_000;

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const root = resolve(options.root ?? '.');
  const random = options.random ?? Math.random;
  const log = options.log ?? (() => {});
  const dataDir = await mkdtemp(join(tmpdir(), 'broker-chaos-'));
  const [simulatorPort, gatewayPort] = [await freePort(), await freePort()];
  const simulatorUrl = `http://127.0.0.1:${simulatorPort}`;
  const children: ChildProcess[] = [];
  try {
    const simulator = spawnNode(root, 'local/simulator/cli.ts', [
      ...['--port', String(simulatorPort), '--client-id', CLIENT_ID, '--client-secret', CLIENT_SECRET],
      ...['--redirect-uri', `http://127.0.0.1:${gatewayPort}/oauth/callback`],
      ...['--access-token-seconds', String(ACCESS_TOKEN_SECONDS), '--rotate-refresh-tokens'],
    ]);
    children.push(simulator);
    await waitForLine(simulator, /listening on/);

    const settings: ChaosBrokerSettings = {
      port: gatewayPort,
      dataDir,
      simulatorUrl,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      caller: CALLER,
      fraction: 0.5,
      sweepPauseMs: 100,
    };
    const startBroker = async (): Promise<{ process: ChildProcess; url: string }> => {
      const broker = spawnNode(root, 'chaos/broker-process.ts', [JSON.stringify(settings)]);
      children.push(broker);
      const line = await waitForLine(broker, /^ready /);
      return { process: broker, url: line.slice('ready '.length).trim() };
    };

    let broker = await startBroker();
    const client = () => new BrokerClient({ baseUrl: broker.url, region: 'us-east-1', credentials: CALLER });
    const ids = Array.from({ length: options.connections }, (_, index) => `chaos-${index + 1}`);
    for (const connectionId of ids) await connect(client(), simulatorUrl, gatewayPort, connectionId);
    log(`connected ${ids.length} connections; killing the broker for ${options.seconds} s`);

    let kills = 0;
    const endsAt = Date.now() + options.seconds * 1000;
    for (;;) {
      const [low, high] = options.killEveryMs;
      const pause = low + Math.floor(random() * (high - low));
      if (Date.now() + pause >= endsAt) break;
      await new Promise((done) => setTimeout(done, pause));
      await kill(broker.process);
      kills += 1;
      broker = await startBroker();
    }
    log(`${kills} kills; letting the broker settle for ${SETTLE_MS / 1000} s`);
    await new Promise((done) => setTimeout(done, SETTLE_MS));

    let live = 0;
    let lostReported = 0;
    for (const connectionId of ids) {
      if (await vendsLiveToken(client(), simulatorUrl, connectionId)) {
        live += 1;
      } else {
        const status = await client()
          .getConnection(connectionId)
          .catch(() => undefined);
        if (status?.lastError?.code === 'refresh_token_lost') lostReported += 1;
        log(`lost ${connectionId}: ${JSON.stringify(status)}`);
      }
    }
    const stats = (await (await fetch(`${simulatorUrl}/__control/stats`)).json()) as {
      grants: Record<string, number>;
    };
    return {
      kills,
      refreshes: stats.grants.refresh_token ?? 0,
      connections: ids.length,
      lost: ids.length - live,
      lostReported,
      live,
    };
  } finally {
    for (const child of children) await kill(child);
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The summary line the run prints. */
export function summary(result: ChaosResult): string {
  return `kills ${result.kills}, refreshes ${result.refreshes}, connections ${result.connections}, lost ${result.lost} (reported as refresh_token_lost: ${result.lostReported})`;
}

async function connect(
  client: BrokerClient,
  simulatorUrl: string,
  gatewayPort: number,
  connectionId: string,
): Promise<void> {
  const session = await client.createConnectSession({ connectionId, returnUrl: RETURN_URL });
  // A Wise user of its own: a new grant for the same user would end another connection's refresh token.
  const created = await fetch(`${simulatorUrl}/__control/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `${connectionId}@example.com` }),
  });
  const user = (await created.json()) as { id: number };
  // What the user's browser does: the start URL (its cookie binds the flow), Wise's page, the callback.
  const start = await fetch(session.startUrl, { redirect: 'manual' });
  await start.arrayBuffer();
  const cookie = start.headers.getSetCookie()[0]?.split(';')[0];
  const authorizeUrl = start.headers.get('location');
  if (cookie === undefined || authorizeUrl === null) throw new Error(`Starting ${connectionId} failed.`);
  const query = new URL(authorizeUrl).searchParams;
  const answer = await fetch(`${simulatorUrl}/__control/authorize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      clientId: CLIENT_ID,
      redirectUri: `http://127.0.0.1:${gatewayPort}/oauth/callback`,
      state: query.get('state'),
      userId: user.id,
      decision: 'approve',
    }),
  });
  const { location } = (await answer.json()) as { location: string };
  const callback = await fetch(location, { headers: { cookie }, redirect: 'manual' });
  await callback.arrayBuffer();
  // The partner's service confirms with the completion code the return URL received.
  const completionCode = new URL(callback.headers.get('location') ?? RETURN_URL).searchParams.get(
    'completion',
  );
  if (completionCode === null) throw new Error(`Connecting ${connectionId} failed with ${callback.status}.`);
  await client.completeConnection(connectionId, completionCode);
}

/** Whether the connection vends a token the simulator accepts; a 503 (Wise busy, a lease) is asked again. */
async function vendsLiveToken(
  client: BrokerClient,
  simulatorUrl: string,
  connectionId: string,
): Promise<boolean> {
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      const token = await client.getToken({ connectionId });
      const me = await fetch(`${simulatorUrl}/v1/me`, {
        headers: { authorization: `Bearer ${token.accessToken}` },
      });
      await me.arrayBuffer();
      if (me.status === 200) return true;
    } catch (error) {
      if ((error as { status?: number }).status !== 503) return false;
    }
    await new Promise((done) => setTimeout(done, 2_000));
  }
  return false;
}

function spawnNode(root: string, script: string, args: string[]): ChildProcess {
  const child = spawn(process.execPath, [join(root, script), ...args], {
    cwd: root,
    env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Drained, so a chatty child never blocks on a full pipe.
  child.stderr?.resume();
  return child;
}

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((done, fail) => {
    let buffered = '';
    const timer = setTimeout(
      () => fail(new Error(`No line matching ${pattern} within ${START_TIMEOUT_MS} ms.`)),
      START_TIMEOUT_MS,
    );
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const line = buffered.split('\n').find((candidate) => pattern.test(candidate));
      if (line === undefined) return;
      clearTimeout(timer);
      // Keep draining what follows.
      child.stdout?.off('data', onData);
      child.stdout?.resume();
      done(line);
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`The process exited (${code}) before printing a line matching ${pattern}.`));
    });
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGKILL');
  await exited;
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? done(address.port) : fail(new Error('no port')),
      );
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '300' },
      connections: { type: 'string', default: '24' },
      root: { type: 'string' },
    },
  });
  const result = await runChaos({
    seconds: Number(values.seconds),
    connections: Number(values.connections),
    killEveryMs: [3_000, 20_000],
    ...(values.root === undefined ? {} : { root: values.root }),
    log: (line) => console.log(line),
  });
  console.log(summary(result));
}

if (import.meta.main) await main();
