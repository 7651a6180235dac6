import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalBroker } from '#local/local-broker.ts';
import { BROKER_ROUTES } from '../../../infra/routes.ts';
import { startCallerBroker } from '../../support/caller-broker.ts';
import { type ContractExchange, contractViolations, openApiDocument } from '../../support/openapi.ts';

const TOKEN = {
  accessToken: 'opaque',
  tokenType: 'Bearer',
  expiresAt: '2026-03-02T21:00:00.000Z',
  validUntil: '2026-03-02T18:36:00.000Z',
  generation: 1,
  scope: 'transfers',
  connectionId: 'acme-1',
  profileId: 16550002,
};

function vend(overrides: Partial<ContractExchange> = {}): ContractExchange {
  return {
    method: 'POST',
    route: '/tokens',
    status: 200,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    body: JSON.stringify(TOKEN),
    ...overrides,
  };
}

describe('docs/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate(
      structuredClone(openApiDocument) as unknown as Record<string, unknown>,
    );

    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
  });

  it('documents exactly the routes the deployed API has', () => {
    const documented = Object.entries(openApiDocument.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );

    expect(documented.sort()).toEqual(BROKER_ROUTES.map((route) => `${route.method} ${route.path}`).sort());
  });
});

describe('the contract check of responses', () => {
  it('accepts a response that fits the document', () => {
    expect(contractViolations(vend())).toEqual([]);
  });

  it('refuses a body with a field the document does not have', () => {
    const body = JSON.stringify({ ...TOKEN, refreshToken: 'never' });

    expect(contractViolations(vend({ body }))).toEqual([
      'POST /tokens 200: the body does not fit the document: / must NOT have additional properties ("refreshToken").',
    ]);
  });

  it('refuses a status the document does not list for the route', () => {
    expect(contractViolations(vend({ status: 418 }))).toEqual([
      'POST /tokens answered 418, which docs/openapi.json does not list for this route.',
    ]);
  });

  it('refuses a route the document does not have', () => {
    expect(contractViolations(vend({ route: '/tokens/{id}' }))).toEqual([
      'POST /tokens/{id} answered, but docs/openapi.json does not document this route.',
    ]);
  });

  it('refuses a 503 without its Retry-After header', () => {
    const body = JSON.stringify({ error: 'provider_unavailable', message: 'Wise is not answering.' });

    expect(contractViolations(vend({ status: 503, body }))).toEqual([
      'POST /tokens 503: the required header retry-after is missing.',
    ]);
  });

  it('refuses an error body whose code is not the status code', () => {
    const body = JSON.stringify({ error: 'forbidden', message: 'No such connection.' });

    expect(contractViolations(vend({ status: 404, body }))).toHaveLength(1);
  });

  it('refuses a content type the document does not list', () => {
    expect(
      contractViolations(vend({ headers: { 'content-type': 'text/plain', 'cache-control': 'no-store' } })),
    ).toEqual(['POST /tokens 200: content type "text/plain" is not one the document lists.']);
  });
});

describe('GET /openapi.json on the local gateway', () => {
  let broker: LocalBroker;
  beforeAll(async () => {
    broker = await startCallerBroker('the OpenAPI document test');
  });
  afterAll(async () => {
    await broker?.close();
  });

  it('serves the document, unsigned, with the local gateway as its server', async () => {
    const response = await fetch(`${broker.url}/openapi.json`);
    const served = (await response.json()) as {
      openapi: string;
      paths: object;
      servers: Array<{ url: string }>;
    };

    expect(response.status).toBe(200);
    expect(served.openapi).toBe('3.1.0');
    expect(served.paths).toEqual(openApiDocument.paths);
    expect(served.servers).toEqual([{ url: broker.url, description: 'this local broker' }]);
  });
});
