import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CfnElement, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerTableDefinition } from '#shared/adapters/dynamodb-token-store.ts';
import type { createBrokerApp } from '../../infra/broker-app.ts';
import type { FunctionName } from '../../infra/routes.ts';
import {
  buildApp,
  label,
  NO_BUNDLING,
  REGION,
  removeOutdirs,
  type Statement,
  statelessWarnings,
  statements,
  TEST_CONTEXT,
} from './support.ts';

type Built = ReturnType<typeof createBrokerApp>;
// biome-ignore lint/suspicious/noExplicitAny: assertions walk the synthesized template's JSON freely.
type TemplateValue = any;
type Resources = Record<
  string,
  { Type: string; Properties: Record<string, TemplateValue> } & Record<string, unknown>
>;

let built: Built;
let outdir: string;
let stateful: Template;
let stateless: Template;

// One synthesis for the whole file: it bundles all six functions with esbuild.
beforeAll(() => {
  built = buildApp(TEST_CONTEXT);
  outdir = built.app.synth().directory;
  stateful = Template.fromStack(built.stateful);
  stateless = Template.fromStack(built.stateless);
}, 600_000);
afterAll(removeOutdirs);

function resourcesOf(template: Template, type: string): Resources {
  return template.findResources(type) as Resources;
}

function only<T>(record: Record<string, T>): T {
  const values = Object.values(record);
  expect(values).toHaveLength(1);
  return values[0] as T;
}

const FUNCTION_NAMES = [
  'connect-sessions',
  'oauth-callback',
  'registration',
  'tokens',
  'connections',
  'import',
  'refresh',
];

/** The Lambda function of a broker function folder: its logical id and properties. */
function lambdaOf(name: string) {
  const fn = built.stateless.functions[name as FunctionName].function;
  const id = built.stateless.getLogicalId(fn.node.defaultChild as CfnElement);
  const resource = resourcesOf(stateless, 'AWS::Lambda::Function')[id];
  if (!resource) throw new Error(`no function ${name}`);
  return { id, properties: resource.Properties };
}

/** The properties of every Lambda function of a stack that receives the broker's configuration. */
function brokerFunctionsOf(template: Template): Record<string, TemplateValue>[] {
  return Object.values(resourcesOf(template, 'AWS::Lambda::Function'))
    .map((resource) => resource.Properties)
    .filter((properties) => properties.Environment?.Variables?.BROKER_CONFIG !== undefined);
}

function policyStatementsOf(name: string): Statement[] {
  const roleId = lambdaOf(name).properties.Role['Fn::GetAtt'][0];
  const policy = Object.values(resourcesOf(stateless, 'AWS::IAM::Policy')).find((candidate) =>
    JSON.stringify(candidate.Properties.Roles).includes(`"${roleId}"`),
  );
  if (!policy) throw new Error(`no policy for ${name}`);
  return statements(policy.Properties.PolicyDocument as never);
}

/** The logical id of a stateful key: the data key (`Key`) or the token key (`TokenKey`). */
function keyIdOf(name: 'Key' | 'TokenKey'): string {
  const id = Object.keys(resourcesOf(stateful, 'AWS::KMS::Key')).find((candidate) =>
    new RegExp(`^${name}[0-9A-F]{8}$`).test(candidate),
  );
  if (!id) throw new Error(`no key ${name}`);
  return id;
}

describe('the stateful stack', () => {
  it('has two customer-managed keys with rotation, their aliases, retained', () => {
    const keys = resourcesOf(stateful, 'AWS::KMS::Key');

    expect(Object.keys(keys)).toHaveLength(2);
    for (const key of Object.values(keys)) {
      expect(key.Properties.EnableKeyRotation).toBe(true);
      expect(key.DeletionPolicy).toBe('Retain');
      expect(key.UpdateReplacePolicy).toBe('Retain');
    }
    stateful.hasResourceProperties('AWS::KMS::Alias', {
      AliasName: 'alias/wise-broker-test',
      TargetKeyId: { 'Fn::GetAtt': [keyIdOf('Key'), 'Arn'] },
    });
    stateful.hasResourceProperties('AWS::KMS::Alias', {
      AliasName: 'alias/wise-broker-test-tokens',
      TargetKeyId: { 'Fn::GetAtt': [keyIdOf('TokenKey'), 'Arn'] },
    });
  });

  it('encrypts the table with the data key, with PITR, deletion protection, TTL and on-demand billing', () => {
    const keyId = keyIdOf('Key');
    stateful.hasResource('AWS::DynamoDB::GlobalTable', {
      Properties: {
        BillingMode: 'PAY_PER_REQUEST',
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS' },
        TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
        Replicas: [
          Match.objectLike({
            Region: REGION,
            DeletionProtectionEnabled: true,
            PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
            SSESpecification: { KMSMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } },
          }),
        ],
      },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('declares the keys and indexes the token store uses, refresh-due keys-only', () => {
    const table = only(resourcesOf(stateful, 'AWS::DynamoDB::GlobalTable')).Properties;
    const store = brokerTableDefinition('broker');

    expect(table.KeySchema).toEqual(store.KeySchema);
    expect(new Set(table.AttributeDefinitions as unknown[])).toEqual(new Set(store.AttributeDefinitions));
    expect(table.GlobalSecondaryIndexes).toEqual(store.GlobalSecondaryIndexes);
    expect(table.GlobalSecondaryIndexes).toContainEqual({
      IndexName: 'refresh-due',
      KeySchema: [
        { AttributeName: 'dueShard', KeyType: 'HASH' },
        { AttributeName: 'dueAt', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'KEYS_ONLY' },
    });
  });

  it('copies only the status fields into the connections-by-status index, no ciphertext or e-mail', () => {
    const table = only(resourcesOf(stateful, 'AWS::DynamoDB::GlobalTable')).Properties;
    const index = (table.GlobalSecondaryIndexes as TemplateValue[]).find(
      (candidate) => candidate.IndexName === 'connections-by-status',
    );

    expect(index.Projection).toEqual({
      ProjectionType: 'INCLUDE',
      NonKeyAttributes: ['grant', 'profileId', 'accessTokenExpiresAt', 'dueAt', 'lastRefreshAt', 'lastError'],
    });
  });

  it('creates the Wise credentials secret with the data key and empty placeholders only, retained', () => {
    const keyId = keyIdOf('Key');
    const secret = only(resourcesOf(stateful, 'AWS::SecretsManager::Secret'));

    expect(secret.DeletionPolicy).toBe('Retain');
    expect(secret.Properties.Name).toBe('wise-broker/test/wise-credentials');
    expect(secret.Properties.KmsKeyId).toEqual({ 'Fn::GetAtt': [keyId, 'Arn'] });
    expect(JSON.parse(secret.Properties.SecretString as string)).toEqual({ clientId: '', clientSecret: '' });
    expect(secret.Properties).not.toHaveProperty('GenerateSecretString');
    expect(secret.Properties.Description).toContain(
      '"previousClientSecret"?,"mtls"?:{"certificate","privateKey","ca"?}',
    );
  });

  it('outputs the table name, the secret ARN and both keys', () => {
    stateful.hasOutput('TableName', {});
    stateful.hasOutput('WiseCredentialsSecretArn', {});
    stateful.hasOutput('KeyArn', { Value: { 'Fn::GetAtt': [keyIdOf('Key'), 'Arn'] } });
    stateful.hasOutput('TokenKeyArn', { Value: { 'Fn::GetAtt': [keyIdOf('TokenKey'), 'Arn'] } });
  });
});

describe('the token key', () => {
  type KeyStatement = {
    Sid?: string;
    Effect: string;
    Principal: TemplateValue;
    Action: string | string[];
    Resource: string;
    Condition?: Record<string, Record<string, TemplateValue>>;
  };
  const tokenKeyPolicy = (): KeyStatement[] =>
    resourcesOf(stateful, 'AWS::KMS::Key')[keyIdOf('TokenKey')]?.Properties.KeyPolicy.Statement;
  const accountRoot = {
    AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:iam::${TEST_CONTEXT.env.account}:root`]] },
  };
  const role = (name: string) => ({
    'Fn::Join': [
      '',
      ['arn:', { Ref: 'AWS::Partition' }, `:iam::${TEST_CONTEXT.env.account}:role/wise-broker-test-${name}`],
    ],
  });
  const use = (fn: string, direction: 'Encrypt' | 'Decrypt', kinds: string[]): KeyStatement => ({
    Sid: `${fn.replace(/(^|-)(\w)/g, (_m, _d, c: string) => c.toUpperCase())}${direction}s`,
    Effect: 'Allow',
    Principal: accountRoot,
    // A record's data key is generated; only the listing's cursor is encrypted directly.
    Action:
      direction === 'Decrypt'
        ? 'kms:Decrypt'
        : kinds.includes('data_key')
          ? 'kms:GenerateDataKey'
          : 'kms:Encrypt',
    Resource: '*',
    Condition: {
      StringEquals: {
        'kms:EncryptionContext:deployment': 'test',
        'kms:EncryptionContext:kind': kinds.length === 1 ? kinds[0] : kinds,
      },
      ArnEquals: { 'aws:PrincipalArn': role(fn) },
    },
  });
  const USE_ACTIONS = /^kms:(\*|Encrypt|Decrypt|ReEncrypt.*|GenerateDataKey.*|CreateGrant)$/;

  it('lets each function role use it only for the kinds that function encrypts and decrypts', () => {
    expect(tokenKeyPolicy().filter((statement) => statement.Sid !== 'KeyAdministration')).toEqual([
      use('connect-sessions', 'Encrypt', ['data_key']),
      use('connect-sessions', 'Decrypt', ['data_key']),
      use('oauth-callback', 'Encrypt', ['data_key']),
      use('registration', 'Encrypt', ['data_key']),
      use('registration', 'Decrypt', ['data_key']),
      use('tokens', 'Encrypt', ['data_key']),
      use('tokens', 'Decrypt', ['data_key']),
      use('connections', 'Encrypt', ['list_cursor']),
      use('connections', 'Decrypt', ['list_cursor']),
      use('import', 'Encrypt', ['data_key']),
      use('refresh', 'Encrypt', ['data_key']),
      use('refresh', 'Decrypt', ['data_key']),
    ]);
  });

  it('gives the account key administration without any use: no encrypt, decrypt, grant or kms:*', () => {
    const administration = tokenKeyPolicy().find((statement) => statement.Sid === 'KeyAdministration');

    expect(administration?.Principal).toEqual(accountRoot);
    expect(administration?.Condition).toBeUndefined();
    expect(administration?.Action).toEqual(
      expect.arrayContaining(['kms:PutKeyPolicy', 'kms:ScheduleKeyDeletion']),
    );
    for (const action of [administration?.Action ?? []].flat()) expect(action).not.toMatch(USE_ACTIONS);
  });

  it('never lets the account or anyone use it without naming one broker function role', () => {
    for (const statement of tokenKeyPolicy()) {
      expect(statement.Effect).toBe('Allow');
      expect(statement.Principal).not.toEqual('*');
      expect(statement.Principal).not.toEqual({ AWS: '*' });
      if ([statement.Action].flat().some((action) => USE_ACTIONS.test(action))) {
        const principalArn = statement.Condition?.ArnEquals?.['aws:PrincipalArn'];
        expect(JSON.stringify(principalArn)).toMatch(
          /^\{"Fn::Join".*:role\/wise-broker-test-[a-z-]+"\]\]\}$/,
        );
        expect(statement.Condition?.StringEquals?.['kms:EncryptionContext:kind']).toBeDefined();
      }
    }
  });

  it('refers to the roles by name, so the stateful stack imports nothing from the stateless one', () => {
    expect(JSON.stringify(stateful.toJSON())).not.toContain('Fn::ImportValue');
    expect(built.stateful.dependencies).toEqual([]);
  });

  it('names the same roles the stateless stack gives the functions', () => {
    const names = Object.values(resourcesOf(stateless, 'AWS::IAM::Role'))
      .map((candidate) => candidate.Properties.RoleName)
      .filter((name): name is string => typeof name === 'string');

    expect(names.sort()).toEqual(FUNCTION_NAMES.map((name) => `wise-broker-test-${name}`).sort());
  });

  it('is the key every function encrypts with; the data key serves only DynamoDB and Secrets Manager', () => {
    for (const name of FUNCTION_NAMES) {
      expect(label(lambdaOf(name).properties.Environment.Variables.KMS_KEY_ID)).toBe('token key');
      for (const statement of policyStatementsOf(name).filter((candidate) =>
        candidate.resources.includes('key'),
      )) {
        expect(Object.keys(statement.conditions?.StringEquals ?? {})).toContain('kms:ViaService');
      }
    }
  });
});

describe('the broker functions', () => {
  it.each(FUNCTION_NAMES)('%s runs Node.js 24 on arm64 with tracing and its own log group', (name) => {
    const fn = lambdaOf(name).properties;

    expect(fn.Runtime).toBe('nodejs24.x');
    expect(fn.Architectures).toEqual(['arm64']);
    expect(fn.TracingConfig).toEqual({ Mode: 'Active' });
    expect(fn.Handler).toBe('index.handler');
    expect(fn.LoggingConfig.LogGroup.Ref).toMatch(new RegExp(`^${name.replace('-', '')}Logs`));
  });

  it('keeps every function log for three months', () => {
    const groups = Object.values(resourcesOf(stateless, 'AWS::Logs::LogGroup'));

    // The six functions, the audit forwarder and the API's access log.
    expect(groups).toHaveLength(FUNCTION_NAMES.length + 2);
    for (const group of groups) expect(group.Properties.RetentionInDays).toBe(90);
  });

  it.each(FUNCTION_NAMES)('%s receives the common environment', (name) => {
    const variables = lambdaOf(name).properties.Environment.Variables;

    expect(Object.keys(variables).sort()).toEqual(
      [
        'BROKER_CONFIG',
        'EVENT_BUS_NAME',
        'KMS_KEY_ID',
        'POWERTOOLS_METRICS_NAMESPACE',
        'POWERTOOLS_SERVICE_NAME',
        'REDIRECT_URI',
        'TABLE_NAME',
        'WISE_SECRET_ID',
      ].sort(),
    );
    expect(variables.POWERTOOLS_SERVICE_NAME).toBe('wise-broker-test');
    expect(variables.POWERTOOLS_METRICS_NAMESPACE).toBe('WiseTokenBroker');
    expect(label(variables.TABLE_NAME)).toBe('table name');
    expect(label(variables.KMS_KEY_ID)).toBe('token key');
    expect(label(variables.WISE_SECRET_ID)).toBe('secret');
    expect(label(variables.EVENT_BUS_NAME)).toBe('event bus name');
    expect(label(variables.REDIRECT_URI)).toBe('api endpoint/oauth/callback');
  });

  it('leaves source maps off in every function by default: no NODE_OPTIONS', () => {
    const functions = brokerFunctionsOf(stateless);

    // The broker functions and the audit forwarder.
    expect(functions).toHaveLength(FUNCTION_NAMES.length + 1);
    for (const fn of functions) expect(fn.Environment.Variables).not.toHaveProperty('NODE_OPTIONS');
  });

  it('enables source maps in every function with functions.sourceMaps, and keeps the option out of BROKER_CONFIG', () => {
    const mapped = buildApp({ ...TEST_CONTEXT, functions: { sourceMaps: true }, ...NO_BUNDLING });

    const functions = brokerFunctionsOf(Template.fromStack(mapped.stateless));

    expect(functions).toHaveLength(FUNCTION_NAMES.length + 1);
    for (const fn of functions) {
      expect(fn.Environment.Variables.NODE_OPTIONS).toBe('--enable-source-maps');
      expect(JSON.parse(fn.Environment.Variables.BROKER_CONFIG)).not.toHaveProperty('functions');
    }
  });

  it('passes the validated configuration without its local and env sections', () => {
    const brokerConfig = JSON.parse(lambdaOf('tokens').properties.Environment.Variables.BROKER_CONFIG);

    expect(brokerConfig).toEqual({
      stage: 'test',
      wise: {
        environment: 'sandbox',
        apiUrl: 'https://api.wise-sandbox.com',
        authorizeUrl: 'https://wise-sandbox.com/oauth/authorize/',
        versionPrefix: '',
        mtls: false,
        pkce: false,
      },
      callers: TEST_CONTEXT.callers.map((caller) => ({
        use: [],
        administer: [],
        import: [],
        clientToken: false,
        ...caller,
      })),
      returnUrls: [],
      connectWithoutConfirmation: false,
      refresh: {
        fraction: 0.8,
        sweepSeconds: 60,
        shards: 4,
        concurrency: 8,
        leaseSeconds: 120,
        tokenCallsPerMinute: 1000,
        atRiskShare: 0.1,
      },
      audit: { retentionDays: 365 },
      brand: { languages: ['en'] },
      alarmEmail: 'ops@example.com',
      removalPolicy: 'retain',
    });
  });

  it('gives the API functions 28 seconds and the refresh sweep one period with reserved concurrency', () => {
    for (const name of FUNCTION_NAMES.filter((n) => n !== 'refresh')) {
      expect(lambdaOf(name).properties.Timeout).toBe(28);
      expect(lambdaOf(name).properties).not.toHaveProperty('ReservedConcurrentExecutions');
    }
    expect(lambdaOf('refresh').properties.Timeout).toBe(60);
    expect(lambdaOf('refresh').properties.ReservedConcurrentExecutions).toBe(2);
  });

  it('bundles every handler as an ES module with a source map that Node.js loads', () => {
    const bundles = FUNCTION_NAMES.map((name) => {
      const key = String(lambdaOf(name).properties.Code.S3Key).replace(/\.zip$/, '');
      return join(outdir, `asset.${key}`, 'index.mjs');
    });
    for (const bundle of bundles) {
      expect(existsSync(`${bundle}.map`)).toBe(true);
      const code = readFileSync(bundle, 'utf8');
      expect(code.startsWith("import{createRequire as __cr}from'node:module';")).toBe(true);
      expect(code.trimEnd().endsWith('//# sourceMappingURL=index.mjs.map')).toBe(true);
    }

    const output = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        'for (const file of process.argv.slice(1)) { const m = await import(file); console.log(typeof m.handler); }',
        ...bundles,
      ],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } },
    );

    expect(output.trim().split('\n')).toEqual(FUNCTION_NAMES.map(() => 'function'));
  });
});

describe('least privilege', () => {
  const logs: Statement = {
    actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    resources: ['log group'],
  };
  const xray: Statement = {
    actions: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'],
    resources: ['*'],
  };
  const items = (leadingKeys: string[], ...actions: string[]): Statement => ({
    actions: actions.sort(),
    resources: ['table'],
    conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': leadingKeys } },
  });
  const tableKey: Statement = {
    actions: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'],
    resources: ['key'],
    conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${REGION}.amazonaws.com` } },
  };
  const tokenKey = (direction: 'Encrypt' | 'Decrypt', kinds: string[]): Statement => ({
    actions:
      direction === 'Decrypt'
        ? ['kms:Decrypt']
        : kinds.includes('data_key')
          ? ['kms:GenerateDataKey']
          : ['kms:Encrypt'],
    resources: ['token key'],
    conditions: {
      StringEquals: {
        'kms:EncryptionContext:deployment': 'test',
        'kms:EncryptionContext:kind': kinds.length === 1 ? (kinds[0] as string) : kinds,
      },
    },
  });
  const wiseCredentials: Statement[] = [
    { actions: ['secretsmanager:GetSecretValue'], resources: ['secret'] },
    {
      actions: ['kms:Decrypt'],
      resources: ['key'],
      conditions: {
        StringEquals: {
          'kms:ViaService': `secretsmanager.${REGION}.amazonaws.com`,
          'kms:EncryptionContext:SecretARN': 'secret',
        },
      },
    },
  ];
  const putEvents: Statement = { actions: ['events:PutEvents'], resources: ['event bus'] };
  const query = (index: string): Statement => ({
    actions: ['dynamodb:Query'],
    resources: [`table/index/${index}`],
  });

  // Registration, vend and the sweep all run the refresh of one record: a connection or the client token.
  // Every token and registration code is sealed under the record's data key, so records need the token
  // key for data keys only.
  const refreshRecords = [
    logs,
    xray,
    items(['CONNECTION#*', 'CLIENT'], 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'),
    tableKey,
    tokenKey('Encrypt', ['data_key']),
    tokenKey('Decrypt', ['data_key']),
    ...wiseCredentials,
    putEvents,
  ];
  const expected: Record<string, Statement[]> = {
    'connect-sessions': [
      logs,
      xray,
      items(['SESSION#*'], 'dynamodb:PutItem'),
      items(['COMPLETION#*'], 'dynamodb:DeleteItem'),
      items(['CONNECTION#*'], 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'),
      items(['WISE_USER#*'], 'dynamodb:PutItem'),
      tableKey,
      tokenKey('Encrypt', ['data_key']),
      tokenKey('Decrypt', ['data_key']),
      putEvents,
    ],
    'oauth-callback': [
      logs,
      xray,
      items(['SESSION#*'], 'dynamodb:DeleteItem', 'dynamodb:UpdateItem'),
      items(['COMPLETION#*'], 'dynamodb:PutItem'),
      items(['CONNECTION#*'], 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'),
      items(['WISE_USER#*'], 'dynamodb:PutItem'),
      tableKey,
      tokenKey('Encrypt', ['data_key']),
      ...wiseCredentials,
      putEvents,
    ],
    registration: [...refreshRecords, items(['WISE_USER#*'], 'dynamodb:PutItem')],
    tokens: refreshRecords,
    connections: [
      logs,
      xray,
      items(['CONNECTION#*'], 'dynamodb:Query', 'dynamodb:UpdateItem'),
      items(['WISE_USER#*'], 'dynamodb:DeleteItem'),
      query('connections-by-status'),
      tableKey,
      tokenKey('Encrypt', ['list_cursor']),
      tokenKey('Decrypt', ['list_cursor']),
      putEvents,
    ],
    // Reads and writes connections and links the Wise user, makes a data key for the tokens Wise grants,
    // opens nothing.
    import: [
      logs,
      xray,
      items(['CONNECTION#*'], 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'),
      items(['WISE_USER#*'], 'dynamodb:PutItem'),
      tableKey,
      tokenKey('Encrypt', ['data_key']),
      ...wiseCredentials,
      putEvents,
    ],
    refresh: [...refreshRecords, query('refresh-due')],
  };

  it.each(FUNCTION_NAMES)('%s may do exactly what it uses', (name) => {
    const actual = policyStatementsOf(name);

    expect(actual).toHaveLength(expected[name]?.length ?? -1);
    expect(actual).toEqual(expect.arrayContaining(expected[name] ?? []));
  });

  it('limits the OAuth callback to connect sessions, pending completions, connections and Wise user links: it deletes only sessions', () => {
    const callback = policyStatementsOf('oauth-callback').filter((statement) =>
      statement.actions.some((action) => action.startsWith('dynamodb:')),
    );

    expect(callback).toEqual([
      items(['SESSION#*'], 'dynamodb:DeleteItem', 'dynamodb:UpdateItem'),
      items(['COMPLETION#*'], 'dynamodb:PutItem'),
      items(['CONNECTION#*'], 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'),
      items(['WISE_USER#*'], 'dynamodb:PutItem'),
    ]);
  });

  it('limits every table action of every function to the partition keys it uses', () => {
    for (const name of FUNCTION_NAMES) {
      for (const statement of policyStatementsOf(name).filter(
        (candidate) => candidate.resources[0] === 'table',
      )) {
        expect(statement.conditions?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys']).toBeDefined();
      }
    }
  });

  it('gives the functions no managed policies and no inline role policies', () => {
    for (const role of Object.values(resourcesOf(stateless, 'AWS::IAM::Role'))) {
      expect(role.Properties).not.toHaveProperty('ManagedPolicyArns');
      expect(role.Properties).not.toHaveProperty('Policies');
    }
  });
});

describe('the HTTP API', () => {
  it('requires IAM authorization on every route but the OAuth start and callback', () => {
    const routes = Object.values(resourcesOf(stateless, 'AWS::ApiGatewayV2::Route')).map((route) => [
      route.Properties.RouteKey,
      route.Properties.AuthorizationType,
    ]);

    expect(new Map(routes as [string, string][])).toEqual(
      new Map([
        ['POST /connect-sessions', 'AWS_IAM'],
        ['GET /oauth/start', 'NONE'],
        ['GET /oauth/callback', 'NONE'],
        ['POST /connections/{id}/completion', 'AWS_IAM'],
        ['POST /connections/{id}/registration-code', 'AWS_IAM'],
        ['POST /tokens', 'AWS_IAM'],
        ['GET /connections', 'AWS_IAM'],
        ['GET /connections/{id}', 'AWS_IAM'],
        ['DELETE /connections/{id}', 'AWS_IAM'],
        ['POST /connections/{id}/import', 'AWS_IAM'],
      ]),
    );
  });

  it('sends each route to its function', () => {
    const integrations = resourcesOf(stateless, 'AWS::ApiGatewayV2::Integration');
    const target = (routeKey: string) => {
      const route = Object.values(resourcesOf(stateless, 'AWS::ApiGatewayV2::Route')).find(
        (candidate) => candidate.Properties.RouteKey === routeKey,
      );
      const integrationId = route?.Properties.Target['Fn::Join'][1][1].Ref;
      const uri = JSON.stringify(integrations[integrationId]?.Properties.IntegrationUri);
      return FUNCTION_NAMES.find((name) => uri.includes(`"${lambdaOf(name).id}"`));
    };

    expect(target('POST /connect-sessions')).toBe('connect-sessions');
    expect(target('GET /oauth/callback')).toBe('oauth-callback');
    expect(target('GET /oauth/start')).toBe('oauth-callback');
    expect(target('POST /connections/{id}/completion')).toBe('connect-sessions');
    expect(target('POST /connections/{id}/registration-code')).toBe('registration');
    expect(target('POST /tokens')).toBe('tokens');
    expect(target('GET /connections')).toBe('connections');
    expect(target('GET /connections/{id}')).toBe('connections');
    expect(target('DELETE /connections/{id}')).toBe('connections');
    expect(target('POST /connections/{id}/import')).toBe('import');
  });

  it('logs every request and throttles the default stage', () => {
    const stage = only(resourcesOf(stateless, 'AWS::ApiGatewayV2::Stage')).Properties as Record<
      string,
      TemplateValue
    >;

    expect(stage.StageName).toBe('$default');
    expect(stage.AutoDeploy).toBe(true);
    expect(stage.DefaultRouteSettings).toEqual({ ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 });
    expect(JSON.stringify(stage.AccessLogSettings.DestinationArn)).toContain('ApiAccessLogs');
    expect(JSON.parse(stage.AccessLogSettings.Format)).toMatchObject({
      requestId: '$context.requestId',
      callerArn: '$context.identity.userArn',
      status: '$context.status',
    });
  });

  it('outputs the API URL and the callback URL', () => {
    const outputs = stateless.findOutputs('*');

    expect(outputs.ApiUrl?.Value).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Api/), 'ApiEndpoint'] });
    expect(label(outputs.CallbackUrl?.Value)).toBe('api endpoint/oauth/callback');
  });
});

describe('calling services', () => {
  function policyNamed(name: string) {
    const policy = Object.values(resourcesOf(stateless, 'AWS::IAM::ManagedPolicy')).find(
      (candidate) => candidate.Properties.ManagedPolicyName === name,
    );
    if (!policy) throw new Error(`no managed policy ${name}`);
    return policy.Properties;
  }

  it.each([
    ['wise-broker-test-vend', ['api/*/POST/tokens']],
    [
      'wise-broker-test-connect',
      [
        'api/*/POST/connect-sessions',
        'api/*/POST/connections/*/registration-code',
        'api/*/POST/connections/*/completion',
      ],
    ],
    [
      'wise-broker-test-admin',
      ['api/*/GET/connections', 'api/*/GET/connections/*', 'api/*/DELETE/connections/*'],
    ],
    ['wise-broker-test-import', ['api/*/POST/connections/*/import']],
  ])('%s may invoke exactly its routes', (name, routes) => {
    expect(statements(policyNamed(name).PolicyDocument as never)).toEqual([
      { actions: ['execute-api:Invoke'], resources: routes },
    ]);
  });

  it('attaches the policies to the callers of this account by the grants each holds', () => {
    // use: vend and connect; clientToken: vend; administer: admin only.
    expect(policyNamed('wise-broker-test-vend').Roles).toEqual(['payments', 'quotes', 'support']);
    expect(policyNamed('wise-broker-test-connect').Roles).toEqual(['payments', 'support']);
    expect(policyNamed('wise-broker-test-admin').Roles).toEqual(['support']);
    expect(policyNamed('wise-broker-test-admin').Users).toEqual(['ops']);
    expect(policyNamed('wise-broker-test-import').Roles).toEqual(['migration']);
  });

  it('gives a caller that only imports no other route, and no other caller the import route', () => {
    for (const kind of ['vend', 'connect', 'admin']) {
      expect(JSON.stringify(policyNamed(`wise-broker-test-${kind}`).Roles ?? [])).not.toContain('migration');
    }
    expect(policyNamed('wise-broker-test-import')).not.toHaveProperty('Users');
  });

  it('gives a caller that only administers neither the vend nor the connect routes', () => {
    expect(policyNamed('wise-broker-test-vend')).not.toHaveProperty('Users');
    expect(policyNamed('wise-broker-test-connect')).not.toHaveProperty('Users');
  });

  it('warns that a caller from another account must assume a role here', () => {
    const warnings = statelessWarnings(built);

    expect(warnings.some((warning) => warning.includes('arn:aws:iam::999999999999:role/partner'))).toBe(true);
  });

  it('outputs the ARN of each managed policy and the event bus', () => {
    for (const output of [
      'vendpolicyarn',
      'connectpolicyarn',
      'adminpolicyarn',
      'importpolicyarn',
      'EventBusName',
    ]) {
      expect(Object.keys(stateless.findOutputs('*')).some((key) => key.startsWith(output))).toBe(true);
    }
  });
});

describe('the refresh schedule', () => {
  it('runs the refresh function every sweep period with retries and a dead-letter queue', () => {
    const rule = only(resourcesOf(stateless, 'AWS::Events::Rule')).Properties as Record<
      string,
      TemplateValue
    >;
    const queueId = Object.keys(resourcesOf(stateless, 'AWS::SQS::Queue'))[0];

    expect(rule.ScheduleExpression).toBe('rate(1 minute)');
    expect(rule.State).toBe('ENABLED');
    expect(rule.Targets).toHaveLength(1);
    expect(rule.Targets[0].Arn).toEqual({ 'Fn::GetAtt': [lambdaOf('refresh').id, 'Arn'] });
    expect(rule.Targets[0].RetryPolicy).toEqual({ MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 60 });
    expect(rule.Targets[0].DeadLetterConfig).toEqual({ Arn: { 'Fn::GetAtt': [queueId, 'Arn'] } });
  });

  it('does not retry a failed sweep: the next one follows', () => {
    stateless.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: lambdaOf('refresh').id },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    });
  });

  it('encrypts the dead-letter queue and refuses requests without TLS', () => {
    const queueId = Object.keys(resourcesOf(stateless, 'AWS::SQS::Queue'))[0];
    stateless.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
    stateless.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('has a custom event bus for re-authorization events', () => {
    stateless.hasResourceProperties('AWS::Events::EventBus', { Name: 'wise-broker-test' });
  });
});

describe('alarms', () => {
  const alarms = () =>
    Object.values(resourcesOf(stateless, 'AWS::CloudWatch::Alarm')).map((alarm) => alarm.Properties);

  it.each(['RefreshFailed', 'ReauthorizationRequired', 'InvalidClient'])(
    'alarms on the broker metric %s of this deployment',
    (metricName) => {
      const alarm = alarms().find((candidate) => candidate.MetricName === metricName);

      expect(alarm).toMatchObject({
        Namespace: 'WiseTokenBroker',
        Dimensions: [{ Name: 'service', Value: 'wise-broker-test' }],
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      });
    },
  );

  it.each(FUNCTION_NAMES)('alarms on errors and throttles of %s', (name) => {
    const watched = alarms()
      .filter((alarm) => JSON.stringify(alarm.Dimensions ?? []).includes(`"${lambdaOf(name).id}"`))
      .map((alarm) => alarm.MetricName);

    expect(watched.sort()).toEqual(['Errors', 'Throttles']);
  });

  it('alarms on messages in the dead-letter queue', () => {
    expect(alarms().some((alarm) => alarm.MetricName === 'ApproximateNumberOfMessagesVisible')).toBe(true);
  });

  it('sends every alarm to the encrypted topic that refuses requests without TLS', () => {
    const topicId = Object.keys(resourcesOf(stateless, 'AWS::SNS::Topic'))[0];
    const topic = only(resourcesOf(stateless, 'AWS::SNS::Topic')).Properties;

    // The broker metrics, the refresh SLOs and lost connections, errors and throttles of each function and
    // of the audit forwarder, and the two dead-letter queues.
    expect(alarms()).toHaveLength(3 + 3 + 2 * (FUNCTION_NAMES.length + 1) + 2);
    for (const alarm of alarms()) expect(alarm.AlarmActions).toEqual([{ Ref: topicId }]);
    expect(JSON.stringify(topic.KmsMasterKeyId)).toContain('TopicKey');
    stateless.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    stateless.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
  });

  it('lets CloudWatch use the topic key of this account only, and rotates it', () => {
    stateless.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
            Resource: '*',
            Condition: { StringEquals: { 'aws:SourceAccount': TEST_CONTEXT.env.account } },
          },
        ]),
      },
    });
  });

  it('alarms on any connection at risk, the most any sweep of the period counted', () => {
    const alarm = alarms().find((candidate) => candidate.MetricName === 'ConnectionsAtRisk');

    expect(alarm).toMatchObject({
      Namespace: 'WiseTokenBroker',
      Dimensions: [{ Name: 'service', Value: 'wise-broker-test' }],
      Statistic: 'Maximum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
    });
  });

  it('pages on any connection lost to a crash', () => {
    const alarm = alarms().find((candidate) => candidate.MetricName === 'ConnectionLostToCrash');

    expect(alarm).toMatchObject({
      AlarmName: 'wise-broker-test-ConnectionLostToCrash',
      Namespace: 'WiseTokenBroker',
      Dimensions: [{ Name: 'service', Value: 'wise-broker-test' }],
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    });
  });

  it('names every alarm after its stage, so the runbook and the e-mail say which one fired', () => {
    const names = alarms().map((alarm) => alarm.AlarmName);

    expect(names.every((name) => typeof name === 'string' && name.startsWith('wise-broker-test-'))).toBe(
      true,
    );
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(
      expect.arrayContaining(['wise-broker-test-ConnectionsAtRisk', 'wise-broker-test-tokens-errors']),
    );
  });

  it('alarms when fewer than 90 % of refreshes succeed for 15 minutes', () => {
    const alarm = alarms().find((candidate) => JSON.stringify(candidate.Metrics ?? []).includes('FILL(s'));
    const metrics = alarm?.Metrics as Array<Record<string, TemplateValue>>;
    const named = (id: string) => metrics.find((metric) => metric.Id === id)?.MetricStat;

    expect(alarm).toMatchObject({
      Threshold: 0.9,
      ComparisonOperator: 'LessThanThreshold',
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'notBreaching',
    });
    expect(metrics.find((metric) => metric.Expression)?.Expression).toBe(
      'IF((FILL(s, 0) + FILL(f, 0)) > 0, FILL(s, 0) / (FILL(s, 0) + FILL(f, 0)), 1)',
    );
    expect(named('s')).toMatchObject({
      Metric: { MetricName: 'RefreshSucceeded' },
      Stat: 'Sum',
      Period: 300,
    });
    expect(named('f')).toMatchObject({ Metric: { MetricName: 'RefreshFailed' }, Stat: 'Sum', Period: 300 });
  });

  it('alarms on audit deliveries the forwarder could not write', () => {
    const queueId = built.stateless.getLogicalId(
      built.stateless.auditTrail.deadLetterQueue.node.defaultChild as CfnElement,
    );
    const alarm = alarms().find((candidate) => JSON.stringify(candidate.Dimensions ?? []).includes(queueId));

    expect(alarm).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 1 });
  });

  it('has a dashboard with a widget for each refresh SLO', () => {
    const dashboard = only(resourcesOf(stateless, 'AWS::CloudWatch::Dashboard')).Properties;
    const body = JSON.stringify(dashboard.DashboardBody);

    expect(dashboard.DashboardName).toBe('wise-broker-test');
    for (const title of [
      'Refresh lateness and token life left (seconds)',
      'Connections at risk and lost',
      'Refresh success ratio',
      'Refreshes refused, by class',
      'Requests refused, by error',
    ]) {
      expect(body).toContain(title);
    }
    for (const metric of [
      'RefreshLateness',
      'TokenLifeLeftAtRefresh',
      'ConnectionsAtRisk',
      'ConnectionLostToCrash',
    ]) {
      expect(body).toContain(`\\"${metric}\\"`);
    }
    for (const code of ['forbidden', 'connection_not_found', 'connection_exists', 'refresh_token_rejected']) {
      expect(body).toContain(`\\"RequestRefused\\",\\"error\\",\\"${code}\\"`);
    }
    expect(body).toContain('\\"RejectionNotHonoured\\"');
    for (const refusal of ['invalid_grant', 'invalid_client', 'rate_limited', 'provider_unavailable']) {
      expect(body).toContain(
        `\\"RefreshRefused\\",\\"class\\",\\"${refusal}\\",\\"service\\",\\"wise-broker-test\\"`,
      );
    }
  });
});

describe('the audit trail', () => {
  it('keeps its own log group in the stateful stack, retained, for a year', () => {
    const group = only(resourcesOf(stateful, 'AWS::Logs::LogGroup'));

    expect(group.Properties).toEqual({ LogGroupName: '/wise-broker/test/audit', RetentionInDays: 365 });
    expect(group.DeletionPolicy).toBe('Retain');
    expect(stateful.findOutputs('AuditLogGroupName')).not.toEqual({});
  });

  it.each(FUNCTION_NAMES)('forwards the audit lines of %s, and only those, to the forwarder', (name) => {
    const logGroupId = lambdaOf(name).properties.LoggingConfig.LogGroup.Ref;
    const forwarderId = built.stateless.getLogicalId(
      built.stateless.auditTrail.forwarder.function.node.defaultChild as CfnElement,
    );
    const filters = Object.values(resourcesOf(stateless, 'AWS::Logs::SubscriptionFilter')).filter(
      (filter) => filter.Properties.LogGroupName.Ref === logGroupId,
    );

    expect(filters.map((filter) => filter.Properties)).toEqual([
      {
        LogGroupName: { Ref: logGroupId },
        FilterPattern: '{ $.audit IS TRUE }',
        FilterName: 'audit-trail',
        DestinationArn: { 'Fn::GetAtt': [forwarderId, 'Arn'] },
      },
    ]);
  });

  it('lets CloudWatch Logs invoke the forwarder for those log groups only', () => {
    const permissions = Object.values(resourcesOf(stateless, 'AWS::Lambda::Permission')).filter(
      (permission) => permission.Properties.Principal === 'logs.amazonaws.com',
    );

    const sources = permissions.map((permission) => permission.Properties.SourceArn['Fn::GetAtt']);
    expect(sources.sort()).toEqual(
      FUNCTION_NAMES.map((name) => [lambdaOf(name).properties.LoggingConfig.LogGroup.Ref, 'Arn']).sort(),
    );
  });

  it('gives the forwarder the audit log group to write to, and nothing else', () => {
    const forwarder = built.stateless.auditTrail.forwarder;
    const roleId = built.stateless.getLogicalId(forwarder.role.node.defaultChild as CfnElement);
    const policy = Object.values(resourcesOf(stateless, 'AWS::IAM::Policy')).find((candidate) =>
      JSON.stringify(candidate.Properties.Roles).includes(`"${roleId}"`),
    );
    const functionId = built.stateless.getLogicalId(forwarder.function.node.defaultChild as CfnElement);
    const environment = resourcesOf(stateless, 'AWS::Lambda::Function')[functionId]?.Properties.Environment;

    const document = policy?.Properties.PolicyDocument as { Statement: Array<Record<string, TemplateValue>> };
    const writes = document.Statement.filter((statement) =>
      JSON.stringify(statement.Action).includes('logs:'),
    );
    const logGroupId = built.stateless.getLogicalId(forwarder.logGroup.node.defaultChild as CfnElement);

    // Its own log group, as every function, and the audit log group of the stateful stack.
    expect(writes.map((statement) => [statement.Action].flat().sort())).toEqual([
      ['logs:CreateLogStream', 'logs:PutLogEvents'],
      ['logs:CreateLogStream', 'logs:PutLogEvents'],
    ]);
    expect(writes.map((statement) => JSON.stringify(statement.Resource))).toEqual([
      expect.stringContaining(logGroupId),
      expect.stringMatching(/ImportValue.*AuditLogs/),
    ]);
    const others = document.Statement.filter(
      (statement) => !JSON.stringify(statement.Action).includes('logs:'),
    );
    expect(others.flatMap((statement) => [statement.Action].flat()).sort()).toEqual([
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:SendMessage',
      'xray:PutTelemetryRecords',
      'xray:PutTraceSegments',
    ]);
    expect(JSON.stringify(environment.Variables.AUDIT_LOG_GROUP)).toContain('AuditLogs');
  });

  it('keeps a delivery the forwarder failed twice in an encrypted dead-letter queue', () => {
    const forwarderId = built.stateless.getLogicalId(
      built.stateless.auditTrail.forwarder.function.node.defaultChild as CfnElement,
    );
    const config = Object.values(resourcesOf(stateless, 'AWS::Lambda::EventInvokeConfig')).find(
      (candidate) => candidate.Properties.FunctionName.Ref === forwarderId,
    )?.Properties;
    const queueId = built.stateless.getLogicalId(
      built.stateless.auditTrail.deadLetterQueue.node.defaultChild as CfnElement,
    );

    expect(config).toMatchObject({
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
    });
    expect(resourcesOf(stateless, 'AWS::SQS::Queue')[queueId]?.Properties.SqsManagedSseEnabled).toBe(true);
  });
});

describe('cdk-nag AwsSolutions', () => {
  /** Every acknowledgement in the app: the construct it sits on, the rule and the reason. */
  function acknowledgements() {
    return built.app.node.findAll().flatMap((construct) =>
      construct.node.metadata
        .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((entry) =>
          Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
            path: construct.node.path,
            id: id.replace(/^annotation::/i, ''),
            reason,
          })),
        ),
    );
  }

  it('finds nothing unacknowledged in the app', () => {
    const report = new AwsSolutionsChecks().validateScope(built.app);

    expect(report.violations).toEqual([]);
  });

  it('has a reason for every acknowledgement', () => {
    const acknowledged = acknowledgements();

    expect(acknowledged.length).toBeGreaterThan(0);
    for (const { reason } of acknowledged) expect(reason.length).toBeGreaterThan(40);
  });

  it('acknowledges only findings the rules really make', () => {
    const checks = new AwsSolutionsChecks();
    // Test-only: report every finding, acknowledged or not, to see that no acknowledgement is stale.
    Object.defineProperty(checks, 'isAcknowledged', { value: () => false });
    const findings = checks.validateScope(built.app).violations.flatMap((violation) =>
      violation.violatingResources.map((resource) => ({
        id: violation.ruleName,
        path: resource.constructPath,
      })),
    );

    for (const acknowledgement of acknowledgements()) {
      expect(findings).toContainEqual({
        id: acknowledgement.id,
        path: expect.stringContaining(acknowledgement.path),
      });
    }
  });
});

describe('the connection events', () => {
  it('registers a JSON Schema for each event in a schema registry named for the stage', () => {
    const registry = only(resourcesOf(stateless, 'AWS::EventSchemas::Registry')).Properties;
    const schemas = Object.values(resourcesOf(stateless, 'AWS::EventSchemas::Schema')).map(
      (resource) => resource.Properties,
    );

    expect(registry.RegistryName).toBe('wise-broker-test');
    expect(schemas.map((schema) => schema.SchemaName).sort()).toEqual([
      'wise-token-broker@ConnectionConnected',
      'wise-token-broker@ConnectionDisconnected',
      'wise-token-broker@ConnectionReauthorizationRequired',
      'wise-token-broker@ConnectionRecovered',
    ]);
    for (const schema of schemas) {
      expect(schema.Type).toBe('JSONSchemaDraft4');
      const content = JSON.parse(schema.Content);
      expect(content.properties['detail-type'].enum).toEqual([content.title]);
      expect(content.properties.detail.required).toContain('connectionId');
      expect(content.properties.detail.additionalProperties).toBe(false);
    }
  });

  it("describes each event's detail exactly as the broker publishes it", () => {
    const connected = Object.values(resourcesOf(stateless, 'AWS::EventSchemas::Schema')).find(
      (resource) => resource.Properties.SchemaName === 'wise-token-broker@ConnectionConnected',
    );

    expect(JSON.parse(connected?.Properties.Content).properties.detail.required).toEqual([
      'connectionId',
      'grant',
      'imported',
      'profileId',
      'generation',
      'previousStatus',
      'at',
    ]);
  });
});
