import { describe, expect, it, vi } from 'vitest';
import { ForbiddenError, InvalidRequestError } from '#shared/domain/errors.ts';
import { hashSecret } from '#shared/domain/secret-hash.ts';
import { parseValue } from '#shared/http/request.ts';
import {
  allowedReturnUrl,
  CONNECT_SESSION_TTL_MS,
  ConnectSessionRequest,
  createConnectSession,
  matchReturnUrl,
  startUrlFor,
} from '#shared/use-cases/connect-session.ts';
import { fakeRuntime, PARTNER, PARTNER_SESSION, START, STRANGER } from './connect-fakes.ts';

const ALLOWED = [
  'https://app.example.com/wise/done',
  'https://app.example.com/return/',
  'http://localhost:3000/',
];

describe('matchReturnUrl', () => {
  it.each([
    ['an exact entry', 'https://app.example.com/wise/done', 'https://app.example.com/wise/done'],
    [
      'an exact entry with a different host case',
      'https://APP.example.com/wise/done',
      'https://app.example.com/wise/done',
    ],
    [
      'a path under an entry ending with /',
      'https://app.example.com/return/step?x=1#top',
      'https://app.example.com/return/step?x=1#top',
    ],
    ['the entry ending with / itself', 'https://app.example.com/return/', 'https://app.example.com/return/'],
    ['an explicit default port', 'https://app.example.com:443/return/a', 'https://app.example.com/return/a'],
    ['a loopback entry with its port', 'http://localhost:3000/anything', 'http://localhost:3000/anything'],
  ])('allows %s', (_case, candidate, normalised) => {
    expect(matchReturnUrl(candidate, ALLOWED)).toBe(normalised);
  });

  it.each([
    ['a protocol-relative URL', '//evil.example.com/return/'],
    ['a relative path', '/return/x'],
    ['a host that only starts like the allowed one', 'https://app.example.com.evil.com/return/x'],
    ['user info in front of the allowed host', 'https://app.example.com@evil.com/return/x'],
    ['user info before the allowed host', 'https://user:pw@app.example.com/return/x'],
    ['a backslash that some browsers read as a slash', 'https://app.example.com\\@evil.com/return/'],
    ['a path that climbs out of the entry', 'https://app.example.com/return/../admin'],
    ['an encoded path that climbs out of the entry', 'https://app.example.com/return/%2e%2e/admin'],
    ['a sibling path that shares the prefix', 'https://app.example.com/returnx/y'],
    ['an extension of an entry without a trailing slash', 'https://app.example.com/wise/done/more'],
    ['a longer name than an exact entry', 'https://app.example.com/wise/donex'],
    ['another port', 'https://app.example.com:8443/return/x'],
    ['another scheme', 'http://app.example.com/return/x'],
    ['a javascript: URL', 'javascript:alert(1)//https://app.example.com/return/'],
    ['a tab inside the URL', 'https://app.example.com/re\tturn/x'],
    ['leading whitespace', ' https://app.example.com/return/x'],
    ['no URL at all', 'not a url'],
    ['an encoded slash after dots', 'https://app.example.com/return/..%2fadmin'],
    ['encoded dots and slash in capitals', 'https://app.example.com/return/%2E%2E%2Fadmin'],
    ['a semicolon path parameter after dots', 'https://app.example.com/return/..;/admin'],
    ['a semicolon anywhere under the entry', 'https://app.example.com/return/x;jsessionid=1'],
    ['an encoded backslash', 'https://app.example.com/return/..%5cadmin'],
    ['an encoded backslash in capitals', 'https://app.example.com/return/..%5Cadmin'],
    ['an encoded dot alone', 'https://app.example.com/return/%2e'],
    ['a double-encoded slash', 'https://app.example.com/return/..%252fadmin'],
    ['a double-encoded dot', 'https://app.example.com/return/%252e%252e/admin'],
    ['an encoded slash on a loopback entry', 'http://localhost:3000/..%2F..%2Fadmin'],
  ])('refuses %s', (_case, candidate) => {
    expect(matchReturnUrl(candidate, ALLOWED)).toBeUndefined();
  });

  it('refuses everything when the allow-list is empty', () => {
    expect(matchReturnUrl('https://app.example.com/wise/done', [])).toBeUndefined();
  });

  it('never lets an allow-list entry with user info match', () => {
    expect(matchReturnUrl('https://app.example.com/x', ['https://u@app.example.com/'])).toBeUndefined();
  });
});

describe('allowedReturnUrl', () => {
  it('names the returnUrl field when the URL is not allowed', () => {
    const refusal = () => allowedReturnUrl('https://evil.example.com/', ALLOWED);
    expect(refusal).toThrow(InvalidRequestError);
    expect(refusal).toThrow(/Field "returnUrl".*returnUrls/);
  });

  it('says the deployment allows none when the allow-list is empty', () => {
    expect(() => allowedReturnUrl('https://app.example.com/', [])).toThrow(/allows no return URLs/);
  });
});

describe('ConnectSessionRequest', () => {
  it('accepts a connection id with every allowed character', () => {
    expect(parseValue({ connectionId: 'aZ09._:-' }, ConnectSessionRequest)).toEqual({
      connectionId: 'aZ09._:-',
    });
  });

  it.each([
    [{}, /Field "connectionId": is required and must be 1 to 128 characters/],
    [
      { connectionId: 'a'.repeat(129) },
      /Field "connectionId": must be 1 to 128 characters of letters, digits/,
    ],
    [{ connectionId: 'acme/1' }, /Field "connectionId": must be 1 to 128/],
    [{ connectionId: '..' }, /Field "connectionId": must be .* other than "\." and "\.\."/],
    [{ connectionId: 42 }, /Field "connectionId": must be 1 to 128/],
    [{ connectionId: 'acme-1', returnUrl: 7 }, /Field "returnUrl": must be a URL string/],
    [{ connectionId: 'acme-1', returnUrl: 'x'.repeat(2049) }, /Field "returnUrl": must be at most 2048/],
    [
      { connectionId: 'acme-1', extra: true },
      /unknown field "extra"; it accepts only "connectionId", "returnUrl"/,
    ],
    [['acme-1'], /must be a JSON object/],
  ])('refuses %j with a message naming the problem', (body, message) => {
    expect(() => parseValue(body, ConnectSessionRequest)).toThrow(message);
  });
});

describe('createConnectSession', () => {
  const stateOf = (startUrl: string) => new URL(startUrl).searchParams.get('state') ?? '';

  it('stores only the hash of a one-time state and returns the start URL carrying the state', async () => {
    const runtime = fakeRuntime();
    const put = vi.spyOn(runtime.store, 'putConnectSession');

    const session = await createConnectSession(runtime, { callerArn: PARTNER, connectionId: 'acme-1' });

    const state = stateOf(session.startUrl);
    expect(state).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(session.startUrl).toBe(`https://broker.example.com/oauth/start?state=${state}`);
    expect(session.expiresAt).toBe(START + CONNECT_SESSION_TTL_MS);
    expect(put).toHaveBeenCalledWith({
      stateHash: hashSecret('state', state),
      connectionId: 'acme-1',
      createdBy: PARTNER,
      createdAt: START,
      expiresAt: START + 10 * 60 * 1000,
    });
    expect(JSON.stringify(put.mock.calls)).not.toContain(state);
  });

  it('makes a different state every time', async () => {
    const runtime = fakeRuntime();
    const states = new Set<string>();

    for (let i = 0; i < 20; i++) {
      const session = await createConnectSession(runtime, { callerArn: PARTNER, connectionId: 'acme-1' });
      states.add(stateOf(session.startUrl));
    }

    expect(states.size).toBe(20);
  });

  it('keeps the allowed return URL, normalised, with the session', async () => {
    const runtime = fakeRuntime();
    const put = vi.spyOn(runtime.store, 'putConnectSession');

    await createConnectSession(runtime, {
      callerArn: PARTNER_SESSION,
      connectionId: 'acme-2',
      returnUrl: 'https://APP.example.com/return/acme-2',
    });

    expect(put.mock.calls[0]?.[0].returnUrl).toBe('https://app.example.com/return/acme-2');
  });

  it('requires a return URL unless the configuration connects without confirmation, storing nothing', async () => {
    const runtime = fakeRuntime({ connectWithoutConfirmation: false });
    const put = vi.spyOn(runtime.store, 'putConnectSession');

    const refusal = createConnectSession(runtime, { callerArn: PARTNER, connectionId: 'acme-1' });

    await expect(refusal).rejects.toThrow(InvalidRequestError);
    await expect(refusal).rejects.toThrow(/Field "returnUrl": is required/);
    expect(put).not.toHaveBeenCalled();
  });

  it('places the start URL beside a redirect URI under a base path, without its query', () => {
    expect(startUrlFor('https://broker.example.com/wise/oauth/callback?x=1', 'abc')).toBe(
      'https://broker.example.com/wise/oauth/start?state=abc',
    );
  });

  it('refuses a caller whose patterns do not cover the connection, storing nothing', async () => {
    const runtime = fakeRuntime();
    const put = vi.spyOn(runtime.store, 'putConnectSession');

    await expect(
      createConnectSession(runtime, { callerArn: STRANGER, connectionId: 'acme-1' }),
    ).rejects.toThrow(ForbiddenError);
    await expect(
      createConnectSession(runtime, { callerArn: PARTNER, connectionId: 'beta-1' }),
    ).rejects.toThrow(ForbiddenError);
    expect(put).not.toHaveBeenCalled();
  });

  it('refuses a return URL outside the allow-list, storing nothing', async () => {
    const runtime = fakeRuntime();
    const put = vi.spyOn(runtime.store, 'putConnectSession');

    await expect(
      createConnectSession(runtime, {
        callerArn: PARTNER,
        connectionId: 'acme-1',
        returnUrl: 'https://app.example.com.evil.com/return/',
      }),
    ).rejects.toThrow(InvalidRequestError);
    expect(put).not.toHaveBeenCalled();
  });
});
