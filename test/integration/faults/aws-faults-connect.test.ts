import { describe, expect, it } from 'vitest';
import { createRefreshHandler } from '#functions/refresh/handler.ts';
import { MetricName } from '#shared/observability.ts';
import { createRuntime, type Runtime } from '#shared/runtime/runtime.ts';
import type { GrantWriteDeps } from '#shared/use-cases/complete-authorization.ts';
import type { SweepSummary } from '#shared/use-cases/refresh-due.ts';
import { TEST_KEY_ALIAS } from '../../support/aws.ts';
import type { AwsFault, FaultTarget } from '../../support/aws-faults.ts';
import {
  invoke,
  lambdaContext,
  PARTNER_SESSION_ARN,
  TEST_EVENT_BUS,
  TEST_REDIRECT_URI,
  TEST_SECRET_ID,
} from '../../support/broker.ts';
import { connectRoutes } from '../lifecycle/connect-support.ts';
import { refreshRoutes, wiseAccepts } from '../lifecycle/refresh-support.ts';
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

/** Words of the AWS side that a person's page must not carry. */
const INTERNALS =
  /dynamo|kms|secrets ?manager|eventbridge|throttl|throughput|ECONNREFUSED|TimeoutError|arn:aws|wise-broker-test/i;

/** The outcome the callback's page shows. */
function pageStatus(body: string): string | undefined {
  return /<main id="outcome" data-status="([a-z]+)">/.exec(body)?.[1];
}

type Ctx = Awaited<ReturnType<typeof faultyBroker>>;

/** The connect routes of the broker, with the pauses between tries at a new grant's write passing at once. */
function fastConnectRoutes(ctx: Ctx) {
  const runtime: Runtime & GrantWriteDeps = { ...ctx.broker.runtime, sleep: async () => {} };
  return connectRoutes({ ...ctx.broker, runtime });
}

/** The stored record of a connection, read past every fault. */
async function stored(ctx: Ctx, connectionId: string) {
  return ctx.broker.runtime.store.getConnection(connectionId);
}

describe('AWS faults while the callback stores a new connection', () => {
  it.each([
    {
      point: 'the write of the connection',
      target: TARGETS.saveConnection as FaultTarget,
      fault: 'throttling' as AwsFault,
      times: SDK_ATTEMPTS.dynamodb - 1,
    },
    {
      point: 'the write of the connection',
      target: TARGETS.saveConnection,
      fault: 'server_error' as AwsFault,
      times: SDK_ATTEMPTS.dynamodb - 1,
    },
    {
      point: 'the new data key (KMS)',
      target: TARGETS.newDataKey,
      fault: 'throttling' as AwsFault,
      times: SDK_ATTEMPTS.other - 1,
    },
    // Past the SDK's retries, the callback's own tries at the write absorb it.
    {
      point: 'the write of the connection',
      target: TARGETS.saveConnection,
      fault: 'throttling' as AwsFault,
      times: SDK_ATTEMPTS.dynamodb * 2,
    },
    {
      point: 'the write of the connection',
      target: TARGETS.saveConnection,
      fault: 'timeout' as AwsFault,
      times: SDK_ATTEMPTS.dynamodb * 3,
    },
  ])('absorbs $fault $times times at $point: connected', async ({ target, fault, times }) => {
    const ctx = await faultyBroker();
    const routes = fastConnectRoutes(ctx);
    const rule = ctx.faults.arm({ ...target, fault, times });

    const { response } = await routes.connectThroughCallback('acme-2');

    expect(rule.injected()).toBe(times);
    expect(response.statusCode).toBe(200);
    expect(pageStatus(response.body)).toBe('connected');
    const vended = await ctx.routes.vendOk({ connectionId: 'acme-2' });
    await expect(wiseAccepts(ctx.broker, vended.accessToken)).resolves.toBe(true);
  });

  it.each([
    {
      point: 'the write of the connection',
      target: TARGETS.saveConnection as FaultTarget,
      fault: 'throttling' as AwsFault,
      exchanged: 1,
    },
    {
      point: 'the write of the connection',
      target: TARGETS.saveConnection,
      fault: 'timeout' as AwsFault,
      exchanged: 1,
    },
    {
      point: 'the new data key (KMS), before Wise is called',
      target: TARGETS.newDataKey,
      fault: 'unavailable' as AwsFault,
      exchanged: 0,
    },
  ])(
    'shows a page that says to start again, stores nothing, when $fault at $point outlasts every retry; connecting again works',
    async ({ target, fault, exchanged }) => {
      const ctx = await faultyBroker();
      const routes = fastConnectRoutes(ctx);
      const rule = ctx.faults.arm({ ...target, fault, times: Number.POSITIVE_INFINITY });
      const exchangesBefore = ctx.broker.simulator.stats().grants.authorization_code;

      const { response } = await routes.connectThroughCallback('acme-2');

      expect(rule.injected()).toBeGreaterThan(0);
      expect(response.statusCode).toBe(500);
      expect(response.headers['content-type']).toMatch(/^text\/html/);
      expect(response.body).toContain('start connecting your Wise account again');
      expect(response.body).not.toMatch(INTERNALS);
      expect(ctx.broker.simulator.stats().grants.authorization_code - exchangesBefore).toBe(exchanged);
      ctx.faults.clear();
      expect(await stored(ctx, 'acme-2')).toBeUndefined();
      const again = await routes.connectThroughCallback('acme-2');
      expect(pageStatus(again.response.body)).toBe('connected');
      const vended = await ctx.routes.vendOk({ connectionId: 'acme-2' });
      await expect(wiseAccepts(ctx.broker, vended.accessToken)).resolves.toBe(true);
    },
  );

  it('a re-connect whose write fails past every retry leaves the earlier grant, which Wise ended, marked needs_reauth at its next refresh', async () => {
    const ctx = await faultyBroker();
    const routes = fastConnectRoutes(ctx);
    const rule = ctx.faults.arm({
      ...TARGETS.saveConnection,
      fault: 'throttling',
      times: Number.POSITIVE_INFINITY,
    });

    const { response } = await routes.connectThroughCallback('acme-1');

    expect(rule.injected()).toBeGreaterThan(SDK_ATTEMPTS.dynamodb);
    expect(response.statusCode).toBe(500);
    expect(response.body).toContain('start connecting your Wise account again');
    ctx.faults.clear();
    ctx.broker.clock.advance(DUE_MS);
    expect(await ctx.routes.sweep()).toMatchObject({ needsReauth: 1 });
    expect((await stored(ctx, 'acme-1'))?.status).toBe('needs_reauth');
    expect((await ctx.routes.vend({ connectionId: 'acme-1' })).statusCode).toBe(409);
  });

  it('keeps the connection when only its "connected" event cannot be published', async () => {
    const ctx = await faultyBroker();
    const routes = fastConnectRoutes(ctx);
    const rule = ctx.faults.arm({
      ...TARGETS.publishEvent,
      fault: 'unavailable',
      times: Number.POSITIVE_INFINITY,
    });

    const { response } = await routes.connectThroughCallback('acme-2');

    expect(rule.injected()).toBeGreaterThanOrEqual(SDK_ATTEMPTS.other);
    expect(pageStatus(response.body)).toBe('connected');
    expect((await stored(ctx, 'acme-2'))?.status).toBe('active');
    const vended = await ctx.routes.vendOk({ connectionId: 'acme-2' });
    await expect(wiseAccepts(ctx.broker, vended.accessToken)).resolves.toBe(true);
  });
});

describe('AWS faults while a registration code connection is stored', () => {
  const EMAIL = 'faults.partner-user@example.com';
  const CODE = 'rc-0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c';

  function register(ctx: Ctx, connectionId: string, signup: boolean) {
    return invoke(fastConnectRoutes(ctx).handlers.registration, {
      method: 'POST',
      route: '/connections/{id}/registration-code',
      pathParameters: { id: connectionId },
      caller: PARTNER_SESSION_ARN,
      body: { email: EMAIL, registrationCode: CODE, signup },
    });
  }

  it('stores the grant when throttling outlasts the SDK retries but not the registration’s own tries', async () => {
    const ctx = await faultyBroker();
    const rule = ctx.faults.arm({
      ...TARGETS.saveConnection,
      fault: 'throttling',
      times: SDK_ATTEMPTS.dynamodb * 2,
    });

    const response = await register(ctx, 'acme-reg', true);

    expect(rule.injected()).toBe(SDK_ATTEMPTS.dynamodb * 2);
    expect(response.statusCode).toBe(201);
    const vended = await ctx.routes.vendOk({ connectionId: 'acme-reg' });
    await expect(wiseAccepts(ctx.broker, vended.accessToken)).resolves.toBe(true);
  });

  it('answers 503 service_unavailable with Retry-After when the write fails past every retry; the same code connects once it clears', async () => {
    const ctx = await faultyBroker();
    const rule = ctx.faults.arm({
      ...TARGETS.saveConnection,
      fault: 'server_error',
      times: Number.POSITIVE_INFINITY,
    });

    const during = await register(ctx, 'acme-reg', true);

    expect(rule.injected()).toBeGreaterThan(SDK_ATTEMPTS.dynamodb);
    expect(during.statusCode).toBe(503);
    expect(during.headers['retry-after']).toBe('5');
    expect(during.json).toMatchObject({ error: 'service_unavailable' });
    expect(during.body).not.toMatch(INTERNALS);
    expect(await stored(ctx, 'acme-reg')).toBeUndefined();
    ctx.faults.clear();
    const after = await register(ctx, 'acme-reg', false);
    expect(after.statusCode).toBe(201);
    const vended = await ctx.routes.vendOk({ connectionId: 'acme-reg' });
    await expect(wiseAccepts(ctx.broker, vended.accessToken)).resolves.toBe(true);
  });
});

describe('EventBridge faults when Wise refuses a refresh token', () => {
  /** Wise revokes every grant of the default user: the next refresh meets `invalid_grant`. */
  async function revokeAtWise(ctx: Ctx) {
    const user = await ctx.broker.defaultUser();
    await ctx.broker.control('revoke', { userId: user.id });
  }

  const reauthorizationEvents = (ctx: Ctx) =>
    ctx.broker.aws.recordedEvents.filter((event) => event.detailType?.toLowerCase().includes('reauthoriz'));

  it('publishes the event and marks the connection at once when the SDK retries absorb the fault', async () => {
    const ctx = await faultyBroker();
    await revokeAtWise(ctx);
    const rule = ctx.faults.arm({
      ...TARGETS.publishEvent,
      fault: 'server_error',
      times: SDK_ATTEMPTS.other - 1,
    });
    ctx.broker.clock.advance(DUE_MS);

    const summary = await ctx.routes.sweep();

    expect(rule.injected()).toBe(SDK_ATTEMPTS.other - 1);
    expect(summary).toMatchObject({ needsReauth: 1 });
    expect(reauthorizationEvents(ctx)).toHaveLength(1);
    expect((await stored(ctx, 'acme-1'))?.status).toBe('needs_reauth');
  });

  it.each(['throttling', 'server_error', 'unavailable'] as AwsFault[])(
    'keeps the connection active and backing off while %s keeps the event from EventBridge, then publishes it and marks the connection',
    async (fault) => {
      const ctx = await faultyBroker();
      await revokeAtWise(ctx);
      const rule = ctx.faults.arm({ ...TARGETS.publishEvent, fault, times: Number.POSITIVE_INFINITY });
      ctx.broker.clock.advance(DUE_MS);

      const summary = await ctx.routes.sweep();

      expect(rule.injected()).toBe(SDK_ATTEMPTS.other);
      expect(summary.needsReauth).toBe(0);
      expect(reauthorizationEvents(ctx)).toHaveLength(0);
      const during = await stored(ctx, 'acme-1');
      expect(during?.status).toBe('active');
      expect(during?.lastError?.code).toBe('invalid_grant');
      expect(metrics.counts()[MetricName.refreshFailed]).toBe(1);
      ctx.faults.clear();
      ctx.broker.clock.advance(AFTER_BACKOFF_MS);
      await ctx.routes.sweep();
      expect(reauthorizationEvents(ctx)).toHaveLength(1);
      expect((await stored(ctx, 'acme-1'))?.status).toBe('needs_reauth');
      expect((await ctx.routes.vend({ connectionId: 'acme-1' })).statusCode).toBe(409);
    },
  );
});

describe('Secrets Manager faults before the call to Wise', () => {
  /** The sweep of a runtime that reads the Wise credentials from Secrets Manager at every call. */
  function uncachedSweep(ctx: Ctx): () => Promise<SweepSummary> {
    const { broker } = ctx;
    const runtime = createRuntime({
      config: broker.runtime.config,
      redirectUri: TEST_REDIRECT_URI,
      tableName: broker.tableName,
      keyId: TEST_KEY_ALIAS,
      secretId: TEST_SECRET_ID,
      eventBusName: TEST_EVENT_BUS,
      clients: {
        dynamodb: broker.dynamo.client,
        kms: broker.aws.kms,
        secrets: broker.aws.secrets,
        eventBridge: broker.aws.events,
      },
      clock: broker.clock,
      credentialsMaxAgeSeconds: 0,
    });
    const refresh = createRefreshHandler(() => runtime);
    return () =>
      refresh(
        { 'detail-type': 'Scheduled Event', time: new Date(broker.clock.now()).toISOString() },
        lambdaContext('broker-refresh'),
      );
  }

  it.each([
    { fault: 'throttling' as AwsFault, times: SDK_ATTEMPTS.other - 1, refreshed: 1 },
    { fault: 'unavailable' as AwsFault, times: SDK_ATTEMPTS.other - 1, refreshed: 1 },
    { fault: 'throttling' as AwsFault, times: Number.POSITIVE_INFINITY, refreshed: 0 },
    { fault: 'unavailable' as AwsFault, times: Number.POSITIVE_INFINITY, refreshed: 0 },
  ])(
    'with $fault $times times at the credentials, the sweep refreshes $refreshed, the token keeps serving and nothing is lost',
    async ({ fault, times, refreshed }) => {
      const ctx = await faultyBroker();
      const sweep = uncachedSweep(ctx);
      const rule = ctx.faults.arm({ ...TARGETS.wiseCredentials, fault, times });
      ctx.broker.clock.advance(DUE_MS);
      const refreshesAtWise = ctx.broker.simulator.stats().grants.refresh_token;

      const summary = await sweep();

      expect(rule.injected()).toBeGreaterThan(0);
      expect(summary.refreshed).toBe(refreshed);
      expect(ctx.broker.simulator.stats().grants.refresh_token - refreshesAtWise).toBe(refreshed);
      const counts = metrics.counts();
      expect(counts[refreshed ? MetricName.refreshSucceeded : MetricName.refreshFailed]).toBe(1);
      const during = await refreshRoutes(ctx.broker).vendOk({ connectionId: 'acme-1' });
      await expect(wiseAccepts(ctx.broker, during.accessToken)).resolves.toBe(true);
      ctx.faults.clear();
      ctx.broker.clock.advance(AFTER_BACKOFF_MS);
      await sweep();
      const after = await ctx.routes.vendOk({ connectionId: 'acme-1' });
      expect(after.generation).toBeGreaterThan(ctx.connection.generation);
      await expect(wiseAccepts(ctx.broker, after.accessToken)).resolves.toBe(true);
    },
  );
});
