import { BrokerError, ForbiddenError } from './errors.ts';

/**
 * The grants over connections a caller may hold, each with its own connection-id patterns, and what each
 * lets a caller do. They are separate: administering a connection never lets a caller take its token or
 * link it to another Wise account, and using one never lets it list or delete; importing a connection
 * (storing a refresh token from another system) neither uses nor administers it. A new grant is one more
 * entry here, one more field in the configuration and one more managed policy.
 */
export const CONNECTION_GRANTS = {
  use: 'create connect sessions and registrations for, or vend the token of,',
  administer: 'list, read the status of or delete',
  import: 'import an existing Wise authorization, with its refresh token, into',
} as const;

/** One grant over connections, by its name in the configuration's `callers`. */
export type ConnectionGrant = keyof typeof CONNECTION_GRANTS;

/**
 * One entry of the deployment's `callers` configuration: the connection-id patterns of each grant it holds
 * (`*` matches any run of characters, everything else is literal), and whether it may fetch the
 * application's client-credentials token.
 */
export type CallerRule = { principal: string; clientToken?: boolean } & {
  readonly [grant in ConnectionGrant]?: readonly string[];
};

/** Whether a connection-id pattern covers a connection id. */
export function connectionPatternMatches(pattern: string, connectionId: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === connectionId;
  const first = parts[0] ?? '';
  const last = parts[parts.length - 1] ?? '';
  if (connectionId.length < first.length + last.length) return false;
  if (!connectionId.startsWith(first) || !connectionId.endsWith(last)) return false;
  let position = first.length;
  const end = connectionId.length - last.length;
  for (const middle of parts.slice(1, -1)) {
    const found = connectionId.indexOf(middle, position);
    if (found === -1 || found + middle.length > end) return false;
    position = found + middle.length;
  }
  return true;
}

interface PrincipalIdentity {
  partition: string;
  account: string;
  kind: 'role' | 'user';
  name: string;
}

const ASSUMED_ROLE = /^arn:([\w-]+):sts::(\d{12}):assumed-role\/([^/]+)\/[^/]+$/;
const IAM_PRINCIPAL = /^arn:([\w-]+):iam::(\d{12}):(role|user)\/(?:[^/]+\/)*([^/]+)$/;

/**
 * Reads an IAM principal ARN. API Gateway reports a role's callers by their assumed-role session ARN,
 * which carries neither the role's path nor its ARN form; both forms reduce to account, kind and name.
 */
export function principalIdentity(arn: string): PrincipalIdentity | undefined {
  const assumed = ASSUMED_ROLE.exec(arn);
  if (assumed) {
    const [, partition = '', account = '', name = ''] = assumed;
    return { partition, account, kind: 'role', name };
  }
  const iam = IAM_PRINCIPAL.exec(arn);
  if (iam) {
    const [, partition = '', account = '', kind, name = ''] = iam;
    return { partition, account, kind: kind === 'role' ? 'role' : 'user', name };
  }
  return undefined;
}

function samePrincipal(a: PrincipalIdentity, b: PrincipalIdentity): boolean {
  return a.partition === b.partition && a.account === b.account && a.kind === b.kind && a.name === b.name;
}

/** Authorizes callers by their IAM principal against the deployment's `callers` configuration. */
export class CallerPolicy {
  readonly #rules: ReadonlyArray<{ identity: PrincipalIdentity; rule: CallerRule }>;

  constructor(rules: readonly CallerRule[]) {
    this.#rules = rules.map((rule) => {
      const identity = principalIdentity(rule.principal);
      if (!identity) {
        // Fail at cold start rather than refuse that caller's every request without a word.
        throw new BrokerError(
          `The caller policy names "${rule.principal}", which is not an IAM role or user ARN such as arn:aws:iam::123456789012:role/payments.`,
        );
      }
      return { identity, rule };
    });
  }

  /** The rules that apply to a caller; several entries for one principal add up. */
  rulesFor(callerArn: string): CallerRule[] {
    const caller = principalIdentity(callerArn);
    if (!caller) return [];
    return this.#rules.filter(({ identity }) => samePrincipal(identity, caller)).map(({ rule }) => rule);
  }

  /** Every connection-id pattern of one grant the caller holds, across its rules, each once. */
  patternsFor(callerArn: string, grant: ConnectionGrant): string[] {
    return [...new Set(this.rulesFor(callerArn).flatMap((rule) => rule[grant] ?? []))];
  }

  /** Whether one of the caller's patterns of that grant covers the connection. */
  allows(callerArn: string, grant: ConnectionGrant, connectionId: string): boolean {
    return this.patternsFor(callerArn, grant).some((pattern) =>
      connectionPatternMatches(pattern, connectionId),
    );
  }

  /** Whether the caller may create sessions and registrations for, and vend the token of, a connection. */
  mayUseConnection(callerArn: string, connectionId: string): boolean {
    return this.allows(callerArn, 'use', connectionId);
  }

  mayUseClientToken(callerArn: string): boolean {
    return this.rulesFor(callerArn).some((rule) => rule.clientToken === true);
  }

  /** Whether the caller may read the status of, list and delete a connection. */
  mayAdminister(callerArn: string, connectionId: string): boolean {
    return this.allows(callerArn, 'administer', connectionId);
  }

  /** Whether the caller administers any connection at all (and so may list). */
  isAdmin(callerArn: string): boolean {
    return this.patternsFor(callerArn, 'administer').length > 0;
  }

  /** @throws ForbiddenError unless one of the caller's patterns of that grant covers the connection */
  assertAllows(callerArn: string, grant: ConnectionGrant, connectionId: string): void {
    if (!this.allows(callerArn, grant, connectionId)) {
      throw new ForbiddenError(
        `${callerArn} may not ${CONNECTION_GRANTS[grant]} connection "${connectionId}"; the broker's caller policy must cover it with one of this caller's "${grant}" patterns.`,
      );
    }
  }

  assertMayUseConnection(callerArn: string, connectionId: string): void {
    this.assertAllows(callerArn, 'use', connectionId);
  }

  assertMayUseClientToken(callerArn: string): void {
    if (!this.mayUseClientToken(callerArn)) {
      throw new ForbiddenError(
        `${callerArn} may not use the client-credentials token; the broker's caller policy must set clientToken for it.`,
      );
    }
  }

  assertMayAdminister(callerArn: string, connectionId: string): void {
    this.assertAllows(callerArn, 'administer', connectionId);
  }

  assertIsAdmin(callerArn: string): void {
    if (!this.isAdmin(callerArn)) {
      throw new ForbiddenError(
        `${callerArn} may not list connections; the broker's caller policy must give it "administer" patterns.`,
      );
    }
  }
}
