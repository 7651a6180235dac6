import { describe, expect, it } from 'vitest';
import { createConnectionsHandler } from '#functions/connections/handler.ts';
import { MetricName } from '#shared/observability.ts';
import type { AwsFault, FaultTarget } from '../../support/aws-faults.ts';
import { ADMIN_ARN, type BrokerHarness, invoke } from '../../support/broker.ts';
import { TOKEN_LIFETIME_MS, type VendBody, wiseAccepts } from '../lifecycle/refresh-support.ts';
import {
  AFTER_BACKOFF_MS,
  DUE_MS,
  faultyBrokerPerTest,
  metricsRecorder,
  SDK_ATTEMPTS,
  TARGETS,
} from './aws-fault-support.ts';

const faultyBroker = faultyBrokerPerTest();
const metrics = metricsRecorder();

/** What `GET /connections/{id}` says of a connection. */
async function statusOf(broker: BrokerHarness, connectionId: string) {
  const handler = createConnectionsHandler(() => broker.runtime);
  const response = await invoke(handler, {
    method: 'GET',
    route: '/connections/{id}',
    pathParameters: { id: connectionId },
    caller: ADMIN_ARN,
  });
  return response.json as { status: string; lastError?: { code: string; message: string } };
}

/** Words of the AWS side that a caller's answer must not carry. */
const INTERNALS =
  /dynamo|kms|secrets ?manager|eventbridge|throttl|throughput|ECONNREFUSED|TimeoutError|arn:aws|wise-broker-test/i;

type Ctx = Awaited<ReturnType<typeof faultyBroker>>;

/** The sweep refreshes the connection; a vend then answers the new generation, which Wise accepts. */
async function expectRefreshesAndVends(ctx: Ctx, generation: number) {
  const summary = await ctx.routes.sweep();
  expect(summary).toMatchObject({ refreshed: 1, failed: 0 });
  const vended = await ctx.routes.vendOk({ connectionId: 'acme-1' });
  expect(vended.generation).toBe(generation + 1);
  await expect(wiseAccepts(ctx.broker, vended.accessToken)).resolves.toBe(true);
}

/** Past the access token's expiry. */
const TOKEN_EXPIRED_MS = TOKEN_LIFETIME_MS + 60_000;

const SDK_ABSORBED = SDK_ATTEMPTS.dynamodb - 1;
const KMS_ABSORBED = SDK_ATTEMPTS.other - 1;

describe('AWS faults during a scheduled refresh', () => {
  // The SDK treats errors by class (throttling, transient): every kind at the first write, a throttling and
  // a transient one at each other point.
  const everyKind: AwsFault[] = ['throttling', 'provisioned_throughput', 'server_error', 'timeout'];
  const kmsFaults: AwsFault[] = ['throttling', 'unavailable'];
  /** Each point, its faults, and what a vend can do while the fault lasts: serve the stored token, or not open it. */
  const beforeWise: Array<[string, FaultTarget, AwsFault[], 'serves' | 'cannot_open']> = [
    ['taking the lease', TARGETS.takeLease, everyKind, 'serves'],
    ['recording the refresh token being spent', TARGETS.markSpending, ['throttling', 'timeout'], 'serves'],
    ['the new data key (KMS)', TARGETS.newDataKey, kmsFaults, 'serves'],
    ['opening the stored data key (KMS)', TARGETS.openDataKey, kmsFaults, 'cannot_open'],
  ];
  const beforeWiseCases = beforeWise.flatMap(([point, target, faults, vendDuring]) =>
    faults.map((fault) => ({ point, target, fault, vendDuring })),
  );

  it.each(beforeWiseCases)(
    'absorbs $fault at $point within the SDK retries: the refresh succeeds',
    async ({ target, fault }) => {
      const ctx = await faultyBroker();
      const retries = target.command === 'UpdateItemCommand' ? SDK_ABSORBED : KMS_ABSORBED;
      const rule = ctx.faults.arm({ ...target, fault, times: retries });
      ctx.broker.clock.advance(DUE_MS);

      await expectRefreshesAndVends(ctx, ctx.connection.generation);

      expect(rule.injected()).toBe(retries);
      expect(metrics.counts()[MetricName.refreshSucceeded]).toBe(1);
    },
  );

  it.each(beforeWiseCases)(
    'survives $fault at $point outlasting the SDK retries: Wise is not called, the token keeps serving, the next sweep refreshes',
    async ({ target, fault, vendDuring }) => {
      const ctx = await faultyBroker();
      const before = await ctx.routes.vendOk({ connectionId: 'acme-1' });
      const rule = ctx.faults.arm({ ...target, fault, times: Number.POSITIVE_INFINITY });
      ctx.broker.clock.advance(DUE_MS);
      const refreshesAtWise = ctx.broker.simulator.stats().grants.refresh_token;

      const summary = await ctx.routes.sweep();

      expect(rule.injected()).toBeGreaterThan(0);
      expect(summary).toMatchObject({ refreshed: 0, failed: 1, failedBy: { error: 1 } });
      expect(ctx.broker.simulator.stats().grants.refresh_token).toBe(refreshesAtWise);
      const counts = metrics.counts();
      expect(counts[MetricName.refreshSucceeded] ?? 0).toBe(0);
      expect(counts[MetricName.refreshFailed]).toBe(1);
      // While the fault lasts a vend (whose own refresh meets it too) serves the stored token, which Wise
      // takes; without KMS to open it, the vend answers a 503 to try again that names nothing of AWS.
      const during = await ctx.routes.vend({ connectionId: 'acme-1' });
      if (vendDuring === 'serves') {
        expect(during.statusCode).toBe(200);
        expect((during.json as VendBody).generation).toBe(before.generation);
        await expect(wiseAccepts(ctx.broker, (during.json as VendBody).accessToken)).resolves.toBe(true);
      } else {
        expect(during.statusCode).toBe(503);
        expect(during.headers['retry-after']).toBe('5');
        expect(during.json).toMatchObject({ error: 'service_unavailable' });
        expect(during.body).not.toMatch(INTERNALS);
      }
      expect((await statusOf(ctx.broker, 'acme-1')).status).toBe('active');

      ctx.faults.clear();
      ctx.broker.clock.advance(AFTER_BACKOFF_MS);
      await expectRefreshesAndVends(ctx, ctx.connection.generation);
    },
  );
});

describe('lost answers and conditional-check conflicts before Wise is called', () => {
  it('recognises a lease whose answer was lost to a timeout as its own, and refreshes at once', async () => {
    const ctx = await faultyBroker();
    const rule = ctx.faults.arm({ ...TARGETS.takeLease, fault: 'timeout_after_applied', times: 1 });
    ctx.broker.clock.advance(DUE_MS);

    // The SDK resends the lease's write, which finds the lease taken: by this very attempt.
    await expectRefreshesAndVends(ctx, ctx.connection.generation);

    expect(rule.injected()).toBe(1);
  });

  it.each([
    { point: 'taking the lease', target: TARGETS.takeLease as FaultTarget, tally: { busy: 1 } },
    { point: 'recording the refresh token being spent', target: TARGETS.markSpending, tally: { skipped: 1 } },
  ])(
    'treats a conflict at $point as another writer’s: Wise is not called, and the refresh happens once the lease is free',
    async ({ target, tally }) => {
      const ctx = await faultyBroker();
      const rule = ctx.faults.arm({ ...target, fault: 'conditional_conflict', times: 1 });
      ctx.broker.clock.advance(DUE_MS);

      const summary = await ctx.routes.sweep();

      expect(rule.injected()).toBe(1);
      expect(summary).toMatchObject({ refreshed: 0, ...tally });
      expect(ctx.broker.simulator.stats().grants.refresh_token).toBe(0);
      ctx.broker.clock.advance(ctx.broker.runtime.config.refresh.leaseSeconds * 1000 + 1000);
      await expectRefreshesAndVends(ctx, ctx.connection.generation);
    },
  );
});

describe('AWS faults at the write of what Wise answered', () => {
  it.each([
    ['throttling', SDK_ABSORBED],
    ['timeout', SDK_ABSORBED],
    ['provisioned_throughput', SDK_ATTEMPTS.dynamodb * 2],
    ['server_error', SDK_ATTEMPTS.dynamodb * 2],
  ] as Array<[AwsFault, number]>)(
    'stores the new token when %s hits the write %i times (the SDK retries, then the refresh retries the write)',
    async (fault, times) => {
      const ctx = await faultyBroker();
      const rule = ctx.faults.arm({ ...TARGETS.storeRefresh, fault, times });
      ctx.broker.clock.advance(DUE_MS);

      await expectRefreshesAndVends(ctx, ctx.connection.generation);

      expect(rule.injected()).toBe(times);
      expect(metrics.counts()[MetricName.refreshSucceeded]).toBe(1);
    },
  );

  it('recognises a write that landed though its answer was lost to a timeout', async () => {
    const ctx = await faultyBroker();
    const rule = ctx.faults.arm({ ...TARGETS.storeRefresh, fault: 'timeout_after_applied', times: 1 });
    ctx.broker.clock.advance(DUE_MS);

    await expectRefreshesAndVends(ctx, ctx.connection.generation);

    expect(rule.injected()).toBe(1);
    expect(ctx.broker.simulator.stats().grants.refresh_token).toBe(1);
  });

  it.each(['throttling', 'timeout'] as AwsFault[])(
    'with Wise rotating refresh tokens, a write that %s defeats past every retry is counted, and the lost connection is marked as lost by the broker, not revoked',
    async (fault) => {
      const ctx = await faultyBroker({ rotateRefreshTokens: true });
      const rule = ctx.faults.arm({ ...TARGETS.storeRefresh, fault, times: Number.POSITIVE_INFINITY });
      ctx.broker.clock.advance(DUE_MS);

      const summary = await ctx.routes.sweep();

      expect(rule.injected()).toBeGreaterThan(SDK_ATTEMPTS.dynamodb);
      expect(summary).toMatchObject({ refreshed: 0, failed: 1 });
      expect(metrics.counts()[MetricName.refreshFailed]).toBe(1);
      ctx.faults.clear();
      ctx.broker.clock.advance(AFTER_BACKOFF_MS);
      const after = await ctx.routes.sweep();
      expect(after).toMatchObject({ refreshed: 0, needsReauth: 1 });
      expect(await statusOf(ctx.broker, 'acme-1')).toMatchObject({
        status: 'needs_reauth',
        lastError: { code: 'refresh_token_lost' },
      });
      expect(metrics.counts()[MetricName.connectionLostToCrash]).toBe(1);
      expect(ctx.broker.aws.recordedEvents.map((event) => JSON.parse(event.detail ?? '{}'))).toContainEqual(
        expect.objectContaining({ connectionId: 'acme-1', reason: 'refresh_token_lost' }),
      );
      const vend = await ctx.routes.vend({ connectionId: 'acme-1' });
      expect(vend.statusCode).toBe(409);
    },
  );

  it('without rotation, a write that fails past every retry loses nothing: the next sweep refreshes with the same refresh token', async () => {
    const ctx = await faultyBroker({ rotateRefreshTokens: false });
    const rule = ctx.faults.arm({
      ...TARGETS.storeRefresh,
      fault: 'throttling',
      times: Number.POSITIVE_INFINITY,
    });
    ctx.broker.clock.advance(DUE_MS);

    const summary = await ctx.routes.sweep();

    expect(rule.injected()).toBeGreaterThan(SDK_ATTEMPTS.dynamodb);
    expect(summary).toMatchObject({ refreshed: 0, failed: 1 });
    ctx.faults.clear();
    ctx.broker.clock.advance(AFTER_BACKOFF_MS);
    await expectRefreshesAndVends(ctx, ctx.connection.generation);
  });

  it('a conditional-check conflict at the write drops the answer as another writer’s, and the spent refresh token is then marked as lost', async () => {
    const ctx = await faultyBroker({ rotateRefreshTokens: true });
    const rule = ctx.faults.arm({ ...TARGETS.storeRefresh, fault: 'conditional_conflict', times: 1 });
    ctx.broker.clock.advance(DUE_MS);

    const summary = await ctx.routes.sweep();

    expect(rule.injected()).toBe(1);
    expect(summary).toMatchObject({ refreshed: 0, skipped: 1 });
    expect(metrics.counts()[MetricName.refreshFailed]).toBe(1);
    ctx.broker.clock.advance(AFTER_BACKOFF_MS);
    await ctx.routes.sweep();
    expect(await statusOf(ctx.broker, 'acme-1')).toMatchObject({
      status: 'needs_reauth',
      lastError: { code: 'refresh_token_lost' },
    });
  });
});

describe('AWS faults during a vend', () => {
  const vendPoints = [
    ...(['throttling', 'provisioned_throughput', 'server_error', 'timeout'] as const).map((fault) => ({
      point: 'reading the connection',
      target: TARGETS.readConnection as FaultTarget,
      fault: fault as AwsFault,
      retries: SDK_ABSORBED,
    })),
    ...(['throttling', 'unavailable'] as const).map((fault) => ({
      point: 'opening the data key (KMS)',
      target: TARGETS.openDataKey as FaultTarget,
      fault: fault as AwsFault,
      retries: KMS_ABSORBED,
    })),
  ];

  it.each(vendPoints)(
    'absorbs $fault at $point within the SDK retries',
    async ({ target, fault, retries: times }) => {
      const ctx = await faultyBroker();
      const rule = ctx.faults.arm({ ...target, fault, times });

      const vended = await ctx.routes.vendOk({ connectionId: 'acme-1' });

      expect(rule.injected()).toBe(times);
      expect(vended.generation).toBe(ctx.connection.generation);
      await expect(wiseAccepts(ctx.broker, vended.accessToken)).resolves.toBe(true);
    },
  );

  it.each(vendPoints)(
    'answers 503 service_unavailable with Retry-After, without internals, while $fault at $point outlasts the SDK retries; nothing stored changes, and the same token after',
    async ({ target, fault }) => {
      const ctx = await faultyBroker();
      const storedBefore = await ctx.broker.runtime.store.getConnection('acme-1');
      const rule = ctx.faults.arm({ ...target, fault, times: Number.POSITIVE_INFINITY });

      const during = await ctx.routes.vend({ connectionId: 'acme-1' });

      expect(rule.injected()).toBeGreaterThan(0);
      expect(during.statusCode).toBe(503);
      expect(during.headers['retry-after']).toBe('5');
      expect(during.json).toEqual({ error: 'service_unavailable', message: expect.any(String) });
      expect((during.json as { message: string }).message).toMatch(
        /^The broker's (storage|encryption service) is unavailable just now; try again in 5 s/,
      );
      expect(during.body).not.toMatch(INTERNALS);
      ctx.faults.clear();
      expect(await ctx.broker.runtime.store.getConnection('acme-1')).toEqual(storedBefore);
      const after = await ctx.routes.vendOk({ connectionId: 'acme-1' });
      expect(after.generation).toBe(ctx.connection.generation);
      await expect(wiseAccepts(ctx.broker, after.accessToken)).resolves.toBe(true);
    },
  );

  it.each([
    {
      point: 'reading the connection',
      target: TARGETS.readConnection as FaultTarget,
      fault: 'access_denied',
    },
    { point: 'opening the data key (KMS)', target: TARGETS.openDataKey, fault: 'access_denied' },
    { point: 'opening the data key (KMS)', target: TARGETS.openDataKey, fault: 'invalid_ciphertext' },
  ] as Array<{ point: string; target: FaultTarget; fault: AwsFault }>)(
    'answers 500 internal_error, not 503, when $fault at $point: a refusal is no outage, and waiting will not help',
    async ({ target, fault }) => {
      const ctx = await faultyBroker();
      const rule = ctx.faults.arm({ ...target, fault, times: Number.POSITIVE_INFINITY });

      const during = await ctx.routes.vend({ connectionId: 'acme-1' });

      expect(rule.injected()).toBe(1);
      expect(during.statusCode).toBe(500);
      expect(during.headers['retry-after']).toBeUndefined();
      expect(during.json).toEqual({ error: 'internal_error', message: expect.any(String) });
      expect(during.body).not.toMatch(INTERNALS);
    },
  );

  it('serves the warm token of an instance while DynamoDB and KMS are both down', async () => {
    const ctx = await faultyBroker();
    const before = await ctx.routes.vendOk({ connectionId: 'acme-1' });
    const read = ctx.faults.arm({
      ...TARGETS.readConnection,
      fault: 'unavailable',
      times: Number.POSITIVE_INFINITY,
    });
    ctx.faults.arm({ ...TARGETS.openDataKey, fault: 'unavailable', times: Number.POSITIVE_INFINITY });

    const during = await ctx.routes.vendOk({ connectionId: 'acme-1' });

    expect(during.accessToken).toBe(before.accessToken);
    expect(read.injected()).toBe(0);
  });

  it.each([
    { point: 'taking the lease', target: TARGETS.takeLease as FaultTarget, fault: 'throttling' as AwsFault },
    { point: 'the new data key (KMS)', target: TARGETS.newDataKey, fault: 'server_error' as AwsFault },
    { point: 'the write of the new token', target: TARGETS.storeRefresh, fault: 'throttling' as AwsFault },
  ])(
    'answers 503 with Retry-After, and a message that does not blame Wise, when $fault at $point fails the refresh of an expired token',
    async ({ target, fault }) => {
      const ctx = await faultyBroker({ rotateRefreshTokens: false });
      ctx.broker.clock.advance(TOKEN_EXPIRED_MS);
      const rule = ctx.faults.arm({ ...target, fault, times: Number.POSITIVE_INFINITY });

      const during = await ctx.routes.vend({ connectionId: 'acme-1' });

      expect(rule.injected()).toBeGreaterThan(0);
      expect(during.statusCode).toBe(503);
      expect(during.headers['retry-after']).toMatch(/^\d+$/);
      expect(during.body).not.toMatch(INTERNALS);
      expect((during.json as { message: string }).message).not.toMatch(/^Wise cannot/);
      ctx.faults.clear();
      ctx.broker.clock.advance(AFTER_BACKOFF_MS);
      const after = await ctx.routes.vendOk({ connectionId: 'acme-1' });
      expect(after.generation).toBe(ctx.connection.generation + 1);
      await expect(wiseAccepts(ctx.broker, after.accessToken)).resolves.toBe(true);
    },
  );
});
