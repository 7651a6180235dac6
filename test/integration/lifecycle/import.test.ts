import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalBroker, startLocalBroker } from '#local/local-broker.ts';
import { LocalSettings } from '#local/local-config.ts';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';
import { IMPORT_NOTICE } from '#shared/use-cases/import-connection.ts';
import { SignedTransport } from '../../../client/signed-transport.ts';
import { main } from '../../../tools/import-cli.ts';
import {
  checkImportFile,
  type ImportRunOptions,
  outcomeFileFor,
  runImport,
} from '../../../tools/import-connections.ts';
import { localBrokerStorage } from '../../support/aws.ts';
import { openStored } from '../../support/fake-envelope.ts';
import { authorizeElsewhere, type ElsewhereConnection } from '../../support/local-broker.ts';

const ACCOUNT = '000000000000';
const role = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;
const KEYS = {
  migration: { accessKeyId: 'AKIAIMPORTMIGRATION0', secretAccessKey: 'import-migration-secret' },
  payments: { accessKeyId: 'AKIAIMPORTPAYMENTS00', secretAccessKey: 'import-payments-secret' },
  operator: { accessKeyId: 'AKIAIMPORTOPERATOR00', secretAccessKey: 'import-operator-secret' },
};
const SIMULATOR_CLIENT = { id: 'import-test-client', secret: 'import-test-secret' };

let broker: LocalBroker;
let simulatorUrl: string;
let workDir: string;

beforeAll(async () => {
  broker = await startLocalBroker(
    {
      source: 'the import test',
      broker: parseBrokerConfig(
        {
          stage: 'import-test',
          callers: [
            { principal: role('migration'), import: ['acme-*'] },
            // Every other grant over the same connections, but not import.
            { principal: role('payments'), use: ['*'], clientToken: true },
            { principal: role('operator'), administer: ['*'] },
          ],
        },
        'the import test',
      ),
      local: LocalSettings.parse({
        port: 0,
        dataDir: null,
        credentials: [
          { ...KEYS.migration, principal: role('migration') },
          { ...KEYS.payments, principal: role('payments') },
          { ...KEYS.operator, principal: role('operator') },
        ],
        simulator: {
          port: 0,
          clientId: SIMULATOR_CLIENT.id,
          clientSecret: SIMULATOR_CLIENT.secret,
          rotateRefreshTokens: true,
        },
      }),
    },
    { schedule: false, ...localBrokerStorage('import') },
  );
  simulatorUrl = broker.simulator?.url ?? '';
  workDir = await mkdtemp(join(tmpdir(), 'broker-import-'));
});

afterAll(async () => {
  await broker?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

type OldConnection = ElsewhereConnection;

let users = 0;

/**
 * The tokens the partner's old system holds for a new Wise user: a real authorization at the simulator.
 * Each call makes its own user, since a new authorization ends the user's earlier refresh tokens.
 */
function oldSystemTokens(): Promise<OldConnection> {
  return authorizeElsewhere(
    simulatorUrl,
    SIMULATOR_CLIENT,
    broker.redirectUri,
    `imported-${++users}@example.com`,
  );
}

/** What the old system sees when it refreshes its own refresh token at Wise. */
async function oldSystemRefresh(refreshToken: string): Promise<number> {
  const answer = await fetch(`${simulatorUrl}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${SIMULATOR_CLIENT.id}:${SIMULATOR_CLIENT.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
  return answer.status;
}

function wiseMe(accessToken: string): Promise<Response> {
  return fetch(`${simulatorUrl}/v1/me`, { headers: { authorization: `Bearer ${accessToken}` } });
}

function signedAs(keys: (typeof KEYS)[keyof typeof KEYS]): SignedTransport {
  return new SignedTransport({
    baseUrl: broker.url,
    region: 'us-east-1',
    credentials: keys,
    fetch: globalThis.fetch,
    now: Date.now,
  });
}

async function importAs(
  keys: (typeof KEYS)[keyof typeof KEYS],
  connectionId: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const response = await signedAs(keys).send({
    method: 'POST',
    path: `/connections/${encodeURIComponent(connectionId)}/import`,
    body,
  });
  const text = await response.text();
  return { status: response.status, json: text === '' ? {} : JSON.parse(text), text };
}

async function tableItems(): Promise<string> {
  const { Items } = await broker.aws.clients.dynamodb.send(
    new ScanCommand({ TableName: broker.aws.tableName }),
  );
  return JSON.stringify(
    (Items ?? []).sort((a, b) => String(a.pk?.S).localeCompare(String(b.pk?.S))),
    (_key, value) => (value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value),
  );
}

describe('POST /connections/{id}/import', () => {
  it("takes the connection over with one refresh: the old system's access and refresh tokens die, the new ones are stored encrypted", async () => {
    const old = await oldSystemTokens();
    const { user } = old;
    const business = user.profiles.find((profile) => profile.type.toLowerCase() === 'business');
    expect((await wiseMe(old.accessToken)).status).toBe(200);

    const answer = await importAs(KEYS.migration, 'acme-imported-1', {
      refreshToken: old.refreshToken,
      userId: user.id,
      profileId: business?.id,
    });

    expect(answer.status).toBe(201);
    expect(answer.json).toMatchObject({
      connectionId: 'acme-imported-1',
      status: 'active',
      profileId: business?.id,
      notice: IMPORT_NOTICE,
      warnings: [],
    });
    expect(answer.text).not.toContain(old.refreshToken);
    // The old system's access token is dead at Wise, and (with rotation) so is its refresh token.
    expect((await wiseMe(old.accessToken)).status).toBe(401);
    expect(await oldSystemRefresh(old.refreshToken)).toBe(400);
    // The broker holds tokens Wise accepts, encrypted: none of them is in the table in plaintext.
    const stored = await broker.runtime.store.getConnection('acme-imported-1');
    expect(stored?.userId).toBe(user.id);
    if (!stored) throw new Error('The imported connection was not stored.');
    const record = { kind: 'connection' as const, connectionId: 'acme-imported-1' };
    const accessToken = await openStored(broker.runtime.cipher, record, stored, 'access_token');
    const refreshToken = await openStored(broker.runtime.cipher, record, stored, 'refresh_token');
    if (accessToken === undefined || refreshToken === undefined) {
      throw new Error('The imported connection holds no access or refresh token.');
    }
    expect((await wiseMe(accessToken)).status).toBe(200);
    const table = await tableItems();
    for (const secret of [accessToken, refreshToken, old.refreshToken]) expect(table).not.toContain(secret);
  });

  it('vends the imported token to a caller that uses the connection', async () => {
    const old = await oldSystemTokens();
    expect(
      (await importAs(KEYS.migration, 'acme-imported-vend', { refreshToken: old.refreshToken })).status,
    ).toBe(201);

    const vended = await signedAs(KEYS.payments).send({
      method: 'POST',
      path: '/tokens',
      body: { connectionId: 'acme-imported-vend' },
    });

    expect(vended.status).toBe(200);
    const { accessToken } = (await vended.json()) as { accessToken: string };
    expect((await wiseMe(accessToken)).status).toBe(200);
  });

  it('answers 422 for a refresh token Wise refuses, saying it is dead, and stores nothing', async () => {
    const old = await oldSystemTokens();
    // The old system refreshed once more since the export: with rotation, the exported token is dead.
    expect(await oldSystemRefresh(old.refreshToken)).toBe(200);
    const before = await tableItems();

    const answer = await importAs(KEYS.migration, 'acme-dead-token', { refreshToken: old.refreshToken });

    expect(answer.status).toBe(422);
    expect(answer.json.error).toBe('refresh_token_rejected');
    expect(answer.json.message).toMatch(/expired, revoked or already used.*nothing was stored/);
    expect(answer.text).not.toContain(old.refreshToken);
    expect(await tableItems()).toBe(before);
  });

  it.each([
    ['no body', undefined, 'The request needs a JSON body.'],
    ['no refresh token', { userId: 1 }, 'Field "refreshToken": is required'],
    [
      'a short refresh token',
      { refreshToken: 'abc' },
      'Field "refreshToken": must be at least 16 characters',
    ],
    ['a user id that is not a number', { refreshToken: 'x'.repeat(40), userId: '12' }, 'Field "userId"'],
    ['a negative profile id', { refreshToken: 'x'.repeat(40), profileId: -4 }, 'Field "profileId"'],
    ['an unknown field', { refreshToken: 'x'.repeat(40), access_token: 'y' }, 'unknown field "access_token"'],
    ['replace that is not a boolean', { refreshToken: 'x'.repeat(40), replace: 'yes' }, 'Field "replace"'],
  ])(
    'answers 400 naming the problem for %s, and sends nothing to Wise and stores nothing',
    async (_name, body, message) => {
      const before = await tableItems();
      const grantsBefore = await refreshGrants();

      const answer = await importAs(KEYS.migration, 'acme-bad-input', body);

      expect(answer.status).toBe(400);
      expect(answer.json.error).toBe('invalid_request');
      expect(String(answer.json.message)).toContain(message);
      expect(await tableItems()).toBe(before);
      expect(await refreshGrants()).toBe(grantsBefore);
    },
  );

  it('answers 400 for a connection id outside the alphabet, storing nothing', async () => {
    const before = await tableItems();

    const answer = await importAs(KEYS.migration, 'acme bad id', { refreshToken: 'x'.repeat(40) });

    expect(answer.status).toBe(400);
    expect(String(answer.json.message)).toContain(
      'The connection id in the path must be 1 to 128 characters',
    );
    expect(await tableItems()).toBe(before);
  });

  it('answers 409 for an id that is already a connection, without calling Wise, unless the request says replace', async () => {
    const first = await oldSystemTokens();
    expect((await importAs(KEYS.migration, 'acme-twice', { refreshToken: first.refreshToken })).status).toBe(
      201,
    );
    const second = await oldSystemTokens();
    const before = await tableItems();
    const grantsBefore = await refreshGrants();

    const refused = await importAs(KEYS.migration, 'acme-twice', { refreshToken: second.refreshToken });

    expect(refused.status).toBe(409);
    expect(refused.json.error).toBe('connection_exists');
    expect(refused.json.message).toContain('"replace": true');
    expect(await tableItems()).toBe(before);
    expect(await refreshGrants()).toBe(grantsBefore);
    // The second user's old system still works: nothing was sent to Wise.
    expect((await wiseMe(second.accessToken)).status).toBe(200);

    const replaced = await importAs(KEYS.migration, 'acme-twice', {
      refreshToken: second.refreshToken,
      replace: true,
    });

    expect(replaced.status).toBe(201);
    expect((await broker.runtime.store.getConnection('acme-twice'))?.userId).toBe(second.user.id);
  });

  it('stores the connection for the user Wise names, with a warning, when the given userId is wrong', async () => {
    const old = await oldSystemTokens();
    const { user } = old;

    const answer = await importAs(KEYS.migration, 'acme-wrong-user', {
      refreshToken: old.refreshToken,
      userId: user.id + 1000,
    });

    expect(answer.status).toBe(201);
    expect(answer.json.warnings).toEqual([expect.stringContaining(`belongs to user ${user.id}`)]);
    expect((await broker.runtime.store.getConnection('acme-wrong-user'))?.userId).toBe(user.id);
  });

  it.each([
    ['a caller with only the use grant', 'payments'],
    ['a caller with only the administer grant', 'operator'],
  ] as const)('answers 403 to %s, calling no one and storing nothing', async (_name, who) => {
    const old = await oldSystemTokens();
    const before = await tableItems();

    const answer = await importAs(KEYS[who], 'acme-not-allowed', { refreshToken: old.refreshToken });

    expect(answer.status).toBe(403);
    expect(answer.json.message).toContain('"import" patterns');
    expect(await tableItems()).toBe(before);
    expect((await wiseMe(old.accessToken)).status).toBe(200);
  });

  it('answers 403 to an importer for an id its import patterns do not cover', async () => {
    const old = await oldSystemTokens();

    const answer = await importAs(KEYS.migration, 'beta-1', { refreshToken: old.refreshToken });

    expect(answer.status).toBe(403);
    expect((await wiseMe(old.accessToken)).status).toBe(200);
  });
});

async function refreshGrants(): Promise<number> {
  const stats = (await (await fetch(`${simulatorUrl}/__control/stats`)).json()) as {
    grants: { refresh_token: number };
  };
  return stats.grants.refresh_token;
}

describe('the import command', () => {
  const printed: string[] = [];
  const options = (file: string, extra: Partial<ImportRunOptions> = {}): ImportRunOptions => ({
    file,
    url: broker.url,
    region: 'us-east-1',
    credentials: KEYS.migration,
    perMinute: 600,
    print: (line) => printed.push(line),
    sleep: async () => undefined,
    ...extra,
  });

  it('finds every kind of bad line in a dry run, with a sentence to fix each and no token', () => {
    const token = 'r'.repeat(40);
    const text = [
      `{"connectionId": "acme-1", "refreshToken": "${token}"}`,
      'not json',
      '{"refreshToken": "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr2"}',
      `{"connectionId": "acme 2", "refreshToken": "${token}3"}`,
      `{"connectionId": "acme-1", "refreshToken": "${token}4"}`,
      `{"connectionId": "acme-5", "refreshToken": "${token}"}`,
      '{"connectionId": "acme-6", "refreshToken": "short"}',
      `{"connectionId": "acme-7", "refreshToken": "${token}7", "userId": "9"}`,
      `{"connectionId": "acme-8", "refreshToken": "${token}8", "accessToken": "a"}`,
      '[1, 2]',
      '',
      `{"connectionId": "acme-12", "refreshToken": "${token}12", "profileId": 3}`,
    ].join('\n');

    const checked = checkImportFile(text);

    expect(checked.lines.map((line) => [line.line, line.entry.connectionId])).toEqual([
      [1, 'acme-1'],
      [12, 'acme-12'],
    ]);
    expect(checked.bad).toEqual([
      { line: 2, problem: expect.stringContaining('is not valid JSON: write one JSON object per line') },
      { line: 3, problem: expect.stringContaining('Field "connectionId": is required') },
      { line: 4, problem: expect.stringContaining('Field "connectionId": must be 1 to 128 characters') },
      { line: 5, problem: expect.stringContaining('repeats connection id "acme-1" of line 1') },
      { line: 6, problem: expect.stringContaining('has the same refresh token as line 1') },
      { line: 7, problem: expect.stringContaining('Field "refreshToken": must be at least 16 characters') },
      { line: 8, problem: expect.stringContaining('Field "userId": must be a positive whole number') },
      { line: 9, problem: expect.stringContaining('unknown field "accessToken"') },
      { line: 10, problem: expect.stringContaining('The line must be a JSON object') },
    ]);
    expect(JSON.stringify(checked.bad)).not.toContain(token);
  });

  it('imports every line, reporting each outcome, and writes no token to the outcome file or the output', async () => {
    printed.length = 0;
    const first = await oldSystemTokens();
    const second = await oldSystemTokens();
    const dead = 'd'.repeat(44);
    const file = join(workDir, 'run.jsonl');
    await writeFile(
      file,
      [
        { connectionId: 'acme-run-1', refreshToken: first.refreshToken },
        { connectionId: 'acme-run-2', refreshToken: dead },
        { connectionId: 'acme-run-3', refreshToken: second.refreshToken },
      ]
        .map((line) => JSON.stringify(line))
        .join('\n'),
    );
    const waits: number[] = [];
    let clock = Date.now();

    const summary = await runImport(
      checkImportFile(await readFile(file, 'utf8')),
      options(file, {
        now: () => clock,
        sleep: async (ms) => {
          waits.push(ms);
          clock += ms;
        },
        perMinute: 120,
      }),
    );

    expect(summary).toMatchObject({ stopped: false, counts: { imported: 2, rejected: 1, skipped: 0 } });
    expect(printed[0]).toBe(`NOTE: ${IMPORT_NOTICE}`);
    expect(printed).toContain('line 1 acme-run-1: imported');
    expect(printed).toContainEqual(
      expect.stringMatching(/^line 2 acme-run-2: not imported, the refresh token is dead/),
    );
    expect(printed).toContain('line 3 acme-run-3: imported');
    // 120 a minute: each import starts at least half a second after the one before.
    expect(waits.every((ms) => ms <= 500) && waits.reduce((sum, ms) => sum + ms, 0)).toBeGreaterThan(0);
    const outcomes = await readFile(outcomeFileFor(file), 'utf8');
    expect(
      outcomes
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).outcome),
    ).toEqual(['imported', 'rejected', 'imported']);
    for (const secret of [first.refreshToken, second.refreshToken, dead]) {
      expect(outcomes).not.toContain(secret);
      expect(printed.join('\n')).not.toContain(secret);
    }
    expect((await wiseMe(first.accessToken)).status).toBe(401);
    expect((await broker.runtime.store.getConnection('acme-run-3'))?.status).toBe('active');
  });

  it('resumes a stopped run: lines done before are skipped, not imported twice, and the rest are imported', async () => {
    printed.length = 0;
    const tokens = [await oldSystemTokens(), await oldSystemTokens(), await oldSystemTokens()];
    const file = join(workDir, 'resume.jsonl');
    await writeFile(
      file,
      tokens
        .map((old, index) =>
          JSON.stringify({ connectionId: `acme-resume-${index + 1}`, refreshToken: old.refreshToken }),
        )
        .join('\n'),
    );
    const checked = checkImportFile(await readFile(file, 'utf8'));
    const controller = new AbortController();

    // Ctrl-C while the first line is being imported: the run stops before the second.
    const stopped = await runImport(
      checked,
      options(file, {
        signal: controller.signal,
        print: (line) => {
          printed.push(line);
          if (line.startsWith('line 1 ')) controller.abort();
        },
      }),
    );

    expect(stopped).toMatchObject({ stopped: true, counts: { imported: 1 } });
    expect(printed).toContain('Stopped before line 2. Run the same command again to resume from there.');
    expect(await broker.runtime.store.getConnection('acme-resume-2')).toBeUndefined();
    const grantsBefore = await refreshGrants();
    printed.length = 0;

    const resumed = await runImport(checked, options(file));

    expect(resumed).toMatchObject({ stopped: false, counts: { imported: 2, skipped: 1 } });
    expect(printed).toContainEqual(expect.stringMatching(/^line 1 acme-resume-1: skipped, already imported/));
    // Two refreshes at Wise for two lines: the first line was not sent again.
    expect((await refreshGrants()) - grantsBefore).toBe(2);
    expect((await broker.runtime.store.getConnection('acme-resume-3'))?.status).toBe('active');
  });

  it('does not send again a token Wise refused while the line keeps it, and records a line the broker already has as done', async () => {
    printed.length = 0;
    const old = await oldSystemTokens();
    expect((await importAs(KEYS.migration, 'acme-there', { refreshToken: old.refreshToken })).status).toBe(
      201,
    );
    const other = await oldSystemTokens();
    const file = join(workDir, 'again.jsonl');
    await writeFile(
      file,
      [
        JSON.stringify({ connectionId: 'acme-refused', refreshToken: 'z'.repeat(40) }),
        JSON.stringify({ connectionId: 'acme-there', refreshToken: other.refreshToken }),
      ].join('\n'),
    );
    const checked = checkImportFile(await readFile(file, 'utf8'));
    const first = await runImport(checked, options(file));
    expect(first.counts).toMatchObject({ rejected: 1, exists: 1 });
    const grantsBefore = await refreshGrants();
    printed.length = 0;

    const second = await runImport(checked, options(file));

    expect(second.counts).toMatchObject({ skipped: 2, imported: 0 });
    expect(printed).toContainEqual(expect.stringContaining('Wise already refused this refresh token'));
    expect(await refreshGrants()).toBe(grantsBefore);
    expect((await wiseMe(other.accessToken)).status).toBe(200);
  });

  it('runs from the command line with the default credential chain, and exits 2 on a bad file before sending', async () => {
    const old = await oldSystemTokens();
    const good = join(workDir, 'cli.jsonl');
    const bad = join(workDir, 'cli-bad.jsonl');
    await writeFile(good, JSON.stringify({ connectionId: 'acme-cli-1', refreshToken: old.refreshToken }));
    await writeFile(bad, `${JSON.stringify({ connectionId: 'acme-cli-2', refreshToken: 'short' })}\n`);
    const output: string[] = [];
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = KEYS.migration.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = KEYS.migration.secretAccessKey;
    try {
      const badRun = await main(['--file', bad, '--url', broker.url, '--region', 'us-east-1'], (line) =>
        output.push(line),
      );
      const dryRun = await main(['--file', good, '--dry-run'], (line) => output.push(line));
      const grantsBefore = await refreshGrants();
      const run = await main(['--file', good, '--url', broker.url, '--region', 'us-east-1'], (line) =>
        output.push(line),
      );

      expect(badRun).toBe(2);
      expect(dryRun).toBe(0);
      expect(run).toBe(0);
      expect((await refreshGrants()) - grantsBefore).toBe(1);
    } finally {
      for (const [name, value] of [
        ['AWS_ACCESS_KEY_ID', saved.id],
        ['AWS_SECRET_ACCESS_KEY', saved.secret],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    expect(output).toContain(
      'line 1: Field "refreshToken": must be at least 16 characters: a whole Wise refresh token, not a part of one.',
    );
    expect(output).toContain('line 1 acme-cli-1: imported');
    expect(output.at(-1)).toMatch(/^1 imported, 0 skipped/);
    expect(output.join('\n')).not.toContain(old.refreshToken);
    expect(await broker.runtime.store.getConnection('acme-cli-2')).toBeUndefined();
  });
});
