import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyEventV2WithIAMAuthorizer, Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalCredential, type RunningGateway, startGateway } from '#local/gateway/index.ts';
import { sdkSignedFetch } from './signing.ts';

/**
 * The payload format 2.0 event of an HTTP API route with IAM authorization, written after the example
 * in AWS's "Create AWS Lambda proxy integrations for HTTP APIs" guide with the `authorizer.iam` block
 * AWS documents for IAM callers. Left out: `authentication` (only with mutual TLS) and
 * `stageVariables` (only when the stage defines some).
 */
const documented = JSON.parse(
  readFileSync(new URL('./fixtures/http-api-iam-event.json', import.meta.url), 'utf8'),
) as APIGatewayProxyEventV2WithIAMAuthorizer;

const region = 'eu-central-1';
const clock = Date.parse('2026-11-26T12:00:00Z');
const roleCaller: LocalCredential = {
  accessKeyId: 'AKIAROLECALLER000001',
  secretAccessKey: 'local-secret-of-the-role-caller-00000001',
  principal: 'arn:aws:iam::777788889999:role/service-role/order-writer',
};
const userCaller: LocalCredential = {
  accessKeyId: 'AKIAUSERCALLER000001',
  secretAccessKey: 'local-secret-of-the-user-caller-00000001',
  principal: 'arn:aws:iam::777788889999:user/ops/alice',
};

const MAPS = new Set(['headers', 'queryStringParameters', 'pathParameters']);

/** The event's structure: every key, each value's type; header-like maps reduced to their value type. */
function shape(value: unknown, key = ''): unknown {
  if (value === null) return 'null';
  if (Array.isArray(value)) return [shape(value[0])];
  if (typeof value !== 'object') return typeof value;
  const entries = Object.entries(value as Record<string, unknown>);
  if (MAPS.has(key)) return `map of ${[...new Set(entries.map(([, item]) => typeof item))].join('|')}`;
  return Object.fromEntries(entries.sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, shape(v, k)]));
}

describe('local gateway events', () => {
  let gateway: RunningGateway;
  const seen: {
    event: APIGatewayProxyEventV2 | APIGatewayProxyEventV2WithIAMAuthorizer;
    context: Context;
  }[] = [];
  const record = async (event: APIGatewayProxyEventV2, context: Context) => {
    seen.push({ event, context });
    return { statusCode: 204 };
  };
  const iamEvent = () => seen[0]?.event as APIGatewayProxyEventV2WithIAMAuthorizer;

  const postOrder = (path: string, credentials: LocalCredential = roleCaller) =>
    sdkSignedFetch(`${gateway.url}${path}`, {
      method: 'POST',
      credentials,
      region,
      body: '{"quantity":2}',
      headers: { 'content-type': 'application/json', 'x-custom': 'one', cookie: 'theme=dark; lang=en' },
      signingDate: new Date(clock),
    });

  beforeAll(async () => {
    gateway = await startGateway({
      region,
      accountId: '444455556666',
      credentials: [roleCaller, userCaller],
      now: () => clock,
      routes: [
        { method: 'POST', path: '/orders/{orderId}', auth: 'iam', handler: record, functionName: 'orders' },
        { method: 'POST', path: '/uploads', auth: 'none', handler: record },
        { method: 'GET', path: '/pages/{name}', auth: 'none', handler: record },
      ],
    });
  });
  afterAll(() => gateway.close());
  beforeEach(() => {
    seen.length = 0;
  });

  it("has the same fields, of the same types, as AWS's documented IAM event", async () => {
    await postOrder('/orders/o-1?tag=red&tag=blue&limit=5');

    expect(shape(iamEvent())).toEqual(shape(documented));
  });

  it('reports the route key, the raw path and query as sent, and the decoded path parameters', async () => {
    await postOrder('/orders/acme%3Aorder.1?tag=red&tag=blue&limit=5');

    const event = iamEvent();
    expect(event.version).toBe('2.0');
    expect(event.routeKey).toBe('POST /orders/{orderId}');
    expect(event.rawPath).toBe('/orders/acme%3Aorder.1');
    expect(event.rawQueryString).toBe('tag=red&tag=blue&limit=5');
    expect(event.pathParameters).toEqual({ orderId: 'acme:order.1' });
    expect(event.queryStringParameters).toEqual({ tag: 'red,blue', limit: '5' });
  });

  it('passes lower-cased headers, the cookies apart, and a text body as it came', async () => {
    await postOrder('/orders/o-1');

    const event = iamEvent();
    expect(event.headers).toMatchObject({ 'content-type': 'application/json', 'x-custom': 'one' });
    expect(event.headers.cookie).toBeUndefined();
    expect(event.cookies).toEqual(['theme=dark', 'lang=en']);
    expect(event.body).toBe('{"quantity":2}');
    expect(event.isBase64Encoded).toBe(false);
  });

  it('joins repeated headers with commas', async () => {
    await new Promise<void>((resolve, reject) => {
      const request = httpRequest(
        `${gateway.url}/pages/home`,
        { headers: { 'x-custom': ['one', 'two'] } },
        (res) => {
          res.resume();
          res.on('end', resolve);
        },
      );
      request.on('error', reject);
      request.end();
    });

    expect(seen[0]?.event.headers['x-custom']).toBe('one,two');
  });

  it('reports an assumed-role session of a role principal as the verified caller', async () => {
    await postOrder('/orders/o-1');

    expect(iamEvent().requestContext.authorizer.iam).toEqual({
      accessKey: roleCaller.accessKeyId,
      accountId: '777788889999',
      callerId: expect.stringMatching(/^AROA[A-Z2-7]{17}:local$/),
      cognitoIdentity: null,
      principalOrgId: null,
      userArn: 'arn:aws:sts::777788889999:assumed-role/order-writer/local',
      userId: expect.stringMatching(/^AROA[A-Z2-7]{17}:local$/),
    });
  });

  it("reports a user principal's own ARN as the verified caller", async () => {
    await postOrder('/orders/o-1', userCaller);

    const iam = iamEvent().requestContext.authorizer.iam;
    expect(iam.userArn).toBe(userCaller.principal);
    expect(iam.userId).toMatch(/^AIDA[A-Z2-7]{17}$/);
  });

  it('fills the request context from the request line, the gateway clock and a fresh request id', async () => {
    const first = await postOrder('/orders/o-1');
    await postOrder('/orders/o-2');

    const context = iamEvent().requestContext;
    expect(context).toMatchObject({
      accountId: '444455556666',
      apiId: 'local',
      domainName: new URL(gateway.url).host,
      http: { method: 'POST', path: '/orders/o-1', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1' },
      routeKey: 'POST /orders/{orderId}',
      stage: '$default',
      time: '26/Nov/2026:12:00:00 +0000',
      timeEpoch: clock,
    });
    expect(first.headers.get('apigw-requestid')).toBe(context.requestId);
    expect(seen[1]?.event.requestContext.requestId).not.toBe(context.requestId);
  });

  it('gives a public route an event without an authorizer and checks no signature', async () => {
    const response = await fetch(`${gateway.url}/pages/home`);

    expect(response.status).toBe(204);
    expect(seen[0]?.event.requestContext).not.toHaveProperty('authorizer');
  });

  it('leaves body, query and path parameters out when the request has none', async () => {
    await fetch(`${gateway.url}/uploads`, { method: 'POST' });

    const event = seen[0]?.event;
    expect(event).not.toHaveProperty('body');
    expect(event).not.toHaveProperty('queryStringParameters');
    expect(event).not.toHaveProperty('pathParameters');
    expect(event).not.toHaveProperty('cookies');
    expect(event?.isBase64Encoded).toBe(false);
  });

  it('hands a binary body over base64-encoded', async () => {
    const bytes = Buffer.from([0x00, 0xff, 0x10, 0x80]);

    await fetch(`${gateway.url}/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });

    expect(seen[0]?.event.isBase64Encoded).toBe(true);
    expect(seen[0]?.event.body).toBe(bytes.toString('base64'));
  });

  it('gives the handler a Lambda context with its function, a request id and the time left on the gateway clock', async () => {
    await postOrder('/orders/o-1');

    const context = seen[0]?.context as Context;
    expect(context.functionName).toBe('orders');
    expect(context.invokedFunctionArn).toBe('arn:aws:lambda:eu-central-1:444455556666:function:orders');
    expect(context.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(context.getRemainingTimeInMillis()).toBe(29_000);
  });
});
