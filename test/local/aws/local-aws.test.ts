import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalAws } from '#local/aws/local-aws.ts';
import { type TestLocalAws, testLocalAws } from '../../support/aws.ts';

// Any value will do: the local endpoint requires the header but does not verify SigV4.
const AUTHORIZATION =
  'AWS4-HMAC-SHA256 Credential=AKIALOCALTEST0000000/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=0';

describe('startLocalAws', () => {
  let aws: TestLocalAws;

  beforeAll(async () => {
    aws = await testLocalAws();
  });

  afterAll(() => aws.close());

  function post(target: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${aws.endpoint}/`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': target,
        authorization: AUTHORIZATION,
        ...headers,
      },
      body,
    });
  }

  describe('EventBridge PutEvents', () => {
    it('records every entry and answers an EventId for each, with no failed entry', async () => {
      const recordedBefore = aws.recordedEvents.length;
      const time = new Date('2026-01-02T03:04:05Z');

      const result = await aws.events.send(
        new PutEventsCommand({
          Entries: [
            {
              Source: 'wise-broker',
              DetailType: 'ConnectionNeedsReauthorization',
              Detail: JSON.stringify({ connectionId: 'connection-1' }),
              EventBusName: 'broker-bus',
              Resources: ['arn:aws:lambda:us-east-1:000000000000:function:refresh'],
              Time: time,
            },
            { Source: 'wise-broker', DetailType: 'TokenRefreshed', Detail: '{}' },
          ],
        }),
      );

      const recorded = aws.recordedEvents.slice(recordedBefore);
      expect(result.FailedEntryCount).toBe(0);
      expect(result.Entries?.map((entry) => entry.EventId)).toEqual(recorded.map((event) => event.eventId));
      expect(recorded).toMatchObject([
        {
          source: 'wise-broker',
          detailType: 'ConnectionNeedsReauthorization',
          eventBusName: 'broker-bus',
          resources: ['arn:aws:lambda:us-east-1:000000000000:function:refresh'],
          time,
        },
        { source: 'wise-broker', detailType: 'TokenRefreshed', eventBusName: 'default', resources: [] },
      ]);
      expect(JSON.parse(recorded[0]?.detail ?? '')).toEqual({ connectionId: 'connection-1' });
    });

    it('refuses an empty list of entries with ValidationException and records nothing', async () => {
      const recordedBefore = aws.recordedEvents.length;

      const put = aws.events.send(new PutEventsCommand({ Entries: [] }));

      await expect(put).rejects.toMatchObject({
        name: 'ValidationException',
        $metadata: { httpStatusCode: 400 },
      });
      expect(aws.recordedEvents).toHaveLength(recordedBefore);
    });
  });

  describe('the JSON 1.1 protocol', () => {
    it.each([
      ['an operation it does not implement', 'TrentService.CreateKey'],
      ['a service it does not serve', 'DynamoDB_20120810.ListTables'],
      ['a target without an operation', 'TrentService'],
    ])('answers %s with 400 UnknownOperationException', async (_, target) => {
      const response = await post(target, '{}');

      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toBe('application/x-amz-json-1.1');
      expect(await response.json()).toMatchObject({ __type: 'UnknownOperationException' });
    });

    it('answers a request without an X-Amz-Target with 400 UnknownOperationException', async () => {
      const response = await fetch(`${aws.endpoint}/`, {
        method: 'POST',
        headers: { authorization: AUTHORIZATION },
        body: '{}',
      });

      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ __type: 'UnknownOperationException' });
    });

    it('refuses a request without an Authorization header and does not run it', async () => {
      const recordedBefore = aws.recordedEvents.length;

      const response = await post('AWSEvents.PutEvents', JSON.stringify({ Entries: [{ Source: 's' }] }), {
        authorization: '',
      });

      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ __type: 'MissingAuthenticationTokenException' });
      expect(aws.recordedEvents).toHaveLength(recordedBefore);
    });

    it('answers a body that is not JSON with 400 SerializationException', async () => {
      const response = await post('TrentService.GenerateRandom', '{"NumberOfBytes": ');

      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ __type: 'SerializationException' });
    });

    it('answers a blob that is not base64 with 400 SerializationException', async () => {
      const response = await post('TrentService.Decrypt', JSON.stringify({ CiphertextBlob: 'not base64!' }));

      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ __type: 'SerializationException' });
    });

    it('answers a missing required member with 400 ValidationException naming the member', async () => {
      const response = await post('TrentService.Encrypt', JSON.stringify({ Plaintext: 'aGVsbG8=' }));

      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        __type: 'ValidationException',
        message:
          "1 validation error detected: Value at 'keyId' failed to satisfy constraint: Member must not be null",
      });
    });

    it('answers a body over its size limit with 413', async () => {
      const response = await post(
        'AWSEvents.PutEvents',
        JSON.stringify({ padding: 'x'.repeat(1024 * 1024) }),
      );

      expect(response.status).toBe(413);
      expect(await response.json()).toMatchObject({ __type: 'RequestEntityTooLargeException' });
    });

    it('answers a GET with 400 and the protocol it speaks', async () => {
      const response = await fetch(`${aws.endpoint}/`, { headers: { authorization: AUTHORIZATION } });

      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({
        message: expect.stringMatching(/POST requests of the AWS JSON 1\.1 protocol/),
      });
    });
  });
});

describe('startLocalAws options', () => {
  it('names the given region and account in its ARNs', async () => {
    const localAws = await startLocalAws({
      region: 'eu-west-2',
      accountId: '123456789012',
      keys: ['alias/a'],
    });
    try {
      expect(localAws.keyArn('alias/a')).toMatch(/^arn:aws:kms:eu-west-2:123456789012:key\/[0-9a-f-]{36}$/);
      expect(localAws.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      await localAws.close();
    }
  });

  it.each([
    [{ region: 'nowhere' }, /not an AWS region name/],
    [{ accountId: '123' }, /must be 12 digits/],
    [{ keys: ['alias/aws/reserved'] }, /reserved for AWS managed keys/],
    [{ keys: ['not a key'] }, /neither a key id/],
  ])('refuses to start with %o', async (options, message) => {
    await expect(startLocalAws(options)).rejects.toThrow(message);
  });
});
