/** One measured figure of `npm run bench`, as printed and as written to bench/results.json. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The budget in words, such as "<= 1.2"; absent for figures reported without one. */
  budget?: string;
  /** Whether the budget is met; absent when there is no budget. */
  met?: boolean;
}

/** A figure held to `value <= limit`. */
export function atMost(name: string, value: number, unit: string, limit: number): Figure {
  return { name, value, unit, budget: `<= ${limit}`, met: value <= limit };
}

/** A figure held to `value >= limit`. */
export function atLeast(name: string, value: number, unit: string, limit: number): Figure {
  return { name, value, unit, budget: `>= ${limit}`, met: value >= limit };
}

/** A figure held to `value === expected`. */
export function exactly(name: string, value: number, unit: string, expected: number): Figure {
  return { name, value, unit, budget: `= ${expected}`, met: value === expected };
}

/** A figure reported without a budget. */
export function reported(name: string, value: number, unit: string): Figure {
  return { name, value, unit };
}

/** The `share` quantile (0.5 for the median, 0.99 for p99) of some numbers, by the nearest rank. */
export function quantile(values: readonly number[], share: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(share * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

function shown(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return Math.abs(value) >= 100
    ? value.toFixed(0)
    : Math.abs(value) >= 1
      ? value.toFixed(2)
      : value.toFixed(4);
}

/** The figures as one Markdown table (what the README shows). */
export function figureTable(figures: readonly Figure[]): string {
  const rows = figures.map((figure) => {
    const verdict = figure.met === undefined ? '' : figure.met ? 'met' : '**missed**';
    return `| ${figure.name} | ${shown(figure.value)} ${figure.unit} | ${figure.budget ?? ''} | ${verdict} |`;
  });
  return ['| figure | value | budget | |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
