import type { AuditEntry, AuditTrail } from '#shared/ports/audit-trail.ts';
import type { Clock } from '#shared/ports/clock.ts';
import { systemClock } from '#shared/ports/clock.ts';

/**
 * The key that marks a line as the audit trail's: `"audit": true`. In AWS a subscription filter on each
 * function's log group (`{ $.audit IS TRUE }`) forwards exactly these lines to the audit log group.
 */
export const AUDIT_MARKER = 'audit';

/** One audit entry as the JSON line the trail keeps: the marker, the time, the service, the entry. */
export function auditLine(entry: AuditEntry, now: number, service: string): string {
  return JSON.stringify({ [AUDIT_MARKER]: true, time: new Date(now).toISOString(), service, ...entry });
}

/**
 * Writes audit entries to standard output, one JSON line each, beside the function's logs and
 * independent of the log level. Lambda sends standard output to the function's log group; the audit
 * forwarder copies the marked lines into the audit log group. No AWS call is made here, so recording
 * costs a vend nothing but the write.
 */
export class StdoutAuditTrail implements AuditTrail {
  readonly #write: (line: string) => void;
  readonly #clock: Clock;
  readonly #service: string;

  constructor(options: { write?: (line: string) => void; clock?: Clock; service?: string } = {}) {
    this.#write = options.write ?? ((line) => process.stdout.write(`${line}\n`));
    this.#clock = options.clock ?? systemClock;
    this.#service = options.service ?? process.env.POWERTOOLS_SERVICE_NAME ?? 'wise-token-broker';
  }

  record(entry: AuditEntry): void {
    this.#write(auditLine(entry, this.#clock.now(), this.#service));
  }
}
