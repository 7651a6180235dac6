/** An HTTP response ready to send: header values are lists, so `set-cookie` can repeat. */
export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string[]>;
  body: Buffer;
}

/** A handler result that API Gateway could not turn into a response; the client sees a 500. */
export class MalformedResultError extends Error {}

/**
 * Turns a handler's result into the HTTP response, the way HTTP API reads payload format 2.0: an
 * object with `statusCode` is a structured result; anything else (an object without it, a string, a
 * number) is the body of a 200 `application/json` response.
 */
export function toHttpResponse(result: unknown): HttpResponse {
  if (!isStructured(result)) {
    const body = typeof result === 'string' ? result : (JSON.stringify(result) ?? '');
    return { statusCode: 200, headers: { 'content-type': ['application/json'] }, body: Buffer.from(body) };
  }
  const { statusCode } = result;
  if (
    typeof statusCode !== 'number' ||
    !Number.isInteger(statusCode) ||
    statusCode < 100 ||
    statusCode > 599
  ) {
    throw new MalformedResultError(
      `The handler returned statusCode ${String(statusCode)}, not an HTTP status.`,
    );
  }
  const headers: Record<string, string[]> = {};
  const add = (name: string, value: unknown) => {
    const key = name.toLowerCase();
    headers[key] = [...(headers[key] ?? []), String(value)];
  };
  for (const [name, value] of Object.entries(objectOrEmpty(result.headers))) add(name, value);
  for (const [name, values] of Object.entries(objectOrEmpty(result.multiValueHeaders))) {
    for (const value of Array.isArray(values) ? values : [values]) add(name, value);
  }
  if (result.cookies !== undefined) {
    if (!Array.isArray(result.cookies))
      throw new MalformedResultError('The handler returned cookies that are not a list.');
    for (const cookie of result.cookies) add('set-cookie', cookie);
  }
  const body = result.body ?? '';
  if (typeof body !== 'string')
    throw new MalformedResultError('The handler returned a body that is not a string.');
  return {
    statusCode,
    headers,
    body: result.isBase64Encoded === true ? Buffer.from(body, 'base64') : Buffer.from(body, 'utf8'),
  };
}

interface StructuredResult {
  statusCode: unknown;
  headers?: unknown;
  multiValueHeaders?: unknown;
  cookies?: unknown;
  body?: unknown;
  isBase64Encoded?: unknown;
}

function isStructured(result: unknown): result is StructuredResult {
  return typeof result === 'object' && result !== null && !Array.isArray(result) && 'statusCode' in result;
}

function objectOrEmpty(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}
