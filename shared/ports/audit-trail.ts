/** What a caller did, in the audit trail's words. */
export type AuditAction =
  | 'vend'
  | 'connect_session'
  | 'connect_start'
  | 'connect_completion'
  | 'connect'
  | 'registration'
  | 'import'
  | 'status'
  | 'list'
  | 'delete';

/** Where a vended token came from: the instance's memory, the store, or a refresh made for this vend. */
export type VendSource = 'cache' | 'store' | 'refresh';

/**
 * One access to the broker, as the audit trail keeps it. Only identifiers, numbers and words: never a
 * token, a code, a state, a secret or an e-mail address.
 */
export interface AuditEntry {
  action: AuditAction;
  /** `ok` (2xx/3xx), `refused` (4xx: the caller or its request was turned away), `failed` (5xx). */
  outcome: 'ok' | 'refused' | 'failed';
  /** The HTTP status answered. */
  status: number;
  /** The IAM principal that signed the request; absent on the public OAuth callback. */
  callerArn?: string;
  connectionId?: string;
  /** A vend of the client-credentials token. */
  clientToken?: true;
  /** The vended token's generation. */
  generation?: number;
  source?: VendSource;
  /** The error code answered (`forbidden`, `connection_not_found`, ...) or the callback's refusal reason. */
  error?: string;
  /** A listing: the status it asked for and how many connections it returned. */
  listedStatus?: string;
  count?: number;
  /** API Gateway's request id, to find the request in the access log. */
  requestId?: string;
}

/** Where audit entries go. Recording never throws and never waits on the network. */
export interface AuditTrail {
  record(entry: AuditEntry): void;
}
