import { appendFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DynamoDBClient, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { KMSClient } from '@aws-sdk/client-kms';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { ScheduledEvent } from 'aws-lambda';
import { createConnectSessionsHandler } from '#functions/connect-sessions/handler.ts';
import { createConnectionsHandler } from '#functions/connections/handler.ts';
import { createImportHandler } from '#functions/import/handler.ts';
import { createOauthCallbackHandler } from '#functions/oauth-callback/handler.ts';
import { createRefreshHandler } from '#functions/refresh/handler.ts';
import { createRegistrationHandler } from '#functions/registration/handler.ts';
import { createTokensHandler } from '#functions/tokens/handler.ts';
import { startEmbeddedDynamoDb } from '#local/aws/dynamodb.ts';
import { startLocalAws } from '#local/aws/local-aws.ts';
import { buildContext } from '#local/gateway/event.ts';
import { type GatewayObserver, type GatewayRoute, startGateway } from '#local/gateway/index.ts';
import { type RunningSimulator, startSimulator } from '#local/simulator/index.ts';
import { createBrokerTable } from '#shared/adapters/dynamodb-token-store.ts';
import { setMetricsSink } from '#shared/observability.ts';
import type { AuditTrail } from '#shared/ports/audit-trail.ts';
import { type Clock, systemClock } from '#shared/ports/clock.ts';
import { type AwsClients, createRuntime, type Runtime } from '#shared/runtime/runtime.ts';
import type { SweepSummary } from '#shared/use-cases/refresh-due.ts';
import { FileAuditTrail } from './audit-file.ts';
import { makePrivate } from './aws/private-files.ts';
import type { LocalConfig } from './local-config.ts';
import { openApiDocumentFor } from './openapi-document.ts';

const TABLE_NAME = 'wise-broker-local';
const LOCAL_ACCOUNT = '000000000000';
/**
 * The embedded DynamoDB, the local KMS / Secrets Manager endpoint and the simulator (with its control
 * interface) check no credentials, so they listen on loopback whatever `local.host` says; only the
 * SigV4-checking gateway follows it.
 */
const LOOPBACK = '127.0.0.1';
const KEY_ALIAS = 'alias/wise-broker-local';
/** In the data folder: the audit trail, and the metrics the functions would have published to CloudWatch. */
export const AUDIT_FILE = 'audit.log';
export const METRICS_FILE = 'metrics.jsonl';
const EVENT_BUS_NAME = 'wise-broker-local';

/** The local broker, up and serving. */
export interface LocalBroker {
  /** The gateway's base URL: every route of the HTTP contract, plus `GET /health`. */
  url: string;
  redirectUri: string;
  /** The simulator, unless a real Wise sandbox is configured. */
  simulator?: RunningSimulator;
  /** Where Wise's authorization page is. */
  authorizeUrl: string;
  runtime: Runtime;
  /** The AWS SDK clients the runtime's adapters use, and the table and key they reach (for benchmarks). */
  aws: { clients: AwsClients; tableName: string; keyId: string };
  /** Runs one refresh sweep now, as the schedule does. */
  sweep(): Promise<SweepSummary>;
  /** The audit trail and metrics files, when the broker keeps its data in a folder. */
  files?: { audit: string; metrics: string };
  close(): Promise<void>;
}

export interface LocalBrokerOptions {
  /**
   * An outside DynamoDB (AWS's DynamoDB Local, a real table) instead of the embedded engine; the table is
   * created when it does not exist.
   */
  dynamodb?: { endpoint: string; tableName: string };
  /** A clock shared by the broker and the simulator (tests move it); the system clock by default. */
  clock?: Clock;
  /** Whether the refresh schedule ticks on its own; true by default. Tests call `sweep()` instead. */
  schedule?: boolean;
  /** Hears of every sweep when it ends (`npm start` prints a line). */
  onSweep?: (report: SweepReport) => void;
  /** Told of every response the local gateway sends (tests check each against `docs/openapi.json`). */
  observe?: GatewayObserver;
  /** Where audit lines go when the broker keeps no data folder (standard output, as in Lambda, by default). */
  audit?: AuditTrail;
}

/** What one sweep did, and when the next refresh is due (epoch ms; absent when none is). */
export interface SweepReport {
  summary: SweepSummary;
  nextDueAt?: number;
}

/**
 * Starts the whole broker in this process: the Wise simulator (or a real Wise sandbox), the embedded
 * DynamoDB, the local KMS / Secrets Manager / EventBridge endpoint, the same Lambda handlers behind a
 * SigV4-checking gateway, and the refresh schedule.
 */
export async function startLocalBroker(
  config: LocalConfig,
  options: LocalBrokerOptions = {},
): Promise<LocalBroker> {
  const { broker, local } = config;
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch(() => undefined);
  };
  try {
    const dataDir = local.dataDir === null ? null : resolve(local.dataDir);
    if (dataDir !== null) makePrivate(dataDir);
    let runtime: Runtime | undefined;
    const runtimeSource = () => {
      if (!runtime) throw new Error('The local broker is still starting.');
      return runtime;
    };
    // One function serves several routes, as in AWS (infra/routes.ts).
    const connectSessions = createConnectSessionsHandler(runtimeSource);
    const oauth = createOauthCallbackHandler(runtimeSource);
    const routes: GatewayRoute[] = [
      { method: 'GET', path: '/health', auth: 'none', handler: async () => health() },
      { method: 'GET', path: '/openapi.json', auth: 'none', handler: async () => openApiDocument() },
      { method: 'POST', path: '/connect-sessions', auth: 'iam', handler: connectSessions },
      ...(['/oauth/start', '/oauth/callback'] as const).map(
        (path) => ({ method: 'GET', path, auth: 'none', handler: oauth }) as const,
      ),
      {
        method: 'POST',
        path: '/connections/{id}/completion',
        auth: 'iam',
        handler: connectSessions,
      },
      {
        method: 'POST',
        path: '/connections/{id}/registration-code',
        auth: 'iam',
        handler: createRegistrationHandler(runtimeSource),
      },
      { method: 'POST', path: '/tokens', auth: 'iam', handler: createTokensHandler(runtimeSource) },
      ...(['GET /connections', 'GET /connections/{id}', 'DELETE /connections/{id}'] as const).map((route) => {
        const [method, path] = route.split(' ') as ['GET' | 'DELETE', string];
        return { method, path, auth: 'iam', handler: createConnectionsHandler(runtimeSource) } as const;
      }),
      {
        method: 'POST',
        path: '/connections/{id}/import',
        auth: 'iam',
        handler: createImportHandler(runtimeSource),
      },
    ];
    const health = () => ({
      statusCode: runtime ? 200 : 503,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: runtime ? 'ok' : 'starting' }),
    });

    const openApiDocument = async () => ({
      statusCode: 200,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
      body: JSON.stringify(await openApiDocumentFor(gateway.url)),
    });

    const gateway = await startGateway({
      host: local.host,
      port: local.port,
      region: local.region,
      credentials: local.credentials,
      routes,
      ...(options.observe ? { observe: options.observe } : {}),
    });
    closers.push(() => gateway.close());
    const redirectUri = broker.redirectUri ?? `${gateway.url}/oauth/callback`;

    let simulator: RunningSimulator | undefined;
    let wise = broker.wise;
    let wiseCredentials = local.wiseCredentials;
    if (!wiseCredentials) {
      simulator = await startSimulator({
        host: LOOPBACK,
        port: local.simulator.port,
        clientId: local.simulator.clientId,
        clientSecret: local.simulator.clientSecret,
        redirectUri,
        accessTokenSeconds: local.simulator.accessTokenSeconds,
        invalidGrantStatus: local.simulator.invalidGrantStatus,
        rotateRefreshTokens: local.simulator.rotateRefreshTokens,
        rateLimit: local.simulator.rateLimit,
        // The simulator honours PKCE exactly when the broker sends it (Wise does not document it).
        pkce: broker.wise.pkce,
        ...(options.clock ? { now: () => options.clock?.now() ?? Date.now() } : {}),
        ...(dataDir === null ? {} : { stateFile: join(dataDir, 'simulator.json') }),
      });
      closers.push(() => simulator?.close() ?? Promise.resolve());
      wise = { ...broker.wise, apiUrl: simulator.url, authorizeUrl: simulator.authorizeUrl };
      wiseCredentials = { clientId: local.simulator.clientId, clientSecret: local.simulator.clientSecret };
    }

    let dynamodbEndpoint = options.dynamodb?.endpoint;
    if (dynamodbEndpoint === undefined) {
      const dynamo = await startEmbeddedDynamoDb({
        host: LOOPBACK,
        dataDir: dataDir === null ? null : join(dataDir, 'dynamodb'),
      });
      closers.push(() => dynamo.close());
      dynamodbEndpoint = dynamo.endpoint;
    }
    const tableName = options.dynamodb?.tableName ?? TABLE_NAME;
    const secretId = `wise-broker/${broker.stage}/wise-credentials`;
    const aws = await startLocalAws({
      host: LOOPBACK,
      port: local.awsPort,
      region: local.region,
      dataDir: dataDir === null ? null : join(dataDir, 'aws'),
      keys: [KEY_ALIAS],
      secrets: { [secretId]: JSON.stringify(wiseCredentials) },
    });
    closers.push(() => aws.close());

    const clientSettings = {
      region: local.region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    };
    const clients: AwsClients = {
      dynamodb: new DynamoDBClient({ ...clientSettings, endpoint: dynamodbEndpoint }),
      kms: new KMSClient({ ...clientSettings, endpoint: aws.endpoint }),
      secrets: new SecretsManagerClient({ ...clientSettings, endpoint: aws.endpoint }),
      eventBridge: new EventBridgeClient({ ...clientSettings, endpoint: aws.endpoint }),
    };
    try {
      await createBrokerTable(clients.dynamodb, tableName);
    } catch (error) {
      // A data folder from an earlier run already holds the table.
      if (!(error instanceof ResourceInUseException)) throw error;
    }
    const clock = options.clock ?? systemClock;
    const files =
      dataDir === null
        ? undefined
        : { audit: join(dataDir, AUDIT_FILE), metrics: join(dataDir, METRICS_FILE) };
    if (files) {
      const metricsFile = files.metrics;
      // EMF documents, one a line: what the deployed functions hand CloudWatch through their logs.
      setMetricsSink((line) => appendFileSync(metricsFile, `${line}\n`, { mode: 0o600 }));
      closers.push(async () => setMetricsSink(undefined));
    }
    const audit = files
      ? new FileAuditTrail({ file: files.audit, clock, service: `wise-broker-${broker.stage}` })
      : options.audit;
    runtime = createRuntime({
      ...(audit ? { audit } : {}),
      config: { ...broker, wise },
      redirectUri,
      tableName,
      keyId: KEY_ALIAS,
      secretId,
      eventBusName: EVENT_BUS_NAME,
      clients,
      ...(options.clock ? { clock: options.clock } : {}),
    });

    const refresh = createRefreshHandler(runtimeSource);
    let running: Promise<SweepSummary> | undefined;
    const sweep = async () => {
      const context = buildContext({
        functionName: 'local-refresh',
        region: local.region,
        accountId: LOCAL_ACCOUNT,
        // As deployed: the sweep's timeout is its period.
        timeoutMs: broker.refresh.sweepSeconds * 1000,
        now: () => clock.now(),
      });
      running ??= refresh(scheduledEvent(local.region, clock.now()), context)
        .then(async (summary) => {
          const [next] = await runtimeSource().store.listDue({ now: Number.MAX_SAFE_INTEGER, limit: 1 });
          const report: SweepReport = next ? { summary, nextDueAt: next.nextRefreshAt } : { summary };
          options.onSweep?.(report);
          return summary;
        })
        .finally(() => {
          running = undefined;
        });
      return running;
    };
    if (options.schedule !== false) {
      const timer = setInterval(() => {
        sweep().catch(() => undefined);
      }, broker.refresh.sweepSeconds * 1000);
      closers.push(async () => {
        clearInterval(timer);
        await running?.catch(() => undefined);
      });
    }

    return {
      url: gateway.url,
      redirectUri,
      ...(simulator ? { simulator } : {}),
      authorizeUrl: wise.authorizeUrl,
      runtime,
      aws: { clients, tableName, keyId: KEY_ALIAS },
      sweep,
      ...(files ? { files } : {}),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

function scheduledEvent(region: string, now: number): ScheduledEvent {
  return {
    version: '0',
    id: crypto.randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: LOCAL_ACCOUNT,
    time: new Date(now).toISOString(),
    region,
    resources: [`arn:aws:events:${region}:${LOCAL_ACCOUNT}:rule/wise-broker-local-refresh`],
    detail: {},
  };
}
