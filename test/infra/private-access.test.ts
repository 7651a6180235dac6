import { runSimulation } from '@cloud-copilot/iam-simulate';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { createBrokerApp } from '../../infra/broker-app.ts';
import {
  ACCOUNT,
  buildApp,
  NO_BUNDLING,
  REGION,
  removeOutdirs,
  statelessWarnings,
  TEST_CONTEXT,
} from './support.ts';

type Built = ReturnType<typeof createBrokerApp>;
// biome-ignore lint/suspicious/noExplicitAny: assertions walk the synthesized template's JSON freely.
type TemplateValue = any;

const ENDPOINTS = ['vpce-0a1b2c3d4e5f60718', 'vpce-0f1e2d3c4b5a69788'] as const;
const ORGANIZATION = 'o-a1b2c3d4e5';
const OTHER_ACCOUNT = '999999999999';
const PARTNER = `arn:aws:iam::${OTHER_ACCOUNT}:role/partner`;
const PAYMENTS = `arn:aws:iam::${ACCOUNT}:role/teams/payments`;
/** The id the simulation gives the private API (the template's is a reference). */
const API_ID = 'a1b2c3d4e5';

let built: Built;
let stateless: Template;

beforeAll(() => {
  built = buildApp({
    ...TEST_CONTEXT,
    ...NO_BUNDLING,
    privateAccess: { vpcEndpointIds: [...ENDPOINTS], organizationId: ORGANIZATION },
  });
  stateless = Template.fromStack(built.stateless);
}, 600_000);
afterAll(removeOutdirs);

function resourcesOf(type: string): Record<string, { Properties: Record<string, TemplateValue> }> {
  return stateless.findResources(type) as never;
}

function only<T>(record: Record<string, T>): T {
  const values = Object.values(record);
  expect(values).toHaveLength(1);
  return values[0] as T;
}

/** Each REST method as `METHOD /path`, with its authorization type and integration. */
function restMethods(): Map<string, { authorization: string; integration: TemplateValue }> {
  const resources = resourcesOf('AWS::ApiGateway::Resource');
  const pathOf = (ref: TemplateValue): string => {
    if (ref?.['Fn::GetAtt']) return '';
    const resource = resources[ref?.Ref];
    if (!resource) throw new Error(`no resource ${JSON.stringify(ref)}`);
    return `${pathOf(resource.Properties.ParentId)}/${resource.Properties.PathPart}`;
  };
  return new Map(
    Object.values(resourcesOf('AWS::ApiGateway::Method')).map((method) => [
      `${method.Properties.HttpMethod} ${pathOf(method.Properties.ResourceId)}`,
      { authorization: method.Properties.AuthorizationType, integration: method.Properties.Integration },
    ]),
  );
}

/** The private API's resource policy as API Gateway applies it: `execute-api:/` names the API itself. */
function resourcePolicy(): { Version: string; Statement: TemplateValue[] } {
  const policy = only(resourcesOf('AWS::ApiGateway::RestApi')).Properties.Policy;
  const apiArn = `arn:aws:execute-api:${REGION}:${ACCOUNT}:${API_ID}/`;
  return JSON.parse(JSON.stringify(policy).replaceAll('execute-api:/', apiArn));
}

interface Call {
  principal: string;
  route: string;
  vpce?: string;
  orgId?: string;
  /** The caller's own identity policy: execute-api:Invoke on every API of every account by default. */
  identityPolicy?: object;
}

const INVOKE_ANYTHING = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'execute-api:Invoke', Resource: '*' }],
};

/** Evaluates a SigV4 call of the private API as AWS does: identity policy and the API's resource policy. */
async function evaluate(call: Call): Promise<string> {
  const [method, path] = call.route.split(' ');
  const account = call.principal.split(':')[4] ?? '';
  const role = call.principal.split('/').at(-1);
  const result = await runSimulation(
    {
      request: {
        principal: `arn:aws:sts::${account}:assumed-role/${role}/session`,
        action: 'execute-api:Invoke',
        resource: {
          resource: `arn:aws:execute-api:${REGION}:${ACCOUNT}:${API_ID}/broker/${method}${path}`,
          accountId: ACCOUNT,
        },
        contextVariables: {
          'aws:PrincipalArn': call.principal,
          'aws:PrincipalAccount': account,
          'aws:PrincipalOrgID': call.orgId ?? ORGANIZATION,
          'aws:SourceVpce': call.vpce ?? ENDPOINTS[0],
        },
      },
      identityPolicies: [{ name: 'caller', policy: call.identityPolicy ?? INVOKE_ANYTHING }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: resourcePolicy(),
    },
    {},
  );
  if (result.resultType !== 'single') throw new Error(JSON.stringify(result));
  return result.overallResult;
}

describe('private access', () => {
  it('puts every IAM route on the private REST API with IAM authorization, each to its function', () => {
    const methods = restMethods();
    const functionOf = (route: string) => {
      const uri = JSON.stringify(methods.get(route)?.integration.Uri);
      return Object.entries(built.stateless.functions).find(([, fn]) =>
        uri.includes(`"${built.stateless.getLogicalId(fn.function.node.defaultChild as never)}"`),
      )?.[0];
    };

    expect([...methods.keys()].sort()).toEqual(
      [
        'DELETE /connections/{id}',
        'GET /connections',
        'GET /connections/{id}',
        'POST /connect-sessions',
        'POST /connections/{id}/completion',
        'POST /connections/{id}/import',
        'POST /connections/{id}/registration-code',
        'POST /tokens',
      ].sort(),
    );
    for (const { authorization, integration } of methods.values()) {
      expect(authorization).toBe('AWS_IAM');
      expect(integration).toMatchObject({ Type: 'AWS_PROXY', IntegrationHttpMethod: 'POST' });
    }
    expect(functionOf('POST /tokens')).toBe('tokens');
    expect(functionOf('POST /connections/{id}/completion')).toBe('connect-sessions');
    expect(functionOf('POST /connections/{id}/registration-code')).toBe('registration');
    expect(functionOf('DELETE /connections/{id}')).toBe('connections');
    expect(functionOf('POST /connections/{id}/import')).toBe('import');
  });

  it("leaves only the browser's pages, unsigned, on the public HTTP API", () => {
    const routes = Object.values(resourcesOf('AWS::ApiGatewayV2::Route')).map((route) => [
      route.Properties.RouteKey,
      route.Properties.AuthorizationType,
    ]);

    expect(routes).toEqual([
      ['GET /oauth/start', 'NONE'],
      ['GET /oauth/callback', 'NONE'],
    ]);
  });

  it('is a private endpoint bound to the configured VPC endpoints', () => {
    const api = only(resourcesOf('AWS::ApiGateway::RestApi')).Properties;

    expect(api.EndpointConfiguration).toEqual({ Types: ['PRIVATE'], VpcEndpointIds: ENDPOINTS });
    expect(api.Name).toBe('wise-broker-test-private');
  });

  it('throttles its stage like the HTTP API and logs every request with the caller and the VPC endpoint', () => {
    const stage = only(resourcesOf('AWS::ApiGateway::Stage')).Properties;

    expect(stage.StageName).toBe('broker');
    expect(stage.MethodSettings).toEqual([
      expect.objectContaining({ ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 }),
    ]);
    expect(JSON.parse(stage.AccessLogSetting.Format)).toMatchObject({
      callerArn: '$context.identity.userArn',
      vpceId: '$context.identity.vpceId',
    });
  });

  it('lets a caller of this account in through the VPC endpoints, and refuses it through any other or outside the Organization', async () => {
    expect(await evaluate({ principal: PAYMENTS, route: 'POST /tokens' })).toBe('Allowed');
    expect(await evaluate({ principal: PAYMENTS, route: 'POST /tokens', vpce: ENDPOINTS[1] })).toBe(
      'Allowed',
    );
    expect(
      await evaluate({ principal: PAYMENTS, route: 'POST /tokens', vpce: 'vpce-0123456789abcdef0' }),
    ).toBe('ExplicitlyDenied');
    expect(await evaluate({ principal: PAYMENTS, route: 'POST /tokens', orgId: 'o-zzzzzzzzzz' })).toBe(
      'ExplicitlyDenied',
    );
  });

  it('lets a caller of another account in on the routes of its grants only, when its own account allows it', async () => {
    // partner holds only clientToken: POST /tokens.
    expect(await evaluate({ principal: PARTNER, route: 'POST /tokens' })).toBe('Allowed');
    expect(await evaluate({ principal: PARTNER, route: 'GET /connections' })).toBe('ImplicitlyDenied');
    expect(await evaluate({ principal: PARTNER, route: 'POST /connect-sessions' })).toBe('ImplicitlyDenied');
    expect(
      await evaluate({
        principal: PARTNER,
        route: 'POST /tokens',
        identityPolicy: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }],
        },
      }),
    ).toBe('ImplicitlyDenied');
    expect(
      await evaluate({ principal: PARTNER, route: 'POST /tokens', vpce: 'vpce-0123456789abcdef0' }),
    ).toBe('ExplicitlyDenied');
  });

  it('grants nothing to a principal of another account that is not in callers, even inside the Organization', async () => {
    for (const route of [
      'POST /tokens',
      'POST /connect-sessions',
      'GET /connections',
      'POST /connections/x/import',
    ]) {
      expect(await evaluate({ principal: `arn:aws:iam::${OTHER_ACCOUNT}:role/intruder`, route })).toBe(
        'ImplicitlyDenied',
      );
      expect(await evaluate({ principal: 'arn:aws:iam::111111111111:role/payments', route })).toBe(
        'ImplicitlyDenied',
      );
    }
  });

  it('names each caller in the resource policy on its grants alone', () => {
    const allows = resourcePolicy().Statement.filter((statement) => statement.Effect === 'Allow');
    const principalsOf = (sid: string) =>
      [allows.find((statement) => statement.Sid === sid)?.Principal.AWS].flat().sort();

    expect(principalsOf('CallersVend')).toEqual(
      [
        PAYMENTS,
        `arn:aws:iam::${ACCOUNT}:role/quotes`,
        `arn:aws:iam::${ACCOUNT}:role/support`,
        PARTNER,
      ].sort(),
    );
    expect(principalsOf('CallersAdmin')).toEqual(
      [`arn:aws:iam::${ACCOUNT}:user/ops`, `arn:aws:iam::${ACCOUNT}:role/support`].sort(),
    );
    expect(principalsOf('CallersImport')).toEqual([`arn:aws:iam::${ACCOUNT}:role/migration`]);
    expect(JSON.stringify(allows)).not.toContain('"*"');
  });

  it("points the managed policies at the private API's routes", () => {
    const vend = Object.values(resourcesOf('AWS::IAM::ManagedPolicy')).find(
      (policy) => policy.Properties.ManagedPolicyName === 'wise-broker-test-vend',
    );
    const resource = JSON.stringify(vend?.Properties.PolicyDocument.Statement[0].Resource);

    expect(resource).toContain('PrivateApi');
    expect(resource).toContain('/*/POST/tokens');
  });

  it('outputs the private API URL for the calling services and its id for other accounts', () => {
    const outputs = stateless.findOutputs('*');

    expect(JSON.stringify(outputs.ApiUrl?.Value)).toContain('PrivateApi');
    // `${ApiUrl}/tokens` as with the HTTP API: the stage's URL without a trailing slash.
    expect(JSON.stringify(outputs.ApiUrl?.Value)).toMatch(
      /"\/",\{"Ref":"PrivateApiDeploymentStagebroker\w+"\}\]\]\}$/,
    );
    expect(JSON.stringify(outputs.PrivateApiId?.Value)).toContain('PrivateApi');
    expect(JSON.stringify(outputs.CallbackUrl?.Value)).toContain('ApiEndpoint');
  });

  it('writes the private API URL, the one callers call, to the SSM parameter', () => {
    const outputs = stateless.findOutputs('*');
    const [parameter] = Object.values(stateless.findResources('AWS::SSM::Parameter'));

    expect(parameter?.Properties.Value).toEqual(outputs.ApiUrl?.Value);
  });

  it("shows the private API's requests, errors and latency on the broker's dashboard", () => {
    const body = JSON.stringify(only(resourcesOf('AWS::CloudWatch::Dashboard')).Properties.DashboardBody);

    expect(body).toContain('Private API (IAM routes)');
    expect(body).toContain('wise-broker-test-private');
    expect(body).toContain('5XXError');
  });

  it('does not warn about the caller of another account: the resource policy lets it in', () => {
    const warnings = statelessWarnings(built);

    expect(warnings.filter((warning) => warning.includes(PARTNER))).toEqual([]);
  });

  it('leaves cdk-nag AwsSolutions nothing unacknowledged', () => {
    expect(new AwsSolutionsChecks().validateScope(built.app).violations).toEqual([]);
  });
});

describe('public access, the default', () => {
  it('has no REST API: every route is on the HTTP API', () => {
    const publicApp = buildApp({ ...TEST_CONTEXT, ...NO_BUNDLING });
    const template = Template.fromStack(publicApp.stateless);

    expect(template.findResources('AWS::ApiGateway::RestApi')).toEqual({});
    expect(Object.keys(template.findResources('AWS::ApiGatewayV2::Route'))).toHaveLength(10);
  });
});
