import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type GatewayLogger,
  type GatewayResult,
  type RunningGateway,
  startGateway,
} from '#local/gateway/index.ts';

describe('local gateway responses', () => {
  let gateway: RunningGateway;
  let nextResult: () => Promise<GatewayResult>;
  const handled: APIGatewayProxyEventV2[] = [];
  const logged: { level: string; message: string; attributes: Record<string, unknown> }[] = [];
  const logger: GatewayLogger = {
    info: (message, attributes) => logged.push({ level: 'info', message, attributes }),
    warn: (message, attributes) => logged.push({ level: 'warn', message, attributes }),
    error: (message, attributes) => logged.push({ level: 'error', message, attributes }),
  };
  const handler = async (event: APIGatewayProxyEventV2) => {
    handled.push(event);
    return nextResult();
  };

  beforeAll(async () => {
    gateway = await startGateway({
      region: 'us-east-1',
      credentials: [],
      maxBodyBytes: 1024,
      logger,
      routes: [
        { method: 'POST', path: '/items', auth: 'none', handler },
        { method: 'GET', path: '/items/{id}', auth: 'none', handler },
        { method: 'DELETE', path: '/items/{id}', auth: 'none', handler },
        {
          method: 'GET',
          path: '/items/latest',
          auth: 'none',
          handler: async () => ({ statusCode: 200, body: 'latest' }),
        },
      ],
    });
  });
  afterAll(() => gateway.close());
  beforeEach(() => {
    handled.length = 0;
    logged.length = 0;
    nextResult = async () => ({ statusCode: 204 });
  });

  describe('maps the handler result', () => {
    it('sends the status, headers and body of a structured result', async () => {
      nextResult = async () => ({
        statusCode: 201,
        headers: { 'content-type': 'application/json', 'x-count': 3 },
        body: '{"id":"i-1"}',
      });

      const response = await fetch(`${gateway.url}/items`, { method: 'POST', body: '{}' });

      expect(response.status).toBe(201);
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(response.headers.get('x-count')).toBe('3');
      expect(await response.text()).toBe('{"id":"i-1"}');
    });

    it('sends each cookie as its own set-cookie header', async () => {
      nextResult = async () => ({ statusCode: 200, cookies: ['a=1; HttpOnly', 'b=2'], body: 'ok' });

      const response = await fetch(`${gateway.url}/items/i-1`);

      expect(response.headers.getSetCookie()).toEqual(['a=1; HttpOnly', 'b=2']);
    });

    it('sends every value of multiValueHeaders', async () => {
      nextResult = async () => ({
        statusCode: 200,
        multiValueHeaders: { 'x-tag': ['red', 'blue'] },
        body: '',
      });

      const response = await fetch(`${gateway.url}/items/i-1`);

      expect(response.headers.get('x-tag')).toBe('red, blue');
    });

    it('decodes a base64-encoded body', async () => {
      const bytes = Buffer.from([1, 2, 3, 250]);
      nextResult = async () => ({ statusCode: 200, body: bytes.toString('base64'), isBase64Encoded: true });

      const response = await fetch(`${gateway.url}/items/i-1`);

      expect(Buffer.from(await response.arrayBuffer())).toEqual(bytes);
    });

    it('sends a plain object result as a 200 JSON body, as HTTP API does', async () => {
      nextResult = async () => ({ id: 'i-1', tags: ['red'] });

      const response = await fetch(`${gateway.url}/items/i-1`);

      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(await response.json()).toEqual({ id: 'i-1', tags: ['red'] });
    });

    it('sends a string result as the body of a 200 JSON response', async () => {
      nextResult = async () => 'hello';

      const response = await fetch(`${gateway.url}/items/i-1`);

      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(await response.text()).toBe('hello');
    });

    it('prefers a literal route segment to a path parameter', async () => {
      const response = await fetch(`${gateway.url}/items/latest`);

      expect(await response.text()).toBe('latest');
      expect(handled).toHaveLength(0);
    });
  });

  describe('answers itself', () => {
    it('404 with the error body when no route has the path', async () => {
      const response = await fetch(`${gateway.url}/nothing/here`);

      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({
        error: 'not_found',
        message: 'No route matches GET /nothing/here.',
      });
    });

    it('405 naming the allowed methods when the path exists with other methods', async () => {
      const response = await fetch(`${gateway.url}/items`, { method: 'GET' });

      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('POST');
      expect(await response.json()).toEqual({
        error: 'method_not_allowed',
        message: '/items does not accept GET; it accepts POST.',
      });
    });

    it('413 when the body is larger than the limit, without running the handler', async () => {
      const response = await fetch(`${gateway.url}/items`, { method: 'POST', body: 'x'.repeat(1025) });

      expect(response.status).toBe(413);
      expect(await response.json()).toEqual({
        error: 'payload_too_large',
        message: 'The request body is larger than 1024 bytes.',
      });
      expect(handled).toHaveLength(0);
    });

    it('413 when a body sent in chunks grows past the limit', async () => {
      const chunks = [new Uint8Array(600), new Uint8Array(600)];
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          const chunk = chunks.shift();
          if (chunk) controller.enqueue(chunk);
          else controller.close();
        },
      });

      const response = await fetch(`${gateway.url}/items`, { method: 'POST', body: stream, duplex: 'half' });

      expect(response.status).toBe(413);
      expect(handled).toHaveLength(0);
    });

    it('accepts a body exactly at the limit', async () => {
      const response = await fetch(`${gateway.url}/items`, { method: 'POST', body: 'x'.repeat(1024) });

      expect(response.status).toBe(204);
      expect(handled[0]?.body).toHaveLength(1024);
    });

    it('400 for a path with a malformed percent-escape', async () => {
      const response = await fetch(`${gateway.url}/items/%E0%A4%A`);

      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toBe('invalid_request');
    });

    it('500 without internals when the handler throws, and logs the error', async () => {
      nextResult = async () => {
        throw new Error('database password is hunter2');
      };

      const response = await fetch(`${gateway.url}/items/i-1`);

      expect(response.status).toBe(500);
      expect(await response.json()).toEqual({ error: 'internal_error', message: 'Internal server error' });
      expect(logged).toContainEqual(
        expect.objectContaining({
          level: 'error',
          attributes: expect.objectContaining({
            error: expect.objectContaining({ message: 'database password is hunter2' }),
          }),
        }),
      );
    });

    it('500 when the handler returns a status that is not an HTTP status', async () => {
      nextResult = async () => ({ statusCode: 42 });

      const response = await fetch(`${gateway.url}/items/i-1`);

      expect(response.status).toBe(500);
      expect(await response.json()).toEqual({ error: 'internal_error', message: 'Internal server error' });
    });
  });

  it('logs each request without its query string', async () => {
    await fetch(`${gateway.url}/items/i-1?code=secret-authorization-code`);

    expect(logged).toEqual([
      {
        level: 'info',
        message: 'Request',
        attributes: expect.objectContaining({ routeKey: 'GET /items/{id}', path: '/items/i-1', status: 204 }),
      },
    ]);
    expect(JSON.stringify(logged)).not.toContain('secret-authorization-code');
  });
});

describe('startGateway configuration', () => {
  const base = { region: 'us-east-1', credentials: [], routes: [] };

  it('refuses a credential whose principal is not an IAM role or user ARN', async () => {
    const credentials = [{ accessKeyId: 'AK', secretAccessKey: 'S', principal: 'payments' }];

    await expect(startGateway({ ...base, credentials })).rejects.toThrow(
      /not an IAM role, user or assumed-role ARN/,
    );
  });

  it('refuses two routes with the same method and path shape', async () => {
    const handler = async () => ({ statusCode: 204 });
    const routes = [
      { method: 'GET' as const, path: '/a/{x}', auth: 'none' as const, handler },
      { method: 'GET' as const, path: '/a/{y}', auth: 'none' as const, handler },
    ];

    await expect(startGateway({ ...base, routes })).rejects.toThrow(/defined twice/);
  });
});
