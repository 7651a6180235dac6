import { afterEach, describe, expect, it, vi } from 'vitest';
import { CallerPolicy } from '#shared/domain/caller-policy.ts';
import { ConnectionExistsError } from '#shared/domain/errors.ts';
import { LOOKUP_BUDGET_MS, STORE_RESERVE_MS } from '#shared/use-cases/complete-authorization.ts';
import { importConnection } from '#shared/use-cases/import-connection.ts';
import { type FakeRuntime, fakeRuntime, PARTNER, START, storedConnection } from './connect-fakes.ts';

/** A runtime whose partner may import `acme-*`, and whose Wise refreshes the refresh token it is given. */
function importing(): FakeRuntime {
  const runtime = fakeRuntime();
  runtime.policy = new CallerPolicy([{ principal: PARTNER, import: ['acme-*'] }]);
  vi.spyOn(runtime.wise, 'refresh').mockImplementation(async () => runtime.wise.nextGrant());
  return runtime;
}

const input = { callerArn: PARTNER, connectionId: 'acme-7', refreshToken: 'old-system-refresh-token' };

afterEach(() => {
  vi.restoreAllMocks();
});

describe('importConnection', () => {
  it('imports under the id of a disconnected connection without being told to replace it', async () => {
    const runtime = importing();
    runtime.store.seedConnection(storedConnection('acme-7', { status: 'disconnected' }));

    const imported = await importConnection(runtime, input);

    expect(imported).toMatchObject({ connectionId: 'acme-7', status: 'active' });
    expect(runtime.wise.refresh).toHaveBeenCalledTimes(1);
  });

  it('refuses a live id without replace, asking Wise nothing', async () => {
    const runtime = importing();
    runtime.store.seedConnection(storedConnection('acme-7'));

    await expect(importConnection(runtime, input)).rejects.toThrow(ConnectionExistsError);
    expect(runtime.wise.refresh).not.toHaveBeenCalled();
  });

  it("ends its refresh at Wise early enough to look the user up and store the tokens before the request's end", async () => {
    const runtime = importing();
    const endsAt = START + 25_000;

    await importConnection(runtime, input, { endsAt });

    expect(runtime.wise.refresh).toHaveBeenCalledWith(
      { refreshToken: 'old-system-refresh-token' },
      { deadlineMs: endsAt - STORE_RESERVE_MS - LOOKUP_BUDGET_MS },
    );
  });

  it('announces the connection as imported', async () => {
    const runtime = importing();

    await importConnection(runtime, input);

    expect(runtime.events.connectedEvents).toEqual([
      expect.objectContaining({ connectionId: 'acme-7', imported: true }),
    ]);
  });
});
