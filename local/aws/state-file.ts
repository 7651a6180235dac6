import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { z } from 'zod';

/**
 * Reads a JSON state file written by {@link writeStateFile}; `undefined` when it does not exist yet.
 * A file that does not match `schema` stops the start with an error naming the file.
 */
export function readStateFile<T>(path: string, schema: z.ZodType<T>): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new Error(`The local AWS state file ${path} is not JSON; delete it to start afresh.`, { cause });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`The local AWS state file ${path} has an unexpected shape; delete it to start afresh.`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

/**
 * Replaces a JSON state file in one step (write aside, then rename), readable by its owner only:
 * it holds key material and secret values.
 */
export function writeStateFile(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, path);
}
