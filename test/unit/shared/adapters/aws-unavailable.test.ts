import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  InternalServerError,
  ProvisionedThroughputExceededException,
} from '@aws-sdk/client-dynamodb';
import { InvalidCiphertextException, KMSInternalException, KMSServiceException } from '@aws-sdk/client-kms';
import type { DeserializeHandler, MetadataBearer } from '@smithy/types';
import { describe, expect, it } from 'vitest';
import { isDependencyUnavailable, reportUnavailable } from '#shared/adapters/aws-unavailable.ts';
import { DependencyUnavailableError } from '#shared/domain/errors.ts';

const metadata = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });

/** An error of a service the SDK has no class for, as it builds one from the wire type. */
function serviceError(name: string, httpStatusCode: number, fault: 'client' | 'server') {
  return new KMSServiceException({ name, $fault: fault, ...metadata(httpStatusCode), message: name });
}

/** What `@smithy/node-http-handler` rejects with when its socket timeout fires. */
const timeout = Object.assign(new Error('Connection timed out after 2000 ms'), { name: 'TimeoutError' });

describe('isDependencyUnavailable', () => {
  it.each([
    ['DynamoDB throttling', serviceError('ThrottlingException', 400, 'client')],
    [
      'DynamoDB provisioned throughput exceeded',
      new ProvisionedThroughputExceededException({ message: 'exceeded', ...metadata(400) }),
    ],
    ['a DynamoDB internal server error', new InternalServerError({ message: 'internal', ...metadata(500) })],
    ['a KMS internal error', new KMSInternalException({ message: 'internal', ...metadata(500) })],
    ['a 503 of any service', serviceError('ServiceUnavailable', 503, 'server')],
    ['the SDK socket timeout', timeout],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
    ['an unknown host', Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' })],
  ])('says %s is unavailable', (_what, error) => {
    expect(isDependencyUnavailable(error)).toBe(true);
  });

  it.each([
    [
      'a conditional-check failure',
      new ConditionalCheckFailedException({ message: 'The conditional request failed', ...metadata(400) }),
    ],
    ['an access denied', serviceError('AccessDeniedException', 400, 'client')],
    ['a validation error', serviceError('ValidationException', 400, 'client')],
    ['a KMS invalid ciphertext', new InvalidCiphertextException({ message: 'invalid', ...metadata(400) })],
    ['a missing resource', serviceError('ResourceNotFoundException', 400, 'client')],
    ['an abort', Object.assign(new Error('Request aborted'), { name: 'AbortError' })],
    ['a plain error', new Error('bug')],
    ['a value that is not an error', 'ThrottlingException'],
  ])('does not say %s is unavailable', (_what, error) => {
    expect(isDependencyUnavailable(error)).toBe(false);
  });
});

describe('reportUnavailable', () => {
  /** A real DynamoDB client whose one attempt fails with `error`, before anything is sent. */
  function failingClient(error: unknown) {
    const client = new DynamoDBClient({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'AKIAUNITTEST', secretAccessKey: 'unit-test-only' },
      maxAttempts: 1,
    });
    client.middlewareStack.add(
      (_next: DeserializeHandler<object, MetadataBearer>) => async () => {
        throw error;
      },
      { step: 'deserialize', priority: 'low', name: 'testFailure' },
    );
    reportUnavailable(client, 'DynamoDB');
    return client;
  }

  it('turns an error the SDK gave up on as transient into DependencyUnavailableError, with the error as its cause', async () => {
    const client = failingClient(timeout);

    const sent = client.send(new GetItemCommand({ TableName: 'broker', Key: { pk: { S: 'a' } } }));

    await expect(sent).rejects.toBeInstanceOf(DependencyUnavailableError);
    await expect(sent).rejects.toMatchObject({
      dependency: 'DynamoDB',
      retryAfterSeconds: 5,
      cause: timeout,
    });
  });

  it('passes an answer that is not an outage through unchanged', async () => {
    const conflict = new ConditionalCheckFailedException({ message: 'failed', ...metadata(400) });
    const client = failingClient(conflict);

    const sent = client.send(new GetItemCommand({ TableName: 'broker', Key: { pk: { S: 'a' } } }));

    await expect(sent).rejects.toBe(conflict);
  });

  it('can be added to the same client twice without failing', () => {
    const client = failingClient(timeout);

    expect(() => reportUnavailable(client, 'DynamoDB')).not.toThrow();
  });
});
