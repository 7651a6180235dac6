import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { format } from 'node:util';
import { afterAll, expect } from 'vitest';
import { type WatchedSecretKind, watchLeaks } from '#local/leak-watch.ts';
import { LEAK_REPORTS_DIR, type LeakReport, MIN_SECRET_LENGTH } from './report.ts';

/**
 * The leak scan, run around every test file (a vitest setup file): it captures everything the file's
 * process writes (stdout, stderr, every console method: the broker's log lines go there, at every level) and every error
 * body, page and redirect that the local gateway and the test harness hand out, and registers every
 * credential the Wise simulator, local KMS, the local gateway and the harness create or receive (tokens,
 * codes, states, registration codes, secrets). After the file's last test each output is checked for each
 * credential: a match fails the file, naming the kind and where it was found, never the value. Each file
 * writes its counts to `test-results/leak-scan/`; the global teardown adds them up.
 */

const secrets = new Map<string, WatchedSecretKind>();
const outputs: Array<{ source: string; text: string }> = [];

const record = (source: string) => (chunk: unknown) => {
  outputs.push({
    source,
    text: typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk),
  });
};

// The suite logs at DEBUG (vitest.config.ts), so the scan covers every log statement the suite reaches;
// only warnings and errors are shown (LEAK_SCAN_SHOW_ALL=1 shows every line).
const QUIET_LEVEL = /^\{"level":"(?:INFO|DEBUG)"/;
const showAll = process.env.LEAK_SCAN_SHOW_ALL === '1';

function tapStream(stream: NodeJS.WriteStream, source: string): void {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  const note = record(source);
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    note(chunk);
    if (!showAll && typeof chunk === 'string' && QUIET_LEVEL.test(chunk)) {
      const callback = rest.find((argument) => typeof argument === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }
    return write(chunk, ...rest);
  }) as typeof stream.write;
}

function tapConsole(): void {
  for (const level of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    const original = console[level].bind(console);
    const note = record(`console.${level}`);
    console[level] = (...args: unknown[]) => {
      note(format(...args));
      original(...args);
    };
  }
}

tapStream(process.stdout, 'stdout');
tapStream(process.stderr, 'stderr');
tapConsole();
watchLeaks({
  secret(kind, value) {
    // Shorter strings (a test's 'local' secret) would match ordinary words; every real credential is longer.
    if (value.length >= MIN_SECRET_LENGTH && !secrets.has(value)) secrets.set(value, kind);
  },
  output(source, text, location) {
    outputs.push({ source, text });
    if (location !== undefined)
      outputs.push({ source: `${source} location`, text: withoutProtocolParams(location) });
  },
});

afterAll(() => {
  const filePath = expect.getState().testPath ?? 'an unknown test file';
  const found: LeakReport['found'] = [];
  let lines = 0;
  for (const { source, text } of outputs) {
    lines += text.split('\n').filter((line) => line.trim() !== '').length;
    for (const [secret, kind] of secrets) {
      const at = text.indexOf(secret);
      if (at >= 0) found.push({ kind, source, context: redactedContext(text, at, secret.length) });
    }
  }
  const report: LeakReport = {
    file: filePath,
    outputs: outputs.length,
    lines,
    secrets: secrets.size,
    secretsByKind: countByKind(),
    found,
  };
  mkdirSync(LEAK_REPORTS_DIR, { recursive: true });
  writeFileSync(join(LEAK_REPORTS_DIR, `${process.pid}-${randomUUID()}.json`), JSON.stringify(report));
  if (found.length > 0) {
    const where = found.map((leak) => `  a ${leak.kind} in ${leak.source}: ${leak.context}`).join('\n');
    throw new Error(`Leak scan: ${found.length} secret(s) found in what this file produced:\n${where}`);
  }
});

/**
 * A redirect's location without what OAuth puts there by design: the `state` of a redirect to Wise's
 * authorization page, and the `completion` code a redirect hands to the partner's return URL. Anything
 * else in it (a state or code sent back to the return URL, a token anywhere) is still checked.
 */
function withoutProtocolParams(location: string): string {
  if (!URL.canParse(location)) return location;
  const url = new URL(location);
  if (/\/oauth\/authorize\/?$/.test(url.pathname)) url.searchParams.delete('state');
  url.searchParams.delete('completion');
  return url.href;
}

function countByKind(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of secrets.values()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

/** Up to 60 characters either side of a match, with the secret itself replaced. */
function redactedContext(text: string, at: number, length: number): string {
  const before = text.slice(Math.max(0, at - 60), at);
  const after = text.slice(at + length, at + length + 60);
  return JSON.stringify(`${before}<secret>${after}`);
}
