import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RehearsalResult, rehearse, synthesizeForRehearsal } from '../../rehearsal/rehearse.ts';
import { writeReport } from '../../rehearsal/report.ts';
import { changedAssemblyCopy } from './support.ts';

interface Resource {
  Type: string;
  Properties: Record<string, unknown> & {
    MetricName?: string;
    Handler?: string;
    Environment?: { Variables: Record<string, unknown> };
    PolicyDocument?: { Statement: { Action: string | string[]; Condition?: unknown }[] };
    Roles?: { Ref: string }[];
    Role?: { 'Fn::GetAtt': [string, string] };
    RouteKey?: string;
    Target?: unknown;
    AuthorizationType?: string;
    IntegrationUri?: { 'Fn::GetAtt': [string, string] };
  };
}
type Template = { Resources: Record<string, Resource> };

const workDir = mkdtempSync(join(tmpdir(), 'rehearsal-test-'));
const assemblyDir = join(workDir, 'cdk.out');

/** A copy of the synthesized assembly whose templates `change` edits, as a deployer's mistake would. */
function brokenAssembly(name: string, change: (templates: Template[]) => void): string {
  return changedAssemblyCopy(assemblyDir, join(workDir, name), change);
}

function resources(templates: Template[]): [string, Resource][] {
  return templates.flatMap((template) => Object.entries(template.Resources));
}

function route(templates: Template[], routeKey: string): Resource {
  const found = resources(templates).find(([, resource]) => resource.Properties.RouteKey === routeKey);
  if (!found) throw new Error(`no route ${routeKey}`);
  return found[1];
}

/** The logical id of the function a route's integration invokes. */
function functionBehind(templates: Template[], routeKey: string): string {
  const target = JSON.stringify(route(templates, routeKey).Properties.Target);
  const integration = resources(templates).find(
    ([id, resource]) => resource.Type === 'AWS::ApiGatewayV2::Integration' && target.includes(`"${id}"`),
  );
  const uri = integration?.[1].Properties.IntegrationUri?.['Fn::GetAtt'];
  if (!uri) throw new Error(`no integration for ${routeKey}`);
  return uri[0];
}

function lambda(templates: Template[], logicalId: string): Resource {
  const found = resources(templates).find(([id]) => id === logicalId);
  if (!found) throw new Error(`no function ${logicalId}`);
  return found[1];
}

describe('the deployment rehearsal', () => {
  let passing: RehearsalResult;

  beforeAll(async () => {
    await synthesizeForRehearsal(assemblyDir);
    passing = await rehearse({ assemblyDir });
    writeReport(passing);
  }, 300_000);

  afterAll(() => {
    rmSync(workDir, { recursive: true, force: true });
  });

  it('runs the whole journey through every function of the synthesized assembly with no denial', () => {
    expect(passing.failures).toEqual([]);
    // A function the journey never invokes is named in a warning: the journey leaves none uninvoked.
    expect(passing.warnings).toEqual([]);
    expect(passing.ok).toBe(true);
    expect(passing.journey.map((step) => step.name)).toEqual(
      expect.arrayContaining([
        'an unsigned call to an IAM route is refused',
        'connect session, approval at Wise, callback and completion',
        'vend',
        'a second connection, of another Wise user',
        'client-credentials token',
        'registration-code connection',
        'imported connection',
        'listing, page by page',
        'status',
        'scheduled sweep refreshes the due token',
        'vend of the new generation',
        'rejectedGeneration',
        're-authorization event from a vend',
        're-authorization event from the scheduled sweep',
        'delete',
      ]),
    );
    expect(passing.journey.every((step) => step.ok)).toBe(true);
    expect(passing.functions.map((fn) => fn.function)).toEqual(
      expect.arrayContaining([
        'connect-sessions',
        'connections',
        'import',
        'oauth-callback',
        'refresh',
        'registration',
        'tokens',
      ]),
    );
    for (const fn of passing.functions) {
      expect(fn.invocations, fn.function).toBeGreaterThan(0);
      expect(fn.initMs, fn.function).toBeGreaterThan(0);
      expect(fn.bundleBytes, fn.function).toBeGreaterThan(0);
      expect(fn.denials, fn.function).toBe(0);
    }
    // The import's store, key, secret and bus grants are each used, as its policy holds them.
    expect(
      Object.keys(passing.functions.find((fn) => fn.function === 'import')?.callsByOperation ?? {}),
    ).toEqual(
      expect.arrayContaining([
        'dynamodb:PutItem',
        'kms:GenerateDataKey',
        'secretsmanager:GetSecretValue',
        'events:PutEvents',
      ]),
    );
  });

  it('records each AWS call with its resource, index and encryption context, and the statement that allowed it', () => {
    const calls = passing.calls;
    expect(calls.some((call) => call.action === 'dynamodb:Query' && call.index === 'refresh-due')).toBe(true);
    // Every record's secrets are sealed under a data key made for that record and generation.
    const sealed = calls.find(
      (call) => call.action === 'kms:GenerateDataKey' && call.encryptionContext?.kind === 'data_key',
    );
    expect(sealed?.encryptionContext?.deployment).toBe('sandbox');
    expect(sealed?.encryptionContext?.record).toMatch(/^connection:/);
    expect(sealed?.encryptionContext?.generation).toMatch(/^\d+$/);
    expect(sealed?.allowedBy.length).toBeGreaterThan(0);
    expect(
      calls.some(
        (call) =>
          call.action === 'events:PutEvents' && call.resource.endsWith(':event-bus/wise-broker-sandbox'),
      ),
    ).toBe(true);
    expect(
      calls.some((call) => call.viaService?.startsWith('secretsmanager.') && call.action === 'kms:Decrypt'),
    ).toBe(true);
    expect(calls.every((call) => call.decision === 'Allowed')).toBe(true);
  });

  it('gives a reason for every permission the journey leaves unused', () => {
    const unused = passing.functions.flatMap((fn) => fn.unusedPermissions);
    expect(unused.length).toBeGreaterThan(0);
    expect(unused.filter((permission) => permission.reason === undefined)).toEqual([]);
  });

  it('reports each metric the functions emitted with the alarms and widgets that watch it, and why each other watched metric was not emitted', () => {
    const metrics = passing.metrics;
    const emitted = (name: string) =>
      metrics?.emitted.find(
        (metric) => metric.name === name && Object.keys(metric.dimensions).join() === 'service',
      );

    expect(emitted('TokenVended')?.functions).toContain('tokens');
    expect(emitted('TokenVended')?.widgets).toEqual(['wise-broker-sandbox › Tokens']);
    expect(emitted('ReauthorizationRequired')?.alarms).toEqual([
      'wise-broker-sandbox-ReauthorizationRequired',
    ]);
    expect(emitted('ConnectionsAtRisk')?.alarms).toEqual(['wise-broker-sandbox-ConnectionsAtRisk']);
    expect(emitted('RefreshSucceeded')?.alarms).toEqual(['wise-broker-sandbox-RefreshSuccessRatio']);
    expect(metrics?.unemitted.map((metric) => metric.name)).toEqual(
      expect.arrayContaining(['ConnectionLostToCrash', 'InvalidClient']),
    );
    expect(metrics?.unemitted.filter((metric) => metric.reason === undefined)).toEqual([]);
    expect(metrics?.publishedByAws.some((metric) => metric.namespace === 'AWS/Lambda')).toBe(true);
  });

  it("fails naming the alarm when an alarm's metric name is misspelt", async () => {
    const dir = brokenAssembly('alarm-misspelt', (templates) => {
      for (const [, resource] of resources(templates)) {
        if (resource.Properties.MetricName === 'ReauthorizationRequired') {
          resource.Properties.MetricName = 'ReauthorisationRequired';
        }
      }
    });
    const result = await rehearse({ assemblyDir: dir });

    expect(result.ok).toBe(false);
    expect(result.failures).toEqual([
      expect.stringMatching(
        /^The alarm wise-broker-sandbox-ReauthorizationRequired watches WiseTokenBroker ReauthorisationRequired \{service=wise-broker-sandbox\}, which no function emitted during the journey/,
      ),
    ]);
  }, 120_000);

  it("fails naming the handler when a function's handler is renamed", async () => {
    const dir = brokenAssembly('handler-renamed', (templates) => {
      lambda(templates, functionBehind(templates, 'POST /tokens')).Properties.Handler = 'index.vend';
    });
    const result = await rehearse({ assemblyDir: dir });
    expect(result.ok).toBe(false);
    expect(result.failures.join('\n')).toMatch(/tokens .*Handler "index\.vend".*Runtime\.HandlerNotFound/);
  }, 120_000);

  it('fails naming the variable when an environment variable is dropped', async () => {
    const dir = brokenAssembly('variable-dropped', (templates) => {
      const variables = lambda(templates, functionBehind(templates, 'POST /tokens')).Properties.Environment
        ?.Variables;
      delete variables?.TABLE_NAME;
    });
    const result = await rehearse({ assemblyDir: dir });
    expect(result.ok).toBe(false);
    expect(result.failures.join('\n')).toMatch(
      /tokens logged ".*The environment variable TABLE_NAME is not set/,
    );
  }, 120_000);

  it("fails naming the missing statement when kms:Decrypt is removed from the vend function's role", async () => {
    const dir = brokenAssembly('decrypt-removed', (templates) => {
      const role = lambda(templates, functionBehind(templates, 'POST /tokens')).Properties.Role?.[
        'Fn::GetAtt'
      ][0];
      for (const [, resource] of resources(templates)) {
        if (resource.Type !== 'AWS::IAM::Policy' || resource.Properties.Roles?.[0]?.Ref !== role) continue;
        for (const statement of resource.Properties.PolicyDocument?.Statement ?? []) {
          if (!JSON.stringify(statement.Condition ?? {}).includes('kms:EncryptionContext:deployment'))
            continue;
          statement.Action = [statement.Action].flat().filter((action) => action !== 'kms:Decrypt');
        }
      }
    });
    const result = await rehearse({ assemblyDir: dir });
    expect(result.ok).toBe(false);
    const failures = result.failures.join('\n');
    expect(failures).toMatch(
      /tokens: kms:Decrypt on arn:aws:kms:\S+ \(encryption context \{"deployment":"sandbox".*is implicitly denied: no statement of the role \S*tokens\S* allows kms:Decrypt/,
    );
    expect(result.functions.find((fn) => fn.function === 'tokens')?.denials).toBeGreaterThan(0);
  }, 120_000);

  it('fails naming the function that answered when a route is pointed at another function', async () => {
    const dir = brokenAssembly('route-rewired', (templates) => {
      route(templates, 'POST /tokens').Properties.Target = route(
        templates,
        'GET /connections',
      ).Properties.Target;
    });
    const result = await rehearse({ assemblyDir: dir });
    expect(result.ok).toBe(false);
    expect(result.failures.join('\n')).toMatch(
      /Journey step "vend" failed: POST \/tokens .*answered \d+, expected 200.*POST \/tokens \(authorization AWS_IAM, function connections\)/,
    );
  }, 120_000);

  it('fails naming the authorization type when the callback route is made IAM-only', async () => {
    const dir = brokenAssembly('callback-iam', (templates) => {
      route(templates, 'GET /oauth/callback').Properties.AuthorizationType = 'AWS_IAM';
    });
    const result = await rehearse({ assemblyDir: dir });
    expect(result.ok).toBe(false);
    expect(result.failures.join('\n')).toMatch(
      /Journey step "connect session.*" failed: GET \/oauth\/callback answered 403, expected 303.*GET \/oauth\/callback \(authorization AWS_IAM, function oauth-callback\) answered 403/,
    );
  }, 120_000);

  it('fails naming the redirect URI when it leads to a host no callback of the assembly answers on', async () => {
    const dir = brokenAssembly('redirect-elsewhere', (templates) => {
      for (const [, resource] of resources(templates)) {
        const variables = resource.Properties.Environment?.Variables;
        if (variables?.REDIRECT_URI !== undefined) {
          variables.REDIRECT_URI = 'https://elsewhere.example.com/oauth/callback';
        }
      }
    });
    const result = await rehearse({ assemblyDir: dir });
    expect(result.ok).toBe(false);
    expect(result.failures.join('\n')).toMatch(
      /REDIRECT_URI https:\/\/elsewhere\.example\.com\/oauth\/callback is neither on the API's endpoint nor on a custom domain/,
    );
  }, 120_000);
});
