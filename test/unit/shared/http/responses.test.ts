import { describe, expect, it } from 'vitest';
import {
  BrokerError,
  ConnectionExistsError,
  ConnectionNotFoundError,
  DependencyUnavailableError,
  ForbiddenError,
  InvalidRequestError,
  ProviderUnavailableError,
  ReauthorizationRequiredError,
  RefreshTokenRejectedError,
  RolledBackRecordError,
  TokenDecryptionError,
} from '#shared/domain/errors.ts';
import { emptyResponse, errorToResponse, jsonResponse } from '#shared/http/responses.ts';

const UNEXPECTED = 'The broker failed unexpectedly; try again, and tell the operator if it persists.';

describe('errorToResponse', () => {
  it.each<[string, Error, number, string]>([
    [
      'InvalidRequestError',
      new InvalidRequestError('Field "limit": must be a number.'),
      400,
      'invalid_request',
    ],
    ['ForbiddenError', new ForbiddenError('The caller may not.'), 403, 'forbidden'],
    ['ConnectionNotFoundError', new ConnectionNotFoundError('acme-1'), 404, 'connection_not_found'],
    [
      'ReauthorizationRequiredError',
      new ReauthorizationRequiredError('acme-1'),
      409,
      'reauthorization_required',
    ],
    [
      'ConnectionExistsError',
      new ConnectionExistsError('acme-1', 'Connection "acme-1" exists.'),
      409,
      'connection_exists',
    ],
    [
      'RefreshTokenRejectedError',
      new RefreshTokenRejectedError('Wise refused it.'),
      422,
      'refresh_token_rejected',
    ],
  ])('answers a %s with %i and its own sentence', (_, error, statusCode, code) => {
    const response = errorToResponse(error);

    expect(response.statusCode).toBe(statusCode);
    expect(JSON.parse(response.body ?? '')).toEqual({ error: code, message: error.message });
    expect(response.headers).toMatchObject({
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
  });

  it('answers Wise being unavailable with 503 and the Retry-After it asks for', () => {
    const response = errorToResponse(
      new ProviderUnavailableError('Wise answered 503.', { retryAfterSeconds: 42 }),
    );

    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body ?? '')).toEqual({
      error: 'provider_unavailable',
      message: 'Wise answered 503.',
    });
    expect(response.headers).toMatchObject({ 'retry-after': '42', 'cache-control': 'no-store' });
  });

  it.each([
    ['DynamoDB', 'storage'],
    ['KMS', 'encryption service'],
    ['Secrets Manager', 'credentials store'],
    ['EventBridge', 'event delivery'],
  ] as const)(
    "answers %s being unavailable with 503 service_unavailable, Retry-After 5, and a sentence naming the broker's %s, not AWS",
    (dependency, role) => {
      const response = errorToResponse(
        new DependencyUnavailableError(dependency, {
          cause: Object.assign(new Error('Rate exceeded for arn:aws:kms:eu-west-1:1:key/k'), {
            name: 'ThrottlingException',
          }),
        }),
      );

      expect(response.statusCode).toBe(503);
      expect(response.headers).toMatchObject({ 'retry-after': '5', 'cache-control': 'no-store' });
      expect(JSON.parse(response.body ?? '')).toEqual({
        error: 'service_unavailable',
        message: `The broker's ${role} is unavailable just now; try again in 5 s, and tell the operator if it persists.`,
      });
      expect(response.body).not.toMatch(/dynamo|kms|secrets ?manager|eventbridge|throttl|arn:/i);
    },
  );

  it.each([
    ['an Error', new Error('connect ECONNREFUSED 10.0.0.7:443 refresh_token=rt-secret')],
    ['a BrokerError of no mapped kind', new BrokerError('table wise-broker-prod is missing')],
    ['a TokenDecryptionError', new TokenDecryptionError('KMS refused key alias/broker')],
    ['a RolledBackRecordError', new RolledBackRecordError('generation 3 is older than the fence 4')],
    ['a thrown string', 'boom'],
  ])('answers %s with a 500 that says nothing of its cause', (_, error) => {
    const response = errorToResponse(error);

    expect(response.statusCode).toBe(500);
    expect(JSON.parse(response.body ?? '')).toEqual({ error: 'internal_error', message: UNEXPECTED });
    expect(response.headers).toMatchObject({ 'cache-control': 'no-store' });
  });
});

describe('jsonResponse and emptyResponse', () => {
  it('mark every response no-store and nosniff, and let the caller add headers', () => {
    expect(jsonResponse(200, { a: 1 }, { location: '/x' })).toEqual({
      statusCode: 200,
      headers: {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        location: '/x',
      },
      body: '{"a":1}',
    });
    expect(emptyResponse(204)).toEqual({
      statusCode: 204,
      headers: { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' },
    });
  });
});
