import { isUtf8 } from 'node:buffer';
import { randomBytes, randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyEventV2WithIAMAuthorizer, Context } from 'aws-lambda';
import type { IamIdentity } from './principal.ts';

/** A request as the gateway received it, before it becomes an event. */
export interface IncomingRequest {
  method: string;
  rawPath: string;
  rawQuery: string;
  /** Lower-cased names, repeated headers joined with commas, `cookie` left out. */
  headers: Record<string, string>;
  cookies: string[];
  /** Percent-decoded; repeated names joined with commas, as HTTP API does. */
  queryStringParameters: Record<string, string>;
  body: Buffer;
  sourceIp: string;
  localPort: number;
  protocol: string;
}

/** Where the event goes and what API Gateway adds to it. */
export interface EventSettings {
  routeKey: string;
  pathParameters: Record<string, string>;
  requestId: string;
  accountId: string;
  timeEpoch: number;
}

const TEXT_TYPES = /^(text\/|application\/([\w.+-]*\+)?(json|xml|javascript|x-www-form-urlencoded)\b)/i;

/** The payload format 2.0 event HTTP API sends for a public route. */
export function buildEvent(request: IncomingRequest, settings: EventSettings): APIGatewayProxyEventV2;
/** The payload format 2.0 event HTTP API sends for an IAM route, with the verified caller. */
export function buildEvent(
  request: IncomingRequest,
  settings: EventSettings,
  iam: IamIdentity,
): APIGatewayProxyEventV2WithIAMAuthorizer;
export function buildEvent(
  request: IncomingRequest,
  settings: EventSettings,
  iam?: IamIdentity,
): APIGatewayProxyEventV2 | APIGatewayProxyEventV2WithIAMAuthorizer {
  const domainName = request.headers.host ?? 'localhost';
  const requestContext = {
    accountId: settings.accountId,
    apiId: 'local',
    ...(iam ? { authorizer: { iam } } : {}),
    domainName,
    domainPrefix: domainName.split('.')[0] ?? domainName,
    http: {
      method: request.method,
      path: request.rawPath,
      protocol: request.protocol,
      sourceIp: request.sourceIp,
      userAgent: request.headers['user-agent'] ?? '',
    },
    requestId: settings.requestId,
    routeKey: settings.routeKey,
    stage: '$default',
    time: formatRequestTime(settings.timeEpoch),
    timeEpoch: settings.timeEpoch,
  };
  const hasQuery = Object.keys(request.queryStringParameters).length > 0;
  const hasPathParameters = Object.keys(settings.pathParameters).length > 0;
  const text = isText(request.headers['content-type'], request.body);
  return {
    version: '2.0',
    routeKey: settings.routeKey,
    rawPath: request.rawPath,
    rawQueryString: request.rawQuery,
    ...(request.cookies.length > 0 ? { cookies: request.cookies } : {}),
    headers: { ...request.headers, ...forwardedHeaders(request, settings.timeEpoch) },
    ...(hasQuery ? { queryStringParameters: request.queryStringParameters } : {}),
    ...(hasPathParameters ? { pathParameters: settings.pathParameters } : {}),
    requestContext,
    ...(request.body.length > 0 ? { body: request.body.toString(text ? 'utf8' : 'base64') } : {}),
    isBase64Encoded: request.body.length > 0 && !text,
  } as APIGatewayProxyEventV2 | APIGatewayProxyEventV2WithIAMAuthorizer;
}

/** The Lambda context a handler gets; the deadline runs on the gateway's clock. */
export function buildContext(options: {
  functionName: string;
  region: string;
  accountId: string;
  timeoutMs: number;
  now: () => number;
}): Context {
  const { functionName, region, accountId, timeoutMs, now } = options;
  const deadline = now() + timeoutMs;
  const awsRequestId = randomUUID();
  const day = new Date(now()).toISOString().slice(0, 10).replaceAll('-', '/');
  const unsupported = () => {
    throw new Error('The local gateway supports only async handlers that return their result.');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:${accountId}:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `${day}/[$LATEST]${randomBytes(16).toString('hex')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

/** HTTP API hands text bodies over as they are and anything else base64-encoded. */
function isText(contentType: string | undefined, body: Buffer): boolean {
  if (contentType === undefined) return isUtf8(body);
  return TEXT_TYPES.test(contentType.trim());
}

function forwardedHeaders(request: IncomingRequest, timeEpoch: number): Record<string, string> {
  const forwardedFor = request.headers['x-forwarded-for'];
  return {
    'x-amzn-trace-id': `Root=1-${Math.floor(timeEpoch / 1000).toString(16)}-${randomBytes(12).toString('hex')}`,
    'x-forwarded-for': forwardedFor ? `${forwardedFor}, ${request.sourceIp}` : request.sourceIp,
    'x-forwarded-port': String(request.localPort),
    'x-forwarded-proto': 'http',
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `26/Nov/2026:10:48:28 +0000`, the format of `requestContext.time`. */
function formatRequestTime(epochMs: number): string {
  const date = new Date(epochMs);
  const two = (value: number) => String(value).padStart(2, '0');
  return (
    `${two(date.getUTCDate())}/${MONTHS[date.getUTCMonth()]}/${date.getUTCFullYear()}:` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`
  );
}
