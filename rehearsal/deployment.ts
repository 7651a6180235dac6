import { existsSync } from 'node:fs';
import { type AssemblyStack, type CloudAssembly, resources, type TemplateResource } from './assembly.ts';
import { RehearsalError } from './errors.ts';
import type { StandIns } from './stand-ins.ts';

/** An IAM policy document, its references resolved. */
export interface PolicyDocument {
  Version?: string;
  Statement: PolicyStatement[] | PolicyStatement;
}

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Principal?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

/** A policy of a role, named by where the template declares it. */
export interface RolePolicy {
  name: string;
  document: PolicyDocument;
}

/** One `AWS::Lambda::Function` as the template deploys it, with its references resolved locally. */
export interface DeployedFunction {
  /** `stack/logicalId`. */
  id: string;
  /** A short name for reports: the construct path inside its stack. */
  label: string;
  stack: AssemblyStack;
  logicalId: string;
  name: string;
  arn: string;
  handler: string;
  runtime: string;
  timeoutSeconds: number;
  memorySize: number;
  environment: Record<string, string>;
  /** The bundled code as the assembly holds it (what `cdk deploy` zips and uploads). */
  assetDir: string;
  logGroupName: string;
  roleName: string;
  roleArn: string;
  policies: RolePolicy[];
}

/** One route of an HTTP API, or one method of a REST API, and the function its integration invokes. */
export interface DeployedRoute {
  logicalId: string;
  routeKey: string;
  method: string;
  path: string;
  authorizationType: string;
  functionId: string;
  payloadFormatVersion: string;
  /** A REST API method's API and stage (its URL path starts with the stage); absent on an HTTP API. */
  rest?: { apiLogicalId: string; stage: string };
}

/** A scheduled rule or schedule that invokes a function, and what it sends. */
export interface DeployedSchedule {
  logicalId: string;
  kind: 'rule' | 'schedule';
  expression: string;
  arn: string;
  functionId: string;
  /** The target's constant input, when the template gives one. */
  input?: unknown;
}

/** A log subscription filter that delivers a log group's lines to a function. */
export interface DeployedSubscription {
  logicalId: string;
  logGroupName: string;
  filterPattern: string;
  functionId: string;
}

/** What the rehearsal reads from the assembly: the functions, routes, schedules and key policies. */
export interface Deployment {
  functions: DeployedFunction[];
  routes: DeployedRoute[];
  schedules: DeployedSchedule[];
  subscriptions: DeployedSubscription[];
  /** Key policies by key ARN. */
  keyPolicies: Map<string, PolicyDocument>;
}

const DEFAULT_TIMEOUT_SECONDS = 3;
const DEFAULT_MEMORY_MB = 128;

/** Reads every function, route, schedule and key policy of the assembly, resolved against the stand-ins. */
export function readDeployment(assembly: CloudAssembly, standIns: StandIns): Deployment {
  const { resolver } = standIns;
  const roles = new Map<string, { stack: AssemblyStack; logicalId: string; resource: TemplateResource }>();
  for (const entry of resources(assembly, 'AWS::IAM::Role')) {
    roles.set(standIns.physical(entry.stack, entry.logicalId)?.attributes.Arn ?? '', entry);
  }

  const functions: DeployedFunction[] = [];
  for (const { stack, logicalId, resource } of resources(assembly, 'AWS::Lambda::Function')) {
    const where = `${stack.name} ${logicalId}`;
    const props = resource.Properties ?? {};
    const physical = standIns.physical(stack, logicalId);
    const roleArn = resolver.resolveString(stack, props.Role, `${where} Role`);
    const role = roles.get(roleArn);
    if (!role) throw new RehearsalError(`${where}: its role ${roleArn} is no role of the assembly.`);
    const variables =
      (props.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {};
    const environment = Object.fromEntries(
      Object.entries(variables).map(([name, value]) => [
        name,
        resolver.resolveString(stack, value, `${where} environment variable ${name}`),
      ]),
    );
    const logGroup = (props.LoggingConfig as { LogGroup?: unknown } | undefined)?.LogGroup;
    const name = physical?.ref ?? logicalId;
    functions.push({
      id: `${stack.name}/${logicalId}`,
      label: labelOf(resource, logicalId),
      stack,
      logicalId,
      name,
      arn: physical?.attributes.Arn ?? '',
      handler: String(props.Handler ?? ''),
      runtime: String(props.Runtime ?? ''),
      timeoutSeconds: Number(props.Timeout ?? DEFAULT_TIMEOUT_SECONDS),
      memorySize: Number(props.MemorySize ?? DEFAULT_MEMORY_MB),
      environment,
      assetDir: assetDirOf(stack, logicalId, resource, standIns),
      logGroupName:
        logGroup === undefined
          ? `/aws/lambda/${name}`
          : resolver.resolveString(stack, logGroup, `${where} LoggingConfig`),
      roleName: standIns.physical(role.stack, role.logicalId)?.ref ?? '',
      roleArn,
      policies: rolePolicies(assembly, standIns, role),
    });
  }

  const byArn = new Map(functions.map((fn) => [fn.arn, fn]));
  const functionAt = (arn: string, where: string): DeployedFunction => {
    // An integration may name the function's ARN with a version or alias, or the invoke URI around it.
    const bare = /arn:aws:lambda:[^:]+:\d{12}:function:[^:/]+/.exec(arn)?.[0] ?? arn;
    const fn = byArn.get(bare);
    if (!fn) throw new RehearsalError(`${where}: ${arn} is no function of the assembly.`);
    return fn;
  };

  const routes: DeployedRoute[] = [];
  for (const { stack, logicalId, resource } of resources(assembly, 'AWS::ApiGatewayV2::Route')) {
    const where = `${stack.name} route ${logicalId}`;
    const props = resource.Properties ?? {};
    const routeKey = resolver.resolveString(stack, props.RouteKey, where);
    const [method = '', path = ''] = routeKey.split(' ');
    const target = resolver.resolveString(stack, props.Target, where);
    const integrationId = target.replace(/^integrations\//, '');
    const integration = stack.template.Resources?.[integrationId];
    if (integration?.Type !== 'AWS::ApiGatewayV2::Integration') {
      throw new RehearsalError(
        `${where} (${routeKey}): its target ${target} is no integration of ${stack.name}.`,
      );
    }
    const integrationProps = integration.Properties ?? {};
    const uri = resolver.resolveString(stack, integrationProps.IntegrationUri, `${where} integration`);
    routes.push({
      logicalId,
      routeKey,
      method,
      path,
      authorizationType: String(props.AuthorizationType ?? 'NONE'),
      functionId: functionAt(uri, `${where} (${routeKey})`).id,
      payloadFormatVersion: String(integrationProps.PayloadFormatVersion ?? '1.0'),
    });
  }

  routes.push(...restRoutes(assembly, standIns, functionAt));

  const schedules: DeployedSchedule[] = [];
  for (const { stack, logicalId, resource } of resources(assembly, 'AWS::Events::Rule')) {
    const props = resource.Properties ?? {};
    if (props.ScheduleExpression === undefined) continue;
    const where = `${stack.name} rule ${logicalId}`;
    const targets = (props.Targets as Record<string, unknown>[] | undefined) ?? [];
    for (const target of targets) {
      const arn = resolver.resolveString(stack, target.Arn, where);
      if (!arn.includes(':lambda:')) continue;
      schedules.push({
        logicalId,
        kind: 'rule',
        expression: resolver.resolveString(stack, props.ScheduleExpression, where),
        arn: standIns.physical(stack, logicalId)?.attributes.Arn ?? '',
        functionId: functionAt(arn, where).id,
        ...(target.Input === undefined
          ? {}
          : { input: JSON.parse(resolver.resolveString(stack, target.Input, where)) }),
      });
    }
  }
  for (const { stack, logicalId, resource } of resources(assembly, 'AWS::Scheduler::Schedule')) {
    const props = resource.Properties ?? {};
    const where = `${stack.name} schedule ${logicalId}`;
    const target = (props.Target ?? {}) as Record<string, unknown>;
    const arn = resolver.resolveString(stack, target.Arn, where);
    if (!arn.includes(':lambda:')) continue;
    schedules.push({
      logicalId,
      kind: 'schedule',
      expression: resolver.resolveString(stack, props.ScheduleExpression, where),
      arn: `arn:aws:scheduler:${stack.region}:${stack.account}:schedule/default/${logicalId}`,
      functionId: functionAt(arn, where).id,
      ...(target.Input === undefined
        ? {}
        : { input: JSON.parse(resolver.resolveString(stack, target.Input, where)) }),
    });
  }

  const subscriptions: DeployedSubscription[] = [];
  for (const { stack, logicalId, resource } of resources(assembly, 'AWS::Logs::SubscriptionFilter')) {
    const props = resource.Properties ?? {};
    const where = `${stack.name} subscription filter ${logicalId}`;
    const arn = resolver.resolveString(stack, props.DestinationArn, where);
    if (!arn.includes(':lambda:')) continue;
    subscriptions.push({
      logicalId,
      logGroupName: resolver.resolveString(stack, props.LogGroupName, where),
      filterPattern: resolver.resolveString(stack, props.FilterPattern ?? '', where),
      functionId: functionAt(arn, where).id,
    });
  }

  const keyPolicies = new Map<string, PolicyDocument>();
  for (const { stack, logicalId, resource } of resources(assembly, 'AWS::KMS::Key')) {
    const arn = standIns.physical(stack, logicalId)?.attributes.Arn ?? '';
    const policy = resource.Properties?.KeyPolicy;
    if (policy !== undefined) {
      keyPolicies.set(
        arn,
        resolver.resolve(stack, policy, `${stack.name} key ${logicalId}`) as PolicyDocument,
      );
    }
  }
  return { functions, routes, schedules, subscriptions, keyPolicies };
}

/**
 * The methods of the assembly's REST APIs, each as the route it serves: its path from the chain of
 * `AWS::ApiGateway::Resource` up to the API's root, and the function its Lambda proxy integration
 * (`AWS_PROXY`, payload format 1.0) invokes. Only the stage of the API's deployment serves it.
 */
function restRoutes(
  assembly: CloudAssembly,
  standIns: StandIns,
  functionAt: (arn: string, where: string) => DeployedFunction,
): DeployedRoute[] {
  const { resolver } = standIns;
  const routes: DeployedRoute[] = [];
  for (const { stack, logicalId, resource } of resources(assembly, 'AWS::ApiGateway::Method')) {
    const where = `${stack.name} method ${logicalId}`;
    const props = resource.Properties ?? {};
    const apiLogicalId = refOf(props.RestApiId, where);
    const path = restPath(stack, props.ResourceId, where);
    const method = String(props.HttpMethod ?? '');
    const routeKey = `${method} ${path}`;
    const integration = (props.Integration ?? {}) as Record<string, unknown>;
    if (integration.Type !== 'AWS_PROXY') {
      throw new RehearsalError(
        `${where} (${routeKey}): its integration is ${String(integration.Type)}; the rehearsal runs Lambda proxy integrations (AWS_PROXY) only.`,
      );
    }
    const uri = resolver.resolveString(stack, integration.Uri, `${where} integration`);
    const stages = Object.values(stack.template.Resources ?? {}).filter(
      (candidate) =>
        candidate.Type === 'AWS::ApiGateway::Stage' &&
        JSON.stringify(candidate.Properties?.RestApiId) === JSON.stringify({ Ref: apiLogicalId }),
    );
    const [stage] = stages;
    if (stages.length !== 1 || !stage) {
      throw new RehearsalError(
        `${where} (${routeKey}): its API ${apiLogicalId} has ${stages.length} stages; the rehearsal serves an API with exactly one.`,
      );
    }
    routes.push({
      logicalId,
      routeKey,
      method,
      path,
      authorizationType: String(props.AuthorizationType ?? 'NONE'),
      functionId: functionAt(uri, `${where} (${routeKey})`).id,
      payloadFormatVersion: '1.0',
      rest: { apiLogicalId, stage: resolver.resolveString(stack, stage.Properties?.StageName, where) },
    });
  }
  return routes;
}

/** The path of a REST API resource: its `PathPart`s from the root, `/` for the root itself. */
function restPath(stack: AssemblyStack, resourceId: unknown, where: string): string {
  const parts: string[] = [];
  let current = resourceId;
  for (let depth = 0; depth < 32; depth++) {
    if (typeof current === 'object' && current !== null && 'Fn::GetAtt' in current) {
      return `/${parts.reverse().join('/')}`;
    }
    const id = refOf(current, where);
    const resource = stack.template.Resources?.[id];
    if (resource?.Type !== 'AWS::ApiGateway::Resource') {
      throw new RehearsalError(`${where}: ${id} is no REST API resource of ${stack.name}.`);
    }
    parts.push(String(resource.Properties?.PathPart ?? ''));
    current = resource.Properties?.ParentId;
  }
  throw new RehearsalError(`${where}: its resource path is deeper than 32 parts.`);
}

function refOf(value: unknown, where: string): string {
  const ref = (value as { Ref?: unknown } | undefined)?.Ref;
  if (typeof ref !== 'string') throw new RehearsalError(`${where}: ${JSON.stringify(value)} is not a Ref.`);
  return ref;
}

function labelOf(resource: TemplateResource, logicalId: string): string {
  const path = resource.Metadata?.['aws:cdk:path'];
  if (typeof path !== 'string') return logicalId;
  const parts = path.split('/').slice(1);
  while (parts.length > 1 && ['Resource', 'Function'].includes(parts.at(-1) ?? '')) parts.pop();
  return parts.join('/');
}

function assetDirOf(
  stack: AssemblyStack,
  logicalId: string,
  resource: TemplateResource,
  standIns: StandIns,
): string {
  const where = `${stack.name} ${logicalId}`;
  const code = (resource.Properties?.Code ?? {}) as Record<string, unknown>;
  if (code.ZipFile !== undefined) {
    throw new RehearsalError(`${where}: inline code (Code.ZipFile) is not rehearsed; bundle it as an asset.`);
  }
  const objectKey =
    code.S3Key === undefined ? undefined : standIns.resolver.resolveString(stack, code.S3Key, where);
  const fromManifest = objectKey === undefined ? undefined : stack.assetsByObjectKey.get(objectKey);
  const dir =
    fromManifest ?? stack.assetsByObjectKey.get(String(resource.Metadata?.['aws:asset:path'] ?? ''));
  if (!dir || !existsSync(dir)) {
    throw new RehearsalError(
      `${where}: its code ${objectKey ?? '(no S3Key)'} is no asset folder of the assembly.`,
    );
  }
  return dir;
}

/** Every policy attached to a role: inline, `AWS::IAM::Policy`, and customer-managed policies of the assembly. */
function rolePolicies(
  assembly: CloudAssembly,
  standIns: StandIns,
  role: { stack: AssemblyStack; logicalId: string; resource: TemplateResource },
): RolePolicy[] {
  const { resolver } = standIns;
  const roleName = standIns.physical(role.stack, role.logicalId)?.ref ?? '';
  const where = `${role.stack.name} role ${role.logicalId}`;
  const policies: RolePolicy[] = [];
  const inline =
    (role.resource.Properties?.Policies as { PolicyName: unknown; PolicyDocument: unknown }[]) ?? [];
  for (const policy of inline) {
    const name = resolver.resolveString(role.stack, policy.PolicyName, where);
    policies.push({
      name: `${role.logicalId}/${name}`,
      document: resolver.resolve(role.stack, policy.PolicyDocument, where) as PolicyDocument,
    });
  }
  const managedArns = new Set(
    (resolver.resolve(role.stack, role.resource.Properties?.ManagedPolicyArns ?? [], where) as string[]).map(
      String,
    ),
  );
  for (const { stack, logicalId, resource } of resources(assembly)) {
    if (resource.Type !== 'AWS::IAM::Policy' && resource.Type !== 'AWS::IAM::ManagedPolicy') continue;
    const props = resource.Properties ?? {};
    const policyWhere = `${stack.name} policy ${logicalId}`;
    const attachedRoles = (resolver.resolve(stack, props.Roles ?? [], policyWhere) as unknown[]).map(String);
    const arn = standIns.physical(stack, logicalId)?.ref;
    const byArn = resource.Type === 'AWS::IAM::ManagedPolicy' && arn !== undefined && managedArns.delete(arn);
    if (byArn || attachedRoles.includes(roleName)) {
      policies.push({
        name: logicalId,
        document: resolver.resolve(stack, props.PolicyDocument, policyWhere) as PolicyDocument,
      });
    }
  }
  for (const arn of managedArns) {
    throw new RehearsalError(
      `${where}: the managed policy ${arn} is not in the assembly, so the rehearsal cannot evaluate it; write the statements the function needs.`,
    );
  }
  return policies;
}
