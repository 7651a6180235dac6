import { join } from 'node:path';

/** Where each test file's leak-scan counts go, one JSON file each (`LEAK_SCAN_DIR` for another place). */
export const LEAK_REPORTS_DIR = process.env.LEAK_SCAN_DIR ?? join(process.cwd(), 'test-results', 'leak-scan');

/** Registered values shorter than this are not searched for: they would match ordinary text. */
export const MIN_SECRET_LENGTH = 16;

/** What the leak scan saw in one test file; `found` names kinds and places, never a value. */
export interface LeakReport {
  file: string;
  /** Captured writes, error bodies, pages and redirects. */
  outputs: number;
  lines: number;
  secrets: number;
  secretsByKind: Record<string, number>;
  found: Array<{ kind: string; source: string; context: string }>;
}
