import { Annotations, ArnFormat, Stack, Validations } from 'aws-cdk-lib';
import {
  ArnPrincipal,
  CompositePrincipal,
  ManagedPolicy,
  PolicyStatement,
  Role,
  User,
} from 'aws-cdk-lib/aws-iam';
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import { Construct } from 'constructs';
import { type CallerConfig, ConfigurationError } from '#shared/config/broker-config.ts';
import { CONNECTION_GRANTS, type ConnectionGrant } from '#shared/domain/caller-policy.ts';
import { BROKER_ROUTES, invokePath, type RouteAccess } from './routes.ts';

/** The kinds of calling service, each with a managed policy for its routes. */
export type CallerKind = Exclude<RouteAccess, 'public'>;

export const CALLER_KINDS: readonly CallerKind[] = ['vend', 'connect', 'admin', 'import'];

const PURPOSE: Record<CallerKind, string> = {
  vend: 'fetch access tokens (POST /tokens)',
  connect:
    'connect Wise users (POST /connect-sessions, POST /connections/{id}/completion, POST /connections/{id}/registration-code)',
  admin: 'list, read and disconnect connections (GET /connections, GET and DELETE /connections/{id})',
  import: 'import existing Wise connections by their refresh tokens (POST /connections/{id}/import)',
};

/**
 * The managed policies each grant of the configuration needs. `POST /tokens` serves both a connection's
 * token and the client-credentials token, so `use` and `clientToken` share the vend policy there and the
 * broker's caller policy tells them apart; `administer` never reaches a route that vends or connects.
 */
export const GRANT_POLICIES = {
  use: ['vend', 'connect'],
  administer: ['admin'],
  import: ['import'],
  clientToken: ['vend'],
} as const satisfies Record<ConnectionGrant | 'clientToken', readonly CallerKind[]>;

/** The managed policies a caller's entry in the configuration needs: those of the grants it holds. */
export function callerKinds(caller: CallerConfig): CallerKind[] {
  const held = [
    ...(Object.keys(CONNECTION_GRANTS) as ConnectionGrant[]).filter((grant) => caller[grant].length > 0),
    ...(caller.clientToken ? (['clientToken'] as const) : []),
  ];
  const kinds = new Set<CallerKind>(held.flatMap((grant) => GRANT_POLICIES[grant]));
  return CALLER_KINDS.filter((kind) => kinds.has(kind));
}

export interface CallerAccessProps {
  /** The API of the IAM routes: the HTTP API, or the private REST API. */
  readonly apiId: string;
  readonly stage: string;
  readonly callers: readonly CallerConfig[];
  /**
   * The API has a resource policy that names the callers (the private API): a caller of another account
   * is let in by it, and needs no role here.
   */
  readonly resourcePolicy?: boolean;
}

/**
 * IAM access to the broker's routes: one managed policy per kind of calling service, granting
 * `execute-api:Invoke` on exactly its routes, for calling teams to attach to their roles; and the attachments
 * for the roles and users of this account named in the configuration's `callers`, by the grants each holds
 * ({@link GRANT_POLICIES}). The broker itself still checks every caller against `callers`: which grant, on
 * which connections.
 */
export class CallerAccess extends Construct {
  readonly policies: Readonly<Record<CallerKind, ManagedPolicy>>;

  constructor(scope: Construct, id: string, props: CallerAccessProps) {
    super(scope, id);
    const stack = Stack.of(this);

    const policyFor = (kind: CallerKind): ManagedPolicy => {
      const routeArns = BROKER_ROUTES.filter((route) => route.access === kind).map((route) =>
        stack.formatArn({
          service: 'execute-api',
          resource: props.apiId,
          // Any stage: each API has one.
          resourceName: `*/${invokePath(route)}`,
          arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
        }),
      );
      const policy = new ManagedPolicy(this, `${kind}-policy`, {
        managedPolicyName: `wise-broker-${props.stage}-${kind}`,
        description: `Lets a calling service ${PURPOSE[kind]} on the Wise token broker (${props.stage})`,
        statements: [new PolicyStatement({ actions: ['execute-api:Invoke'], resources: routeArns })],
      });
      for (const arn of routeArns) {
        Validations.of(policy).acknowledge({
          id: `AwsSolutions-IAM5[Resource::${flattenCfnReference(stack.resolve(arn))}]`,
          reason:
            'A route ARN: "*" stands for the stage (the API has one) and for a path parameter (a connection id); the method and path are exact.',
        });
      }
      return policy;
    };
    this.policies = {
      vend: policyFor('vend'),
      connect: policyFor('connect'),
      admin: policyFor('admin'),
      import: policyFor('import'),
    };

    props.callers.forEach((caller, index) => {
      const account = caller.principal.split(':')[4];
      if (caller.assumableBy !== undefined) {
        if (account !== stack.account) {
          throw new ConfigurationError('the deployment configuration', [
            {
              path: `callers[${index}].principal`,
              message: `must be a role of the deployment's account ${stack.account} when "assumableBy" is given: the deployment creates that role for those principals to assume`,
            },
          ]);
        }
        const role = assumableRole(
          this,
          `assumable-${index}`,
          caller.principal,
          caller.assumableBy,
          props.stage,
        );
        for (const kind of callerKinds(caller)) this.policies[kind].attachToRole(role);
        return;
      }
      if (account !== stack.account) {
        // The private API's resource policy names it; its own account allows it the routes.
        if (props.resourcePolicy) return;
        Annotations.of(this).addWarningV2(
          'wise-broker:cross-account-caller',
          `callers[${index}] (${caller.principal}) is in another account; HTTP APIs have no resource policies, so that service must assume a role in ${stack.account} that has the managed policies attached: name that role in "principal" and the service in its "assumableBy".`,
        );
        return;
      }
      const kinds = callerKinds(caller);
      if (caller.principal.includes(':user/')) {
        const user = User.fromUserArn(this, `caller-${index}`, caller.principal);
        for (const kind of kinds) this.policies[kind].attachToUser(user);
      } else {
        const role = Role.fromRoleArn(this, `caller-${index}`, caller.principal, { mutable: true });
        for (const kind of kinds) this.policies[kind].attachToRole(role);
      }
    });
  }
}

/**
 * The role a caller of another account assumes to reach the HTTP API: named and placed as the caller's
 * `principal` says, trusting exactly the principals of `assumableBy` (no account root, no Organization
 * wildcard), so nobody else can take it up.
 */
function assumableRole(
  scope: Construct,
  id: string,
  principal: string,
  assumableBy: readonly string[],
  stage: string,
): Role {
  const [, path = '', name = ''] = /:role(\/(?:[^/]+\/)*)([^/]+)$/.exec(principal) ?? [];
  return new Role(scope, id, {
    roleName: name,
    path,
    description: `Assumed by a calling service of another account to call the Wise token broker (${stage})`,
    assumedBy: new CompositePrincipal(...assumableBy.map((arn) => new ArnPrincipal(arn))),
  });
}
