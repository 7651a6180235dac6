import { appendFileSync, chmodSync, closeSync, openSync } from 'node:fs';
import { auditLine } from '#shared/adapters/stdout-audit-trail.ts';
import type { AuditEntry, AuditTrail } from '#shared/ports/audit-trail.ts';
import type { Clock } from '#shared/ports/clock.ts';

/**
 * The local run's audit trail: the same JSON lines the deployed functions write, appended to a file that
 * only its owner may read or write (0600).
 */
export class FileAuditTrail implements AuditTrail {
  readonly #file: string;
  readonly #clock: Clock;
  readonly #service: string;

  constructor(options: { file: string; clock: Clock; service: string }) {
    this.#file = options.file;
    this.#clock = options.clock;
    this.#service = options.service;
    closeSync(openSync(this.#file, 'a', 0o600));
    // A file left by an older run may have wider permissions.
    chmodSync(this.#file, 0o600);
  }

  record(entry: AuditEntry): void {
    appendFileSync(this.#file, `${auditLine(entry, this.#clock.now(), this.#service)}\n`, { mode: 0o600 });
  }
}
