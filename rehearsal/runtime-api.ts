import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listen } from '#local/aws/http-server.ts';
import { readBody } from './http-body.ts';

/** What a function answered to one invocation. */
export type InvocationOutcome =
  | { ok: true; payload: unknown; durationMs: number }
  | { ok: false; errorType: string; errorMessage: string; durationMs: number };

/** What the Runtime API tells its owner about the function process. */
export interface RuntimeApiEvents {
  /** The process asked for its first event: its init is over. */
  onFirstNext?: () => void;
  /** The process reported an init error (`/runtime/init/error`). */
  onInitError?: (errorType: string, errorMessage: string) => void;
}

interface Pending {
  requestId: string;
  event: unknown;
  timeoutMs: number;
  startedAt: number;
  deadline: number;
  resolve: (outcome: InvocationOutcome) => void;
  timer?: NodeJS.Timeout;
}

const PREFIX = '/2018-06-01/runtime';
const MAX_BODY_BYTES = 6 * 1024 * 1024;

/**
 * The Lambda Runtime API (`/2018-06-01/runtime/...`) for one function: it hands the runtime interface
 * client its events one at a time, as Lambda does for one execution environment, with the request id,
 * the deadline from the function's timeout and the function's ARN in the documented headers, and
 * collects each answer or error. An invocation not answered by its deadline ends as `Sandbox.Timedout`.
 */
export class RuntimeApi {
  readonly #functionArn: string;
  readonly #events: RuntimeApiEvents;
  readonly #queue: Pending[] = [];
  readonly #inFlight = new Map<string, Pending>();
  #waiting: ServerResponse | undefined;
  #server: ReturnType<typeof createServer> | undefined;
  #sawNext = false;
  #failure: { errorType: string; errorMessage: string } | undefined;

  constructor(functionArn: string, events: RuntimeApiEvents = {}) {
    this.#functionArn = functionArn;
    this.#events = events;
  }

  /** Starts listening on loopback; resolves with the `host:port` for `AWS_LAMBDA_RUNTIME_API`. */
  async start(): Promise<string> {
    this.#server = createServer((request, response) => {
      this.#serve(request, response).catch((error: unknown) => {
        if (!response.headersSent) reply(response, 500, { errorMessage: String(error) });
      });
    });
    const url = await listen(this.#server, '127.0.0.1', 0);
    return url.replace(/^http:\/\//, '');
  }

  /** Queues one event; resolves when the function answers, fails, or runs past its timeout. */
  invoke(event: unknown, timeoutMs: number): Promise<InvocationOutcome> {
    return new Promise((resolve) => {
      if (this.#failure) {
        resolve({ ok: false, ...this.#failure, durationMs: 0 });
        return;
      }
      this.#queue.push({
        requestId: randomUUID(),
        event,
        timeoutMs,
        startedAt: 0,
        deadline: 0,
        resolve,
      });
      this.#dispatch();
    });
  }

  /** Every invocation still queued or running fails with this error, and so does every later one. */
  fail(errorType: string, errorMessage: string): void {
    this.#failure ??= { errorType, errorMessage };
    for (const pending of [...this.#queue.splice(0), ...this.#inFlight.values()]) {
      this.#finish(pending, { ok: false, errorType, errorMessage, durationMs: 0 });
    }
  }

  async close(): Promise<void> {
    this.fail('Runtime.Stopped', 'The rehearsal stopped the function.');
    this.#waiting?.destroy();
    if (this.#server) await closeServer(this.#server);
  }

  async #serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '').split('?')[0] ?? '';
    const body = await readBody(request, MAX_BODY_BYTES);
    if (request.method === 'GET' && path === `${PREFIX}/invocation/next`) {
      if (!this.#sawNext) {
        this.#sawNext = true;
        this.#events.onFirstNext?.();
      }
      this.#waiting = response;
      this.#dispatch();
      return;
    }
    if (request.method === 'POST' && path === `${PREFIX}/init/error`) {
      const error = parseError(body, request);
      this.#events.onInitError?.(error.errorType, error.errorMessage);
      this.fail(error.errorType, error.errorMessage);
      reply(response, 202, { status: 'OK' });
      return;
    }
    const match = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(path);
    if (request.method === 'POST' && match) {
      const pending = this.#inFlight.get(decodeURIComponent(match[1] ?? ''));
      if (!pending) {
        reply(response, 400, {
          errorMessage: 'Unknown or finished request id',
          errorType: 'InvalidRequestID',
        });
        return;
      }
      const durationMs = Date.now() - pending.startedAt;
      if (match[2] === 'response') {
        let payload: unknown;
        try {
          payload = body.length === 0 ? null : JSON.parse(body.toString('utf8'));
        } catch {
          payload = body.toString('utf8');
        }
        this.#finish(pending, { ok: true, payload, durationMs });
      } else {
        this.#finish(pending, { ok: false, ...parseError(body, request), durationMs });
      }
      reply(response, 202, { status: 'OK' });
      return;
    }
    reply(response, 404, { errorMessage: `No such Runtime API path: ${request.method} ${path}` });
  }

  #dispatch(): void {
    const response = this.#waiting;
    if (!response || this.#inFlight.size > 0) return;
    const pending = this.#queue.shift();
    if (!pending) return;
    this.#waiting = undefined;
    pending.startedAt = Date.now();
    pending.deadline = pending.startedAt + pending.timeoutMs;
    pending.timer = setTimeout(() => {
      const seconds = (pending.timeoutMs / 1000).toFixed(2);
      this.#finish(pending, {
        ok: false,
        errorType: 'Sandbox.Timedout',
        errorMessage: `Task timed out after ${seconds} seconds`,
        durationMs: pending.timeoutMs,
      });
    }, pending.timeoutMs);
    this.#inFlight.set(pending.requestId, pending);
    const text = JSON.stringify(pending.event);
    response.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'lambda-runtime-aws-request-id': pending.requestId,
      'lambda-runtime-deadline-ms': String(pending.deadline),
      'lambda-runtime-invoked-function-arn': this.#functionArn,
      'lambda-runtime-trace-id': `Root=1-${Math.floor(pending.startedAt / 1000).toString(16)}-${randomBytes(12).toString('hex')};Parent=${randomBytes(8).toString('hex')};Sampled=0`,
    });
    response.end(text);
  }

  #finish(pending: Pending, outcome: InvocationOutcome): void {
    if (pending.timer) clearTimeout(pending.timer);
    const wasInFlight = this.#inFlight.delete(pending.requestId);
    pending.resolve(outcome);
    if (wasInFlight) this.#dispatch();
  }
}

function parseError(body: Buffer, request: IncomingMessage): { errorType: string; errorMessage: string } {
  const header = request.headers['lambda-runtime-function-error-type'];
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errorType?: unknown; errorMessage?: unknown };
    return {
      errorType: String(parsed.errorType ?? header ?? 'Unknown'),
      errorMessage: String(parsed.errorMessage ?? ''),
    };
  } catch {
    return { errorType: String(header ?? 'Unknown'), errorMessage: body.toString('utf8') };
  }
}

function reply(response: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}
