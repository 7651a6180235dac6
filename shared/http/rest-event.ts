import type { APIGatewayProxyEvent, APIGatewayProxyEventV2 } from 'aws-lambda';

/**
 * Whether an event is the payload format 1.0 a REST API's Lambda proxy integration sends (the private
 * API), rather than the HTTP API's 2.0.
 */
export function isRestEvent(event: unknown): event is APIGatewayProxyEvent {
  if (typeof event !== 'object' || event === null) return false;
  const candidate = event as { version?: unknown; httpMethod?: unknown; resource?: unknown };
  return (
    candidate.version !== '2.0' &&
    typeof candidate.httpMethod === 'string' &&
    typeof candidate.resource === 'string'
  );
}

/**
 * The payload format 2.0 event that a REST API's 1.0 event stands for, so one handler serves both APIs:
 * the route key from the method and resource, the verified IAM principal where HTTP API puts it
 * (`requestContext.authorizer.iam.userArn`, from `requestContext.identity.userArn`), header names
 * lower-cased, repeated query parameters joined with commas, the cookie header split into `cookies`, and
 * path parameters percent-decoded (a REST API passes them as sent, `acme%3A1`; an HTTP API decodes them).
 */
export function fromRestEvent(event: APIGatewayProxyEvent): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.multiValueHeaders ?? {})) {
    if (value !== undefined) headers[name.toLowerCase()] = value.join(',');
  }
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (value !== undefined && !(name.toLowerCase() in headers)) headers[name.toLowerCase()] = value;
  }
  const cookie = headers.cookie;
  delete headers.cookie;
  const query: Record<string, string> = {};
  for (const [name, values] of Object.entries(event.multiValueQueryStringParameters ?? {})) {
    if (values !== undefined) query[name] = values.join(',');
  }
  for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) {
    if (value !== undefined && !(name in query)) query[name] = value;
  }
  const context = event.requestContext;
  const userArn = context.identity?.userArn;
  const hasQuery = Object.keys(query).length > 0;
  return {
    version: '2.0',
    routeKey: `${event.httpMethod} ${event.resource}`,
    rawPath: event.path,
    rawQueryString: new URLSearchParams(query).toString(),
    ...(cookie === undefined ? {} : { cookies: cookie.split(/;\s*/).filter((part) => part !== '') }),
    headers,
    ...(hasQuery ? { queryStringParameters: query } : {}),
    ...(event.pathParameters ? { pathParameters: decodedParameters(event.pathParameters) } : {}),
    requestContext: {
      accountId: context.accountId,
      apiId: context.apiId,
      ...(typeof userArn === 'string' && userArn !== '' ? { authorizer: { iam: { userArn } } } : {}),
      domainName: context.domainName ?? '',
      domainPrefix: context.domainPrefix ?? '',
      http: {
        method: event.httpMethod,
        path: event.path,
        protocol: context.protocol,
        sourceIp: context.identity?.sourceIp ?? '',
        userAgent: context.identity?.userAgent ?? '',
      },
      requestId: context.requestId,
      routeKey: `${event.httpMethod} ${event.resource}`,
      stage: context.stage,
      time: context.requestTime ?? '',
      timeEpoch: context.requestTimeEpoch,
    },
    ...(event.body === null ? {} : { body: event.body }),
    isBase64Encoded: event.isBase64Encoded,
  } as APIGatewayProxyEventV2;
}

/** Percent-decodes each path parameter; one that is not valid percent-encoding is kept as sent (and refused). */
function decodedParameters(parameters: Record<string, string | undefined>): Record<string, string> {
  const decoded: Record<string, string> = {};
  for (const [name, value] of Object.entries(parameters)) {
    if (value === undefined) continue;
    try {
      decoded[name] = decodeURIComponent(value);
    } catch {
      decoded[name] = value;
    }
  }
  return decoded;
}
