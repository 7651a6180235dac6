import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EVENTS_FILE } from './aws/events.ts';

const USAGE = `Prints the events the local broker published (connected, reauthorization required, recovered,
disconnected), one line each, oldest first.

Usage: npm run events -- [--follow] [--json] [--data-dir .local/data]
  --follow     keep printing new events as they arrive, until Ctrl-C
  --json       print each event as the JSON a rule's target receives, one a line (for jq)
  --data-dir   the local run's data folder (local.dataDir of the configuration); .local/data by default`;

/** One line for a person: time, detail-type, connection id and the rest of the detail. */
export function formatEvent(line: string, json: boolean): string {
  if (json) return line;
  try {
    const event = JSON.parse(line) as {
      time?: string;
      'detail-type'?: string;
      detail?: Record<string, unknown>;
    };
    const { connectionId, at: _at, ...rest } = event.detail ?? {};
    return `${event.time ?? '?'}  ${event['detail-type'] ?? '?'}  ${String(connectionId ?? '-')}  ${JSON.stringify(rest)}`;
  } catch {
    return line;
  }
}

/**
 * Prints the events file's lines from `offset`, and returns where it stopped: only whole lines, so a line
 * being written is printed once it is complete.
 */
export async function printFrom(
  file: string,
  offset: number,
  print: (line: string) => void,
  json: boolean,
): Promise<number> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  if (size < offset) offset = 0; // the data folder was reset
  if (size === offset) return offset;
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(size - offset);
    await handle.read(buffer, 0, buffer.length, offset);
    const text = buffer.toString('utf8');
    const end = text.lastIndexOf('\n') + 1;
    for (const line of text.slice(0, end).split('\n')) if (line.trim() !== '') print(formatEvent(line, json));
    return offset + Buffer.byteLength(text.slice(0, end));
  } finally {
    await handle.close();
  }
}

/** Runs the command; returns the exit code. `signal` ends `--follow`. */
export async function main(
  argv: string[],
  options: { print?: (line: string) => void; signal?: AbortSignal; pollMs?: number } = {},
): Promise<number> {
  const print = options.print ?? console.log;
  let values: { follow: boolean; json: boolean; 'data-dir': string; help: boolean };
  try {
    values = parseArgs({
      args: argv,
      options: {
        follow: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        'data-dir': { type: 'string', default: '.local/data' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    print(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    print(USAGE);
    return 0;
  }
  const file = join(values['data-dir'], 'aws', EVENTS_FILE);
  let offset = await printFrom(file, 0, print, values.json);
  if (!values.follow) {
    if (offset === 0) print(`No events yet in ${file}; start the broker with npm start and connect someone.`);
    return 0;
  }
  const signal = options.signal ?? signalOnInterrupt();
  while (!signal.aborted) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, options.pollMs ?? 500);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    offset = await printFrom(file, offset, print, values.json);
  }
  return 0;
}

function signalOnInterrupt(): AbortSignal {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  return controller.signal;
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
