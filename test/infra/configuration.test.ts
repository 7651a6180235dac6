import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';
import { type BrokerDeployment, BrokerFunction, PROJECT_ROOT } from '../../infra/broker-function.ts';
import {
  ACCOUNT,
  buildApp,
  configurationErrorOf,
  NO_BUNDLING,
  REGION,
  removeOutdirs,
  variablesOf,
} from './support.ts';

const folder = mkdtempSync(join(tmpdir(), 'broker-config-files-'));
afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
  removeOutdirs();
});

const env = { account: ACCOUNT, region: REGION };

describe('the CDK app configuration', () => {
  it("synthesizes cdk.json's example sandbox deployment", () => {
    const { context } = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8'));

    const { config, stateful, stateless } = buildApp({ ...context, ...NO_BUNDLING });

    expect(config.stage).toBe('sandbox');
    expect(stateful.stackName).toBe('WiseBroker-sandbox-Stateful');
    expect(stateless.stackName).toBe('WiseBroker-sandbox-Stateless');
    expect(stateful.account).toBe(context.env.account);
    expect(stateless.region).toBe(context.env.region);
  });

  it('synthesizes the documented example, broker.example.json', () => {
    const { config, stateless } = buildApp({
      configFile: join(PROJECT_ROOT, 'broker.example.json'),
      ...NO_BUNDLING,
    });

    expect(config.stage).toBe('prod');
    expect(config.wise.apiUrl).toBe('https://api.wise.com');
    expect(Template.fromStack(stateless).findResources('AWS::IAM::ManagedPolicy')).not.toEqual({});
  });

  it('reads a configuration file named by configFile instead of the top-level context', () => {
    const file = join(folder, 'prod.json');
    writeFileSync(file, JSON.stringify({ stage: 'prod', env, wise: { environment: 'production' } }));

    const { config, stateless } = buildApp({ configFile: file, stage: 'ignored', ...NO_BUNDLING });

    expect(config.stage).toBe('prod');
    expect(config.wise.apiUrl).toBe('https://api.wise.com');
    expect(stateless.stackName).toBe('WiseBroker-prod-Stateless');
  });

  it('parses context values given as JSON text on the command line', () => {
    const { config } = buildApp({
      stage: 'cli',
      env: JSON.stringify(env),
      refresh: '{"fraction": 0.7}',
      ...NO_BUNDLING,
    });

    expect(config.env).toEqual(env);
    expect(config.refresh.fraction).toBe(0.7);
  });

  it('refuses to synthesize without an account and region, saying how to give them', () => {
    const error = configurationErrorOf(() => buildApp({ stage: 'noenv', ...NO_BUNDLING }));

    expect(error.message).toMatch(/env: is required to deploy/);
    expect(error.message).toContain('"env": {"account": "123456789012", "region": "eu-west-1"}');
  });

  it('reports a missing account and region in the same pass as every other bad field', () => {
    const error = configurationErrorOf(() => buildApp({ stage: 'Bad Stage', ...NO_BUNDLING }));

    expect(error.problems.map((problem) => problem.path)).toEqual(['stage', 'env']);
  });

  it('fails with every bad field of the context and its fix', () => {
    const error = configurationErrorOf(() =>
      buildApp({ stage: 'Prod', env, refresh: { sweepSeconds: 90 }, callers: [{ principal: 'payments' }] }),
    );

    expect(error.message).toContain('the CDK context');
    expect(error.problems.map((problem) => problem.path)).toEqual([
      'stage',
      'callers[0].principal',
      'refresh.sweepSeconds',
      'callers[0]',
    ]);
  });

  it('names a configuration file that cannot be read', () => {
    const error = configurationErrorOf(() => buildApp({ configFile: join(folder, 'missing.json') }));

    expect(error.message).toMatch(/missing\.json[\s\S]*cannot be read \(ENOENT\)/);
  });

  it('exits the CDK app with the message and no stack trace when the configuration is bad', () => {
    let stderr = '';
    let status = 0;
    try {
      execFileSync(process.execPath, [join(PROJECT_ROOT, 'infra/app.ts')], {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        stdio: 'pipe',
        env: { PATH: process.env.PATH ?? '', CDK_CONTEXT_JSON: JSON.stringify({ stage: 'Bad Stage', env }) },
      });
    } catch (error) {
      const failure = error as { status: number; stderr: string };
      status = failure.status;
      stderr = failure.stderr;
    }

    expect(status).toBe(1);
    expect(stderr).toContain('  - stage: must be 1 to 20 lowercase letters, digits or hyphens');
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

describe('deployment choices', () => {
  it('lets a test stage destroy its data when the stacks are deleted', () => {
    const { stateful } = buildApp({ stage: 'scratch', env, removalPolicy: 'destroy', ...NO_BUNDLING });
    const template = Template.fromStack(stateful);

    template.hasResource('AWS::DynamoDB::GlobalTable', {
      DeletionPolicy: 'Delete',
      Properties: { Replicas: [{ DeletionProtectionEnabled: false }] },
    });
    template.hasResource('AWS::KMS::Key', {
      DeletionPolicy: 'Delete',
      Properties: { PendingWindowInDays: 7 },
    });
    template.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Delete' });
  });

  it('uses a configured redirect URI instead of the API callback URL', () => {
    const redirectUri = 'https://broker.example.com/oauth/callback';

    const { stateless } = buildApp({ stage: 'domain', env, redirectUri, ...NO_BUNDLING });

    expect(variablesOf(stateless, 'tokens').REDIRECT_URI).toBe(redirectUri);
    Template.fromStack(stateless).hasOutput('CallbackUrl', { Value: redirectUri });
  });

  it.each([
    [undefined, false],
    ['broker-client-1', false],
  ])(
    'gives the connect-sessions function no Wise secret, with or without wise.clientId (%s)',
    (clientId, reads) => {
      const wise = clientId === undefined ? {} : { clientId };

      const { stateless } = buildApp({ stage: 'client-id', env, wise, ...NO_BUNDLING });

      const secretReaders = Object.values(
        Template.fromStack(stateless).findResources('AWS::IAM::Policy'),
      ).filter((policy) =>
        JSON.stringify(policy.Properties.PolicyDocument).includes('secretsmanager:GetSecretValue'),
      );
      const roleOf = (name: string) => {
        const fn = (stateless as Stack & { functions: Record<string, BrokerFunction> }).functions[name]
          ?.function;
        return stateless.getLogicalId(fn?.role?.node.defaultChild as CfnElement);
      };
      const readers = (name: string) =>
        secretReaders.some((policy) => JSON.stringify(policy.Properties.Roles).includes(`"${roleOf(name)}"`));
      expect(readers('connect-sessions')).toBe(reads);
      expect(readers('oauth-callback')).toBe(true);
    },
  );

  it('runs the sweep at the configured period, bounded by the same time', () => {
    const { stateless } = buildApp({ stage: 'slow', env, refresh: { sweepSeconds: 300 }, ...NO_BUNDLING });
    const template = Template.fromStack(stateless);
    const refreshId = stateless.getLogicalId(
      stateless.functions.refresh.function.node.defaultChild as CfnElement,
    );

    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
    expect(template.findResources('AWS::Lambda::Function')[refreshId]?.Properties.Timeout).toBe(300);
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumEventAgeInSeconds: 300 });
  });

  it("throttles the API stage and sizes the functions' memory as configured", () => {
    const { stateless } = buildApp({
      stage: 'sized',
      env,
      api: { throttle: { rateLimit: 250, burstLimit: 500 } },
      functions: { memorySize: 256, memorySizes: { tokens: 1024 } },
      ...NO_BUNDLING,
    });
    const template = Template.fromStack(stateless);
    const memoryOf = (name: 'tokens' | 'refresh') =>
      template.findResources('AWS::Lambda::Function')[
        stateless.getLogicalId(stateless.functions[name].function.node.defaultChild as CfnElement)
      ]?.Properties.MemorySize;

    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 250, ThrottlingBurstLimit: 500 },
    });
    expect(memoryOf('tokens')).toBe(1024);
    expect(memoryOf('refresh')).toBe(256);
    expect(variablesOf(stateless, 'tokens').BROKER_CONFIG).not.toContain('memorySize');
  });

  it('refuses a memory size for a function the broker does not have, naming the ones it has', () => {
    const error = configurationErrorOf(() =>
      buildApp({ stage: 'typo', env, functions: { memorySizes: { token: 1024 } }, ...NO_BUNDLING }),
    );

    expect(error.message).toContain('functions.memorySizes');
    expect(error.message).toContain('token, which is not a broker function: use connect-sessions');
  });

  it('subscribes no e-mail address when none is configured', () => {
    const { stateless } = buildApp({ stage: 'quiet', env, ...NO_BUNDLING });

    Template.fromStack(stateless).resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('refuses a caller policy too large for the Lambda environment', () => {
    const callers = Array.from({ length: 40 }, (_, index) => ({
      principal: `arn:aws:iam::${ACCOUNT}:role/service-number-${index}`,
      use: [`customer-${index}-*`],
    }));

    const error = configurationErrorOf(() => buildApp({ stage: 'big', env, callers, ...NO_BUNDLING }));

    expect(error.problems[0]?.path).toBe('callers');
    expect(error.message).toMatch(/BROKER_CONFIG \d+ characters, over the 3200/);
  });

  it('names the inline logo, and the https alternative, when it makes the configuration too large', () => {
    const callers = Array.from({ length: 16 }, (_, index) => ({
      principal: `arn:aws:iam::${ACCOUNT}:role/service-number-${index}`,
      use: [`customer-${index}-*`],
    }));
    const brand = { name: 'Acme Payments', logo: `data:image/png;base64,${'A'.repeat(2000)}` };

    const error = configurationErrorOf(() => buildApp({ stage: 'big', env, callers, brand, ...NO_BUNDLING }));

    expect(error.problems[0]?.path).toBe('brand.logo');
    expect(error.message).toMatch(
      /with the inline image, over the 3200 .*give the logo as an https:\/\/ URL/,
    );
  });
});

describe('BrokerFunction', () => {
  const deployment: BrokerDeployment = {
    config: parseBrokerConfig({ stage: 'unit' }, 'test'),
    redirectUri: 'https://broker.example.com/oauth/callback',
    tableName: 'table',
    keyArn: `arn:aws:kms:${REGION}:${ACCOUNT}:key/1`,
    secretArn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:wise-AbCdEf`,
    eventBusName: 'bus',
  };

  function stack(): Stack {
    const { app } = buildApp({ stage: 'host', env, ...NO_BUNDLING });
    return new Stack(app, 'FunctionHost', { env });
  }

  it('adds its own variables to the common ones', () => {
    const host = stack();
    const fn = new BrokerFunction(host, 'Fn', {
      entry: 'functions/tokens/handler.ts',
      description: 'test',
      deployment,
      environment: { EXTRA: 'yes' },
      timeout: Duration.seconds(10),
    });

    const properties =
      Template.fromStack(host).findResources('AWS::Lambda::Function')[
        host.getLogicalId(fn.function.node.defaultChild as CfnFunction)
      ]?.Properties;

    expect(properties.Environment.Variables).toMatchObject({
      EXTRA: 'yes',
      TABLE_NAME: 'table',
    });
    expect(properties.Timeout).toBe(10);
  });

  it('refuses a variable that would replace a common one', () => {
    expect(
      () =>
        new BrokerFunction(stack(), 'Fn', {
          entry: 'functions/tokens/handler.ts',
          description: 'test',
          deployment,
          environment: { TABLE_NAME: 'other' },
        }),
    ).toThrow(/TABLE_NAME are set for every broker function/);
  });
});
