import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ProviderUnavailableError } from '#shared/domain/errors.ts';
import { obtainClientAccessToken } from '#shared/use-cases/client-token.ts';
import { WiseUnavailableError } from '#shared/wise/errors.ts';
import { fakeBroker, silenceObservability, T0, TTL } from './refresh-fakes.ts';

beforeEach(() => {
  silenceObservability();
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('obtainClientAccessToken', () => {
  it('mints the client-credentials token when none is stored', async () => {
    const broker = fakeBroker();

    const token = await obtainClientAccessToken(broker.deps);

    expect(token).toEqual({
      accessToken: 'access-1',
      expiresAt: T0 + TTL,
      generation: 1,
      validUntil: T0 + 0.8 * TTL,
      scope: 'transfers',
    });
  });

  it('returns the stored token while it is fresh, without asking Wise again', async () => {
    const broker = fakeBroker();
    await obtainClientAccessToken(broker.deps);
    broker.clock.advance(0.5 * TTL);

    const token = await obtainClientAccessToken(broker.deps);

    expect(token.accessToken).toBe('access-1');
    expect(broker.wise.count('clientCredentials')).toBe(1);
  });

  it('mints a new one once the stored one is due', async () => {
    const broker = fakeBroker();
    await obtainClientAccessToken(broker.deps);
    broker.clock.advance(0.8 * TTL);

    const token = await obtainClientAccessToken(broker.deps);

    expect(token).toMatchObject({ accessToken: 'access-2', generation: 2 });
  });

  it('fails with ProviderUnavailableError when Wise cannot mint the first one', async () => {
    const broker = fakeBroker();
    broker.wise.script('clientCredentials', new WiseUnavailableError('down', { retryAfterSeconds: 5 }));

    await expect(obtainClientAccessToken(broker.deps)).rejects.toThrow(ProviderUnavailableError);
  });
});
