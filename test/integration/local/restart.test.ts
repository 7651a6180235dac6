import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalBroker, startLocalBroker } from '#local/local-broker.ts';
import { type LocalConfig, LocalSettings } from '#local/local-config.ts';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';
import { BrokerClient, type VendedToken } from '../../../client/index.ts';
import { localBrokerStorage } from '../../support/aws.ts';
import { approveAtSimulator, endAccessTokenAtWise } from '../../support/local-broker.ts';

const PRINCIPAL = 'arn:aws:iam::000000000000:role/payments';
const CREDENTIALS = {
  accessKeyId: 'AKIARESTARTPAYMENTS0',
  secretAccessKey: 'restart-payments-secret-access-key',
};
const CONNECTION_ID = 'shop-restart';

let dataDir: string;
let config: LocalConfig;
let broker: LocalBroker | undefined;
let vendedBeforeRestart: VendedToken;

function clientFor(running: LocalBroker): BrokerClient {
  return new BrokerClient({ baseUrl: running.url, region: 'us-east-1', credentials: CREDENTIALS });
}

function simulatorUrl(running: LocalBroker): string {
  if (!running.simulator) throw new Error('the local broker runs without its Wise simulator');
  return running.simulator.url;
}

/** Connects a Wise user the way a browser would, through the simulator's control interface. */
async function connect(running: LocalBroker, connectionId: string): Promise<void> {
  const session = await clientFor(running).createConnectSession({ connectionId });
  const { callback } = await approveAtSimulator(running, session.startUrl);
  expect(callback.status).toBe(200);
}

function callWise(running: LocalBroker, token: VendedToken): Promise<Response> {
  return fetch(`${simulatorUrl(running)}/v1/me`, {
    headers: { authorization: `Bearer ${token.accessToken}` },
  });
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'local-broker-restart-'));
  config = {
    source: 'the restart test',
    broker: parseBrokerConfig(
      {
        stage: 'restart',
        connectWithoutConfirmation: true,
        callers: [{ principal: PRINCIPAL, use: ['shop-*'], clientToken: false }],
      },
      'the restart test',
    ),
    local: LocalSettings.parse({
      port: 0,
      dataDir,
      credentials: [{ ...CREDENTIALS, principal: PRINCIPAL }],
      simulator: { port: 0 },
    }),
  };
  const storage = localBrokerStorage('restart');
  const first = await startLocalBroker(config, { schedule: false, ...storage });
  broker = first;
  await connect(first, CONNECTION_ID);
  vendedBeforeRestart = await clientFor(first).getToken({ connectionId: CONNECTION_ID });
  expect((await callWise(first, vendedBeforeRestart)).status).toBe(200);
  await first.close();
  broker = undefined;

  broker = await startLocalBroker(config, { schedule: false, ...storage });
});

afterAll(async () => {
  await broker?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the local broker started again on the same data folder', () => {
  it('vends the same token, and Wise still accepts it', async () => {
    const running = broker as LocalBroker;

    const vended = await clientFor(running).getToken({ connectionId: CONNECTION_ID });
    const me = await callWise(running, vendedBeforeRestart);

    expect(me.status).toBe(200);
    expect(vended.accessToken).toBe(vendedBeforeRestart.accessToken);
    expect(vended.generation).toBe(vendedBeforeRestart.generation);
  });

  it('refreshes the connection when a caller reports the token rejected', async () => {
    const running = broker as LocalBroker;
    await endAccessTokenAtWise(simulatorUrl(running), vendedBeforeRestart.accessToken);

    const renewed = await clientFor(running).getToken(
      { connectionId: CONNECTION_ID },
      { rejectedGeneration: vendedBeforeRestart.generation },
    );

    expect(renewed.generation).toBe(vendedBeforeRestart.generation + 1);
    expect(renewed.accessToken).not.toBe(vendedBeforeRestart.accessToken);
    expect((await callWise(running, renewed)).status).toBe(200);
    expect((await callWise(running, vendedBeforeRestart)).status).toBe(401);
    expect(running.simulator?.stats().grants.refresh_token).toBe(1);
  });
});
