import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { apiHandler } from '#shared/http/api-handler.ts';
import { callerArn } from '#shared/http/request.ts';
import { jsonResponse } from '#shared/http/responses.ts';
import { fromRestEvent, isRestEvent } from '#shared/http/rest-event.ts';
import type { AuditEntry } from '#shared/ports/audit-trail.ts';

const CALLER = 'arn:aws:sts::999999999999:assumed-role/partner/session';

/** A REST API Lambda proxy event (payload format 1.0) for an IAM-authorized method, as API Gateway sends it. */
function restEvent(overrides: Partial<APIGatewayProxyEvent> = {}): APIGatewayProxyEvent {
  return {
    resource: '/connections/{id}',
    path: '/connections/acme-1',
    httpMethod: 'GET',
    headers: { Host: 'a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com', 'X-Amz-Date': '20261201T160000Z' },
    multiValueHeaders: {
      Host: ['a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com'],
      'X-Amz-Date': ['20261201T160000Z'],
    },
    queryStringParameters: { status: 'needs_reauth' },
    multiValueQueryStringParameters: { status: ['active', 'needs_reauth'] },
    pathParameters: { id: 'acme-1' },
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'a1b2c3d4e5',
      authorizer: null,
      protocol: 'HTTP/1.1',
      httpMethod: 'GET',
      identity: {
        accessKey: 'ASIAEXAMPLE',
        accountId: '999999999999',
        apiKey: null,
        apiKeyId: null,
        caller: 'AROAEXAMPLE:session',
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: 'o-a1b2c3d4e5',
        sourceIp: '10.0.1.20',
        user: 'AROAEXAMPLE:session',
        userAgent: 'test',
        userArn: CALLER,
        vpceId: 'vpce-0a1b2c3d4e5f60718',
      } as APIGatewayProxyEvent['requestContext']['identity'],
      path: '/broker/connections/acme-1',
      stage: 'broker',
      requestId: 'request-1',
      requestTimeEpoch: 1_796_140_800_000,
      resourceId: 'abc123',
      resourcePath: '/connections/{id}',
    },
    ...overrides,
  };
}

describe('fromRestEvent', () => {
  it('reads the route, the path parameters and the verified principal where the HTTP API puts them', () => {
    const event = fromRestEvent(restEvent());

    expect(event.routeKey).toBe('GET /connections/{id}');
    expect(event.requestContext.http.method).toBe('GET');
    expect(event.rawPath).toBe('/connections/acme-1');
    expect(event.pathParameters).toEqual({ id: 'acme-1' });
    expect(callerArn(event)).toBe(CALLER);
  });

  it('lower-cases header names and joins repeated query parameters with commas, as the HTTP API does', () => {
    const event = fromRestEvent(restEvent());

    expect(event.headers.host).toBe('a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com');
    expect(event.headers['X-Amz-Date']).toBeUndefined();
    expect(event.queryStringParameters).toEqual({ status: 'active,needs_reauth' });
  });

  it('decodes path parameters a REST API passes as sent, as the HTTP API does, and keeps a malformed one', () => {
    const encoded = fromRestEvent(
      restEvent({ path: '/connections/acme%3A1', pathParameters: { id: 'acme%3A1' } }),
    );
    const malformed = fromRestEvent(
      restEvent({ path: '/connections/acme%E0', pathParameters: { id: 'acme%E0' } }),
    );

    expect(encoded.pathParameters).toEqual({ id: 'acme:1' });
    expect(malformed.pathParameters).toEqual({ id: 'acme%E0' });
  });

  it('gives no principal for a request that carries none, so an IAM route refuses it', () => {
    const unsigned = restEvent();
    unsigned.requestContext.identity.userArn = null;

    expect(() => callerArn(fromRestEvent(unsigned))).toThrow(/signed with AWS SigV4/);
  });

  it('keeps the body and its encoding, and splits the cookie header into cookies', () => {
    const event = fromRestEvent(
      restEvent({
        httpMethod: 'POST',
        resource: '/tokens',
        path: '/tokens',
        body: '{"kind":"client"}',
        headers: { Cookie: 'a=1; b=2' },
        multiValueHeaders: {},
      }),
    );

    expect(event.body).toBe('{"kind":"client"}');
    expect(event.isBase64Encoded).toBe(false);
    expect(event.cookies).toEqual(['a=1', 'b=2']);
    expect(event.headers.cookie).toBeUndefined();
  });
});

describe('isRestEvent', () => {
  it('tells a REST API event from an HTTP API event', () => {
    expect(isRestEvent(restEvent())).toBe(true);
    expect(isRestEvent(fromRestEvent(restEvent()))).toBe(false);
    expect(isRestEvent({ version: '2.0', httpMethod: 'GET', resource: '/x' })).toBe(false);
  });
});

describe('apiHandler with a REST API event', () => {
  it('hands the handler the 2.0 event, with the caller, and audits the request under it', async () => {
    const entries: AuditEntry[] = [];
    const handler = apiHandler(
      () => ({ record: (entry) => entries.push(entry) }),
      async (event, _context, request) => {
        request.note({ action: 'status' });
        return jsonResponse(200, { route: event.routeKey, caller: callerArn(event) });
      },
    );
    const context = { getRemainingTimeInMillis: () => 28_000, functionName: 'connections' } as Context;

    const result = (await handler(restEvent() as never, context)) as { statusCode: number; body: string };

    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toEqual({ route: 'GET /connections/{id}', caller: CALLER });
    expect(entries).toEqual([expect.objectContaining({ action: 'status', callerArn: CALLER, status: 200 })]);
  });
});
