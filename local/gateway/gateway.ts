import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { noteOutput, noteSecret } from '../leak-watch.ts';
import { buildContext, buildEvent, type IncomingRequest } from './event.ts';
import { type IamIdentity, iamIdentity } from './principal.ts';
import { MalformedResultError, toHttpResponse } from './result.ts';
import { RouteTable } from './routes.ts';
import { SigV4Verifier } from './sigv4.ts';
import type {
  GatewayLogger,
  GatewayObserver,
  GatewayOptions,
  GatewayRoute,
  RunningGateway,
} from './types.ts';

const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
const DEFAULT_TIMEOUT_SECONDS = 29;

const silentLogger: GatewayLogger = { info() {}, warn() {}, error() {} };

/** An answer the gateway gives itself, before or instead of a handler. */
class GatewayRefusal extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(statusCode: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
    this.headers = headers;
  }
}

/**
 * Starts a local stand-in for an API Gateway HTTP API (payload format 2.0) on `node:http`: it matches
 * routes, checks SigV4 on IAM routes against the local credentials, hands each handler the event and
 * Lambda context API Gateway would, and turns its result into the HTTP response.
 */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const now = options.now ?? Date.now;
  const logger = options.logger ?? silentLogger;
  const accountId = options.accountId ?? '000000000000';
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const identities = new Map<string, IamIdentity>();
  for (const credential of options.credentials) {
    noteSecret('secret_access_key', credential.secretAccessKey);
    if (identities.has(credential.accessKeyId)) {
      throw new Error(`Local credential ${credential.accessKeyId} is listed twice.`);
    }
    identities.set(credential.accessKeyId, iamIdentity(credential));
  }
  const routes = new RouteTable(options.routes);
  const verifier = new SigV4Verifier({
    region: options.region,
    credentials: options.credentials,
    maxClockSkewSeconds: options.maxClockSkewSeconds ?? 300,
    now,
    acceptAsSentCanonicalForm: options.acceptAsSentCanonicalForm ?? true,
  });

  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    const requestId = randomUUID();
    const timeEpoch = now();
    const method = req.method ?? 'GET';
    const [rawPath = '/', rawQuery = ''] = splitTarget(req.url ?? '/');
    let routeKey = '-';
    try {
      const found = routes.lookup(method, decodeSegments(rawPath));
      if (found.kind === 'not_found') {
        throw new GatewayRefusal(404, 'not_found', `No route matches ${method} ${rawPath}.`);
      }
      if (found.kind === 'method_not_allowed') {
        throw new GatewayRefusal(
          405,
          'method_not_allowed',
          `${rawPath} does not accept ${method}; it accepts ${found.allowed.join(', ')}.`,
          { allow: found.allowed.join(', ') },
        );
      }
      routeKey = found.routeKey;
      const body = await readBody(req, maxBodyBytes);
      const { incoming, headers, query } = receivedRequest(req, rawPath, rawQuery, body);
      const settings = { routeKey, pathParameters: found.pathParameters, requestId, accountId, timeEpoch };
      const route = found.route;
      const context = buildContext({
        functionName: route.functionName ?? functionNameOf(route),
        region: options.region,
        accountId,
        timeoutMs: (route.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
        now,
      });
      let result: unknown;
      if (route.auth === 'iam') {
        const repeated = repeatedSigningHeader(req.rawHeaders);
        if (repeated !== undefined) {
          throw new GatewayRefusal(
            403,
            'forbidden',
            `The request carries more than one ${repeated} header; send exactly one, as the signature covers one.`,
          );
        }
        const verification = await verifier.verify({ method, rawPath, rawQuery, query, headers, body });
        if (!verification.ok) throw new GatewayRefusal(403, 'forbidden', verification.reason);
        const iam = identities.get(verification.credential.accessKeyId) as IamIdentity;
        result = await invoke(() => route.handler(buildEvent(incoming, settings, iam), context));
      } else {
        result = await invoke(() => route.handler(buildEvent(incoming, settings), context));
      }
      const response = toHttpResponse(result);
      const sentHeaders = { ...response.headers, 'apigw-requestid': [requestId] };
      send(res, response.statusCode, sentHeaders, response.body);
      tell(options.observe, {
        method,
        routeKey,
        status: response.statusCode,
        headers: sentHeaders,
        body: response.body,
      });
      logger.info('Request', { requestId, routeKey, path: rawPath, status: response.statusCode });
    } catch (error) {
      const refusal = asRefusal(error);
      if (refusal.statusCode === 500) {
        logger.error('Request failed', { requestId, routeKey, path: rawPath, error: errorDetails(error) });
      } else {
        logger.warn('Request refused', {
          requestId,
          routeKey,
          path: rawPath,
          status: refusal.statusCode,
          reason: refusal.message,
        });
      }
      const sent = sendError(res, refusal, requestId);
      if (sent) tell(options.observe, { method, routeKey, status: refusal.statusCode, ...sent });
    }
  };

  const server = createServer((req, res) => {
    void serve(req, res);
  });
  const url = await listen(server, options.host ?? '127.0.0.1', options.port ?? 0);
  return { url, close: () => close(server) };
}

/** Runs the handler; whatever it throws becomes a 500 that says nothing about it. */
async function invoke(run: () => Promise<unknown>): Promise<unknown> {
  try {
    return await run();
  } catch (error) {
    throw new HandlerFailure(error);
  }
}

class HandlerFailure extends Error {
  constructor(cause: unknown) {
    super('The handler threw.', { cause });
  }
}

function asRefusal(error: unknown): GatewayRefusal {
  if (error instanceof GatewayRefusal) return error;
  return new GatewayRefusal(500, 'internal_error', 'Internal server error');
}

function errorDetails(error: unknown): Record<string, unknown> {
  const inner = error instanceof HandlerFailure ? error.cause : error;
  if (inner instanceof MalformedResultError) return { name: 'MalformedResultError', message: inner.message };
  if (inner instanceof Error) return { name: inner.name, message: inner.message, stack: inner.stack };
  return { value: String(inner) };
}

/** The request as the event and the signature check see it. */
function receivedRequest(req: IncomingMessage, rawPath: string, rawQuery: string, body: Buffer) {
  const headers = combineHeaders(req.rawHeaders);
  const { cookie, ...eventHeaders } = headers;
  const query = parseQuery(rawQuery);
  const incoming: IncomingRequest = {
    method: req.method ?? 'GET',
    rawPath,
    rawQuery,
    headers: eventHeaders,
    cookies: (cookie ?? '')
      .split(/[;,]/)
      .map((item) => item.trim())
      .filter(Boolean),
    queryStringParameters: Object.fromEntries(
      Object.entries(query).map(([name, value]) => [name, Array.isArray(value) ? value.join(',') : value]),
    ),
    body,
    sourceIp: (req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
    localPort: req.socket.localPort ?? 0,
    protocol: `HTTP/${req.httpVersion}`,
  };
  return { incoming, headers, query };
}

function functionNameOf(route: GatewayRoute): string {
  const words = route.path.split(/[^A-Za-z0-9]+/).filter(Boolean);
  return ['local', route.method.toLowerCase(), ...words].join('-');
}

function splitTarget(target: string): [string, string] {
  const mark = target.indexOf('?');
  return mark < 0 ? [target, ''] : [target.slice(0, mark), target.slice(mark + 1)];
}

function decodeSegments(rawPath: string): string[] {
  try {
    return rawPath.slice(1).split('/').map(decodeURIComponent);
  } catch {
    throw new GatewayRefusal(400, 'invalid_request', 'The request path has a malformed percent-escape.');
  }
}

/** Query parameters, percent-decoded (`+` stays a plus, as in SigV4), repeated names as lists. */
function parseQuery(rawQuery: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = Object.create(null);
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(equals < 0 ? pair : pair.slice(0, equals));
      value = equals < 0 ? '' : decodeURIComponent(pair.slice(equals + 1));
    } catch {
      throw new GatewayRefusal(400, 'invalid_request', 'The query string has a malformed percent-escape.');
    }
    const existing = query[name];
    query[name] =
      existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
  }
  return query;
}

/**
 * The headers SigV4 reads one value of: a request that repeats one is refused (API Gateway refuses a
 * repeated Authorization header), since a signature covers one value and a second could be read instead.
 */
const SINGLE_VALUED_SIGNING_HEADERS: ReadonlyMap<string, string> = new Map([
  ['authorization', 'Authorization'],
  ['x-amz-date', 'X-Amz-Date'],
  ['x-amz-security-token', 'X-Amz-Security-Token'],
  ['x-amz-content-sha256', 'X-Amz-Content-Sha256'],
]);

/** The name of the first signing header the request repeats; `undefined` when none is repeated. */
function repeatedSigningHeader(rawHeaders: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = (rawHeaders[index] as string).toLowerCase();
    const shown = SINGLE_VALUED_SIGNING_HEADERS.get(name);
    if (shown === undefined) continue;
    if (seen.has(name)) return shown;
    seen.add(name);
  }
  return undefined;
}

/** Lower-cased headers with repeats joined by commas, as HTTP API passes them and SigV4 signs them. */
function combineHeaders(rawHeaders: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let index = 0; index + 1 < rawHeaders.length; index += 2) {
    const name = (rawHeaders[index] as string).toLowerCase();
    const value = rawHeaders[index + 1] as string;
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  return headers;
}

/** Reads the whole body, refusing with a 413 once it passes the limit. */
function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = () =>
    new GatewayRefusal(413, 'payload_too_large', `The request body is larger than ${maxBytes} bytes.`, {
      connection: 'close',
    });
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) {
    req.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge());
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, statusCode: number, headers: Record<string, string[]>, body: Buffer) {
  const type = headers['content-type']?.join(',') ?? '';
  if (statusCode >= 300 || type.startsWith('text/html')) {
    noteOutput(`gateway answer ${statusCode}`, body.toString('utf8'), headers.location?.join(' '));
  }
  res.writeHead(statusCode, headers);
  res.end(body);
}

/** Tells the observer of a response sent; an observer's failure never reaches the caller. */
function tell(
  observe: GatewayObserver | undefined,
  sent: { method: string; routeKey: string; status: number; headers: Record<string, string[]>; body: Buffer },
) {
  if (!observe) return;
  const headers = Object.fromEntries(
    Object.entries(sent.headers).map(([name, values]) => [name.toLowerCase(), values.join(', ')]),
  );
  try {
    observe({ ...sent, headers });
  } catch {
    // The response is already sent.
  }
}

function sendError(
  res: ServerResponse,
  refusal: GatewayRefusal,
  requestId: string,
): { headers: Record<string, string[]>; body: Buffer } | undefined {
  if (res.headersSent) {
    res.destroy();
    return undefined;
  }
  const headers: Record<string, string[]> = {
    'content-type': ['application/json'],
    'apigw-requestid': [requestId],
  };
  for (const [name, value] of Object.entries(refusal.headers)) headers[name] = [value];
  const body = Buffer.from(JSON.stringify({ error: refusal.code, message: refusal.message }));
  send(res, refusal.statusCode, headers, body);
  return { headers, body };
}

function listen(server: Server, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const { port: bound } = server.address() as AddressInfo;
      resolve(`http://${host.includes(':') ? `[${host}]` : host}:${bound}`);
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}
