import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';
import { BrokerFunction } from '../../infra/broker-function.ts';
import { ACCOUNT, REGION } from './support.ts';

const CALLER = `arn:aws:iam::${ACCOUNT}:role/payments`;
const STRANGER = `arn:aws:iam::${ACCOUNT}:role/stranger`;

let workdir: string;
let bundle: string;
let environment: Record<string, string>;

// The tokens function exactly as the stateless stack builds it: the one function construct, bundled by the CDK.
beforeAll(() => {
  workdir = mkdtempSync(join(tmpdir(), 'broker-bundle-'));
  const app = new App({ outdir: join(workdir, 'cdk.out') });
  const stack = new Stack(app, 'Bundle', { env: { account: ACCOUNT, region: REGION } });
  const fn = new BrokerFunction(stack, 'tokens', {
    entry: 'functions/tokens/handler.ts',
    description: 'Vends tokens',
    deployment: {
      config: parseBrokerConfig(
        { stage: 'test', callers: [{ principal: CALLER, use: ['acme-*'] }] },
        'the test',
      ),
      redirectUri: 'https://broker.example.com/oauth/callback',
      tableName: 'wise-broker-test',
      keyArn: `arn:aws:kms:${REGION}:${ACCOUNT}:key/00000000-0000-0000-0000-000000000000`,
      secretArn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:wise-broker/test/wise-credentials`,
      eventBusName: 'wise-broker-test',
    },
  });
  const assembly = app.synth();
  const template = Template.fromStack(stack);
  const id = stack.getLogicalId(fn.function.node.defaultChild as CfnElement);
  const { Properties: properties } = template.toJSON().Resources[id] as {
    Properties: { Code: { S3Key: string }; Environment: { Variables: Record<string, string> } };
  };
  bundle = join(assembly.directory, `asset.${properties.Code.S3Key.replace(/\.zip$/, '')}`, 'index.mjs');
  environment = properties.Environment.Variables;
}, 300_000);
afterAll(() => rmSync(workdir, { recursive: true, force: true }));

/** A `POST /tokens` event as API Gateway sends it, signed by `principal`. */
function tokensEvent(principal: string, body: string) {
  return {
    version: '2.0',
    routeKey: 'POST /tokens',
    rawPath: '/tokens',
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    requestContext: {
      accountId: ACCOUNT,
      apiId: 'api',
      authorizer: { iam: { userArn: principal } },
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: {
        method: 'POST',
        path: '/tokens',
        protocol: 'HTTP/1.1',
        sourceIp: '198.51.100.7',
        userAgent: 't',
      },
      requestId: 'request-1',
      routeKey: 'POST /tokens',
      stage: '$default',
      time: '01/Dec/2026:12:00:00 +0000',
      timeEpoch: 1_796_126_400_000,
    },
    body,
    isBase64Encoded: false,
  };
}

/**
 * Runs the built bundle (not the source) in its own Node.js process with `env`, invokes its handler with
 * each event in turn, and returns the JSON lines it printed.
 */
function runBundle(env: Record<string, string>, events: unknown[]): Array<Record<string, unknown>> {
  const driver = join(workdir, 'driver.mjs');
  writeFileSync(
    driver,
    `const { handler } = await import(${JSON.stringify(bundle)});
const events = JSON.parse(process.argv[2]);
for (const event of events) {
  await handler(event, {
    functionName: 'tokens', functionVersion: '$LATEST', memoryLimitInMB: '512', awsRequestId: 'request-1',
    invokedFunctionArn: 'arn:aws:lambda:${REGION}:${ACCOUNT}:function:tokens', logGroupName: '/aws/lambda/tokens',
    logStreamName: 'stream', callbackWaitsForEmptyEventLoop: true, getRemainingTimeInMillis: () => 20000,
  });
}
`,
  );
  const run = spawnSync(process.execPath, [driver, JSON.stringify(events)], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', AWS_REGION: REGION, ...env },
  });
  expect(run.status).toBe(0);
  return `${run.stdout}\n${run.stderr}`
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('a deployed bundle', () => {
  it('logs a refused request with the error class named as in the source', () => {
    const lines = runBundle(environment, [
      tokensEvent(CALLER, '{"connectionId": 42}'),
      tokensEvent(STRANGER, '{"connectionId": "acme-1"}'),
    ]);

    const refused = lines.filter((line) => line.message === 'Request refused');
    expect(refused.map((line) => line.error)).toEqual(['InvalidRequestError', 'ForbiddenError']);
    expect(refused.map((line) => line.callerArn)).toEqual([CALLER, STRANGER]);
    const audited = lines.filter((line) => line.audit === true);
    expect(audited).toMatchObject([
      { action: 'vend', outcome: 'refused', status: 400, callerArn: CALLER, requestId: 'request-1' },
      { action: 'vend', outcome: 'refused', status: 403, callerArn: STRANGER, connectionId: 'acme-1' },
    ]);
  });

  it('logs an unexpected error with its class and function names, its frames in the bundle by default', () => {
    const { BROKER_CONFIG: _missing, ...withoutConfig } = environment;
    expect(withoutConfig).not.toHaveProperty('NODE_OPTIONS');

    const error = unexpectedError(withoutConfig);

    expect(error?.name).toBe('MissingSettingError');
    expect(error?.stack).toMatch(/at requiredSetting \(.*index\.mjs:\d+:\d+\)/);
    expect(error?.stack).not.toContain('shared/runtime/function-environment.ts');
  });

  it('logs the frames in the source files with functions.sourceMaps (Node reads the shipped source map)', () => {
    const { BROKER_CONFIG: _missing, ...withoutConfig } = environment;

    const error = unexpectedError({ ...withoutConfig, NODE_OPTIONS: '--enable-source-maps' });

    expect(error?.name).toBe('MissingSettingError');
    expect(error?.stack).toContain('shared/runtime/function-environment.ts');
    expect(error?.stack).toMatch(/at requiredSetting \(/);
  });
});

/** The error the bundle logs for a request it cannot serve because its configuration is missing. */
function unexpectedError(env: Record<string, string>) {
  const lines = runBundle(env, [tokensEvent(CALLER, '{"connectionId": "acme-1"}')]);
  const failed = lines.find((line) => line.message === 'Request failed');
  return failed?.error as { name: string; location: string; stack: string } | undefined;
}
