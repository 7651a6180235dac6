import { createValidatedPolicy, validateResourcePolicy } from '@cloud-copilot/iam-policy';
import { runSimulation, runUnsafeSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import type { DeployedFunction, Deployment, PolicyDocument, PolicyStatement } from './deployment.ts';

/** One AWS request a function made (or one a service made on its behalf, such as KMS for Secrets Manager). */
export interface AwsCall {
  functionId: string;
  /** The IAM action, such as `kms:Decrypt`. */
  action: string;
  resource: string;
  index?: string;
  encryptionContext?: Record<string, string>;
  /** Set when a service calls KMS for the function: the `kms:ViaService` it presents. */
  viaService?: string;
  /** Condition keys the request carries, besides the principal's. */
  context: Record<string, string | string[]>;
}

/** How the policies answered one call. */
export interface CallDecision {
  decision: 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';
  /** The statements that allowed it, as `policy#statement` keys. */
  allowedBy: string[];
  /** For a denial: which statement was missing or which one denied, in a sentence. */
  explanation?: string;
}

/** A permission a function's role grants: one action of one statement. */
export interface Grant {
  functionId: string;
  /** The function's construct path inside its stack, such as `refresh`. */
  functionLabel: string;
  policy: string;
  statement: number;
  action: string;
  resources: string[];
  condition?: PolicyStatement['Condition'];
}

interface PreparedFunction {
  fn: DeployedFunction;
  principal: string;
  policies: { name: string; policy: PolicyDocument }[];
  statements: { key: string; policy: string; index: number; statement: PolicyStatement }[];
}

/**
 * Evaluates every call against the calling function's role policies from the template and, for KMS, the
 * key policy, with `@cloud-copilot/iam-simulate` (AWS's documented evaluation logic: explicit deny, then
 * resource policy, then identity policies). The project writes no evaluation of its own.
 */
export class PolicyEvaluator {
  readonly #deployment: Deployment;
  readonly #functions = new Map<string, PreparedFunction>();

  constructor(deployment: Deployment) {
    this.#deployment = deployment;
    for (const fn of deployment.functions) {
      const statements: PreparedFunction['statements'] = [];
      const policies = fn.policies.map(({ name, document }) => {
        const list = Array.isArray(document.Statement) ? document.Statement : [document.Statement];
        list.forEach((statement, index) => {
          statements.push({ key: `${name}#${index}`, policy: name, index, statement });
        });
        return { name, policy: { Version: document.Version ?? '2012-10-17', Statement: list } };
      });
      const roleSession = `arn:aws:sts::${fn.stack.account}:assumed-role/${fn.roleName}/${fn.name}`;
      this.#functions.set(fn.id, { fn, principal: roleSession, policies, statements });
    }
  }

  /** Every Allow grant of every function's role, one per action of each statement. */
  grants(): Grant[] {
    const grants: Grant[] = [];
    for (const { fn, statements } of this.#functions.values()) {
      for (const { policy, index, statement } of statements) {
        if (statement.Effect !== 'Allow') continue;
        for (const action of list(statement.Action)) {
          grants.push({
            functionId: fn.id,
            functionLabel: fn.label,
            policy,
            statement: index,
            action,
            resources: list(statement.Resource),
            ...(statement.Condition ? { condition: statement.Condition } : {}),
          });
        }
      }
    }
    return grants;
  }

  async evaluate(call: AwsCall): Promise<CallDecision> {
    const prepared = this.#functions.get(call.functionId);
    if (!prepared) {
      return {
        decision: 'ImplicitlyDenied',
        allowedBy: [],
        explanation: `${call.functionId} is no function of the assembly`,
      };
    }
    const { fn } = prepared;
    const keyPolicy = call.action.startsWith('kms:')
      ? this.#deployment.keyPolicies.get(call.resource)
      : undefined;
    const simulation: Simulation = {
      request: {
        principal: prepared.principal,
        action: call.action,
        resource: { resource: call.resource, accountId: fn.stack.account },
        contextVariables: {
          'aws:PrincipalArn': fn.roleArn,
          'aws:PrincipalAccount': fn.stack.account,
          'aws:PrincipalType': 'AssumedRole',
          'aws:SecureTransport': 'true',
          'aws:RequestedRegion': fn.stack.region,
          ...call.context,
        },
      },
      identityPolicies: prepared.policies,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(keyPolicy ? { resourcePolicy: keyPolicy } : {}),
    };
    // The validated entry point checks the action, the ARN, the policies and the context keys' types...
    const validated = await runSimulation(simulation, {});
    if (validated.resultType === 'error') {
      return {
        decision: 'ImplicitlyDenied',
        allowedBy: [],
        explanation: `${describeCall(call)}: the policy evaluator refused the request: ${JSON.stringify(validated.errors)}`,
      };
    }
    // ...but (in iam-simulate 0.1.173) drops `kms:EncryptionContext:<key>` from the request's context, as it
    // matches only `/`-separated variable keys. The same engine, given the context as it is, decides.
    // The engine names each policy in its analysis; a validated policy carries the key policy's name.
    const unsafe: Simulation = {
      ...simulation,
      ...(keyPolicy
        ? { resourcePolicy: createValidatedPolicy(keyPolicy, validateResourcePolicy, { name: 'key policy' }) }
        : {}),
    };
    const decision = runUnsafeSimulation(unsafe, {});
    const allowedBy: string[] = [];
    const candidates: string[] = [];
    for (const { key, policy, index, statement } of prepared.statements) {
      if (
        statement.Effect !== 'Allow' ||
        !list(statement.Action).some((action) => actionMatches(action, call.action))
      ) {
        continue;
      }
      const alone = runUnsafeSimulation(
        {
          ...unsafe,
          identityPolicies: [{ name: policy, policy: { Version: '2012-10-17', Statement: [statement] } }],
        },
        {},
      );
      if (alone === 'Allowed') allowedBy.push(key);
      else candidates.push(`${policy} statement ${index} (${describeStatement(statement)})`);
    }
    if (decision === 'Allowed') return { decision, allowedBy };
    const what = describeCall(call);
    let explanation: string;
    if (decision === 'ExplicitlyDenied') {
      explanation = `${what} is explicitly denied by a Deny statement of the role's policies or the key policy`;
    } else if (allowedBy.length > 0) {
      explanation = `${what} is allowed by the role's policy (${allowedBy.join(', ')}) but not by the key policy of ${call.resource}: it needs a statement for the role ${fn.roleArn} or its account`;
    } else {
      explanation =
        `${what} is implicitly denied: no statement of the role ${fn.roleName} allows ${call.action} on that resource` +
        (call.encryptionContext ? ' under that encryption context' : '') +
        (candidates.length > 0
          ? `. Statements naming ${call.action} whose resource or condition does not match: ${candidates.join('; ')}`
          : `. No statement of the role names ${call.action}`);
    }
    return { decision, allowedBy, explanation };
  }
}

function describeStatement(statement: PolicyStatement): string {
  const condition = statement.Condition ? ` when ${JSON.stringify(statement.Condition)}` : '';
  return `${list(statement.Action).join(', ')} on ${list(statement.Resource).join(', ')}${condition}`;
}

/** `kms:Decrypt on arn:... (index x, encryption context {...}, via secretsmanager)`. */
export function describeCall(call: AwsCall): string {
  const details = [
    call.index === undefined ? undefined : `index ${call.index}`,
    call.encryptionContext === undefined
      ? undefined
      : `encryption context ${JSON.stringify(call.encryptionContext)}`,
    call.viaService === undefined ? undefined : `via ${call.viaService}`,
  ].filter((detail) => detail !== undefined);
  return `${call.action} on ${call.resource}${details.length > 0 ? ` (${details.join(', ')})` : ''}`;
}

function list(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Whether an IAM action pattern (with `*` and `?`) names the action, case-insensitively as IAM does. */
export function actionMatches(pattern: string, action: string): boolean {
  const expression = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${expression}$`, 'i').test(action);
}
