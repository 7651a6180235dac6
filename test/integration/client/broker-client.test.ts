import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalBroker, startLocalBroker } from '#local/local-broker.ts';
import { LocalSettings } from '#local/local-config.ts';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';
import { readBrokerConfigFile } from '#shared/config/broker-config-file.ts';
import { BrokerClient, BrokerClientError } from '../../../client/index.ts';
import { localBrokerStorage } from '../../support/aws.ts';
import { approveAtSimulator, endAccessTokenAtWise } from '../../support/local-broker.ts';

const PAYMENTS = 'arn:aws:iam::000000000000:role/payments';
const OPERATOR = 'arn:aws:iam::000000000000:role/operator';
const PAYMENTS_KEYS = {
  accessKeyId: 'AKIACLIENTPAYMENTS00',
  secretAccessKey: 'client-payments-secret-access-key',
};
const OPERATOR_KEYS = {
  accessKeyId: 'AKIACLIENTOPERATOR00',
  secretAccessKey: 'client-operator-secret-access-key',
};

let broker: LocalBroker;
let simulatorUrl: string;

function clientFor(credentials: typeof PAYMENTS_KEYS): BrokerClient {
  return new BrokerClient({ baseUrl: broker.url, region: 'us-east-1', credentials });
}

/** Connects a Wise user the way a browser would, through the simulator's control interface. */
async function connect(client: BrokerClient, connectionId: string): Promise<void> {
  const session = await client.createConnectSession({ connectionId });
  const { callback } = await approveAtSimulator(broker, session.startUrl);
  expect(callback.status).toBe(200);
}

function callWise(token: { accessToken: string }): Promise<Response> {
  return fetch(`${simulatorUrl}/v1/me`, { headers: { authorization: `Bearer ${token.accessToken}` } });
}

async function refreshGrants(): Promise<number> {
  const stats = (await (await fetch(`${simulatorUrl}/__control/stats`)).json()) as {
    grants: { refresh_token: number };
  };
  return stats.grants.refresh_token;
}

beforeAll(async () => {
  broker = await startLocalBroker(
    {
      source: 'the caller client test',
      broker: parseBrokerConfig(
        {
          stage: 'client-test',
          connectWithoutConfirmation: true,
          // The README's local roles: payments uses connections, the operator administers them.
          callers: readBrokerConfigFile(fileURLToPath(new URL('../../../broker.local.json', import.meta.url)))
            .callers,
        },
        'the caller client test',
      ),
      local: LocalSettings.parse({
        port: 0,
        dataDir: null,
        credentials: [
          { ...PAYMENTS_KEYS, principal: PAYMENTS },
          { ...OPERATOR_KEYS, principal: OPERATOR },
        ],
        simulator: { port: 0 },
      }),
    },
    { schedule: false, ...localBrokerStorage() },
  );
  simulatorUrl = broker.simulator?.url ?? '';
});

afterAll(async () => {
  await broker?.close();
});

describe('BrokerClient against the local broker', () => {
  it('vends a token that Wise accepts and serves repeats from its cache until validUntil', async () => {
    const client = clientFor(PAYMENTS_KEYS);
    await connect(client, 'acme-cache');

    const first = await client.getToken({ connectionId: 'acme-cache' });
    const second = await client.getToken({ connectionId: 'acme-cache' });

    expect(second).toBe(first);
    expect(Date.parse(first.validUntil)).toBeGreaterThan(Date.now());
    expect((await callWise(first)).status).toBe(200);
  });

  it('asks again with rejectedGeneration when Wise answers 401, and the retried call succeeds', async () => {
    const client = clientFor(PAYMENTS_KEYS);
    const otherService = clientFor(PAYMENTS_KEYS);
    await connect(client, 'acme-rejected');
    const held = await client.getToken({ connectionId: 'acme-rejected' });
    // Wise ends the token early; another service meets the 401 first and makes the broker refresh.
    await endAccessTokenAtWise(simulatorUrl, held.accessToken);
    await otherService.getToken({ connectionId: 'acme-rejected' }, { rejectedGeneration: held.generation });
    const refreshesBefore = await refreshGrants();
    expect((await callWise(held)).status).toBe(401);

    const response = await client.withToken({ connectionId: 'acme-rejected' }, callWise);

    expect(response.status).toBe(200);
    expect(await refreshGrants()).toBe(refreshesBefore);
    const current = await client.getToken({ connectionId: 'acme-rejected' });
    expect(current.generation).toBe(held.generation + 1);
  });

  it('vends the client-credentials token to a caller allowed to have it', async () => {
    const token = await clientFor(PAYMENTS_KEYS).getToken({ kind: 'client' });

    expect(token.tokenType).toBe('Bearer');
    expect(token.connectionId).toBeUndefined();
  });

  it('reports the broker refusals as BrokerClientError with the status and code', async () => {
    const payments = clientFor(PAYMENTS_KEYS);

    await expect(payments.getToken({ connectionId: 'beta-1' })).rejects.toMatchObject({
      status: 403,
      code: 'forbidden',
    });
    await expect(payments.getToken({ connectionId: 'acme-unknown' })).rejects.toMatchObject({
      status: 404,
      code: 'connection_not_found',
    });
    await expect(payments.getConnection('acme-cache')).rejects.toBeInstanceOf(BrokerClientError);
  });

  it('lets an admin read, list and delete connections', async () => {
    const operator = clientFor(OPERATOR_KEYS);
    await connect(clientFor(PAYMENTS_KEYS), 'acme-admin');

    const status = await operator.getConnection('acme-admin');
    const listed = await operator.listConnections({ status: 'active' });
    await operator.deleteConnection('acme-admin');

    expect(status).toMatchObject({
      connectionId: 'acme-admin',
      status: 'active',
      grant: 'authorization_code',
    });
    expect(listed.map((connection) => connection.connectionId)).toContain('acme-admin');
    await expect(operator.getConnection('acme-admin')).rejects.toMatchObject({ status: 404 });
  });

  it('keeps administration and use apart: the operator may not vend or connect, payments may not delete', async () => {
    const operator = clientFor(OPERATOR_KEYS);
    const payments = clientFor(PAYMENTS_KEYS);
    await connect(payments, 'acme-apart');
    const forbidden = { status: 403, code: 'forbidden' };

    await expect(operator.getToken({ connectionId: 'acme-apart' })).rejects.toMatchObject(forbidden);
    await expect(operator.getToken({ kind: 'client' })).rejects.toMatchObject(forbidden);
    await expect(operator.createConnectSession({ connectionId: 'acme-apart' })).rejects.toMatchObject(
      forbidden,
    );
    await expect(payments.deleteConnection('acme-apart')).rejects.toMatchObject(forbidden);
    await expect(payments.getConnection('acme-apart')).rejects.toMatchObject(forbidden);

    expect(await operator.getConnection('acme-apart')).toMatchObject({ status: 'active' });
    expect((await callWise(await payments.getToken({ connectionId: 'acme-apart' }))).status).toBe(200);
  });
});
