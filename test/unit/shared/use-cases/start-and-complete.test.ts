import { describe, expect, it } from 'vitest';
import { ForbiddenError, InvalidRequestError } from '#shared/domain/errors.ts';
import { hashSecret, pkceChallenge } from '#shared/domain/secret-hash.ts';
import {
  type AuthorizationCallback,
  COMPLETION_TTL_MS,
  completeAuthorization,
} from '#shared/use-cases/complete-authorization.ts';
import { completeConnection } from '#shared/use-cases/complete-connection.ts';
import { CONNECT_SESSION_TTL_MS, createConnectSession } from '#shared/use-cases/connect-session.ts';
import { pkceVerifier, startAuthorization } from '#shared/use-cases/start-authorization.ts';
import { type FakeRuntime, fakeRuntime, PARTNER, STRANGER } from './connect-fakes.ts';

const RETURN_URL = 'https://app.example.com/return/';

async function newSession(runtime: FakeRuntime, connectionId = 'acme-1'): Promise<string> {
  const { startUrl } = await createConnectSession(runtime, {
    callerArn: PARTNER,
    connectionId,
    returnUrl: RETURN_URL,
  });
  return new URL(startUrl).searchParams.get('state') ?? '';
}

/** A session started in a browser and approved at Wise: the completion code the return URL gets. */
async function approvedCompletion(runtime: FakeRuntime, connectionId = 'acme-1'): Promise<string> {
  const state = await newSession(runtime, connectionId);
  const started = await startAuthorization(runtime, state);
  if (started.kind !== 'started') throw new Error('not started');
  const callback: AuthorizationCallback = { state, code: 'the-code' };
  const result = await completeAuthorization(runtime, callback, { browserSecret: started.cookie.value });
  if (result.kind !== 'approved') throw new Error(`not approved: ${result.kind}`);
  return result.completionCode;
}

describe('startAuthorization', () => {
  it('binds the session to one browser: a cookie secret whose hash only the session keeps', async () => {
    const runtime = fakeRuntime();
    const state = await newSession(runtime);

    const first = await startAuthorization(runtime, state);
    const second = await startAuthorization(runtime, state);

    expect(first).toMatchObject({
      kind: 'started',
      cookie: { maxAgeSeconds: CONNECT_SESSION_TTL_MS / 1000 },
    });
    expect(second).toEqual({ kind: 'refused' });
    if (first.kind !== 'started') return;
    expect(first.authorizeUrl).toContain(`state=${state}`);
    expect(first.cookie.name).toMatch(/^__Host-wise-connect-[A-Za-z0-9_-]{16}$/);
    expect(first.cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(runtime.wise.calls.at(-1)).toEqual({ method: 'authorizationUrl', args: [{ state }] });
  });

  it('refuses a session whose ten minutes are over', async () => {
    const runtime = fakeRuntime();
    const state = await newSession(runtime);
    runtime.advance(CONNECT_SESSION_TTL_MS);

    await expect(startAuthorization(runtime, state)).resolves.toEqual({ kind: 'refused' });
  });

  it('with wise.pkce, asks Wise for the S256 challenge of a verifier derived from the browser secret', async () => {
    const runtime = fakeRuntime({ pkce: true });
    const state = await newSession(runtime);

    const started = await startAuthorization(runtime, state);

    if (started.kind !== 'started') throw new Error('not started');
    const challenge = pkceChallenge(pkceVerifier(started.cookie.value));
    expect(runtime.wise.calls.at(-1)).toEqual({
      method: 'authorizationUrl',
      args: [{ state, codeChallenge: challenge }],
    });
    await completeAuthorization(runtime, { state, code: 'c' }, { browserSecret: started.cookie.value });
    expect(runtime.wise.calls.find((call) => call.method === 'exchangeCode')?.args[0]).toEqual({
      code: 'c',
      codeVerifier: pkceVerifier(started.cookie.value),
    });
  });
});

describe('completeAuthorization with a return URL', () => {
  it('stores the grant as a pending completion under the hash of its code, and no connection', async () => {
    const runtime = fakeRuntime();

    const completion = await approvedCompletion(runtime);

    await expect(runtime.store.getConnection('acme-1')).resolves.toBeUndefined();
    const pending = await runtime.store.consumePendingCompletion(hashSecret('completion', completion));
    expect(pending).toMatchObject({ connection: { connectionId: 'acme-1', status: 'active' } });
  });
});

describe('completeConnection', () => {
  it('makes the pending connection active, once', async () => {
    const runtime = fakeRuntime();
    const completionCode = await approvedCompletion(runtime);

    const status = await completeConnection(runtime, {
      callerArn: PARTNER,
      connectionId: 'acme-1',
      completionCode,
    });
    const again = completeConnection(runtime, { callerArn: PARTNER, connectionId: 'acme-1', completionCode });

    expect(status).toMatchObject({ connectionId: 'acme-1', status: 'active', grant: 'authorization_code' });
    await expect(again).rejects.toThrow(InvalidRequestError);
  });

  it('refuses and burns a code issued for another connection', async () => {
    const runtime = fakeRuntime();
    const completionCode = await approvedCompletion(runtime, 'acme-other');

    const wrong = completeConnection(runtime, { callerArn: PARTNER, connectionId: 'acme-1', completionCode });
    await expect(wrong).rejects.toThrow(/Field "completionCode"/);
    const right = completeConnection(runtime, {
      callerArn: PARTNER,
      connectionId: 'acme-other',
      completionCode,
    });

    await expect(right).rejects.toThrow(InvalidRequestError);
    await expect(runtime.store.getConnection('acme-other')).resolves.toBeUndefined();
    await expect(runtime.store.getConnection('acme-1')).resolves.toBeUndefined();
  });

  it('refuses a code at its expiry and accepts it one millisecond before', async () => {
    const late = fakeRuntime();
    const lateCode = await approvedCompletion(late);
    const onTime = fakeRuntime();
    const onTimeCode = await approvedCompletion(onTime);
    late.advance(COMPLETION_TTL_MS);
    onTime.advance(COMPLETION_TTL_MS - 1);

    const refused = completeConnection(late, {
      callerArn: PARTNER,
      connectionId: 'acme-1',
      completionCode: lateCode,
    });
    const accepted = completeConnection(onTime, {
      callerArn: PARTNER,
      connectionId: 'acme-1',
      completionCode: onTimeCode,
    });

    await expect(refused).rejects.toThrow(InvalidRequestError);
    await expect(accepted).resolves.toMatchObject({ status: 'active' });
    await expect(late.store.getConnection('acme-1')).resolves.toBeUndefined();
  });

  it('refuses a caller whose patterns do not cover the connection, leaving the code usable', async () => {
    const runtime = fakeRuntime();
    const completionCode = await approvedCompletion(runtime);

    const stranger = completeConnection(runtime, {
      callerArn: STRANGER,
      connectionId: 'acme-1',
      completionCode,
    });

    await expect(stranger).rejects.toThrow(ForbiddenError);
    await expect(
      completeConnection(runtime, { callerArn: PARTNER, connectionId: 'acme-1', completionCode }),
    ).resolves.toMatchObject({ status: 'active' });
  });
});
