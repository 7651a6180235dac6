import { Annotations, ArnFormat, Stack, Validations } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { ManagedPolicy, PolicyStatement, Role, User } from 'aws-cdk-lib/aws-iam';
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import { Construct } from 'constructs';
import type { CallerConfig } from '#shared/config/broker-config.ts';
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
  readonly api: HttpApi;
  readonly stage: string;
  readonly callers: readonly CallerConfig[];
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
          resource: props.api.apiId,
          // Any stage: the API has only its default one.
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
      if (account !== stack.account) {
        Annotations.of(this).addWarningV2(
          'wise-broker:cross-account-caller',
          `callers[${index}] (${caller.principal}) is in another account; HTTP APIs have no resource policies, so that service must assume a role in ${stack.account} that has the managed policies attached.`,
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
