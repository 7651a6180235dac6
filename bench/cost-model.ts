/**
 * What the broker costs to run: a formula per AWS service, in US dollars a month, from list prices and
 * usage assumptions that are all parameters. docs/COST-AND-SCALE.md prints its tables from this model
 * (`npm run scale`), and a test checks the document against it.
 */

/** AWS list prices, us-east-1 (N. Virginia), on-demand, without free tiers or savings plans. */
export interface Prices {
  lambdaPerMillionRequests: number;
  /** Per GB-second, arm64 (the functions' architecture), first pricing tier. */
  lambdaArmPerGbSecond: number;
  httpApiPerMillionRequests: number;
  dynamoPerMillionWriteUnits: number;
  dynamoPerMillionReadUnits: number;
  dynamoPerGbMonth: number;
  dynamoPitrPerGbMonth: number;
  kmsPerKeyMonth: number;
  kmsPer10kRequests: number;
  secretPerMonth: number;
  secretsPer10kCalls: number;
  cloudWatchPerMetricMonth: number;
  cloudWatchPerAlarmMonth: number;
  cloudWatchPerDashboardMonth: number;
  logsIngestedPerGb: number;
  logsStoredPerGbMonth: number;
  xrayPerMillionTracesRecorded: number;
}

export const US_EAST_1_PRICES: Prices = {
  lambdaPerMillionRequests: 0.2,
  lambdaArmPerGbSecond: 0.0000133334,
  httpApiPerMillionRequests: 1.0,
  dynamoPerMillionWriteUnits: 0.625,
  dynamoPerMillionReadUnits: 0.125,
  dynamoPerGbMonth: 0.25,
  dynamoPitrPerGbMonth: 0.2,
  kmsPerKeyMonth: 1.0,
  kmsPer10kRequests: 0.03,
  secretPerMonth: 0.4,
  secretsPer10kCalls: 0.05,
  cloudWatchPerMetricMonth: 0.3,
  cloudWatchPerAlarmMonth: 0.1,
  cloudWatchPerDashboardMonth: 3.0,
  logsIngestedPerGb: 0.5,
  logsStoredPerGbMonth: 0.03,
  xrayPerMillionTracesRecorded: 5.0,
};

/** What one vend and one refresh use, and what the deployment holds. Estimates: replace with your own. */
export interface Usage {
  /** Memory of every broker function, in MB (the stack's default). */
  functionMemoryMb: number;
  /** Billed duration of a vend answered from the instance's cache, in ms. */
  warmVendMs: number;
  /** Share of vends whose token is not in the answering instance's cache: one DynamoDB read, one KMS call. */
  vendCacheMissShare: number;
  /** Billed duration of a vend that reads and decrypts, in ms. */
  coldVendMs: number;
  /** Share of invocations that start a new instance, and that start's billed init, in ms. */
  coldStartShare: number;
  initMs: number;
  /** Read units of a vend that misses the cache (one strongly consistent read of an item under 4 KB). */
  vendReadUnits: number;
  /**
   * Per refresh: write units (lease, the spent token's mark, outcome, the due and status indexes they update,
   * and the fence) and read units (the record and its fence).
   */
  refreshWriteUnits: number;
  refreshReadUnits: number;
  /** Per refresh: KMS requests (open the record's data key, make the next generation's). */
  refreshKmsRequests: number;
  /** Per refresh: the sweep's billed time, in ms (paced at 15 refreshes a second, 8 at once). */
  sweepMsPerRefresh: number;
  /** A sweep with nothing due: billed time in ms, and its due-index query's read units (16 shard queries). */
  emptySweepMs: number;
  sweepReadUnits: number;
  /** Bytes of log per vend and per refresh (the broker's JSON lines, the audit line and Lambda's own lines). */
  logBytesPerVend: number;
  logBytesPerRefresh: number;
  /** Log retention, in months (what a month's logs cost to keep, summed over the retention). */
  logRetentionMonths: number;
  /** Share of invocations X-Ray records (Lambda's default sampling is about 1 a second plus 5 %). */
  xraySampledShare: number;
  /** Bytes a connection takes in the table, with its index entries. */
  bytesPerConnection: number;
  /** Customer-managed keys: the data key (table, secret), the token key and the alarm topic's key. */
  kmsKeys: number;
  metrics: number;
  alarms: number;
  dashboards: number;
  /** Secrets Manager calls a month (each instance re-reads the Wise secret every few minutes). */
  secretCallsPerMonth: number;
}

export const DEFAULT_USAGE: Usage = {
  functionMemoryMb: 512,
  warmVendMs: 5,
  vendCacheMissShare: 0.05,
  coldVendMs: 40,
  coldStartShare: 0.01,
  initMs: 400,
  vendReadUnits: 1,
  refreshWriteUnits: 10,
  refreshReadUnits: 2,
  refreshKmsRequests: 2,
  sweepMsPerRefresh: 70,
  emptySweepMs: 150,
  sweepReadUnits: 16,
  logBytesPerVend: 1_500,
  logBytesPerRefresh: 1_500,
  logRetentionMonths: 3,
  xraySampledShare: 0.05,
  bytesPerConnection: 3_000,
  kmsKeys: 3,
  metrics: 20,
  alarms: 6,
  dashboards: 1,
  secretCallsPerMonth: 100_000,
};

/** Hours in an average month (365.25 x 24 / 12). */
export const HOURS_PER_MONTH = 730.5;

/**
 * Refreshes a connection needs a month: one per mean refresh interval, `(fraction - 2.5 %) x 12 h`
 * (the rule refreshes at 80 % of the lifetime minus up to 5 % jitter).
 */
export function refreshesPerConnectionMonth(fraction = 0.8, ttlSeconds = 43_199): number {
  return HOURS_PER_MONTH / (((fraction - 0.025) * ttlSeconds) / 3600);
}

export type CostLines = Record<string, number>;

const GB = 1024 ** 3;

function lambdaCost(prices: Prices, usage: Usage, invocations: number, billedMs: number): number {
  const initMs = invocations * usage.coldStartShare * usage.initMs;
  const gbSeconds = ((billedMs + initMs) / 1000) * (usage.functionMemoryMb / 1024);
  return (invocations / 1e6) * prices.lambdaPerMillionRequests + gbSeconds * prices.lambdaArmPerGbSecond;
}

function logsCost(prices: Prices, usage: Usage, bytes: number): number {
  const gb = bytes / GB;
  return gb * prices.logsIngestedPerGb + gb * usage.logRetentionMonths * prices.logsStoredPerGbMonth;
}

/** The usage-driven cost of `vends` token vends (no fixed costs). */
export function vendCost(vends: number, prices = US_EAST_1_PRICES, usage = DEFAULT_USAGE): CostLines {
  const misses = vends * usage.vendCacheMissShare;
  const billedMs = (vends - misses) * usage.warmVendMs + misses * usage.coldVendMs;
  return {
    'HTTP API': (vends / 1e6) * prices.httpApiPerMillionRequests,
    Lambda: lambdaCost(prices, usage, vends, billedMs),
    DynamoDB: ((misses * usage.vendReadUnits) / 1e6) * prices.dynamoPerMillionReadUnits,
    KMS: (misses / 10_000) * prices.kmsPer10kRequests,
    'CloudWatch Logs': logsCost(prices, usage, vends * usage.logBytesPerVend),
    'X-Ray': ((vends * usage.xraySampledShare) / 1e6) * prices.xrayPerMillionTracesRecorded,
  };
}

/** What keeping `connections` fresh costs a month, with the deployment's fixed costs. */
export function freshnessCost(
  connections: number,
  prices = US_EAST_1_PRICES,
  usage = DEFAULT_USAGE,
): CostLines {
  const refreshes = connections * refreshesPerConnectionMonth();
  const sweeps = HOURS_PER_MONTH * 60; // one a minute
  const sweepMs = sweeps * usage.emptySweepMs + refreshes * usage.sweepMsPerRefresh;
  const storedGb = (connections * usage.bytesPerConnection) / GB;
  const dynamo =
    ((refreshes * usage.refreshWriteUnits) / 1e6) * prices.dynamoPerMillionWriteUnits +
    ((refreshes * usage.refreshReadUnits + sweeps * usage.sweepReadUnits) / 1e6) *
      prices.dynamoPerMillionReadUnits +
    storedGb * (prices.dynamoPerGbMonth + prices.dynamoPitrPerGbMonth);
  return {
    Lambda: lambdaCost(prices, usage, sweeps, sweepMs),
    DynamoDB: dynamo,
    KMS:
      usage.kmsKeys * prices.kmsPerKeyMonth +
      ((refreshes * usage.refreshKmsRequests) / 10_000) * prices.kmsPer10kRequests,
    'Secrets Manager':
      prices.secretPerMonth + (usage.secretCallsPerMonth / 10_000) * prices.secretsPer10kCalls,
    'CloudWatch metrics, alarms, dashboard':
      usage.metrics * prices.cloudWatchPerMetricMonth +
      usage.alarms * prices.cloudWatchPerAlarmMonth +
      usage.dashboards * prices.cloudWatchPerDashboardMonth,
    'CloudWatch Logs': logsCost(prices, usage, refreshes * usage.logBytesPerRefresh),
    // One sweep a minute is always within X-Ray's one-a-second reservoir: every sweep is traced.
    'X-Ray': (sweeps / 1e6) * prices.xrayPerMillionTracesRecorded,
  };
}

/** The sum of a breakdown. */
export function total(lines: CostLines): number {
  return Object.values(lines).reduce((sum, value) => sum + value, 0);
}
