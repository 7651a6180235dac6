import { randomBytes } from 'node:crypto';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { noteOutput, noteSecret } from '#local/leak-watch.ts';
import { startSimulator } from '#local/simulator/index.ts';
import type { RunningSimulator, SimulatorOptions } from '#local/simulator/options.ts';
import { createBrokerTable } from '#shared/adapters/dynamodb-token-store.ts';
import { type BrokerConfigInput, parseBrokerConfig } from '#shared/config/broker-config.ts';
import type { ConnectionRecord } from '#shared/domain/records.ts';
import { createRuntime, type Runtime } from '#shared/runtime/runtime.ts';
import { type AuthorizationResult, completeAuthorization } from '#shared/use-cases/complete-authorization.ts';
import { createConnectSession } from '#shared/use-cases/connect-session.ts';
import { startAuthorization } from '#shared/use-cases/start-authorization.ts';
import { TEST_KEY_ALIAS, type TestDynamoDb, type TestLocalAws, testDynamoDb, testLocalAws } from './aws.ts';
import { assertFitsContract } from './openapi.ts';

/**
 * The broker wired end to end for integration tests: the Wise simulator, the embedded DynamoDB table,
 * the local KMS / Secrets Manager / EventBridge endpoint, and a runtime built by `createRuntime` with a
 * clock the test moves and the simulator shares, so token lifetimes pass without sleeping.
 */

/** A partner service allowed to use the connections `acme-*`. */
export const PARTNER_ARN = 'arn:aws:iam::111122223333:role/partner-app';
/** How API Gateway reports the partner role's callers: an STS assumed-role session ARN. */
export const PARTNER_SESSION_ARN = 'arn:aws:sts::111122223333:assumed-role/partner-app/payments-7';
/** An admin of the connections `acme-*`. */
export const ADMIN_ARN = 'arn:aws:iam::111122223333:role/broker-admin';
/** An admin of the connections `beta-*` only. */
export const BETA_ADMIN_ARN = 'arn:aws:iam::111122223333:role/beta-admin';
/** A principal the policy does not know. */
export const STRANGER_ARN = 'arn:aws:iam::111122223333:role/stranger';
/** A service allowed the client-credentials token. */
export const CLIENT_TOKEN_ARN = 'arn:aws:iam::111122223333:role/quotes';

export const TEST_CLIENT_ID = 'broker-int-client';
export const TEST_CLIENT_SECRET = 'broker-int-secret-0001';
export const TEST_REDIRECT_URI = 'http://127.0.0.1:3000/oauth/callback';
export const TEST_SECRET_ID = 'wise-broker-test/wise-client';
export const TEST_EVENT_BUS = 'wise-broker-test';
export const TEST_RETURN_URLS = ['https://app.example.com/wise/done', 'https://app.example.com/return/'];

/** The default caller policy: the principals above. */
export const TEST_CALLERS: NonNullable<BrokerConfigInput['callers']> = [
  { principal: PARTNER_ARN, use: ['acme-*'] },
  { principal: ADMIN_ARN, administer: ['acme-*'] },
  { principal: BETA_ADMIN_ARN, administer: ['beta-*'] },
  { principal: CLIENT_TOKEN_ARN, clientToken: true },
];

/** A clock the test moves; the runtime and the simulator read it. */
export interface TestClock {
  now(): number;
  advance(ms: number): void;
}

export interface BrokerHarnessOptions {
  /** Configuration fields to replace (callers, returnUrls, refresh, ...). */
  config?: Partial<BrokerConfigInput>;
  /** Simulator options beyond the client, secret, redirect URI and clock. */
  simulator?: Omit<SimulatorOptions, 'clientId' | 'clientSecret' | 'redirectUri' | 'now'>;
  /** Where the clock starts; now by default. */
  startAt?: number;
}

export interface BrokerHarness {
  runtime: Runtime;
  clock: TestClock;
  simulator: RunningSimulator;
  aws: TestLocalAws;
  dynamo: TestDynamoDb;
  tableName: string;
  /** Calls a simulator control route; returns its JSON, `undefined` for 204; throws on an error status. */
  control(path: string, body?: unknown): Promise<unknown>;
  /** The simulator's default user (a personal and a business profile). */
  defaultUser(): Promise<SimulatedUserView>;
  /**
   * Answers Wise's authorization page, as the user would; returns where Wise sends the browser. Give the
   * `authorizeUrl` the start URL redirected to (its state and PKCE challenge are read from it), or a state.
   */
  authorize(options: {
    state?: string;
    authorizeUrl?: string;
    userId?: number;
    profileId?: number;
    decision?: 'approve' | 'deny';
  }): Promise<URL>;
  /**
   * Connects a connection end to end: a connect session as `caller`, approval at the simulator (by
   * `userId`; by default the default user for the first connection id, a new user for each other), and
   * the callback's use case (run on `runtime`, the harness's by default). Returns the stored connection.
   */
  connect(
    connectionId: string,
    options?: { userId?: number; profileId?: number; caller?: string; runtime?: Runtime },
  ): Promise<ConnectionRecord>;
  /** Every item of the table, for before/after comparisons and looking for plaintext. */
  scanTable(): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

/** A user as `GET /__control/users` lists it. */
export interface SimulatedUserView {
  id: number;
  email: string;
  fullName: string;
  profiles: Array<{ id: number; type: string; fullName: string }>;
}

/** Starts everything; call `close()` in `afterAll`. */
export async function startBroker(options: BrokerHarnessOptions = {}): Promise<BrokerHarness> {
  let now = options.startAt ?? Date.now();
  const clock: TestClock = {
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
  };
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer();
  };
  try {
    const simulator = await startSimulator({
      ...options.simulator,
      clientId: TEST_CLIENT_ID,
      clientSecret: TEST_CLIENT_SECRET,
      redirectUri: TEST_REDIRECT_URI,
      now: clock.now,
    });
    closers.push(() => simulator.close());
    const aws = await testLocalAws({
      keys: [TEST_KEY_ALIAS],
      secrets: {
        [TEST_SECRET_ID]: JSON.stringify({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET }),
      },
    });
    closers.push(() => aws.close());
    const dynamo = await testDynamoDb();
    closers.push(() => dynamo.close());
    const tableName = dynamo.tableName('broker');
    await createBrokerTable(dynamo.client, tableName);

    const config = parseBrokerConfig(
      {
        stage: 'test',
        wise: {
          apiUrl: simulator.url,
          authorizeUrl: simulator.authorizeUrl,
          pkce: options.simulator?.pkce ?? false,
        },
        redirectUri: TEST_REDIRECT_URI,
        callers: TEST_CALLERS,
        returnUrls: TEST_RETURN_URLS,
        // Most tests connect without a partner app to confirm; the confirmation has tests of its own.
        connectWithoutConfirmation: true,
        ...options.config,
      },
      'the integration test harness',
    );
    const runtime = createRuntime({
      config,
      redirectUri: TEST_REDIRECT_URI,
      tableName,
      keyId: TEST_KEY_ALIAS,
      secretId: TEST_SECRET_ID,
      eventBusName: TEST_EVENT_BUS,
      clients: { dynamodb: dynamo.client, kms: aws.kms, secrets: aws.secrets, eventBridge: aws.events },
      clock,
    });
    const documents = DynamoDBDocumentClient.from(dynamo.client);

    const control = async (path: string, body?: unknown): Promise<unknown> => {
      const init: RequestInit =
        body === undefined
          ? { method: 'GET' }
          : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
      const response = await fetch(`${simulator.url}/__control/${path.replace(/^\/+/, '')}`, init);
      const text = await response.text();
      if (!response.ok)
        throw new Error(`The simulator's control route ${path} answered ${response.status}: ${text}`);
      return text === '' ? undefined : JSON.parse(text);
    };
    const defaultUser = async () => {
      const users = (await control('users')) as SimulatedUserView[];
      const first = users[0];
      if (!first) throw new Error('The simulator has no users.');
      return first;
    };
    // One Wise user per connection id, as in life (connecting a user under a second id ends the first):
    // the default user for the first id connected, a user of its own for every other.
    const usersByConnection = new Map<string, number>();
    const userFor = async (connectionId: string): Promise<number> => {
      const known = usersByConnection.get(connectionId);
      if (known !== undefined) return known;
      const user =
        usersByConnection.size === 0
          ? await defaultUser()
          : ((await control('users', { email: `${connectionId}@users.example.com` })) as SimulatedUserView);
      usersByConnection.set(connectionId, user.id);
      return user.id;
    };
    const authorize: BrokerHarness['authorize'] = async (request) => {
      const userId = request.userId ?? (await defaultUser()).id;
      const query = request.authorizeUrl ? new URL(request.authorizeUrl).searchParams : undefined;
      const pkce = query?.get('code_challenge')
        ? {
            codeChallenge: query.get('code_challenge'),
            codeChallengeMethod: query.get('code_challenge_method'),
          }
        : {};
      const { location } = (await control('authorize', {
        clientId: TEST_CLIENT_ID,
        redirectUri: TEST_REDIRECT_URI,
        state: query?.get('state') ?? request.state,
        ...pkce,
        userId,
        ...(request.profileId === undefined ? {} : { profileId: request.profileId }),
        decision: request.decision ?? 'approve',
      })) as { location: string };
      return new URL(location);
    };

    return {
      runtime,
      clock,
      simulator,
      aws,
      dynamo,
      tableName,
      control,
      defaultUser,
      authorize,
      connect: async (connectionId, connectOptions = {}) => {
        const session = await createConnectSession(runtime, {
          callerArn: connectOptions.caller ?? PARTNER_ARN,
          connectionId,
        });
        const state = new URL(session.startUrl).searchParams.get('state') ?? '';
        noteSecret('state', state);
        const started = await startAuthorization(runtime, state);
        if (started.kind !== 'started') throw new Error('The start URL was refused.');
        const userId = connectOptions.userId ?? (await userFor(connectionId));
        const location = await authorize({
          authorizeUrl: started.authorizeUrl,
          userId,
          ...(connectOptions.profileId === undefined ? {} : { profileId: connectOptions.profileId }),
        });
        const code = location.searchParams.get('code');
        const profileId = location.searchParams.get('profileId');
        if (code === null) throw new Error('The simulator sent no code back.');
        const result: AuthorizationResult = await completeAuthorization(
          connectOptions.runtime ?? runtime,
          { state, code, ...(profileId === null ? {} : { profileId: Number(profileId) }) },
          { browserSecret: started.cookie.value },
        );
        if (result.kind !== 'connected')
          throw new Error(`Connecting ${connectionId} ended ${JSON.stringify(result)}.`);
        return result.connection;
      },
      scanTable: async () => {
        const items: Record<string, unknown>[] = [];
        let startKey: Record<string, unknown> | undefined;
        for (let page = 0; page < 100; page++) {
          const output = await documents.send(
            new ScanCommand({ TableName: tableName, ConsistentRead: true, ExclusiveStartKey: startKey }),
          );
          items.push(...(output.Items ?? []));
          startKey = output.LastEvaluatedKey;
          if (!startKey) break;
        }
        return items.sort((a, b) => `${a.pk}/${a.sk}`.localeCompare(`${b.pk}/${b.sk}`));
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** What a test says about an API Gateway (HTTP API, payload 2.0) request. */
export interface TestRequest {
  method: 'GET' | 'POST' | 'DELETE';
  /** The route, e.g. `/connections/{id}`. */
  route: string;
  pathParameters?: Record<string, string>;
  query?: Record<string, string>;
  /** A value is sent as JSON; a string as it is. */
  body?: unknown;
  /** The IAM principal API Gateway verified; absent for a public route or an unsigned request. */
  caller?: string;
  /** The cookies the browser sends, `name=value` each. */
  cookies?: string[];
  /** More request headers, lower-cased as API Gateway passes them (such as `accept-language`). */
  headers?: Record<string, string>;
  /**
   * A request API Gateway never routes to this handler, sent to test the handler's own guard: its answer
   * is not checked against docs/openapi.json. Every other answer must fit the document.
   */
  offContract?: true;
}

/** The event API Gateway hands a Lambda function for a request. */
export function apiEvent(request: TestRequest): APIGatewayProxyEventV2 {
  let rawPath = request.route;
  for (const [name, value] of Object.entries(request.pathParameters ?? {})) {
    rawPath = rawPath.replace(`{${name}}`, encodeURIComponent(value));
  }
  const body =
    request.body === undefined
      ? undefined
      : typeof request.body === 'string'
        ? request.body
        : JSON.stringify(request.body);
  const routeKey = `${request.method} ${request.route}`;
  return {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString: new URLSearchParams(request.query ?? {}).toString(),
    ...(request.cookies ? { cookies: request.cookies } : {}),
    headers: {
      host: 'broker.example.com',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...request.headers,
    },
    ...(request.query ? { queryStringParameters: request.query } : {}),
    ...(request.pathParameters ? { pathParameters: request.pathParameters } : {}),
    requestContext: {
      accountId: '111122223333',
      apiId: 'test',
      ...(request.caller ? { authorizer: { iam: { userArn: request.caller } } } : {}),
      domainName: 'broker.example.com',
      domainPrefix: 'broker',
      http: {
        method: request.method,
        path: rawPath,
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
        userAgent: 'vitest',
      },
      requestId: randomBytes(8).toString('hex'),
      routeKey,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    ...(body === undefined ? {} : { body }),
    isBase64Encoded: false,
  } as APIGatewayProxyEventV2;
}

/** A Lambda context good enough for the Powertools middlewares. */
export function lambdaContext(functionName = 'broker-test'): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:111122223333:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomBytes(8).toString('hex'),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'test',
    getRemainingTimeInMillis: () => 30_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/** A handler's structured result, with the JSON body parsed when there is one. */
export interface TestResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  json: unknown;
  /** The `Set-Cookie` values of the result. */
  cookies: string[];
}

/** Invokes a handler as API Gateway would and reads its structured result. */
export async function invoke(
  handler: (event: APIGatewayProxyEventV2, context: Context) => Promise<unknown>,
  request: TestRequest,
): Promise<TestResponse> {
  noteRequestSecrets(request);
  const result = (await handler(apiEvent(request), lambdaContext())) as APIGatewayProxyStructuredResultV2;
  const headers = Object.fromEntries(
    Object.entries(result.headers ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)]),
  );
  const body = result.body ?? '';
  const json =
    headers['content-type']?.startsWith('application/json') && body !== '' ? JSON.parse(body) : undefined;
  const statusCode = result.statusCode ?? 200;
  if (!request.offContract) {
    // API Gateway sends the result's cookies as Set-Cookie headers.
    const sent = result.cookies?.length ? { ...headers, 'set-cookie': result.cookies.join(', ') } : headers;
    assertFitsContract({
      method: request.method,
      route: request.route,
      status: statusCode,
      headers: sent,
      body,
    });
  }
  const cookies = result.cookies ?? [];
  noteAnswerSecrets(json, headers, cookies);
  // The leak scan checks every error body, page and redirect.
  if (statusCode >= 300 || headers['content-type']?.startsWith('text/html')) {
    noteOutput(`${request.method} ${request.route} answer ${statusCode}`, body, headers.location);
  }
  return { statusCode, headers, body, json, cookies };
}

/** Tells the leak scan of the credentials a request carries: a registration code, a state, a code. */
function noteRequestSecrets(request: TestRequest): void {
  const body = request.body as { registrationCode?: unknown; completionCode?: unknown } | undefined;
  if (typeof body === 'object' && body !== null) {
    if (typeof body.registrationCode === 'string') noteSecret('registration_code', body.registrationCode);
    if (typeof body.completionCode === 'string') noteSecret('completion_code', body.completionCode);
  }
  noteSecret('state', request.query?.state);
  noteSecret('authorization_code', request.query?.code);
}

/** Tells the leak scan of the credentials an answer hands out: states, completion codes, binding cookies. */
function noteAnswerSecrets(json: unknown, headers: Record<string, string>, cookies: readonly string[]): void {
  const answered = json as { state?: unknown; startUrl?: unknown } | undefined;
  if (typeof answered?.state === 'string') noteSecret('state', answered.state);
  if (typeof answered?.startUrl === 'string') {
    noteSecret('state', new URL(answered.startUrl).searchParams.get('state') ?? undefined);
  }
  if (headers.location !== undefined && URL.canParse(headers.location)) {
    noteSecret('completion_code', new URL(headers.location).searchParams.get('completion') ?? undefined);
  }
  for (const cookie of cookies) noteSecret('browser_binding', /^[^=]+=([^;]*)/.exec(cookie)?.[1]);
}
