import { afterEach, beforeEach } from 'vitest';
import { createConnectionsHandler } from '#functions/connections/handler.ts';
import { SecretsManagerCredentials } from '#shared/adapters/secrets-manager-credentials.ts';
import { setMetricsSink } from '#shared/observability.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import type { ConnectionStatusView } from '#shared/use-cases/connection-status.ts';
import { WiseOAuthClient } from '#shared/wise/wise-oauth-client.ts';
import {
  ADMIN_ARN,
  type BrokerHarness,
  invoke,
  TEST_REDIRECT_URI,
  TEST_SECRET_ID,
} from '../../support/broker.ts';
import { instanceRuntime, refreshRoutes, type VendBody, wiseAccepts } from '../lifecycle/refresh-support.ts';

/** Each HTTP request to Wise gives up after this long (real time): what a hang must outlast. */
export const WISE_REQUEST_TIMEOUT_MS = 500;

/**
 * A Lambda instance of the broker as deployed, with two test choices: its Wise client gives up on a
 * request after {@link WISE_REQUEST_TIMEOUT_MS}, and every pause (the Wise client's back-off between
 * attempts, the sweep's pacing, a vend waiting for another refresh) moves the shared test clock instead
 * of sleeping, so Wise's `Retry-After` and the broker's rate are seen on the simulator's clock too.
 */
export function faultTestRuntime(broker: BrokerHarness): Runtime {
  const sleep = async (ms: number) => broker.clock.advance(ms);
  const wise = new WiseOAuthClient({
    apiUrl: broker.simulator.url,
    authorizeUrl: broker.simulator.authorizeUrl,
    redirectUri: TEST_REDIRECT_URI,
    credentials: new SecretsManagerCredentials({ client: broker.aws.secrets, secretId: TEST_SECRET_ID }),
    requestTimeoutMs: WISE_REQUEST_TIMEOUT_MS,
    now: () => broker.clock.now(),
    sleep,
  });
  return Object.assign(instanceRuntime(broker, 'fault-test-instance', { wise }), { sleep });
}

/** The refresh sweep, the vend route and the status route of {@link faultTestRuntime}. */
export function faultRoutes(broker: BrokerHarness) {
  const runtime = faultTestRuntime(broker);
  const routes = refreshRoutes(broker, {
    runtime: () => runtime,
    sleep: async (ms) => broker.clock.advance(ms),
  });
  const connections = createConnectionsHandler(() => runtime);
  /** `GET /connections/{id}` as the admin sees it. */
  const status = async (connectionId: string): Promise<ConnectionStatusView> => {
    const response = await invoke(connections, {
      method: 'GET',
      route: '/connections/{id}',
      pathParameters: { id: connectionId },
      caller: ADMIN_ARN,
    });
    if (response.statusCode !== 200)
      throw new Error(`GET /connections/${connectionId} answered ${response.statusCode}`);
    return response.json as ConnectionStatusView;
  };
  /**
   * What a careful caller gets: a vend, and when Wise refuses the token it was handed, one more vend that
   * reports it (`rejectedGeneration`). `status` is the last answer's; `accepted` says whether Wise took
   * the token finally held; `reported` whether the second vend was needed.
   */
  const callerVend = async (connectionId: string) => {
    const first = await routes.vend({ connectionId });
    if (first.statusCode !== 200) return { status: first.statusCode, accepted: false, reported: false };
    const token = first.json as VendBody;
    if (await wiseAccepts(broker, token.accessToken)) return { status: 200, accepted: true, reported: false };
    const again = await routes.vend({ connectionId, rejectedGeneration: token.generation });
    if (again.statusCode !== 200) return { status: again.statusCode, accepted: false, reported: true };
    const retried = again.json as VendBody;
    return { status: 200, accepted: await wiseAccepts(broker, retried.accessToken), reported: true };
  };
  return { ...routes, runtime, status, callerVend };
}

/** One published metric: its name, value and dimensions, as CloudWatch reads them from an EMF document. */
export interface PublishedMetric {
  name: string;
  value: number;
  dimensions: Record<string, string>;
}

/**
 * Keeps every metric the broker publishes during each test (the sink the local run writes its metrics
 * file with), parsed from the EMF documents.
 */
export function publishedMetrics() {
  let lines: string[] = [];
  beforeEach(() => {
    lines = [];
    setMetricsSink((line) => lines.push(line));
  });
  afterEach(() => setMetricsSink(undefined));

  const all = (): PublishedMetric[] =>
    lines.flatMap((line) => {
      const document = JSON.parse(line) as Record<string, unknown> & {
        _aws: { CloudWatchMetrics: Array<{ Dimensions: string[][]; Metrics: Array<{ Name: string }> }> };
      };
      return document._aws.CloudWatchMetrics.flatMap((directive) => {
        const dimensions = Object.fromEntries(
          directive.Dimensions.flat().map((name) => [name, String(document[name])]),
        );
        return directive.Metrics.flatMap(({ Name }) => {
          const raw = document[Name];
          const values = Array.isArray(raw) ? raw : [raw];
          return values.map((value) => ({ name: Name, value: Number(value), dimensions }));
        });
      });
    });

  /** The sum of a count metric, optionally only where a dimension has a value. */
  const total = (name: string, dimension?: [string, string]): number =>
    all()
      .filter((metric) => metric.name === name)
      .filter((metric) => !dimension || metric.dimensions[dimension[0]] === dimension[1])
      .reduce((sum, metric) => sum + metric.value, 0);

  /** The counts of the refresh metrics and of the refused refreshes by class, zeros left out. */
  const counts = (): Record<string, number> => {
    const names = [
      'RefreshSucceeded',
      'RefreshFailed',
      'ProviderUnavailable',
      'InvalidClient',
      'ReauthorizationRequired',
      'ConnectionLostToCrash',
    ];
    const classes = [
      'invalid_grant',
      'invalid_client',
      'rate_limited',
      'provider_unavailable',
      'invalid_request',
    ];
    const entries = [
      ...names.map((name) => [name, total(name)] as const),
      ...classes.map(
        (refusal) => [`RefreshRefused.${refusal}`, total('RefreshRefused', ['class', refusal])] as const,
      ),
    ];
    return Object.fromEntries(entries.filter(([, count]) => count > 0));
  };

  return { all, total, counts };
}
