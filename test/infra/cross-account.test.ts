import { runSimulation } from '@cloud-copilot/iam-simulate';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError } from '#shared/config/broker-config.ts';
import type { createBrokerApp } from '../../infra/broker-app.ts';
import { ACCOUNT, buildApp, NO_BUNDLING, removeOutdirs, statelessWarnings, TEST_CONTEXT } from './support.ts';

type Built = ReturnType<typeof createBrokerApp>;
// biome-ignore lint/suspicious/noExplicitAny: assertions walk the synthesized template's JSON freely.
type TemplateValue = any;

const OTHER_ACCOUNT = '210987654321';
const SERVICE = `arn:aws:iam::${OTHER_ACCOUNT}:role/payments-service`;
const BRIDGE = `arn:aws:iam::${ACCOUNT}:role/partners/payments-service-caller`;
const CALLER = { principal: BRIDGE, use: ['partner-*'], assumableBy: [SERVICE] };

let built: Built;
let stateless: Template;

beforeAll(() => {
  built = buildApp({ ...TEST_CONTEXT, ...NO_BUNDLING, callers: [...TEST_CONTEXT.callers, CALLER] });
  stateless = Template.fromStack(built.stateless);
}, 600_000);
afterAll(removeOutdirs);

function bridgeRole(): Record<string, TemplateValue> {
  const roles = Object.values(stateless.findResources('AWS::IAM::Role')).filter(
    (role) => role.Properties.RoleName === 'payments-service-caller',
  );
  expect(roles).toHaveLength(1);
  return roles[0]?.Properties;
}

/** Whether `principal` (a role session of its account) may assume the bridge role, as STS decides it. */
async function mayAssume(principal: string): Promise<string> {
  const account = principal.split(':')[4] ?? '';
  const result = await runSimulation(
    {
      request: {
        principal: `arn:aws:sts::${account}:assumed-role/${principal.split('/').at(-1)}/session`,
        action: 'sts:AssumeRole',
        resource: { resource: BRIDGE, accountId: ACCOUNT },
        contextVariables: { 'aws:PrincipalArn': principal, 'aws:PrincipalAccount': account },
      },
      // The service's own account lets it assume any role: only the trust policy decides.
      identityPolicies: [
        {
          name: 'caller',
          policy: {
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }],
          },
        },
      ],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: bridgeRole().AssumeRolePolicyDocument,
    },
    {},
  );
  if (result.resultType !== 'single') throw new Error(JSON.stringify(result));
  return result.overallResult;
}

describe('a caller of another account on the HTTP API', () => {
  it("creates the caller's role where its principal says, trusting only the principals of assumableBy", () => {
    const role = bridgeRole();

    expect(role.Path).toBe('/partners/');
    expect(role.AssumeRolePolicyDocument.Statement).toEqual([
      { Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { AWS: SERVICE } },
    ]);
  });

  it('lets the named service assume it, and no other principal of its account or of any other', async () => {
    expect(await mayAssume(SERVICE)).toBe('Allowed');
    expect(await mayAssume(`arn:aws:iam::${OTHER_ACCOUNT}:role/intruder`)).toBe('ImplicitlyDenied');
    expect(await mayAssume('arn:aws:iam::999999999999:role/payments-service')).toBe('ImplicitlyDenied');
  });

  it('attaches to it the managed policies of its grants, and only those', () => {
    const attached = (name: string) => {
      const policy = Object.values(stateless.findResources('AWS::IAM::ManagedPolicy')).find(
        (candidate) => candidate.Properties.ManagedPolicyName === name,
      );
      return JSON.stringify(policy?.Properties.Roles ?? []);
    };
    const roleRef = Object.keys(
      stateless.findResources('AWS::IAM::Role', { Properties: { RoleName: 'payments-service-caller' } }),
    )[0];

    expect(attached('wise-broker-test-vend')).toContain(`"${roleRef}"`);
    expect(attached('wise-broker-test-connect')).toContain(`"${roleRef}"`);
    expect(attached('wise-broker-test-admin')).not.toContain(`"${roleRef}"`);
    expect(attached('wise-broker-test-import')).not.toContain(`"${roleRef}"`);
  });

  it('creates no role for a caller of another account without assumableBy, and warns how to let it in', () => {
    const warnings = statelessWarnings(built);

    expect(JSON.stringify(stateless.findResources('AWS::IAM::Role'))).not.toContain('999999999999');
    expect(warnings.find((warning) => warning.includes('arn:aws:iam::999999999999:role/partner'))).toContain(
      'assumableBy',
    );
  });

  it('leaves cdk-nag AwsSolutions nothing unacknowledged', () => {
    expect(new AwsSolutionsChecks().validateScope(built.app).violations).toEqual([]);
  });

  it("refuses a caller with assumableBy whose role is not in the deployment's account", () => {
    const foreign = { ...CALLER, principal: `arn:aws:iam::${OTHER_ACCOUNT}:role/elsewhere` };

    expect(() => buildApp({ ...TEST_CONTEXT, ...NO_BUNDLING, callers: [foreign] })).toThrow(
      ConfigurationError,
    );
    expect(() => buildApp({ ...TEST_CONTEXT, ...NO_BUNDLING, callers: [foreign] })).toThrow(
      /callers\[0\]\.principal: must be a role of the deployment's account/,
    );
  });
});
