import type { Grant } from './policy-check.ts';

/** Why a permission stays in a role although no call of the rehearsal used it. */
export interface UnusedGrantReason {
  /** Which grants the reason covers. */
  covers: (grant: Grant) => boolean;
  reason: string;
}

function viaService(grant: Grant): string | undefined {
  const value = grant.condition?.StringEquals?.['kms:ViaService'];
  return typeof value === 'string' ? value : undefined;
}

/**
 * The permissions a deployment needs that no rehearsal can use, each with its reason. A grant no call used
 * and no reason here covers fails the rehearsal: remove the grant, or add its reason.
 */
export const UNUSED_GRANT_REASONS: readonly UnusedGrantReason[] = [
  {
    covers: (grant) => grant.action === 'logs:CreateLogStream' || grant.action === 'logs:PutLogEvents',
    reason:
      "Lambda itself writes the function's output to its log group with the role's credentials; the rehearsal keeps each process's output in a file.",
  },
  {
    covers: (grant) =>
      grant.action === 'xray:PutTraceSegments' || grant.action === 'xray:PutTelemetryRecords',
    reason:
      "Active tracing: Lambda's X-Ray integration sends the trace segments with the role; no X-Ray runs locally.",
  },
  {
    covers: (grant) => grant.action !== 'kms:Decrypt' && viaService(grant)?.startsWith('dynamodb.') === true,
    reason:
      "DynamoDB uses the table's customer-managed key with the caller's permissions when it creates, rotates or caches the table key; the rehearsal checks the Decrypt each table call implies, but the embedded engine has no table key to make.",
  },
  {
    covers: (grant) =>
      ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'].includes(grant.action),
    reason:
      "A dead-letter queue: Lambda itself sends an event that failed every retry there with the function's role; no delivery of the journey failed.",
  },
  {
    covers: (grant) =>
      grant.functionLabel === 'oauth-callback' &&
      (grant.action === 'events:PutEvents' ||
        (JSON.stringify(grant.condition ?? {}).includes('CONNECTION#') &&
          (grant.action === 'dynamodb:GetItem' || grant.action === 'dynamodb:UpdateItem')) ||
        (JSON.stringify(grant.condition ?? {}).includes('WISE_USER#') &&
          grant.action === 'dynamodb:PutItem')),
    reason:
      'The callback stores the connection itself (announces it, and links its Wise user) only for a session without a return URL, which only connectWithoutConfirmation allows; the rehearsed configuration confirms every connection with its completion code.',
  },
  {
    covers: (grant) => grant.functionLabel === 'refresh' && grant.action === 'dynamodb:Query',
    reason:
      'The sweep reads a record with its fence (a Query) only when another holder has its lease or the answer to its write was lost (refresh-record.ts, withoutLease and landedRecord); the journey meets neither.',
  },
  {
    covers: (grant) =>
      grant.functionLabel === 'connect-sessions' &&
      JSON.stringify(grant.condition ?? {}).includes('data_key') &&
      (grant.action === 'kms:GenerateDataKey' || grant.action === 'kms:Decrypt'),
    reason:
      "A completion code exchanged after its connection was refreshed or disconnected since the callback seals the pending grant again for the next generation (complete-authorization.ts, saveNewConnection); the journey's completion follows its callback at once.",
  },
];

/** The reason a grant stays unused, or undefined when none covers it. */
export function unusedGrantReason(grant: Grant): string | undefined {
  return UNUSED_GRANT_REASONS.find((entry) => entry.covers(grant))?.reason;
}
