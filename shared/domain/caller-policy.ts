import { BrokerError, ForbiddenError } from './errors.ts';

/** One entry of the deployment's `callers` configuration. */
export interface CallerRule {
  principal: string;
  /** Connection-id patterns; `*` matches any run of characters, everything else is literal. */
  connections: readonly string[];
  clientToken?: boolean;
  admin?: boolean;
}

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

  /** Whether the caller may create sessions and registrations for, and vend the token of, a connection. */
  mayUseConnection(callerArn: string, connectionId: string): boolean {
    return this.rulesFor(callerArn).some((rule) => covers(rule, connectionId));
  }

  mayUseClientToken(callerArn: string): boolean {
    return this.rulesFor(callerArn).some((rule) => rule.clientToken === true);
  }

  /** Whether the caller may read the status of, list and delete a connection. */
  mayAdminister(callerArn: string, connectionId: string): boolean {
    return this.rulesFor(callerArn).some((rule) => rule.admin === true && covers(rule, connectionId));
  }

  isAdmin(callerArn: string): boolean {
    return this.rulesFor(callerArn).some((rule) => rule.admin === true);
  }

  assertMayUseConnection(callerArn: string, connectionId: string): void {
    if (!this.mayUseConnection(callerArn, connectionId)) {
      throw new ForbiddenError(
        `${callerArn} may not use connection "${connectionId}"; the broker's caller policy has no pattern for it.`,
      );
    }
  }

  assertMayUseClientToken(callerArn: string): void {
    if (!this.mayUseClientToken(callerArn)) {
      throw new ForbiddenError(
        `${callerArn} may not use the client-credentials token; the broker's caller policy must set clientToken for it.`,
      );
    }
  }

  assertMayAdminister(callerArn: string, connectionId: string): void {
    if (!this.mayAdminister(callerArn, connectionId)) {
      throw new ForbiddenError(
        `${callerArn} may not administer connection "${connectionId}"; the caller policy must make it an admin with a pattern for it.`,
      );
    }
  }

  assertIsAdmin(callerArn: string): void {
    if (!this.isAdmin(callerArn)) {
      throw new ForbiddenError(
        `${callerArn} may not list connections; the caller policy must make it an admin.`,
      );
    }
  }
}

function covers(rule: CallerRule, connectionId: string): boolean {
  return rule.connections.some((pattern) => connectionPatternMatches(pattern, connectionId));
}
