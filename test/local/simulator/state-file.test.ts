import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type RunningSimulator,
  type SimulatorOptions,
  SimulatorStateFileError,
  startSimulator,
} from '#local/simulator/index.ts';
import {
  basic,
  CLIENT_ID,
  type ControlUser,
  callApi,
  control,
  fakeClock,
  postToken,
  refresh,
  userToken,
} from './support.ts';

const EMAIL = 'kept.customer@example.com';
const REGISTRATION_CODE = 'rc-kept-0123456789abcdef0123456789';

let folder: string;
let stateFile: string;
const running: RunningSimulator[] = [];

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'simulator-state-'));
  stateFile = join(folder, 'state', 'simulator.json');
});
afterEach(async () => {
  for (const simulator of running.splice(0)) await simulator.close();
  rmSync(folder, { recursive: true, force: true });
});

async function start(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  const simulator = await startSimulator({ stateFile, ...options });
  running.push(simulator);
  return simulator;
}

/** Closes the simulator (which saves) and starts another on the same file. */
async function restart(
  simulator: RunningSimulator,
  options: SimulatorOptions = {},
): Promise<RunningSimulator> {
  running.splice(running.indexOf(simulator), 1);
  await simulator.close();
  return start(options);
}

async function signUp(simulator: RunningSimulator): Promise<void> {
  const client = await postToken(simulator, { grant_type: 'client_credentials' });
  const answer = await fetch(`${simulator.url}/v1/user/signup/registration_code`, {
    method: 'POST',
    headers: { authorization: `Bearer ${client.body.access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ email: EMAIL, registrationCode: REGISTRATION_CODE }),
  });
  expect(answer.status).toBe(200);
}

function registrationGrant(simulator: RunningSimulator) {
  return postToken(simulator, {
    grant_type: 'registration_code',
    client_id: CLIENT_ID,
    email: EMAIL,
    registration_code: REGISTRATION_CODE,
  });
}

/** Polls, within a bounded number of short waits, until the condition holds. */
async function eventually(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 100 && !condition(); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(condition()).toBe(true);
}

describe('a simulator with a state file', () => {
  it('accepts the access token and the refresh token it issued before a restart', async () => {
    const before = await start();
    const token = await userToken(before);

    const after = await restart(before);
    const me = await callApi(after, '/v1/me', token.access_token);
    const refreshed = await refresh(after, token.refresh_token);

    expect(me.status).toBe(200);
    expect(refreshed.status).toBe(200);
    expect((await callApi(after, '/v1/me', refreshed.body.access_token)).status).toBe(200);
  });

  it('keeps the access token a refresh replaced before the restart dead', async () => {
    const before = await start();
    const token = await userToken(before);
    await refresh(before, token.refresh_token);

    const after = await restart(before);

    expect((await callApi(after, '/v1/me', token.access_token)).status).toBe(401);
  });

  it('keeps a revoked user token revoked', async () => {
    const before = await start();
    const token = await userToken(before);
    const [user] = (await control<ControlUser[]>(before, 'users')).body;
    await control(before, 'revoke', { userId: user?.id });

    const after = await restart(before);
    const me = await callApi(after, '/v1/me', token.access_token);
    const refreshed = await refresh(after, token.refresh_token);

    expect(me.status).toBe(401);
    expect(refreshed.status).toBe(400);
    expect(refreshed.body.error).toBe('invalid_grant');
  });

  it('keeps the application token, created users and registrations, and a reclaim', async () => {
    const before = await start();
    const client = await postToken(before, { grant_type: 'client_credentials' });
    await control(before, 'users', { email: 'sam.lee@example.com' });
    await signUp(before);
    expect((await registrationGrant(before)).status).toBe(200);
    await control(before, 'reclaim', { email: EMAIL });

    const after = await restart(before);
    const signUpWithKeptToken = await fetch(`${after.url}/v1/user/signup/registration_code`, {
      method: 'POST',
      headers: { authorization: `Bearer ${client.body.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'another@example.com', registrationCode: REGISTRATION_CODE }),
    });
    const users = (await control<ControlUser[]>(after, 'users')).body;

    expect(users.map((user) => user.email)).toEqual([
      'alex.morgan@example.com',
      'sam.lee@example.com',
      EMAIL,
      'another@example.com',
    ]);
    expect(new Set(users.flatMap((user) => user.profiles.map((profile) => profile.id))).size).toBe(5);
    expect(signUpWithKeptToken.status).toBe(200);
    expect((await registrationGrant(after)).body.error).toBe('invalid_grant');
  });

  it('keeps a rotated client secret and a moved clock', async () => {
    const clock = fakeClock();
    const before = await start({ now: clock.now });
    await control(before, 'client-secret', { clientSecret: 'rotated-secret' });
    await control(before, 'clock', { advanceSeconds: 3600 });

    const after = await restart(before, { now: clock.now });
    const withOld = await postToken(after, { grant_type: 'client_credentials' });
    const withRotated = await postToken(
      after,
      { grant_type: 'client_credentials' },
      { auth: basic(CLIENT_ID, 'rotated-secret') },
    );
    const moved = await control<{ now: string }>(after, 'clock', { advanceSeconds: 0 });

    expect(withOld.status).toBe(401);
    expect(withRotated.status).toBe(200);
    expect(moved.body.now).toBe(new Date(clock.now() + 3600_000).toISOString());
  });

  it('takes a newly configured client secret over the saved one', async () => {
    const before = await start();
    await control(before, 'client-secret', { clientSecret: 'rotated-secret' });

    const after = await restart(before, { clientSecret: 'reconfigured-secret' });
    const answer = await postToken(
      after,
      { grant_type: 'client_credentials' },
      { auth: basic(CLIENT_ID, 'reconfigured-secret') },
    );

    expect(answer.status).toBe(200);
  });

  it('leaves expired tokens out of the file, and they stay expired', async () => {
    const clock = fakeClock();
    const before = await start({ now: clock.now, accessTokenSeconds: 60 });
    const token = await userToken(before);

    clock.advance(61);
    const after = await restart(before, { now: clock.now, accessTokenSeconds: 60 });

    const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as { tokens: { accessTokens: [string][] } };
    expect(saved.tokens.accessTokens.map(([accessToken]) => accessToken)).not.toContain(token.access_token);
    expect((await callApi(after, '/v1/me', token.access_token)).status).toBe(401);
    expect((await refresh(after, token.refresh_token)).status).toBe(200);
  });

  it('saves soon after a change, before it is closed', async () => {
    const simulator = await start();

    await userToken(simulator);

    await eventually(() => existsSync(stateFile));
    expect(readFileSync(stateFile, 'utf8')).toContain('"refreshTokens"');
  });

  it('writes the file for its owner only and leaves no temporary file behind', async () => {
    const simulator = await start();
    await userToken(simulator);

    await simulator.close();
    running.splice(0);

    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(folder, 'state'))).toEqual(['simulator.json']);
  });

  it('starts afresh, with the default user, when the file does not exist yet', async () => {
    const simulator = await start();

    const users = (await control<ControlUser[]>(simulator, 'users')).body;

    expect(users.map((user) => user.id)).toEqual([5550001]);
  });

  it('refuses a file that is not JSON with an error that names the file', async () => {
    const file = join(folder, 'broken.json');
    writeFileSync(file, '{"version": 1, "users": [');

    const started = startSimulator({ stateFile: file });

    await expect(started).rejects.toBeInstanceOf(SimulatorStateFileError);
    await expect(started).rejects.toThrow(`The Wise simulator state file ${file} is not JSON`);
  });

  it('refuses a file that is not a simulator state, naming the file and the field', async () => {
    const file = join(folder, 'other.json');
    const before = await start();
    await userToken(before);
    await before.close();
    running.splice(0);
    const saved = JSON.parse(readFileSync(stateFile, 'utf8'));
    saved.users[0].profiles[0].type = 'CORPORATE';
    writeFileSync(file, JSON.stringify(saved));

    const started = startSimulator({ stateFile: file });

    await expect(started).rejects.toThrow(
      new RegExp(
        `^The Wise simulator state file ${file} does not hold a simulator state \\(users\\.0\\.profiles\\.0\\.type: `,
      ),
    );
  });

  it('refuses a file whose tokens belong to a user it does not hold', async () => {
    const before = await start();
    await userToken(before);
    await before.close();
    running.splice(0);
    const saved = JSON.parse(readFileSync(stateFile, 'utf8'));
    saved.users = [];
    writeFileSync(stateFile, JSON.stringify(saved));

    await expect(startSimulator({ stateFile })).rejects.toThrow('names user 5550001, who is not in users');
  });
});

describe('a simulator without a state file', () => {
  it('forgets its tokens when it is started again', async () => {
    const before = await startSimulator();
    const token = await userToken(before);
    await before.close();

    const after = await startSimulator();
    running.push(after);

    expect((await callApi(after, '/v1/me', token.access_token)).status).toBe(401);
  });
});
