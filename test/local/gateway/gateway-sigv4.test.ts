import type { APIGatewayProxyEventV2WithIAMAuthorizer } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalCredential, type RunningGateway, startGateway } from '#local/gateway/index.ts';
import { curlSigned, type SignedFetchOptions, sdkSign, sdkSignedFetch, sendRawHeaders } from './signing.ts';

const region = 'us-east-1';
const caller: LocalCredential = {
  accessKeyId: 'AKIALOCALCALLER00001',
  secretAccessKey: 'local-secret-of-the-caller-0000000000001',
  principal: 'arn:aws:iam::111122223333:role/payments-service',
};
const temporary: LocalCredential = {
  accessKeyId: 'ASIALOCALTEMPORARY01',
  secretAccessKey: 'local-secret-of-the-temporary-key-000001',
  principal: 'arn:aws:iam::111122223333:role/batch-jobs',
  sessionToken: 'local-session-token-0001',
};
const connectionId = 'acme:user-42.main';
const body = JSON.stringify({ email: 'someone@example.com', registrationCode: 'not-a-real-code' });

interface TestGateway {
  gateway: RunningGateway;
  events: APIGatewayProxyEventV2WithIAMAuthorizer[];
}

/** Starts a gateway with two IAM routes that record the events they are handed. */
async function gatewayWith(
  options: { now?: () => number; acceptAsSentCanonicalForm?: boolean } = {},
): Promise<TestGateway> {
  const events: APIGatewayProxyEventV2WithIAMAuthorizer[] = [];
  const gateway = await startGateway({
    region,
    credentials: [caller, temporary],
    ...options,
    routes: [
      {
        method: 'POST',
        path: '/connections/{id}/registration-code',
        auth: 'iam',
        handler: async (event) => {
          events.push(event);
          return { statusCode: 201, body: JSON.stringify({ connectionId: event.pathParameters?.id }) };
        },
      },
      {
        method: 'GET',
        path: '/connections',
        auth: 'iam',
        handler: async (event) => {
          events.push(event);
          return { statusCode: 200, body: JSON.stringify({ query: event.queryStringParameters ?? {} }) };
        },
      },
    ],
  });
  return { gateway, events };
}

/** Runs `test` against a gateway of its own, closed afterwards. */
async function withGateway(
  options: Parameters<typeof gatewayWith>[0],
  test: (started: TestGateway) => Promise<void>,
) {
  const started = await gatewayWith(options);
  try {
    await test(started);
  } finally {
    await started.gateway.close();
  }
}

const registrationPath = (id: string) => `/connections/${id}/registration-code`;

/** POSTs the JSON body to a registration route, signed by the AWS SDK signer as `caller` unless told otherwise. */
function register(baseUrl: string, overrides: Partial<SignedFetchOptions> & { path?: string } = {}) {
  const { path = registrationPath(connectionId), ...options } = overrides;
  return sdkSignedFetch(`${baseUrl}${path}`, {
    method: 'POST',
    credentials: caller,
    region,
    body,
    headers: { 'content-type': 'application/json' },
    ...options,
  });
}

describe('local gateway SigV4 checks', () => {
  let gateway: RunningGateway;
  let events: APIGatewayProxyEventV2WithIAMAuthorizer[];

  beforeAll(async () => {
    ({ gateway, events } = await gatewayWith());
  });
  afterAll(() => gateway.close());
  beforeEach(() => {
    events.length = 0;
  });

  describe('accepts', () => {
    it('a request signed by the AWS SDK signer, with a colon and dots in the path and a JSON body', async () => {
      const response = await register(gateway.url);

      expect(response.status).toBe(201);
      expect(await response.json()).toEqual({ connectionId });
      expect(events[0]?.body).toBe(body);
      expect(events[0]?.requestContext.authorizer.iam.userArn).toBe(
        'arn:aws:sts::111122223333:assumed-role/payments-service/local',
      );
    });

    it('a request signed by the AWS SDK signer with the connection id percent-encoded', async () => {
      const response = await register(gateway.url, {
        path: registrationPath(encodeURIComponent(connectionId)),
      });

      expect(response.status).toBe(201);
      expect(await response.json()).toEqual({ connectionId });
    });

    it('a query string signed by the AWS SDK signer, with escapes', async () => {
      const url = `${gateway.url}/connections?status=needs_reauth&after=a%3Ab%20c`;

      const response = await sdkSignedFetch(url, { method: 'GET', credentials: caller, region });

      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ query: { status: 'needs_reauth', after: 'a:b c' } });
    });

    it('temporary credentials that carry their session token', async () => {
      const response = await register(gateway.url, { credentials: temporary });

      expect(response.status).toBe(201);
      expect(events[0]?.requestContext.authorizer.iam.accessKey).toBe(temporary.accessKeyId);
    });

    it('a request signed by curl --aws-sigv4, with a colon and dots in the path and a JSON body', async () => {
      const result = await curlSigned(`${gateway.url}${registrationPath(connectionId)}`, {
        method: 'POST',
        ...caller,
        region,
        body,
      });

      expect(result).toEqual({ status: 201, body: JSON.stringify({ connectionId }) });
      expect(events[0]?.body).toBe(body);
      expect(events[0]?.headers['content-type']).toBe('application/json');
    });

    it('a query string signed by curl --aws-sigv4 in the order it was written', async () => {
      const url = `${gateway.url}/connections?status=active&after=x`;

      const result = await curlSigned(url, { method: 'GET', ...caller, region });

      expect(result.status).toBe(200);
      expect(JSON.parse(result.body)).toEqual({ query: { status: 'active', after: 'x' } });
    });
  });

  describe('refuses with 403 before the handler runs', () => {
    async function expectForbidden(response: Response, reason: RegExp) {
      expect(response.status).toBe(403);
      const answer = (await response.json()) as { error: string; message: string };
      expect(answer.error).toBe('forbidden');
      expect(answer.message).toMatch(reason);
      expect(answer.message).not.toContain(caller.secretAccessKey);
      expect(events).toHaveLength(0);
    }

    it('an unsigned request', async () => {
      const response = await fetch(`${gateway.url}${registrationPath(connectionId)}`, {
        method: 'POST',
        body,
      });

      await expectForbidden(response, /not signed/);
    });

    it('an unknown access key', async () => {
      const stranger = { accessKeyId: 'AKIASTRANGER00000001', secretAccessKey: caller.secretAccessKey };

      const response = await register(gateway.url, { credentials: stranger });

      await expectForbidden(response, /access key .* not one of the local credentials/);
    });

    it('a signature for another region', async () => {
      const response = await register(gateway.url, { region: 'eu-west-1' });

      await expectForbidden(response, /region "eu-west-1".*"us-east-1"/);
    });

    it('a signature for another service', async () => {
      const response = await register(gateway.url, { service: 'lambda' });

      await expectForbidden(response, /service "lambda".*"execute-api"/);
    });

    it('a signature made with the wrong secret', async () => {
      const wrongSecret = {
        accessKeyId: caller.accessKeyId,
        secretAccessKey: 'not-the-secret-of-this-key-00000000001',
      };

      const response = await register(gateway.url, { credentials: wrongSecret });

      await expectForbidden(response, /signature does not match/);
    });

    it('a body changed after signing, when the signature covers x-amz-content-sha256', async () => {
      const response = await register(gateway.url, {
        afterSigning: (request) => {
          request.body = body.replace('someone', 'attacker');
        },
      });

      await expectForbidden(response, /body does not match its signed hash/);
    });

    it('a body changed after signing, when only the signature covers it', async () => {
      const response = await register(gateway.url, {
        contentSha256Header: false,
        afterSigning: (request) => {
          request.body = body.replace('someone', 'attacker');
        },
      });

      await expectForbidden(response, /signature does not match/);
    });

    it('a request sent to another connection than the one it was signed for', async () => {
      const response = await register(gateway.url, {
        path: registrationPath('acme:other'),
        sendTo: `${gateway.url}${registrationPath(connectionId)}`,
      });

      await expectForbidden(response, /signature does not match/);
    });

    it('a session token that does not belong to the access key', async () => {
      const response = await register(gateway.url, {
        credentials: { ...temporary, sessionToken: 'someone-elses-session-token' },
      });

      await expectForbidden(response, /security token does not belong/);
    });

    it.each([
      [
        'a second, forged',
        'AWS4-HMAC-SHA256 Credential=AKIASTRANGER00000001/20261126/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00',
      ],
      ['the same', undefined],
    ])('a request with %s Authorization header after a valid one', async (_label, second) => {
      const url = `${gateway.url}${registrationPath(connectionId)}`;
      const signed = await sdkSign(url, {
        method: 'POST',
        credentials: caller,
        region,
        body,
        headers: { 'content-type': 'application/json' },
      });
      const { authorization = '', ...others } = signed.headers;
      const lines: Array<[string, string]> = [
        ...Object.entries(others),
        ['authorization', authorization],
        ['authorization', second ?? authorization],
      ];

      const response = await sendRawHeaders(url, 'POST', lines, body);

      expect(response.status).toBe(403);
      const answer = JSON.parse(response.body) as { error: string; message: string };
      expect(answer).toMatchObject({ error: 'forbidden' });
      expect(answer.message).toMatch(/more than one Authorization header/);
      expect(events).toHaveLength(0);
    });

    it('a session token sent with a long-term access key', async () => {
      const response = await register(gateway.url, {
        credentials: { ...caller, sessionToken: 'a-token-this-key-never-had' },
      });

      await expectForbidden(response, /takes no security token/);
    });
  });
});

describe('local gateway SigV4 clock checks', () => {
  const signedAt = new Date('2026-11-26T12:00:00Z');

  it.each([
    ['six minutes late', 6 * 60_000],
    ['six minutes early', -6 * 60_000],
  ])('refuses a request whose X-Amz-Date is %s for the gateway clock', async (_label, offsetMs) => {
    await withGateway({ now: () => signedAt.getTime() + offsetMs }, async ({ gateway, events }) => {
      const response = await register(gateway.url, { signingDate: signedAt });

      expect(response.status).toBe(403);
      expect(((await response.json()) as { message: string }).message).toMatch(/more than 300 seconds/);
      expect(events).toHaveLength(0);
    });
  });

  it('accepts a request signed four minutes before the gateway clock', async () => {
    await withGateway({ now: () => signedAt.getTime() + 4 * 60_000 }, async ({ gateway }) => {
      const response = await register(gateway.url, { signingDate: signedAt });

      expect(response.status).toBe(201);
    });
  });
});

describe('local gateway with only the AWS canonical form', () => {
  it("refuses curl's as-sent signature of a path with a colon", async () => {
    await withGateway({ acceptAsSentCanonicalForm: false }, async ({ gateway, events }) => {
      const url = `${gateway.url}${registrationPath(connectionId)}`;

      const result = await curlSigned(url, { method: 'POST', ...caller, region, body });

      expect(result.status).toBe(403);
      expect(events).toHaveLength(0);
    });
  });

  it('still accepts the AWS SDK signer', async () => {
    await withGateway({ acceptAsSentCanonicalForm: false }, async ({ gateway }) => {
      const response = await register(gateway.url);

      expect(response.status).toBe(201);
    });
  });
});
