import { createHash } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { z } from 'zod';
import { describeIssue } from '#shared/http/request.ts';
import { ConnectionIdSchema, requestBodySchema } from '#shared/use-cases/connection-status.ts';
import { IMPORT_NOTICE, ImportRequest } from '#shared/use-cases/import-connection.ts';
import { SignedTransport } from '../client/signed-transport.ts';

/**
 * The import command's work, apart from its command line: reading and checking a JSONL file of existing
 * Wise connections, and importing them one by one through `POST /connections/{id}/import`, paced, with an
 * outcome file beside the input so that a stopped run resumes where it stopped.
 */

/** One line of the input file, as the command sends it (the request body plus the connection id). */
export const ImportLine = requestBodySchema({
  connectionId: ConnectionIdSchema,
  refreshToken: ImportRequest.shape.refreshToken,
  userId: ImportRequest.shape.userId,
  profileId: ImportRequest.shape.profileId,
});
export type ImportLine = z.output<typeof ImportLine>;

/** A line of the input that can be imported, with its number (from 1). */
export interface CheckedLine {
  line: number;
  entry: ImportLine;
}

/** A line of the input that cannot: what to fix, as a sentence that never repeats a token. */
export interface BadLine {
  line: number;
  problem: string;
}

/** The whole file, checked before anything is sent. */
export interface CheckedFile {
  lines: CheckedLine[];
  bad: BadLine[];
}

/** Checks every line of a JSONL file: JSON, fields, ids, and no connection id or refresh token twice. */
export function checkImportFile(text: string): CheckedFile {
  const lines: CheckedLine[] = [];
  const bad: BadLine[] = [];
  const idLines = new Map<string, number>();
  const tokenLines = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      bad.push({
        line,
        problem:
          'is not valid JSON: write one JSON object per line, such as {"connectionId": "acme-1", "refreshToken": "..."}.',
      });
      return;
    }
    const parsed = ImportLine.safeParse(value);
    if (!parsed.success) {
      const { message, field } = describeIssue(parsed.error.issues);
      bad.push({
        line,
        problem: field === undefined ? message.replace(/^The request body/, 'The line') : message,
      });
      return;
    }
    const entry = parsed.data;
    const earlierId = idLines.get(entry.connectionId);
    if (earlierId !== undefined) {
      bad.push({
        line,
        problem: `repeats connection id "${entry.connectionId}" of line ${earlierId}: each connection is imported once, so keep one of the two lines.`,
      });
      return;
    }
    const fingerprint = tokenFingerprint(entry.refreshToken);
    const earlierToken = tokenLines.get(fingerprint);
    if (earlierToken !== undefined) {
      bad.push({
        line,
        problem: `has the same refresh token as line ${earlierToken}: a refresh token belongs to one connection, and the first import ends it; fix whichever line is wrong.`,
      });
      return;
    }
    idLines.set(entry.connectionId, line);
    tokenLines.set(fingerprint, line);
    lines.push({ line, entry });
  });
  return { lines, bad };
}

/** A one-way digest of a refresh token, to recognise it again without keeping it. */
export function tokenFingerprint(refreshToken: string): string {
  return createHash('sha256').update(refreshToken).digest('base64url').slice(0, 22);
}

/**
 * What became of one line. `imported` and `exists` are done; `rejected` (Wise refused the token) is not
 * sent again while the line keeps the same token; `refused` (the broker refused the request) and
 * `unavailable` are tried again by the next run.
 */
export type Outcome = 'imported' | 'exists' | 'rejected' | 'refused' | 'unavailable';

/** One record of the outcome file. Never holds a token, only a fingerprint of a rejected one. */
export interface OutcomeRecord {
  line: number;
  connectionId: string;
  outcome: Outcome;
  /** The broker's HTTP status; 0 when it could not be reached. */
  status: number;
  message: string;
  warnings?: string[];
  tokenFingerprint?: string;
  at: string;
}

/** The outcome file beside an input file. */
export function outcomeFileFor(inputFile: string): string {
  return `${inputFile}.outcomes.jsonl`;
}

/** The latest outcome of each connection id in an outcome file; empty when there is none yet. */
export async function readOutcomes(outcomeFile: string): Promise<Map<string, OutcomeRecord>> {
  let text: string;
  try {
    text = await readFile(outcomeFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw error;
  }
  const latest = new Map<string, OutcomeRecord>();
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    try {
      const record = JSON.parse(raw) as OutcomeRecord;
      latest.set(record.connectionId, record);
    } catch {
      // A line cut short when the process was killed mid-write: that line is simply tried again.
    }
  }
  return latest;
}

/** Why a line is skipped because of an earlier run; `undefined` when it is to be sent. */
export function skipReason(
  entry: ImportLine,
  previous: OutcomeRecord | undefined,
  options: { replace?: boolean } = {},
): string | undefined {
  if (!previous) return undefined;
  if (previous.outcome === 'imported') return `already imported (line ${previous.line}, ${previous.at})`;
  if (previous.outcome === 'exists' && options.replace !== true) {
    return `already a connection at the broker (${previous.at}); run with --replace to overwrite it`;
  }
  if (previous.outcome === 'rejected' && previous.tokenFingerprint === tokenFingerprint(entry.refreshToken)) {
    return "Wise already refused this refresh token; put the connection's current refresh token in the line to try again";
  }
  return undefined;
}

/** What {@link runImport} needs. */
export interface ImportRunOptions {
  file: string;
  url: string;
  region: string;
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** Imports started per minute at most. */
  perMinute: number;
  /** Sends `replace: true`: an existing connection under the same id is ended and replaced. */
  replace?: boolean;
  /** Stops before the next line once aborted (Ctrl-C). */
  signal?: AbortSignal;
  /** Every sentence the run reports. */
  print: (line: string) => void;
  fetch?: typeof fetch;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** How a run ended. */
export interface ImportRunSummary {
  counts: Record<Outcome | 'skipped', number>;
  /** True when the run stopped before the end of the file (aborted, or Wise stayed unavailable). */
  stopped: boolean;
  outcomeFile: string;
}

/** Attempts at one line while the broker answers 503 or 429 or cannot be reached. */
export const ATTEMPTS_PER_LINE = 3;
/** The longest wait a Retry-After may ask for before the run stops instead. */
export const MAX_RETRY_WAIT_MS = 5 * 60_000;

const defaultSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

/**
 * Imports every line of a checked file that an earlier run did not finish, one at a time, at most
 * `perMinute` a minute, writing each line's outcome to the outcome file as it arrives.
 */
export async function runImport(checked: CheckedFile, options: ImportRunOptions): Promise<ImportRunSummary> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const outcomeFile = outcomeFileFor(options.file);
  const previous = await readOutcomes(outcomeFile);
  const transport = new SignedTransport({
    baseUrl: options.url,
    region: options.region,
    credentials: options.credentials,
    fetch: options.fetch ?? globalThis.fetch,
    now,
  });
  const counts: ImportRunSummary['counts'] = {
    imported: 0,
    exists: 0,
    rejected: 0,
    refused: 0,
    unavailable: 0,
    skipped: 0,
  };
  const spacingMs = Math.ceil(60_000 / options.perMinute);
  let lastStart: number | undefined;
  options.print(`NOTE: ${IMPORT_NOTICE}`);

  for (const { line, entry } of checked.lines) {
    const skip = skipReason(entry, previous.get(entry.connectionId), { replace: options.replace === true });
    if (skip) {
      counts.skipped++;
      options.print(`line ${line} ${entry.connectionId}: skipped, ${skip}`);
      continue;
    }
    if (options.signal?.aborted) return stopped(counts, outcomeFile, options, line);
    let record: OutcomeRecord | undefined;
    for (let attempt = 1; attempt <= ATTEMPTS_PER_LINE; attempt++) {
      if (lastStart !== undefined) {
        const wait = lastStart + spacingMs - now();
        if (wait > 0) await sleep(wait, options.signal);
        if (options.signal?.aborted) return stopped(counts, outcomeFile, options, line);
      }
      lastStart = now();
      const answer = await send(transport, entry, options.replace === true);
      record = toRecord(line, entry, answer, now());
      if (record.outcome !== 'unavailable' || attempt === ATTEMPTS_PER_LINE) break;
      const retryMs = (answer.retryAfterSeconds ?? 10) * 1000;
      if (retryMs > MAX_RETRY_WAIT_MS) break;
      options.print(
        `line ${line} ${entry.connectionId}: ${record.message} Trying again in ${Math.ceil(retryMs / 1000)} s.`,
      );
      await sleep(retryMs, options.signal);
      if (options.signal?.aborted) break;
    }
    if (!record) break;
    await appendFile(outcomeFile, `${JSON.stringify(record)}\n`, { mode: 0o600 });
    counts[record.outcome]++;
    options.print(`line ${line} ${entry.connectionId}: ${describe(record)}`);
    for (const warning of record.warnings ?? []) options.print(`  warning: ${warning}`);
    if (record.outcome === 'unavailable') {
      options.print(
        `Stopped at line ${line}: the broker or Wise stayed unavailable. Run the same command again later to resume from this line.`,
      );
      return { counts, stopped: true, outcomeFile };
    }
  }
  return { counts, stopped: false, outcomeFile };
}

function stopped(
  counts: ImportRunSummary['counts'],
  outcomeFile: string,
  options: ImportRunOptions,
  line: number,
): ImportRunSummary {
  options.print(`Stopped before line ${line}. Run the same command again to resume from there.`);
  return { counts, stopped: true, outcomeFile };
}

interface Answer {
  status: number;
  body: { error?: string; message?: string; warnings?: string[]; status?: string; profileId?: number | null };
  retryAfterSeconds?: number;
}

async function send(transport: SignedTransport, entry: ImportLine, replace: boolean): Promise<Answer> {
  const { connectionId, ...fields } = entry;
  let response: Response;
  try {
    response = await transport.send({
      method: 'POST',
      path: `/connections/${encodeURIComponent(connectionId)}/import`,
      body: { ...fields, ...(replace ? { replace: true } : {}) },
    });
  } catch {
    return { status: 0, body: { message: 'The broker could not be reached.' } };
  }
  let body: Answer['body'] = {};
  try {
    body = (await response.json()) as Answer['body'];
  } catch {
    body = { message: `The broker answered ${response.status} without a JSON body.` };
  }
  const retryAfter = Number(response.headers.get('retry-after'));
  return {
    status: response.status,
    body,
    ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}),
  };
}

function toRecord(line: number, entry: ImportLine, answer: Answer, at: number): OutcomeRecord {
  const base = {
    line,
    connectionId: entry.connectionId,
    status: answer.status,
    message: answer.body.message ?? '',
    at: new Date(at).toISOString(),
  };
  if (answer.status === 201) {
    return { ...base, outcome: 'imported', message: 'imported', warnings: answer.body.warnings ?? [] };
  }
  if (answer.status === 409 && answer.body.error === 'connection_exists')
    return { ...base, outcome: 'exists' };
  if (answer.status === 422) {
    return { ...base, outcome: 'rejected', tokenFingerprint: tokenFingerprint(entry.refreshToken) };
  }
  if (answer.status === 0 || answer.status === 429 || answer.status >= 500) {
    return { ...base, outcome: 'unavailable' };
  }
  return { ...base, outcome: 'refused' };
}

function describe(record: OutcomeRecord): string {
  switch (record.outcome) {
    case 'imported':
      return 'imported';
    case 'exists':
      return 'not imported: the broker already has this connection (made there, or imported by an earlier run whose outcome was not recorded) and keeps it; run with --replace to overwrite it with this line.';
    case 'rejected':
      return `not imported, the refresh token is dead. ${record.message}`;
    case 'refused':
      return `not imported (HTTP ${record.status}). ${record.message}`;
    case 'unavailable':
      return `not imported yet (${record.status === 0 ? 'no answer' : `HTTP ${record.status}`}). ${record.message}`;
  }
}
