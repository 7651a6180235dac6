import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Mode of every folder the local run keeps data in: its owner alone may list or enter it. */
export const PRIVATE_DIRECTORY_MODE = 0o700;
/** Mode of every data file of the local run: its owner alone may read or write it. */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `path` when missing and makes it, and everything already in it, readable by its owner only:
 * folders 0700, files 0600. The local data holds live tokens, key material and the Wise secret, and the
 * embedded DynamoDB (LevelDB) creates its files with the process's default mode: the folder's 0700
 * keeps them private while the broker runs, and this call, run again on close, leaves them 0600.
 * Symbolic links are left alone and not followed.
 */
export function makePrivate(path: string): void {
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIRECTORY_MODE });
  restrict(path);
}

function restrict(path: string): void {
  const stats = lstatSync(path);
  if (stats.isSymbolicLink()) return;
  if (stats.isDirectory()) {
    chmodSync(path, PRIVATE_DIRECTORY_MODE);
    for (const entry of readdirSync(path)) restrict(join(path, entry));
  } else if ((stats.mode & 0o777) !== PRIVATE_FILE_MODE) {
    chmodSync(path, PRIVATE_FILE_MODE);
  }
}
