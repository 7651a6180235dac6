import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RecordKey } from '#shared/domain/records.ts';
import { logger, MetricName } from '#shared/observability.ts';
import { obtainClientAccessToken } from '#shared/use-cases/client-token.ts';
import {
  checkRejection,
  REJECTION_CHECK_TIMEOUT_MS,
  REJECTION_CHECK_WINDOW_MS,
  rejectionCheckedRecently,
} from '#shared/use-cases/rejection-check.ts';
import { type VendRequest, vendToken } from '#shared/use-cases/vend-token.ts';
import { WiseUnavailableError } from '#shared/wise/errors.ts';
import { fakeBroker, PAYMENTS_SESSION, seedConnection, silenceObservability } from './refresh-fakes.ts';

const acme: RecordKey = { kind: 'connection', connectionId: 'acme-1' };
const client: RecordKey = { kind: 'client' };

let observed: ReturnType<typeof silenceObservability>;

beforeEach(() => {
  observed = silenceObservability();
});

afterEach(() => {
  vi.restoreAllMocks();
});

function request(target: RecordKey, rejectedGeneration?: number): VendRequest {
  return {
    callerArn: PAYMENTS_SESSION,
    target,
    ...(rejectedGeneration === undefined ? {} : { rejectedGeneration }),
  };
}

/** A caller that reports every token it gets as rejected, `times` times in a row. */
async function hammer(broker: ReturnType<typeof fakeBroker>, target: RecordKey, times: number) {
  let vended = await vendToken(broker.deps, request(target));
  const generations = [vended.generation];
  for (let i = 0; i < times; i++) {
    vended = await vendToken(broker.deps, request(target, vended.generation));
    generations.push(vended.generation);
  }
  return { last: vended, generations };
}

describe('reported rejections (rejectedGeneration)', () => {
  it('refreshes a connection at most once in the window for a caller that reports every token rejected', async () => {
    const broker = fakeBroker();
    await seedConnection(broker, { generation: 1 });

    const { last } = await hammer(broker, acme, 20);

    expect(broker.wise.count('refresh')).toBe(1);
    expect(last.generation).toBe(2);
    expect(broker.wise.count('getCurrentUser')).toBe(1);
  });

  it('honours the next rejection once the window has passed', async () => {
    const broker = fakeBroker();
    await seedConnection(broker, { generation: 1 });
    await hammer(broker, acme, 5);

    broker.clock.advance(REJECTION_CHECK_WINDOW_MS + 1);
    const { last } = await hammer(broker, acme, 5);

    expect(broker.wise.count('refresh')).toBe(2);
    expect(last.generation).toBe(3);
  });

  it('mints the client token at most once in the window for a caller that reports every client token rejected', async () => {
    const broker = fakeBroker();
    await vendToken(broker.deps, request(client));
    const minted = broker.wise.count('clientCredentials');

    const { last } = await hammer(broker, client, 20);

    expect(broker.wise.count('clientCredentials') - minted).toBe(1);
    expect(last.generation).toBe(2);
  });

  it('keeps a token Wise still accepts: a false rejection refreshes nothing', async () => {
    const broker = fakeBroker();
    await seedConnection(broker, { generation: 1, accessToken: 'access-live' });
    broker.wise.tokenCheck = 'alive';

    const vended = await vendToken(broker.deps, request(acme, 1));

    expect(vended).toMatchObject({ accessToken: 'access-live', generation: 1 });
    expect(broker.wise.count('getCurrentUser')).toBe(1);
    expect(broker.wise.count('refresh')).toBe(0);
    expect(observed.addMetric).toHaveBeenCalledWith(MetricName.rejectionNotHonoured, expect.anything(), 1);
    const stored = await broker.store.getConnection('acme-1');
    expect(stored).toMatchObject({ generation: 1 });
    expect(stored?.lease).toBeUndefined();
  });

  it('refreshes a token Wise really refuses, once, and vends the new one to every later reporter', async () => {
    const broker = fakeBroker();
    await seedConnection(broker, { generation: 1, accessToken: 'access-dead' });

    const first = await vendToken(broker.deps, request(acme, 1));
    const later = await Promise.all(
      Array.from({ length: 5 }, () => vendToken(broker.deps, request(acme, 1))),
    );

    expect(first.generation).toBe(2);
    expect(first.accessToken).not.toBe('access-dead');
    expect(later.map((token) => token.accessToken)).toEqual(Array(5).fill(first.accessToken));
    expect(broker.wise.count('refresh')).toBe(1);
  });

  it('lets twenty concurrent reporters of one generation cause one check and one refresh', async () => {
    const broker = fakeBroker();
    await seedConnection(broker, { generation: 1 });

    const vended = await Promise.all(
      Array.from({ length: 20 }, () => vendToken(broker.deps, request(acme, 1))),
    );

    expect(broker.wise.count('getCurrentUser')).toBe(1);
    expect(broker.wise.count('refresh')).toBe(1);
    expect(new Set(vended.map((token) => token.generation))).toEqual(new Set([2]));
  });

  it('honours, once in the window, a rejection Wise cannot confirm because it is unavailable', async () => {
    const broker = fakeBroker();
    await seedConnection(broker, { generation: 1 });
    broker.wise.tokenCheck = new WiseUnavailableError('Wise answered 503.', { status: 503 });

    const { last } = await hammer(broker, acme, 10);

    expect(broker.wise.count('refresh')).toBe(1);
    expect(last.generation).toBe(2);
  });

  it('asks Wise nothing about a token that is due anyway: it is refreshed without a check', async () => {
    const broker = fakeBroker();
    await seedConnection(broker, { generation: 1, nextRefreshAt: broker.clock.now() - 1 });

    const vended = await vendToken(broker.deps, request(acme, 1));

    expect(vended.generation).toBe(2);
    expect(broker.wise.count('getCurrentUser')).toBe(0);
  });
});

describe('rejectionCheckedRecently', () => {
  const now = 1_000_000;

  it('holds for a check less than the window ago, and no longer at the window', () => {
    expect(rejectionCheckedRecently({ rejectionCheckedAt: now - REJECTION_CHECK_WINDOW_MS + 1 }, now)).toBe(
      true,
    );
    expect(rejectionCheckedRecently({ rejectionCheckedAt: now }, now)).toBe(true);
    expect(rejectionCheckedRecently({ rejectionCheckedAt: now - REJECTION_CHECK_WINDOW_MS }, now)).toBe(
      false,
    );
  });

  it('does not hold for a record never checked', () => {
    expect(rejectionCheckedRecently({}, now)).toBe(false);
  });
});

describe('checkRejection', () => {
  async function seeded() {
    const broker = fakeBroker();
    const record = await seedConnection(broker, { generation: 1, accessToken: 'access-reported' });
    return { broker, record };
  }

  it('asks Wise nothing when another check of the record claimed the window first', async () => {
    const { broker, record } = await seeded();
    vi.spyOn(broker.store, 'claimRejectionCheck').mockResolvedValue(false);

    const verdict = await checkRejection(broker.deps, acme, record);

    expect(verdict).toEqual({ honour: false, reason: 'checked_recently' });
    expect(broker.wise.count('getCurrentUser')).toBe(0);
    expect(logger.warn).toHaveBeenCalledWith(
      expect.stringContaining('not honoured'),
      expect.objectContaining({ record: 'acme-1', reason: 'checked_recently' }),
    );
  });

  it('shows the stored token to Wise with a deadline of its own, and honours a 401', async () => {
    const { broker, record } = await seeded();

    const verdict = await checkRejection(broker.deps, acme, record);

    expect(verdict).toEqual({ honour: true, reason: 'wise_refused_token' });
    expect(broker.wise.calls).toEqual([
      { method: 'getCurrentUser', options: { deadlineMs: broker.clock.now() + REJECTION_CHECK_TIMEOUT_MS } },
    ]);
    expect(logger.info).toHaveBeenCalledWith(
      expect.stringContaining('honoured'),
      expect.objectContaining({ record: 'acme-1', reason: 'wise_refused_token' }),
    );
  });

  it('does not honour a rejection of a token Wise still accepts, and says why', async () => {
    const { broker, record } = await seeded();
    broker.wise.tokenCheck = 'alive';

    await expect(checkRejection(broker.deps, acme, record)).resolves.toEqual({
      honour: false,
      reason: 'wise_accepts_token',
    });
  });

  it('honours a rejection Wise cannot confirm as unverifiable', async () => {
    const { broker, record } = await seeded();
    broker.wise.tokenCheck = new WiseUnavailableError('Wise answered 503.', { status: 503 });

    await expect(checkRejection(broker.deps, acme, record)).resolves.toEqual({
      honour: true,
      reason: 'unverifiable',
    });
  });

  it('lets an error that is not from Wise through instead of honouring the rejection', async () => {
    const { broker, record } = await seeded();
    broker.wise.tokenCheck = new TypeError('a bug');

    await expect(checkRejection(broker.deps, acme, record)).rejects.toThrow(TypeError);
  });

  it('shows Wise nothing for the client token: the window alone bounds it', async () => {
    const broker = fakeBroker();
    await obtainClientAccessToken(broker.deps);
    const stored = await broker.store.getClientToken();
    if (stored === undefined) throw new Error('no client token was stored');

    const verdict = await checkRejection(broker.deps, client, stored);

    expect(verdict).toEqual({ honour: true, reason: 'client_token' });
    expect(broker.wise.count('getCurrentUser')).toBe(0);
    expect(logger.info).toHaveBeenCalledWith(
      expect.stringContaining('honoured'),
      expect.objectContaining({ record: 'client' }),
    );
  });

  it('honours a report about a connection that has no token stored, asking Wise nothing', async () => {
    const { broker, record } = await seeded();
    const { accessToken: _none, ...tokenless } = record;

    await expect(checkRejection(broker.deps, acme, tokenless)).resolves.toEqual({
      honour: true,
      reason: 'client_token',
    });
    expect(broker.wise.count('getCurrentUser')).toBe(0);
  });
});
