/**
 * `npm run scale`: prints the figures of docs/COST-AND-SCALE.md (the block between its `scale:begin` and
 * `scale:end` markers) from the cost model and the sweep simulation. With `--write` it puts them into the
 * document. A test checks that the document holds exactly what this prints.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { SWEEP_SHARE_OF_RATE_LIMIT } from '#shared/use-cases/refresh-due.ts';
import {
  DEFAULT_USAGE,
  freshnessCost,
  refreshesPerConnectionMonth,
  total,
  US_EAST_1_PRICES,
  vendCost,
} from './cost-model.ts';
import {
  type CapacityScenario,
  simulateSweeps,
  steadyStateCapacity,
  sweepBudgetAt,
  WISE_ACCESS_TOKEN_SECONDS,
  WISE_TOKEN_CALLS_PER_MINUTE,
} from './sweep-capacity.ts';

export const DOCUMENT = new URL('../docs/COST-AND-SCALE.md', import.meta.url);
const BEGIN = '<!-- scale:begin (npm run scale -- --write) -->';
const END = '<!-- scale:end -->';

const dollars = (value: number): string =>
  value >= 100 ? `$${Math.round(value).toLocaleString('en-US')}` : `$${value.toFixed(2)}`;
const whole = (value: number): string => Math.round(value).toLocaleString('en-US');

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function capacitySection(): string {
  const rows = [60, 300, 900, 3600].map((sweepSeconds) => {
    const budget = sweepBudgetAt(WISE_TOKEN_CALLS_PER_MINUTE * SWEEP_SHARE_OF_RATE_LIMIT, sweepSeconds);
    const perMinute = (budget * 60) / sweepSeconds;
    return [
      `${sweepSeconds} s`,
      whole(budget),
      whole(perMinute),
      whole(steadyStateCapacity(perMinute, 0.8, WISE_ACCESS_TOKEN_SECONDS)),
    ];
  });
  return [
    `Wise's whole limit (${WISE_TOKEN_CALLS_PER_MINUTE} token calls a minute) spent on refreshes alone would keep ` +
      `${whole(steadyStateCapacity(WISE_TOKEN_CALLS_PER_MINUTE, 0.8, WISE_ACCESS_TOKEN_SECONDS))} connections fresh. ` +
      `The sweep spends ${SWEEP_SHARE_OF_RATE_LIMIT * 100} % of it and starts nothing in a sweep's last seconds:`,
    '',
    table(
      ['`refresh.sweepSeconds`', 'refreshes a sweep', 'refreshes a minute', 'connections kept fresh'],
      rows,
    ),
  ].join('\n');
}

/** The simulated scenarios: 48 hours each, seeded, Wise answering every call at once. */
export const SCENARIOS: readonly CapacityScenario[] = (() => {
  const base = {
    sweepSeconds: 60,
    fraction: 0.8,
    ttlSeconds: WISE_ACCESS_TOKEN_SECONDS,
    hours: 48,
    seed: 20261201,
  };
  const atDefault = WISE_TOKEN_CALLS_PER_MINUTE * SWEEP_SHARE_OF_RATE_LIMIT;
  const raised = 3 * WISE_TOKEN_CALLS_PER_MINUTE * SWEEP_SHARE_OF_RATE_LIMIT;
  return [
    {
      ...base,
      name: '100,000 steady, default limit',
      connections: 100_000,
      issued: { kind: 'steady' },
      sweepCallsPerMinute: atDefault,
    },
    {
      ...base,
      name: '1,000,000 steady, default limit',
      connections: 1_000_000,
      issued: { kind: 'steady' },
      sweepCallsPerMinute: atDefault,
    },
    {
      ...base,
      name: '1,000,000 steady, limit raised to 3,000',
      connections: 1_000_000,
      issued: { kind: 'steady' },
      sweepCallsPerMinute: raised,
    },
    {
      ...base,
      name: '100,000 connected within 10 minutes, default limit',
      connections: 100_000,
      issued: { kind: 'cohort', withinMinutes: 10 },
      sweepCallsPerMinute: atDefault,
    },
    {
      ...base,
      name: '150,000 connected within 10 minutes, default limit',
      connections: 150_000,
      issued: { kind: 'cohort', withinMinutes: 10 },
      sweepCallsPerMinute: atDefault,
    },
  ];
})();

function simulationSection(): string {
  const rows = SCENARIOS.map((scenario) => {
    const result = simulateSweeps(scenario);
    return [
      scenario.name,
      whole(result.sweepBudget),
      whole(result.refreshes),
      result.worstDelayPastFractionMinutes.toFixed(1),
      whole(result.expiredUnrefreshed),
      whole(result.backlogAtEnd),
    ];
  });
  return table(
    [
      'scenario (48 hours, 60 s sweeps)',
      'refreshes a sweep',
      'refreshes',
      'worst delay past 80 % (min)',
      'expired unrefreshed',
      'due at the end',
    ],
    rows,
  );
}

function costSection(): string {
  const vends = vendCost(1_000_000);
  const vendTable = table(
    ['service', 'a million vends'],
    [
      ...Object.entries(vends).map(([name, value]) => [name, dollars(value)]),
      ['**total**', `**${dollars(total(vends))}**`],
    ],
  );
  const sizes = [1_000, 10_000, 100_000];
  const fresh = sizes.map((connections) => freshnessCost(connections));
  const services = Object.keys(fresh[0] ?? {});
  const freshTable = table(
    ['service', ...sizes.map((size) => `${whole(size)} connections`)],
    [
      ...services.map((name) => [name, ...fresh.map((lines) => dollars(lines[name] ?? 0))]),
      ['**total a month**', ...fresh.map((lines) => `**${dollars(total(lines))}**`)],
    ],
  );
  return [
    `A connection is refreshed ${refreshesPerConnectionMonth().toFixed(2)} times a month. Usage assumed: ` +
      `${DEFAULT_USAGE.functionMemoryMb} MB functions, a warm vend billed ${DEFAULT_USAGE.warmVendMs} ms and ` +
      `${DEFAULT_USAGE.vendCacheMissShare * 100} % of vends reading and decrypting (${DEFAULT_USAGE.coldVendMs} ms), ` +
      `${DEFAULT_USAGE.coldStartShare * 100} % cold starts with ${DEFAULT_USAGE.initMs} ms of billed init, ` +
      `${DEFAULT_USAGE.refreshWriteUnits} write and ${DEFAULT_USAGE.refreshReadUnits} read units and ` +
      `${DEFAULT_USAGE.refreshKmsRequests} KMS requests a refresh, ${DEFAULT_USAGE.logBytesPerVend} bytes of log a vend ` +
      `kept ${DEFAULT_USAGE.logRetentionMonths} months, ${DEFAULT_USAGE.metrics} metrics, ${DEFAULT_USAGE.alarms} alarms ` +
      `and ${DEFAULT_USAGE.dashboards} dashboard.`,
    '',
    vendTable,
    '',
    freshTable,
  ].join('\n');
}

/** The generated block, markers included. */
export function scaleBlock(): string {
  return [
    BEGIN,
    `Prices: AWS list prices for us-east-1 (Lambda arm64 $${US_EAST_1_PRICES.lambdaArmPerGbSecond} a GB-second).`,
    '',
    '### Capacity of one Wise client',
    '',
    capacitySection(),
    '',
    '### The sweep simulated',
    '',
    simulationSection(),
    '',
    '### Cost',
    '',
    costSection(),
    END,
  ].join('\n');
}

/** The block as the document holds it now, markers included; undefined when the markers are missing. */
export function documentBlock(text: string): string | undefined {
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  return start === -1 || end === -1 ? undefined : text.slice(start, end + END.length);
}

if (import.meta.main) {
  const block = scaleBlock();
  if (process.argv.includes('--write')) {
    const text = readFileSync(DOCUMENT, 'utf8');
    const current = documentBlock(text);
    if (current === undefined) throw new Error(`${DOCUMENT.pathname} has no ${BEGIN} ... ${END} block.`);
    writeFileSync(DOCUMENT, text.replace(current, block));
  }
  console.log(block);
}
