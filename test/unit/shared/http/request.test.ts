import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ForbiddenError, InvalidRequestError } from '#shared/domain/errors.ts';
import { callerArn, describeIssue, MAX_BODY_BYTES, parseJsonBody, parseValue } from '#shared/http/request.ts';

const ARN = 'arn:aws:sts::111122223333:assumed-role/partner-app/payments-7';

function event(fields: Partial<APIGatewayProxyEventV2> & { userArn?: unknown } = {}): APIGatewayProxyEventV2 {
  const { userArn, ...rest } = fields;
  return {
    requestContext: userArn === undefined ? {} : { authorizer: { iam: { userArn } } },
    isBase64Encoded: false,
    ...rest,
  } as unknown as APIGatewayProxyEventV2;
}

const Body = z.strictObject({ connectionId: z.string(), options: z.strictObject({ days: z.number() }) });

describe('callerArn', () => {
  it('is the principal API Gateway verified', () => {
    expect(callerArn(event({ userArn: ARN }))).toBe(ARN);
  });

  it.each([
    ['no authorizer', undefined],
    ['an empty ARN', ''],
    ['an ARN that is no string', 42],
  ])('refuses a request with %s, saying it must be signed', (_, userArn) => {
    expect(() => callerArn(event({ userArn }))).toThrow(ForbiddenError);
    expect(() => callerArn(event({ userArn }))).toThrow(
      'This route needs a request signed with AWS SigV4 by an IAM principal.',
    );
  });
});

describe('parseJsonBody', () => {
  it('parses a JSON body against the schema', () => {
    const body = JSON.stringify({ connectionId: 'acme-1', options: { days: 3 } });

    expect(parseJsonBody(event({ body }), Body)).toEqual({ connectionId: 'acme-1', options: { days: 3 } });
  });

  it('decodes a base64-encoded body first', () => {
    const body = Buffer.from(JSON.stringify({ connectionId: 'acme-1', options: { days: 3 } })).toString(
      'base64',
    );

    expect(parseJsonBody(event({ body, isBase64Encoded: true }), Body)).toMatchObject({
      connectionId: 'acme-1',
    });
  });

  it(`accepts a body of exactly ${MAX_BODY_BYTES} bytes and refuses one byte more`, () => {
    const fits = JSON.stringify({ padding: 'x'.repeat(MAX_BODY_BYTES - 14) });
    const Padding = z.strictObject({ padding: z.string() });

    expect(Buffer.byteLength(fits)).toBe(MAX_BODY_BYTES);
    expect(parseJsonBody(event({ body: fits }), Padding).padding).toHaveLength(MAX_BODY_BYTES - 14);
    expect(() => parseJsonBody(event({ body: `${fits} ` }), Padding)).toThrow(
      new InvalidRequestError(`The request body is larger than ${MAX_BODY_BYTES} bytes.`),
    );
  });

  it('counts the size in bytes, not characters', () => {
    const body = JSON.stringify({ padding: 'é'.repeat(MAX_BODY_BYTES / 2) });

    expect(() => parseJsonBody(event({ body }), z.object({ padding: z.string() }))).toThrow(/larger than/);
  });

  it.each([
    ['no body', undefined],
    ['an empty body', ''],
    ['a body of blanks', ' \n\t'],
  ])('refuses %s, asking for a JSON body', (_, body) => {
    expect(() => parseJsonBody(event(body === undefined ? {} : { body }), Body)).toThrow(
      new InvalidRequestError('The request needs a JSON body.'),
    );
  });

  it('refuses a body that is no JSON', () => {
    expect(() => parseJsonBody(event({ body: '{"connectionId":' }), Body)).toThrow(
      new InvalidRequestError('The request body is not valid JSON.'),
    );
    expect(() => parseJsonBody(event({ body: '{"connectionId":' }), Body)).toThrow(
      expect.objectContaining({ cause: expect.any(SyntaxError) }),
    );
  });
});

describe('parseValue and describeIssue', () => {
  it('names the nested field that does not fit, in a sentence', () => {
    let refused: unknown;
    try {
      parseValue({ connectionId: 'acme-1', options: { days: 'three' } }, Body);
    } catch (error) {
      refused = error;
    }

    expect(refused).toBeInstanceOf(InvalidRequestError);
    expect(refused).toMatchObject({
      field: 'options.days',
      message: 'Field "options.days": Invalid input: expected number, received string.',
    });
  });

  it('speaks of the request body when the whole value does not fit, and names no field', () => {
    let refused: unknown;
    try {
      parseValue('text', Body);
    } catch (error) {
      refused = error;
    }

    expect(refused).toBeInstanceOf(InvalidRequestError);
    expect((refused as InvalidRequestError).message).toBe(
      'The request body Invalid input: expected object, received string.',
    );
    expect((refused as InvalidRequestError).field).toBeUndefined();
  });

  it('has a sentence even without an issue', () => {
    expect(describeIssue([])).toEqual({ message: 'The request is not valid.' });
  });
});
