import { afterAll, afterEach, beforeEach, vi } from 'vitest';
import { publishMetrics, setMetricsSink } from '#shared/observability.ts';
import { AwsFaultInjector, type FaultTarget } from '../../support/aws-faults.ts';
import { type BrokerHarness, startBroker } from '../../support/broker.ts';
import { writeReliabilityReport } from '../../support/reliability/report.ts';
import { refreshRoutes, TOKEN_LIFETIME_MS } from '../lifecycle/refresh-support.ts';

/** The SDK's own attempts per request (its defaults, which the broker keeps): DynamoDB 4, the others 3. */
export const SDK_ATTEMPTS = { dynamodb: 4, other: 3 } as const;

/** Past the connection's refresh time (80 % of the token's life, jittered), with the token still valid. */
export const DUE_MS = Math.round(TOKEN_LIFETIME_MS * 0.85);

/** Past the lease (120 s) and the longest back-off (15 min): the next sweep retries a failed refresh. */
export const AFTER_BACKOFF_MS = 20 * 60_000;

/** The attribute names a DynamoDB `UpdateItem` sets, read from its expression and its name placeholders. */
export function setsAttributes(input: Record<string, unknown>): Set<string> {
  const expression = String(input.UpdateExpression ?? '');
  const names = (input.ExpressionAttributeNames ?? {}) as Record<string, string>;
  const sets = /SET (.*?)(?: REMOVE |$)/s.exec(expression)?.[1] ?? '';
  return new Set([...sets.matchAll(/(#\w+) =/g)].map((match) => names[match[1] ?? ''] ?? ''));
}

/** An `UpdateItem` that sets every one of `attributes`. */
function updateSetting(...attributes: string[]): FaultTarget {
  return {
    command: 'UpdateItemCommand',
    matches: (input) => {
      const set = setsAttributes(input);
      return attributes.every((attribute) => set.has(attribute));
    },
  };
}

/** The requests of each step of a refresh, and of the other writes, as the fault rules name them. */
export const TARGETS = {
  /** Reading the connection (a vend's cache miss, the sweep's at-risk check). */
  readConnection: { command: 'QueryCommand', matches: (input) => input.IndexName === undefined },
  /** Taking the refresh lease: a conditional write. */
  takeLease: updateSetting('leaseOwner', 'leaseExpiresAt'),
  /** Recording which refresh token is about to be spent, before Wise is called. */
  markSpending: updateSetting('spending'),
  /** The write of Wise's answer: the one write between Wise's answer and safety. */
  storeRefresh: updateSetting('accessToken', 'lastRefreshAt'),
  /** The write of a refresh failure (back-off, or the `needs_reauth` mark). */
  recordFailure: updateSetting('failureCount', 'lastError'),
  /** The callback's (and registration's) write of a new connection. */
  saveConnection: updateSetting('connectionId', 'grant'),
  /** A data key for the generation a write will produce. */
  newDataKey: { command: 'GenerateDataKeyCommand' },
  /** Opening a stored record's data key. */
  openDataKey: { command: 'DecryptCommand' },
  /** The Wise client credentials. */
  wiseCredentials: { command: 'GetSecretValueCommand' },
  /** A connection event. */
  publishEvent: { command: 'PutEventsCommand' },
} satisfies Record<string, FaultTarget>;

/** Every metric count published since the last call, by name (EMF documents, summed). */
export function metricsRecorder(): { counts(): Record<string, number> } {
  let published: string[] = [];
  beforeEach(() => {
    // Drop what earlier tests counted.
    setMetricsSink(() => {});
    publishMetrics();
    published = [];
    setMetricsSink((line) => published.push(line));
  });
  afterEach(() => setMetricsSink(undefined));
  return {
    counts: () => {
      publishMetrics();
      const counts: Record<string, number> = {};
      for (const line of published) {
        const emf = JSON.parse(line) as {
          _aws?: { CloudWatchMetrics?: Array<{ Metrics: Array<{ Name: string }> }> };
        };
        for (const { Metrics } of emf._aws?.CloudWatchMetrics ?? []) {
          for (const { Name } of Metrics) {
            const value = (emf as Record<string, unknown>)[Name];
            const values = Array.isArray(value) ? value : [value];
            counts[Name] = (counts[Name] ?? 0) + values.reduce((sum: number, one) => sum + Number(one), 0);
          }
        }
      }
      published = [];
      return counts;
    },
  };
}

/**
 * A broker per test (Wise rotating refresh tokens, as it may) with faults attachable to every AWS client
 * its runtime uses, and `acme-1` connected. The SDK's back-off is random; its draw is pinned low so a
 * fault that outlasts the SDK's retries costs milliseconds, not seconds: the number of attempts and the
 * classification of each error stay the SDK's.
 */
export function faultyBrokerPerTest() {
  let current: { broker: BrokerHarness; faults: AwsFaultInjector; revoked: boolean } | undefined;
  let scenarios = 0;
  let refreshes = 0;
  let lost = 0;
  let markedLost = 0;
  afterAll(() => {
    writeReliabilityReport({
      source: 'AWS fault matrix',
      scenarios,
      faults: AwsFaultInjector.injectedInProcess,
      kills: 0,
      refreshes,
      lost,
      markedLost,
    });
    console.info(
      `AWS fault matrix: ${scenarios} scenarios run, ${AwsFaultInjector.injectedInProcess} faults injected`,
    );
  });
  /**
   * Adds a scenario's refresh calls and, when `acme-1` ended needing the user again though the user ended
   * nothing, its loss. The user ends a connection by connecting the same Wise account again (the new
   * connection replaces it, or Wise ends the earlier grant so a refresh meets `invalid_grant`) or by
   * revoking access at Wise.
   */
  async function countLosses({ broker, faults, revoked }: NonNullable<typeof current>): Promise<void> {
    faults.clear();
    const { grants, failedGrants } = broker.simulator.stats();
    refreshes += grants.refresh_token + failedGrants.refresh_token;
    const connection = await broker.runtime.store.getConnection('acme-1');
    const code = connection?.lastError?.code;
    const userEnded =
      code === 'replaced_by_connection' ||
      (code === 'invalid_grant' && (revoked || grants.authorization_code > 1));
    if (connection?.status === 'needs_reauth' && !userEnded) {
      lost += 1;
      if (code === 'refresh_token_lost') markedLost += 1;
    }
  }
  beforeEach(() => {
    vi.spyOn(Math, 'random').mockReturnValue(0.01);
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    const scenario = current;
    current = undefined;
    if (!scenario) return;
    try {
      await countLosses(scenario);
    } finally {
      await scenario.broker.close();
    }
  });
  return async (options: { rotateRefreshTokens?: boolean } = {}) => {
    scenarios += 1;
    const broker = await startBroker({
      simulator: { rotateRefreshTokens: options.rotateRefreshTokens ?? true },
    });
    const faults = new AwsFaultInjector()
      .attach(broker.dynamo.client, 'DynamoDB')
      .attach(broker.aws.kms, 'KMS')
      .attach(broker.aws.secrets, 'Secrets Manager')
      .attach(broker.aws.events, 'EventBridge');
    const scenario = { broker, faults, revoked: false };
    current = scenario;
    // A revocation at Wise is the user's doing: what it ends is not counted as lost by the broker.
    const control = broker.control;
    broker.control = (path, body) => {
      if (path === 'revoke') scenario.revoked = true;
      return control(path, body);
    };
    const connection = await broker.connect('acme-1');
    // The refresh's own pauses between tries at a write pass at once: their number is what is tested.
    const runtime = { ...broker.runtime, sleep: async () => {} };
    return { broker, faults, connection, routes: refreshRoutes(broker, { runtime: () => runtime }) };
  };
}
