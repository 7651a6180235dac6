import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { ForbiddenError, InvalidRequestError } from '#shared/domain/errors.ts';
import * as z from '#shared/validation.ts';

/** The largest JSON body any route accepts. */
export const MAX_BODY_BYTES = 16 * 1024;

/** The IAM principal API Gateway verified, as the ARN it reports; refused when absent. */
export function callerArn(event: APIGatewayProxyEventV2): string {
  const context = event.requestContext as { authorizer?: { iam?: { userArn?: unknown } } };
  const arn = context.authorizer?.iam?.userArn;
  if (typeof arn !== 'string' || arn.length === 0) {
    throw new ForbiddenError('This route needs a request signed with AWS SigV4 by an IAM principal.');
  }
  return arn;
}

/** Describes the first problem zod found, naming the field, as a sentence. */
export function describeIssue(issues: readonly z.core.$ZodIssue[]): { message: string; field?: string } {
  const issue = issues[0];
  if (!issue) return { message: 'The request is not valid.' };
  const field = issue.path.map(String).join('.');
  if (field === '') return { message: `The request body ${issue.message}.` };
  return { message: `Field "${field}": ${issue.message}.`, field };
}

/** Parses the JSON body against a schema; a 400 naming the field when it does not fit. */
export function parseJsonBody<S extends z.core.$ZodType>(
  event: APIGatewayProxyEventV2,
  schema: S,
): z.output<S> {
  const raw =
    event.body === undefined
      ? ''
      : event.isBase64Encoded
        ? Buffer.from(event.body, 'base64').toString()
        : event.body;
  if (Buffer.byteLength(raw) > MAX_BODY_BYTES) {
    throw new InvalidRequestError(`The request body is larger than ${MAX_BODY_BYTES} bytes.`);
  }
  let value: unknown;
  try {
    value = raw.trim() === '' ? undefined : JSON.parse(raw);
  } catch (error) {
    throw new InvalidRequestError('The request body is not valid JSON.', { cause: error });
  }
  if (value === undefined) throw new InvalidRequestError('The request needs a JSON body.');
  return parseValue(value, schema);
}

/** Validates a value (query or path parameters, a parsed body) against a schema; a 400 naming the field. */
export function parseValue<S extends z.core.$ZodType>(value: unknown, schema: S): z.output<S> {
  const result = z.safeParse(schema, value);
  if (!result.success) {
    const { message, field } = describeIssue(result.error.issues);
    throw new InvalidRequestError(message, field === undefined ? {} : { field });
  }
  return result.data;
}
