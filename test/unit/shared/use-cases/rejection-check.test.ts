import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RecordKey } from '#shared/domain/records.ts';
import { MetricName } from '#shared/observability.ts';
import { REJECTION_CHECK_WINDOW_MS } from '#shared/use-cases/rejection-check.ts';
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
