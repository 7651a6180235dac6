import { describe, expect, it, vi } from 'vitest';
import { CallerPolicy } from '#shared/domain/caller-policy.ts';
import { ConnectionNotFoundError, ForbiddenError, InvalidRequestError } from '#shared/domain/errors.ts';
import { parseValue } from '#shared/http/request.ts';
import type { CipherContext } from '#shared/ports/token-cipher.ts';
import { connectionIdFromPath, toConnectionStatus } from '#shared/use-cases/connection-status.ts';
import {
  disconnectConnection,
  getConnectionStatus,
  ListConnectionsQuery,
  listConnections,
  MAX_STORE_PAGES,
} from '#shared/use-cases/connections-admin.ts';
import {
  ADMIN,
  type FakeRuntime,
  fakeRuntime,
  OTHER_ADMIN,
  PARTNER,
  START,
  storedConnection,
} from './connect-fakes.ts';

describe('toConnectionStatus', () => {
  it('shows state and ISO times and nothing secret', () => {
    const record = storedConnection('acme-1', {
      registrationCode: new TextEncoder().encode('sealed-code'),
      email: 'jo@example.com',
      lastError: { code: 'provider_unavailable', message: 'Wise answered 503.', at: START + 1000 },
      lease: { owner: 'x', expiresAt: START + 5000 },
    });

    const status = toConnectionStatus(record);

    expect(status).toEqual({
      connectionId: 'acme-1',
      status: 'active',
      profileId: 16550001,
      grant: 'authorization_code',
      accessTokenExpiresAt: '2026-11-26T21:59:59.000Z',
      nextRefreshAt: '2026-11-26T19:26:40.000Z',
      lastRefreshAt: '2026-11-26T10:00:00.000Z',
      lastError: {
        code: 'provider_unavailable',
        message: 'Wise answered 503.',
        at: '2026-11-26T10:00:01.000Z',
      },
    });
  });

  it('shows null for what the connection does not have', () => {
    const record = storedConnection('acme-1', { status: 'needs_reauth' });
    delete record.nextRefreshAt;
    delete record.profileId;

    expect(toConnectionStatus(record)).toMatchObject({
      status: 'needs_reauth',
      nextRefreshAt: null,
      profileId: null,
    });
  });
});

describe('connectionIdFromPath', () => {
  it('returns a valid id', () => {
    expect(connectionIdFromPath({ id: 'acme:user-1.a_b' })).toBe('acme:user-1.a_b');
  });

  it.each([[{}], [undefined], [{ id: '' }], [{ id: 'a'.repeat(129) }], [{ id: 'acme user' }]])(
    'refuses %j naming the alphabet and the length',
    (parameters) => {
      expect(() => connectionIdFromPath(parameters)).toThrow(InvalidRequestError);
      expect(() => connectionIdFromPath(parameters)).toThrow(/1 to 128 characters of letters, digits/);
    },
  );
});

/** What the API shows of `storedConnection('acme-1')`. */
const ACME_1_VIEW = {
  connectionId: 'acme-1',
  status: 'active',
  profileId: 16550001,
  grant: 'authorization_code',
  accessTokenExpiresAt: '2026-11-26T21:59:59.000Z',
  nextRefreshAt: '2026-11-26T19:26:40.000Z',
  lastRefreshAt: '2026-11-26T10:00:00.000Z',
  lastError: null,
};

describe('getConnectionStatus', () => {
  it('shows a connection the admin covers', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(storedConnection('acme-1'));

    const status = await getConnectionStatus(runtime, { callerArn: ADMIN, connectionId: 'acme-1' });

    expect(status.connectionId).toBe('acme-1');
  });

  it('answers the status view, with ISO times and without the sealed tokens', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(storedConnection('acme-1'));

    const status = await getConnectionStatus(runtime, { callerArn: ADMIN, connectionId: 'acme-1' });

    expect(status).toStrictEqual(ACME_1_VIEW);
  });

  it('answers not found for a tombstone and for an unknown id', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(storedConnection('acme-1', { status: 'disconnected' }));

    await expect(getConnectionStatus(runtime, { callerArn: ADMIN, connectionId: 'acme-1' })).rejects.toThrow(
      ConnectionNotFoundError,
    );
    await expect(getConnectionStatus(runtime, { callerArn: ADMIN, connectionId: 'acme-2' })).rejects.toThrow(
      ConnectionNotFoundError,
    );
  });

  it('refuses a caller that is no admin, and an admin whose patterns do not cover the connection', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(storedConnection('acme-1'));

    await expect(
      getConnectionStatus(runtime, { callerArn: PARTNER, connectionId: 'acme-1' }),
    ).rejects.toThrow(ForbiddenError);
    await expect(
      getConnectionStatus(runtime, { callerArn: OTHER_ADMIN, connectionId: 'acme-1' }),
    ).rejects.toThrow(ForbiddenError);
  });
});

describe('listConnections', () => {
  function seeded() {
    const runtime = fakeRuntime();
    for (const id of ['acme-1', 'acme-2', 'beta-1', 'acme-3', 'beta-2', 'acme-4']) {
      runtime.store.seedConnection(storedConnection(id));
    }
    runtime.store.seedConnection(storedConnection('acme-5', { status: 'needs_reauth' }));
    runtime.store.seedConnection(storedConnection('acme-6', { status: 'disconnected' }));
    return runtime;
  }

  it('lists only the live connections the admin covers', async () => {
    const runtime = seeded();

    const page = await listConnections(runtime, { callerArn: ADMIN });

    expect(page.connections.map((c) => c.connectionId)).toEqual([
      'acme-1',
      'acme-2',
      'acme-3',
      'acme-4',
      'acme-5',
    ]);
    expect(page.nextToken).toBeUndefined();
  });

  it('filters by status', async () => {
    const runtime = seeded();

    const page = await listConnections(runtime, { callerArn: ADMIN, status: 'needs_reauth' });

    expect(page.connections.map((c) => c.connectionId)).toEqual(['acme-5']);
  });

  it('pages with nextToken, never returning more than the limit', async () => {
    const runtime = seeded();
    const seen: string[] = [];
    let nextToken: string | undefined;

    for (let page = 0; page < 10; page++) {
      const result = await listConnections(runtime, {
        callerArn: ADMIN,
        limit: 2,
        ...(nextToken ? { nextToken } : {}),
      });
      expect(result.connections.length).toBeLessThanOrEqual(2);
      seen.push(...result.connections.map((c) => c.connectionId));
      nextToken = result.nextToken;
      if (!nextToken) break;
    }

    expect(seen).toEqual(['acme-1', 'acme-2', 'acme-3', 'acme-4', 'acme-5']);
  });

  it('shows another admin only its own connections', async () => {
    const runtime = seeded();

    const page = await listConnections(runtime, { callerArn: OTHER_ADMIN });

    expect(page.connections.map((c) => c.connectionId)).toEqual(['beta-1', 'beta-2']);
  });

  it('refuses a caller that is no admin', async () => {
    await expect(listConnections(seeded(), { callerArn: PARTNER })).rejects.toThrow(ForbiddenError);
  });

  it('lists each connection as its status view, with ISO times', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(storedConnection('acme-1'));

    const page = await listConnections(runtime, { callerArn: ADMIN });

    expect(page.connections).toStrictEqual([ACME_1_VIEW]);
  });

  it('never lists a secret or personal field, only the status view', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(storedConnection('acme-1', { email: 'jo@example.com' }));

    const page = await listConnections(runtime, { callerArn: ADMIN });

    expect(JSON.stringify(page)).not.toMatch(/sealed|jo@example.com|userId|email/);
  });
});

const LISTING = { record: { kind: 'listing', principal: ADMIN }, kind: 'list_cursor' } as const;

/** What a nextToken says, opened with the admin's cursor context. */
async function cursorOf(runtime: FakeRuntime, nextToken: string | undefined): Promise<unknown> {
  if (nextToken === undefined) return undefined;
  return JSON.parse(await runtime.cipher.decrypt(Buffer.from(nextToken, 'base64url'), LISTING));
}

/** A nextToken sealed for the admin, as the listing would seal it, around any content. */
async function sealed(
  runtime: FakeRuntime,
  cursor: unknown,
  context: CipherContext = LISTING,
): Promise<string> {
  return Buffer.from(await runtime.cipher.encrypt(JSON.stringify(cursor), context)).toString('base64url');
}

/**
 * The same bytes as a base64url text, spelt with a character the decoder ignores: one more at the end, or
 * unused low bits set in the last one.
 */
function otherSpelling(token: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(token.at(-1) ?? 'A');
  const bytes = Buffer.from(token, 'base64url');
  const spelling = [`${token}A`, `${token.slice(0, -1)}${alphabet[last + 1]}`].find((candidate) =>
    Buffer.from(candidate, 'base64url').equals(bytes),
  );
  if (spelling === undefined) throw new Error('no other spelling of the token');
  return spelling;
}

/** A hand-written nextToken: base64url JSON, as the listing wrote them before they were sealed. */
function handWritten(cursor: unknown): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

/** A runtime whose admins have the given patterns, with the given connections stored. */
function adminOf(patterns: string[], connectionIds: string[], otherAdminPatterns: string[] = []) {
  const runtime = fakeRuntime();
  for (const id of connectionIds) runtime.store.seedConnection(storedConnection(id));
  return {
    ...runtime,
    policy: new CallerPolicy([
      { principal: ADMIN, administer: patterns },
      ...(otherAdminPatterns.length > 0 ? [{ principal: OTHER_ADMIN, administer: otherAdminPatterns }] : []),
    ]),
  };
}

/** Every page of a listing, with every nextToken handed out on the way. */
async function everyPage(
  runtime: ReturnType<typeof adminOf>,
  options: { limit: number; status?: 'active' | 'needs_reauth' },
) {
  const ids: string[] = [];
  const tokens: string[] = [];
  let nextToken: string | undefined;
  for (let page = 0; page < 50; page++) {
    const result = await listConnections(runtime, {
      callerArn: ADMIN,
      ...options,
      ...(nextToken ? { nextToken } : {}),
    });
    ids.push(...result.connections.map((connection) => connection.connectionId));
    nextToken = result.nextToken;
    if (nextToken === undefined) return { ids, tokens };
    tokens.push(nextToken);
  }
  throw new Error('the listing never ended');
}

describe('listConnections across the caller patterns', () => {
  const secrets = Array.from({ length: 12 }, (_, index) => `acme-secret-customer-${index + 1}`);

  it("hands out nextTokens that name only the caller's own connections", async () => {
    const runtime = adminOf(['beta-*'], [...secrets, 'beta-1', 'beta-2', 'beta-3', 'zeta-1']);

    const { ids, tokens } = await everyPage(runtime, { limit: 1 });

    expect(ids).toEqual(['beta-1', 'beta-2', 'beta-3']);
    expect(tokens.length).toBeGreaterThanOrEqual(3);
    for (const nextToken of tokens) {
      const cursor = (await cursorOf(runtime, nextToken)) as { p: string; a?: string };
      expect(cursor.p).toBe('beta-*');
      expect(cursor.a ?? 'beta-').toMatch(/^beta-\d$|^beta-$/);
    }
  });

  it('asks the store for no more than the page still has room for', async () => {
    const runtime = adminOf(['beta-*-eu'], ['beta-1-eu', 'beta-2-us', 'beta-3-eu', 'beta-4-eu', 'beta-5-eu']);

    const { ids } = await everyPage(runtime, { limit: 2, status: 'active' });
    const first = await listConnections(runtime, { callerArn: ADMIN, limit: 2, status: 'active' });

    expect(first.connections.map((connection) => connection.connectionId)).toEqual([
      'beta-1-eu',
      'beta-3-eu',
    ]);
    expect(ids).toEqual(['beta-1-eu', 'beta-3-eu', 'beta-4-eu', 'beta-5-eu']);
  });

  it('asks the store only for ids that begin with the literal prefix of each pattern', async () => {
    const runtime = adminOf(['beta-*', 'gamma-*-eu'], [...secrets, 'beta-1', 'gamma-1-eu']);
    const list = vi.spyOn(runtime.store, 'listConnections');

    const page = await listConnections(runtime, { callerArn: ADMIN, status: 'active' });

    expect(list.mock.calls.map(([options]) => [options.status, options.prefix])).toEqual([
      ['active', 'beta-'],
      ['active', 'gamma-'],
    ]);
    expect(page.connections.map((connection) => connection.connectionId)).toEqual(['beta-1', 'gamma-1-eu']);
  });

  it('lists a connection two patterns cover once, under the first', async () => {
    const runtime = adminOf(['acme-*', 'acme-1*', '*-1'], ['acme-1', 'acme-10', 'acme-2', 'beta-1']);

    const { ids } = await everyPage(runtime, { limit: 2 });

    expect(ids).toEqual(['acme-1', 'acme-10', 'acme-2', 'beta-1']);
  });

  it('walks active then needs_reauth for every pattern', async () => {
    const runtime = adminOf(['a-*', 'b-*'], ['a-1', 'b-1']);
    runtime.store.seedConnection(storedConnection('a-2', { status: 'needs_reauth' }));
    runtime.store.seedConnection(storedConnection('b-2', { status: 'needs_reauth' }));

    const { ids } = await everyPage(runtime, { limit: 3 });

    expect(ids).toEqual(['a-1', 'b-1', 'a-2', 'b-2']);
  });

  it('stops after a bounded number of store pages with a sealed nextToken, and goes on from it', async () => {
    const hidden = Array.from({ length: 30 }, (_, index) => `beta-${String(index).padStart(2, '0')}-us`);
    const runtime = adminOf(['beta-*-eu'], [...secrets, ...hidden, 'beta-99-eu']);
    const list = vi.spyOn(runtime.store, 'listConnections');

    const first = await listConnections(runtime, { callerArn: ADMIN, limit: 2, status: 'active' });

    expect(list).toHaveBeenCalledTimes(MAX_STORE_PAGES);
    expect(first.connections).toEqual([]);
    expect(await cursorOf(runtime, first.nextToken)).toEqual({
      s: 'active',
      p: 'beta-*-eu',
      a: 'beta-19-us',
    });
    const { ids } = await everyPage(runtime, { limit: 2, status: 'active' });
    expect(ids).toEqual(['beta-99-eu']);
  });

  it('hands out, for a pattern without a literal prefix, nextTokens whose bytes name no stored id', async () => {
    const hidden = Array.from({ length: 30 }, (_, index) => `acme-secret-${String(index).padStart(2, '0')}`);
    const visible = ['beta-1-eu', 'gamma-2-eu', 'zeta-3-eu'];
    const stored = [...hidden, ...visible, 'zeta-4-us'];
    const runtime = adminOf(['*-eu'], stored);

    const { ids, tokens } = await everyPage(runtime, { limit: 1, status: 'active' });

    expect(ids).toEqual(visible);
    expect(tokens.length).toBeGreaterThanOrEqual(3);
    for (const nextToken of tokens) {
      const bytes = Buffer.from(nextToken, 'base64url');
      for (const id of stored) {
        expect(bytes.includes(id)).toBe(false);
        expect(nextToken.includes(id)).toBe(false);
      }
    }
  });

  it("refuses another admin's nextToken, even for the same pattern, before reading the store", async () => {
    const runtime = adminOf(['beta-*'], ['beta-1', 'beta-2'], ['beta-*']);
    const theirs = await listConnections(runtime, { callerArn: OTHER_ADMIN, limit: 1, status: 'active' });
    const list = vi.spyOn(runtime.store, 'listConnections');

    const listing = listConnections(runtime, {
      callerArn: ADMIN,
      status: 'active',
      ...(theirs.nextToken === undefined ? {} : { nextToken: theirs.nextToken }),
    });

    expect(theirs.nextToken).toBeDefined();
    await expect(listing).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(listing).rejects.toMatchObject({ field: 'nextToken' });
    expect(list).not.toHaveBeenCalled();
  });

  it("accepts a nextToken from another session of the caller's own role", async () => {
    const runtime = adminOf(['beta-*'], ['beta-1', 'beta-2']);
    const session = (name: string) => `arn:aws:sts::111122223333:assumed-role/broker-admin/${name}`;
    const first = await listConnections(runtime, { callerArn: session('one'), limit: 1, status: 'active' });

    const second = await listConnections(runtime, {
      callerArn: session('two'),
      limit: 1,
      status: 'active',
      ...(first.nextToken === undefined ? {} : { nextToken: first.nextToken }),
    });

    expect(first.connections.map((connection) => connection.connectionId)).toEqual(['beta-1']);
    expect(second.connections.map((connection) => connection.connectionId)).toEqual(['beta-2']);
  });

  it.each<[string, (runtime: FakeRuntime) => Promise<string> | string]>([
    ['a hand-written cursor', () => handWritten({ s: 'active', p: 'beta-*', a: 'beta-1' })],
    [
      'a hand-written position outside the prefix',
      () => handWritten({ s: 'active', p: 'beta-*', a: 'acme-secret-customer-1' }),
    ],
    [
      'a sealed cursor with one byte changed',
      async (runtime) => {
        const bytes = Buffer.from(await sealed(runtime, { s: 'active', p: 'beta-*' }), 'base64url');
        bytes[3] = (bytes[3] ?? 0) ^ 1;
        return bytes.toString('base64url');
      },
    ],
    [
      'a cursor sealed as another kind',
      (runtime) => sealed(runtime, { s: 'active', p: 'beta-*' }, { ...LISTING, kind: 'access_token' }),
    ],
    [
      'a cursor sealed for another record',
      (runtime) =>
        sealed(runtime, { s: 'active', p: 'beta-*' }, { record: { kind: 'client' }, kind: 'list_cursor' }),
    ],
    ['sealed empty strings', (runtime) => sealed(runtime, { s: '', p: '', a: '' })],
    ['a sealed empty position', (runtime) => sealed(runtime, { s: 'active', p: 'beta-*', a: '' })],
    ['a sealed pattern of another caller', (runtime) => sealed(runtime, { s: 'active', p: 'acme-*' })],
    [
      'a sealed position outside the pattern prefix',
      (runtime) => sealed(runtime, { s: 'active', p: 'beta-*', a: 'acme-secret-customer-1' }),
    ],
    [
      'a sealed position that is no connection id',
      (runtime) => sealed(runtime, { s: 'active', p: 'beta-*', a: 'beta-1 x' }),
    ],
    [
      'a sealed status left out by the filter',
      (runtime) => sealed(runtime, { s: 'needs_reauth', p: 'beta-*' }),
    ],
    [
      'a sealed status that is never listed',
      (runtime) => sealed(runtime, { s: 'disconnected', p: 'beta-*' }),
    ],
    ['a sealed extra field', (runtime) => sealed(runtime, { s: 'active', p: 'beta-*', x: 1 })],
    [
      'sealed text that is no JSON',
      async (runtime) => Buffer.from(await runtime.cipher.encrypt('{oops', LISTING)).toString('base64url'),
    ],
    [
      'the bytes of a valid one spelt another way',
      async (runtime) => otherSpelling(await sealed(runtime, { s: 'active', p: 'beta-*' })),
    ],
    ['not base64url', () => '!!!'],
    ['nothing once decoded', () => 'A'],
  ])('refuses a nextToken with %s before reading the store', async (_, make) => {
    const runtime = adminOf(['beta-*'], [...secrets, 'beta-1']);
    const nextToken = await make(runtime);
    const list = vi.spyOn(runtime.store, 'listConnections');

    const listing = listConnections(runtime, { callerArn: ADMIN, status: 'active', nextToken });

    await expect(listing).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(listing).rejects.toMatchObject({ field: 'nextToken' });
    await expect(listing).rejects.toThrow(/^The nextToken .+\.$/);
    expect(list).not.toHaveBeenCalled();
  });

  it('passes on a cipher failure that says nothing about the token, instead of blaming the caller', async () => {
    const runtime = adminOf(['beta-*'], ['beta-1']);
    const nextToken = await sealed(runtime, { s: 'active', p: 'beta-*' });
    const unavailable = new Error('KMS is unavailable');
    vi.spyOn(runtime.cipher, 'decrypt').mockRejectedValue(unavailable);

    const listing = listConnections(runtime, { callerArn: ADMIN, status: 'active', nextToken });

    await expect(listing).rejects.toBe(unavailable);
  });
});

describe('ListConnectionsQuery', () => {
  it('reads limit as a number', () => {
    expect(parseValue({ limit: '25', status: 'active' }, ListConnectionsQuery)).toEqual({
      limit: 25,
      status: 'active',
    });
  });

  it.each([
    [{ limit: '0' }, /Field "limit": must be a whole number from 1 to 100/],
    [{ limit: '101' }, /Field "limit": must be a whole number from 1 to 100/],
    [{ limit: 'ten' }, /Field "limit": must be a whole number from 1 to 100/],
    [{ limit: '2.5' }, /Field "limit": must be a whole number from 1 to 100/],
    [{ status: 'disconnected' }, /Field "status": must be "active" or "needs_reauth"/],
    [{ nextToken: '' }, /Field "nextToken"/],
    [{ page: '2' }, /unknown parameter "page"/],
    [{ page: '2', sort: 'id' }, /unknown parameter "page", "sort"; it accepts only/],
    [{ [`p${'x'.repeat(59)}`]: '1' }, new RegExp(`unknown parameter "p${'x'.repeat(39)}";`)],
  ])('refuses %j', (query, message) => {
    expect(() => parseValue(query, ListConnectionsQuery)).toThrow(message);
  });
});

describe('disconnectConnection', () => {
  it('leaves a tombstone without tokens, and a second disconnect finds nothing', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(storedConnection('acme-1'));

    await disconnectConnection(runtime, { callerArn: ADMIN, connectionId: 'acme-1' });

    const stored = await runtime.store.getConnection('acme-1');
    expect(stored?.status).toBe('disconnected');
    expect(stored?.accessToken).toBeUndefined();
    expect(stored?.refreshToken).toBeUndefined();
    await expect(disconnectConnection(runtime, { callerArn: ADMIN, connectionId: 'acme-1' })).rejects.toThrow(
      ConnectionNotFoundError,
    );
  });

  it('stamps the tombstone with the time of the disconnect and publishes "Connection Disconnected"', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(storedConnection('acme-1'));
    runtime.advance(60_000);

    await disconnectConnection(runtime, { callerArn: ADMIN, connectionId: 'acme-1' });

    expect((await runtime.store.getConnection('acme-1'))?.updatedAt).toBe(START + 60_000);
    expect(runtime.events.disconnectedEvents).toEqual([{ connectionId: 'acme-1', at: START + 60_000 }]);
  });

  it('refuses an admin whose patterns do not cover the connection, leaving it alone', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(storedConnection('acme-1'));

    await expect(
      disconnectConnection(runtime, { callerArn: OTHER_ADMIN, connectionId: 'acme-1' }),
    ).rejects.toThrow(ForbiddenError);
    expect((await runtime.store.getConnection('acme-1'))?.status).toBe('active');
  });
});
