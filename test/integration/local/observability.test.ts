import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalBroker, type SweepReport, startLocalBroker } from '#local/local-broker.ts';
import { LocalSettings } from '#local/local-config.ts';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';
import { BrokerClient, type VendedToken } from '../../../client/index.ts';
import { sdkSignedFetch } from '../../local/gateway/signing.ts';
import { localBrokerStorage } from '../../support/aws.ts';
import { approveAtSimulator, authorizeElsewhere, endAccessTokenAtWise } from '../../support/local-broker.ts';

const ACCOUNT = '000000000000';
const PAYMENTS = `arn:aws:iam::${ACCOUNT}:role/payments`;
const OPERATOR = `arn:aws:iam::${ACCOUNT}:role/operator`;
const STRANGER = `arn:aws:iam::${ACCOUNT}:role/stranger`;
const MIGRATION = `arn:aws:iam::${ACCOUNT}:role/migration`;
/** The principal as API Gateway reports it for a role's session, and the local gateway does too. */
const session = (role: string) => `arn:aws:sts::${ACCOUNT}:assumed-role/${role}/local`;
const KEYS = {
  payments: { accessKeyId: 'AKIAAUDITPAYMENTS000', secretAccessKey: 'audit-payments-secret-access-key' },
  operator: { accessKeyId: 'AKIAAUDITOPERATOR000', secretAccessKey: 'audit-operator-secret-access-key' },
  stranger: { accessKeyId: 'AKIAAUDITSTRANGER000', secretAccessKey: 'audit-stranger-secret-access-key' },
  migration: { accessKeyId: 'AKIAAUDITMIGRATION00', secretAccessKey: 'audit-migration-secret-access-key' },
};
const SIMULATOR_CLIENT = { id: 'audit-test-client', secret: 'audit-test-secret' };
const REGISTRATION_CODE = 'an-audit-registration-code-of-32-chars!';
const EMAIL = 'audit.user@example.com';
const RETURN_URL = 'https://app.example.com/wise/done';

type Line = Record<string, unknown>;

let dataDir: string;
let broker: LocalBroker;
let auditFile: string;
let lines: Line[];
/** Every secret the actions handled: tokens, the state and the code, the registration code. */
const secrets: string[] = [];
const vended: VendedToken[] = [];
const reports: SweepReport[] = [];

function client(who: keyof typeof KEYS): BrokerClient {
  return new BrokerClient({ baseUrl: broker.url, region: 'us-east-1', credentials: KEYS[who] });
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'local-broker-audit-'));
  const config = {
    source: 'the audit test',
    broker: parseBrokerConfig(
      {
        stage: 'audit',
        returnUrls: [RETURN_URL],
        callers: [
          { principal: PAYMENTS, use: ['acme-*'], clientToken: true },
          { principal: OPERATOR, administer: ['acme-*'] },
          { principal: STRANGER, use: ['other-*'] },
          { principal: MIGRATION, import: ['acme-*'] },
        ],
      },
      'the audit test',
    ),
    local: LocalSettings.parse({
      port: 0,
      dataDir,
      credentials: [
        { ...KEYS.payments, principal: PAYMENTS },
        { ...KEYS.operator, principal: OPERATOR },
        { ...KEYS.stranger, principal: STRANGER },
        { ...KEYS.migration, principal: MIGRATION },
      ],
      simulator: { port: 0, clientId: SIMULATOR_CLIENT.id, clientSecret: SIMULATOR_CLIENT.secret },
    }),
  };
  broker = await startLocalBroker(config, {
    schedule: false,
    onSweep: (report) => reports.push(report),
    ...localBrokerStorage('audit'),
  });

  // connect: a session, then the browser's way through the start URL, Wise's page and the callback
  const session = await client('payments').createConnectSession({
    connectionId: 'acme-1',
    returnUrl: RETURN_URL,
  });
  const journey = await approveAtSimulator(broker, session.startUrl);
  const answer = new URL(journey.callbackUrl).searchParams;
  expect(journey.callback.status).toBe(303);
  const completionCode =
    new URL(journey.callback.headers.get('location') ?? RETURN_URL).searchParams.get('completion') ?? '';
  await client('payments').completeConnection('acme-1', completionCode);
  secrets.push(
    new URL(session.startUrl).searchParams.get('state') ?? 'no state',
    answer.get('state') ?? 'no state',
    answer.get('code') ?? 'no code',
    journey.cookie.slice(journey.cookie.indexOf('=') + 1),
    completionCode,
  );

  // vend: from the store, from the instance's memory, after a refresh; the client token
  const payments = client('payments');
  const first = await payments.getToken({ connectionId: 'acme-1' });
  const signed = (body: unknown) =>
    sdkSignedFetch(`${broker.url}/tokens`, {
      method: 'POST',
      credentials: KEYS.payments,
      region: 'us-east-1',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
  const cached = (await (await signed({ connectionId: 'acme-1' })).json()) as VendedToken;
  // Wise ends the token early, so the caller's report of it is confirmed and the broker refreshes.
  await endAccessTokenAtWise(broker.simulator?.url ?? '', first.accessToken);
  const refreshed = (await (
    await signed({ connectionId: 'acme-1', rejectedGeneration: first.generation })
  ).json()) as VendedToken;
  const clientToken = await payments.getToken({ kind: 'client' });
  vended.push(first, cached, refreshed, clientToken);

  // registration, status, listing, delete; and a vend the policy refuses
  await payments.registerWithCode('acme-3', {
    email: EMAIL,
    registrationCode: REGISTRATION_CODE,
    signup: true,
  });
  secrets.push(REGISTRATION_CODE);
  const operator = client('operator');
  await operator.getConnection('acme-1');
  await operator.listConnections({ status: 'active' });
  await operator.deleteConnection('acme-3');
  await expect(client('stranger').getToken({ connectionId: 'acme-1' })).rejects.toThrow();

  // import: the refresh token another system holds for a Wise user, handed over to the broker
  const { refreshToken: oldRefreshToken } = await authorizeElsewhere(
    broker.simulator?.url ?? '',
    SIMULATOR_CLIENT,
    broker.redirectUri,
    'imported@example.com',
  );
  secrets.push(oldRefreshToken);
  const imported = await sdkSignedFetch(`${broker.url}/connections/acme-9/import`, {
    method: 'POST',
    credentials: KEYS.migration,
    region: 'us-east-1',
    body: JSON.stringify({ refreshToken: oldRefreshToken }),
    headers: { 'content-type': 'application/json' },
  });
  expect(imported.status).toBe(201);

  auditFile = join(dataDir, 'audit.log');
  lines = readFileSync(auditFile, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Line);
}, 60_000);

afterAll(async () => {
  await broker?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the local audit trail', () => {
  it('keeps one line per request in the data folder, readable by its owner only', () => {
    expect(broker.files?.audit).toBe(auditFile);
    expect(statSync(auditFile).mode & 0o777).toBe(0o600);
    expect(lines.map((line) => line.action)).toEqual([
      'connect_session',
      'connect_start',
      'connect',
      'connect_completion',
      'vend',
      'vend',
      'vend',
      'vend',
      'registration',
      'status',
      'list',
      'delete',
      'vend',
      'import',
    ]);
    for (const line of lines) {
      expect(line).toMatchObject({ audit: true, service: 'wise-broker-audit' });
      expect(Date.parse(String(line.time))).not.toBeNaN();
    }
  });

  it('records the connect session, its start, the callback and the completion, with who asked', () => {
    expect(lines[0]).toMatchObject({
      callerArn: session('payments'),
      connectionId: 'acme-1',
      outcome: 'ok',
      status: 201,
    });
    expect(lines[1]).toMatchObject({ outcome: 'ok', status: 303 });
    expect(lines[2]).toMatchObject({ connectionId: 'acme-1', outcome: 'ok', status: 303 });
    expect(lines[2]).not.toHaveProperty('callerArn');
    expect(lines[3]).toMatchObject({
      callerArn: session('payments'),
      connectionId: 'acme-1',
      outcome: 'ok',
      status: 200,
    });
  });

  it('records each vend with its caller, connection, generation and whether it came from the cache or a refresh', () => {
    const vends = lines.filter((line) => line.action === 'vend' && line.outcome === 'ok');

    expect(vends).toEqual([
      expect.objectContaining({
        callerArn: session('payments'),
        connectionId: 'acme-1',
        generation: 1,
        source: 'store',
      }),
      expect.objectContaining({
        callerArn: session('payments'),
        connectionId: 'acme-1',
        generation: 1,
        source: 'cache',
      }),
      expect.objectContaining({
        callerArn: session('payments'),
        connectionId: 'acme-1',
        generation: 2,
        source: 'refresh',
      }),
      expect.objectContaining({ callerArn: session('payments'), clientToken: true, source: 'refresh' }),
    ]);
    expect(vended.map((token) => token.generation).slice(0, 3)).toEqual([1, 1, 2]);
  });

  it('records registration, status read, listing and delete with the principal that asked', () => {
    expect(lines[8]).toMatchObject({
      callerArn: session('payments'),
      connectionId: 'acme-3',
      outcome: 'ok',
      status: 201,
    });
    expect(lines[9]).toMatchObject({
      callerArn: session('operator'),
      connectionId: 'acme-1',
      outcome: 'ok',
      status: 200,
    });
    expect(lines[10]).toMatchObject({
      callerArn: session('operator'),
      listedStatus: 'active',
      count: 2,
      outcome: 'ok',
    });
    expect(lines[11]).toMatchObject({
      callerArn: session('operator'),
      connectionId: 'acme-3',
      outcome: 'ok',
      status: 204,
    });
  });

  it('records a refused vend with the principal and the reason', () => {
    expect(lines[12]).toMatchObject({
      callerArn: session('stranger'),
      connectionId: 'acme-1',
      outcome: 'refused',
      status: 403,
      error: 'forbidden',
    });
  });

  it('records an import with the principal that imported and the connection', () => {
    expect(lines[13]).toMatchObject({
      action: 'import',
      callerArn: session('migration'),
      connectionId: 'acme-9',
      outcome: 'ok',
      status: 201,
    });
  });

  it('holds no token, code, state, registration code or e-mail', () => {
    const text = readFileSync(auditFile, 'utf8');
    const handled = [
      ...secrets,
      ...vended.map((token) => token.accessToken),
      EMAIL,
      KEYS.payments.secretAccessKey,
    ];
    // The simulator keeps every live token and the client secret in its state file.
    const simulatorState = readFileSync(join(dataDir, 'simulator.json'), 'utf8');
    const issued = [...simulatorState.matchAll(/"([A-Za-z0-9_\-.~+/=]{20,})"/g)].map(
      (match) => match[1] ?? '',
    );

    expect(issued.length).toBeGreaterThan(0);
    for (const secret of [...handled, ...issued]) {
      expect(text).not.toContain(secret);
    }
  });
});

describe('the local metrics and sweep report', () => {
  it('keeps the metrics the functions would have published in the data folder, one EMF document a line', async () => {
    const summary = await broker.sweep();
    const metricsFile = join(dataDir, 'metrics.jsonl');
    const documents = readFileSync(metricsFile, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown> & { _aws: unknown });

    expect(broker.files?.metrics).toBe(metricsFile);
    expect(documents.every((document) => document._aws !== undefined)).toBe(true);
    const sum = (name: string) =>
      documents.reduce(
        (total, document) =>
          total +
          [document[name] ?? []]
            .flat()
            .map(Number)
            .reduce((a, b) => a + b, 0),
        0,
      );
    expect(sum('TokenVended')).toBe(4);
    expect(sum('RefreshSucceeded')).toBeGreaterThanOrEqual(1);
    expect(documents.filter((document) => document.RequestRefused !== undefined)).toEqual([
      expect.objectContaining({ error: 'forbidden', RequestRefused: 1 }),
    ]);
    expect(documents.some((document) => document.ConnectionsAtRisk === 0)).toBe(true);
    expect(summary).toMatchObject({ refreshed: 0, failed: 0, atRisk: 0 });
    expect(reports).toEqual([{ summary, nextDueAt: expect.any(Number) }]);
    expect(reports[0]?.nextDueAt).toBeGreaterThan(Date.now());
  });
});
