import { randomUUID } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';
import type {
  TokenGrant,
  WiseCallOptions,
  WiseCredentials,
  WiseCredentialsProvider,
  WiseOAuth,
  WiseProfile,
  WiseUser,
} from '#shared/ports/wise-oauth.ts';
import { exponentialDelay, retryDelay } from './backoff.ts';
import { WiseInvalidClientError, WiseRateLimitedError, WiseUnavailableError } from './errors.ts';
import {
  type AnswerHeaders,
  classifyAnswer,
  classifyNoAnswer,
  type Failure,
  type FailureContext,
  unreadableAnswer,
  type WiseAnswer,
} from './failures.ts';
import { type Parsed, parseProfilesResponse, parseTokenResponse, parseUserResponse } from './responses.ts';

/** Where log lines go; attributes never hold a token, a code or a secret. */
export interface WiseLogger {
  info(message: string, attrs?: Record<string, unknown>): void;
  warn(message: string, attrs?: Record<string, unknown>): void;
  error(message: string, attrs?: Record<string, unknown>): void;
}

/** How to reach Wise and how hard to try. */
export interface WiseOAuthClientOptions {
  /** The API host, such as https://api.wise.com, or the mutual-TLS host when certificates are used. */
  apiUrl: string;
  /** The user authorization page, such as https://wise.com/oauth/authorize/. */
  authorizeUrl: string;
  /** A path segment such as `/2026Q3` put before `/oauth/token`. */
  versionPrefix?: string;
  /** The redirect URI Wise has on file for the partner, byte for byte. */
  redirectUri: string;
  credentials: WiseCredentialsProvider;
  /**
   * The client id for authorization URLs, when the configuration names it; otherwise it is read from the
   * credentials. It must be the secret's client id.
   */
  clientId?: string;
  /** Each HTTP request gives up after this long. Default 10000. */
  requestTimeoutMs?: number;
  /** A call, retries included, gives up after this long. Default 25000. */
  totalDeadlineMs?: number;
  /** Attempts per call for retryable failures. Default 4. */
  maxAttempts?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  logger?: WiseLogger;
}

const silentLogger: WiseLogger = { info() {}, warn() {}, error() {} };
// Printable ASCII of at most 36 characters, as Wise accepts for X-External-Correlation-Id.
const CORRELATION_ID = /^[\x21-\x7e]{1,36}$/;

type Mtls = NonNullable<WiseCredentials['mtls']>;

interface Call {
  operation: string;
  correlationId: string;
  deadline: number;
  retryRateLimited: boolean;
  onRateLimited?: WiseCallOptions['onRateLimited'];
  /** Set once an attempt got no answer or a 5xx: Wise may have acted on it all the same. */
  uncertain: boolean;
}

interface HttpRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
  endpoint: 'token' | 'api';
  secrets: readonly string[];
}

type Attempt<T> = { ok: true; value: T } | ({ ok: false } & Failure);

/** The kept-alive connections to Wise for one set of TLS material, and the requests still using them. */
interface Pool {
  agent: HttpAgent;
  key: string;
  active: number;
  /** Replaced by a pool for newer material: closed once its last request ends. */
  retired: boolean;
}

/**
 * The adapter for Wise's OAuth 2.0 API: the four grants, the registration-code signup, and the two
 * lookups the broker makes with a user token. Every failure is thrown as a `WiseError` subclass;
 * retryable ones (429, 5xx, timeouts, network) are retried with jittered back-off inside the deadline,
 * except a 429 when the call's `retryRateLimited` is `false`. `onRateLimited` hears of each 429 as it arrives.
 */
export class WiseOAuthClient implements WiseOAuth {
  readonly #apiUrl: string;
  readonly #authorizeUrl: string;
  readonly #tokenPath: string;
  readonly #redirectUri: string;
  readonly #credentials: WiseCredentialsProvider;
  readonly #requestTimeoutMs: number;
  readonly #totalDeadlineMs: number;
  readonly #maxAttempts: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #random: () => number;
  readonly #logger: WiseLogger;
  readonly #clientId: string | undefined;
  #pool: Pool | undefined;
  readonly #retired = new Set<Pool>();

  constructor(options: WiseOAuthClientOptions) {
    this.#apiUrl = options.apiUrl.replace(/\/+$/, '');
    this.#authorizeUrl = options.authorizeUrl;
    const prefix = (options.versionPrefix ?? '').replace(/^\/+|\/+$/g, '');
    this.#tokenPath = prefix === '' ? '/oauth/token' : `/${prefix}/oauth/token`;
    this.#redirectUri = options.redirectUri;
    this.#credentials = options.credentials;
    this.#clientId = options.clientId;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#totalDeadlineMs = options.totalDeadlineMs ?? 25_000;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 4);
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => delay(ms));
    this.#random = options.random ?? Math.random;
    this.#logger = options.logger ?? silentLogger;
  }

  /** The page to send the user to: `{authorizeUrl}?response_type=code&client_id&redirect_uri&state`. */
  async authorizationUrl(params: { state: string; codeChallenge?: string }): Promise<string> {
    // A configured client id spares the secret: the function that only builds this URL needs no access to it.
    const clientId = this.#clientId ?? (await this.#credentials.get()).clientId;
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: this.#redirectUri,
      state: params.state,
    });
    if (params.codeChallenge !== undefined) {
      query.set('code_challenge', params.codeChallenge);
      query.set('code_challenge_method', 'S256');
    }
    const separator = this.#authorizeUrl.includes('?') ? '&' : '?';
    return `${this.#authorizeUrl}${separator}${query.toString()}`;
  }

  /** The application token (`client_credentials`); it comes without a refresh token. */
  clientCredentials(options?: WiseCallOptions): Promise<TokenGrant> {
    return this.#grant('client credentials grant', () => ({ grant_type: 'client_credentials' }), [], options);
  }

  /** Exchanges the code from the authorization callback (`authorization_code`). */
  exchangeCode(
    params: { code: string; codeVerifier?: string },
    options?: WiseCallOptions,
  ): Promise<TokenGrant> {
    return this.#grant(
      'authorization code grant',
      (credentials) => ({
        grant_type: 'authorization_code',
        client_id: credentials.clientId,
        code: params.code,
        redirect_uri: this.#redirectUri,
        ...(params.codeVerifier === undefined ? {} : { code_verifier: params.codeVerifier }),
      }),
      params.codeVerifier === undefined ? [params.code] : [params.code, params.codeVerifier],
      options,
    );
  }

  /** Refreshes a user token; a grant without `refreshToken` means the old refresh token stays valid. */
  refresh(params: { refreshToken: string }, options?: WiseCallOptions): Promise<TokenGrant> {
    return this.#grant(
      'refresh token grant',
      () => ({ grant_type: 'refresh_token', refresh_token: params.refreshToken }),
      [params.refreshToken],
      options,
    );
  }

  /** Grants a user token for a partner-created user (`registration_code`). */
  registrationCodeGrant(
    params: { email: string; registrationCode: string },
    options?: WiseCallOptions,
  ): Promise<TokenGrant> {
    return this.#grant(
      'registration code grant',
      (credentials) => ({
        grant_type: 'registration_code',
        client_id: credentials.clientId,
        email: params.email,
        registration_code: params.registrationCode,
      }),
      [params.registrationCode],
      options,
    );
  }

  /** Creates a Wise user with a registration code, authenticated by a client-credentials token. */
  async signUpWithRegistrationCode(
    params: { email: string; registrationCode: string; language?: string; clientAccessToken: string },
    options?: WiseCallOptions,
  ): Promise<void> {
    const body: Record<string, string> = { email: params.email, registrationCode: params.registrationCode };
    if (params.language !== undefined) body.language = params.language;
    await this.#api(
      'registration code signup',
      {
        method: 'POST',
        path: '/v1/user/signup/registration_code',
        headers: { authorization: `Bearer ${params.clientAccessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        endpoint: 'api',
        secrets: [params.clientAccessToken, params.registrationCode],
      },
      () => ({ ok: true, value: undefined, warnings: [] }),
      options,
    );
  }

  /** The Wise user behind a user access token (`GET /v1/me`). */
  getCurrentUser(accessToken: string, options?: WiseCallOptions): Promise<WiseUser> {
    return this.#api('GET /v1/me', this.#bearerGet('/v1/me', accessToken), parseUserResponse, options);
  }

  /** The profiles of the Wise user behind a user access token (`GET /v2/profiles`). */
  listProfiles(accessToken: string, options?: WiseCallOptions): Promise<WiseProfile[]> {
    return this.#api(
      'GET /v2/profiles',
      this.#bearerGet('/v2/profiles', accessToken),
      parseProfilesResponse,
      options,
    );
  }

  /** Closes the connections kept open to Wise. */
  async close(): Promise<void> {
    const pools = [...this.#retired, ...(this.#pool === undefined ? [] : [this.#pool])];
    this.#pool = undefined;
    this.#retired.clear();
    for (const pool of pools) pool.agent.destroy();
  }

  #bearerGet(path: string, accessToken: string): HttpRequest {
    return {
      method: 'GET',
      path,
      headers: { authorization: `Bearer ${accessToken}` },
      endpoint: 'api',
      secrets: [accessToken],
    };
  }

  #startCall(operation: string, options?: WiseCallOptions): Call {
    let correlationId = options?.correlationId;
    if (correlationId === undefined || !CORRELATION_ID.test(correlationId)) {
      if (correlationId !== undefined) {
        this.#logger.warn('The correlation id is not at most 36 printable characters; a new one is used.', {
          operation,
        });
      }
      correlationId = randomUUID();
    }
    const ownDeadline = this.#now() + this.#totalDeadlineMs;
    const deadline =
      options?.deadlineMs === undefined ? ownDeadline : Math.min(ownDeadline, options.deadlineMs);
    const call: Call = {
      operation,
      correlationId,
      deadline,
      retryRateLimited: options?.retryRateLimited ?? true,
      uncertain: false,
    };
    if (options?.onRateLimited !== undefined) call.onRateLimited = options.onRateLimited;
    return call;
  }

  /**
   * A token request with the invalid_client recovery: on invalid_client, fetch the credentials again
   * bypassing any cache and retry once if the secret changed, then try the previous secret once.
   */
  async #grant(
    operation: string,
    form: (credentials: WiseCredentials) => Record<string, string>,
    secrets: readonly string[],
    options?: WiseCallOptions,
  ): Promise<TokenGrant> {
    const call = this.#startCall(operation, options);
    const attemptWith = (credentials: WiseCredentials, clientSecret: string) =>
      this.#retrying(
        call,
        credentials.mtls,
        this.#tokenRequest(credentials, clientSecret, form, secrets),
        (answer) => parseTokenResponse(answer.body, this.#now(), answer.traceId),
      );

    const cached = await this.#credentials.get();
    if (this.#clientId !== undefined && cached.clientId !== this.#clientId) {
      // Codes issued to the configured client would not exchange under the secret's.
      this.#logger.error('The configured wise.clientId is not the client id in the Wise credentials secret', {
        operation,
        correlationId: call.correlationId,
      });
    }
    let rejection: WiseInvalidClientError;
    try {
      return await attemptWith(cached, cached.clientSecret);
    } catch (error) {
      if (!(error instanceof WiseInvalidClientError)) throw error;
      rejection = error;
    }

    const tried = new Set([cached.clientSecret]);
    const fresh = await this.#credentials.get({ forceFresh: true });
    const candidates: Array<{ secret: string; which: 'freshly read' | 'previous' }> = [];
    if (!tried.has(fresh.clientSecret) || fresh.clientId !== cached.clientId) {
      candidates.push({ secret: fresh.clientSecret, which: 'freshly read' });
    }
    const previous = fresh.previousClientSecret ?? cached.previousClientSecret;
    if (previous !== undefined && previous !== fresh.clientSecret && !tried.has(previous)) {
      candidates.push({ secret: previous, which: 'previous' });
    }
    for (const candidate of candidates) {
      this.#logger.warn(`Wise rejected the client secret; trying the ${candidate.which} one once.`, {
        operation,
        correlationId: call.correlationId,
        traceId: rejection.traceId,
      });
      try {
        const grant = await attemptWith(fresh, candidate.secret);
        if (candidate.which === 'previous') {
          this.#logger.warn('Wise accepted only the previous client secret; finish or undo the rotation.', {
            operation,
            correlationId: call.correlationId,
          });
        }
        return grant;
      } catch (error) {
        if (!(error instanceof WiseInvalidClientError)) throw error;
        rejection = error;
      }
    }
    this.#logger.error('Wise rejected every client secret the broker has.', {
      operation,
      correlationId: call.correlationId,
      traceId: rejection.traceId,
      status: rejection.status,
      wiseError: rejection.wiseError,
    });
    throw rejection;
  }

  #tokenRequest(
    credentials: WiseCredentials,
    clientSecret: string,
    form: (credentials: WiseCredentials) => Record<string, string>,
    secrets: readonly string[],
  ): HttpRequest {
    const basic = Buffer.from(`${credentials.clientId}:${clientSecret}`).toString('base64');
    return {
      method: 'POST',
      path: this.#tokenPath,
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form(credentials)).toString(),
      endpoint: 'token',
      secrets: [clientSecret, ...secrets],
    };
  }

  async #api<T>(
    operation: string,
    request: HttpRequest,
    parse: (text: string) => Parsed<T>,
    options?: WiseCallOptions,
  ): Promise<T> {
    const call = this.#startCall(operation, options);
    const { mtls } = await this.#credentials.get();
    return this.#retrying(call, mtls, request, (answer) => parse(answer.body));
  }

  /** Sends the request until it succeeds, fails for good, runs out of attempts or would pass the deadline. */
  async #retrying<T>(
    call: Call,
    mtls: Mtls | undefined,
    request: HttpRequest,
    parse: (answer: WiseAnswer) => Parsed<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const remaining = call.deadline - this.#now();
      if (remaining <= 0) {
        throw new WiseUnavailableError(
          `The deadline for the ${call.operation} passed before Wise was called.`,
          {
            correlationId: call.correlationId,
          },
        );
      }
      const outcome = await this.#attempt(
        call,
        mtls,
        request,
        parse,
        attempt,
        Math.min(this.#requestTimeoutMs, remaining),
      );
      if (outcome.ok) return outcome.value;
      const attrs = {
        operation: call.operation,
        correlationId: call.correlationId,
        traceId: outcome.error.traceId,
        status: outcome.error.status,
        wiseError: outcome.error.wiseError,
        attempt,
      };
      const rateLimited = outcome.error instanceof WiseRateLimitedError;
      if (rateLimited) this.#heardRateLimit(call, outcome.retryAfterMs);
      if (outcome.error instanceof WiseUnavailableError) call.uncertain = true;
      if (!outcome.retryable) throw outcome.error;
      if (rateLimited && !call.retryRateLimited) {
        this.#logger.warn('Wise rate limited the call; not retried, as the caller asked.', attrs);
        throw outcome.error;
      }
      if (attempt >= this.#maxAttempts) {
        this.#logger.warn('Wise failed every attempt; giving up.', {
          ...attrs,
          reason: outcome.error.message,
        });
        throw outcome.error;
      }
      const wait = retryDelay(attempt, this.#random, outcome.retryAfterMs);
      if (this.#now() + wait >= call.deadline) {
        this.#logger.warn('The next attempt would pass the deadline; giving up.', {
          ...attrs,
          waitMs: wait,
          reason: outcome.error.message,
        });
        throw outcome.error;
      }
      this.#logger.warn('Wise failed; retrying after a back-off.', {
        ...attrs,
        waitMs: wait,
        reason: outcome.error.message,
      });
      await this.#sleep(wait);
    }
  }

  /** Tells the caller of a 429 as soon as it arrives; the caller's trouble never breaks the call. */
  #heardRateLimit(call: Call, retryAfterMs: number | undefined): void {
    if (call.onRateLimited === undefined) return;
    try {
      call.onRateLimited(retryAfterMs === undefined ? {} : { retryAfterSeconds: retryAfterMs / 1000 });
    } catch (error) {
      this.#logger.warn('The onRateLimited callback threw; ignored.', {
        operation: call.operation,
        correlationId: call.correlationId,
        error: error instanceof Error ? error.name : typeof error,
      });
    }
  }

  async #attempt<T>(
    call: Call,
    mtls: Mtls | undefined,
    request: HttpRequest,
    parse: (answer: WiseAnswer) => Parsed<T>,
    attempt: number,
    timeoutMs: number,
  ): Promise<Attempt<T>> {
    const context: FailureContext = {
      operation: call.operation,
      endpoint: request.endpoint,
      correlationId: call.correlationId,
      secrets: request.secrets,
      nowMs: this.#now(),
      fallbackRetryAfterSeconds: Math.max(1, Math.ceil(exponentialDelay(attempt) / 1000)),
      afterUncertainAttempt: call.uncertain,
    };
    let answer: WiseAnswer;
    try {
      answer = await this.#send(call, mtls, request, timeoutMs);
    } catch (error) {
      return { ok: false, ...classifyNoAnswer(error, context, timeoutMs) };
    }
    if (answer.status < 200 || answer.status >= 300) return { ok: false, ...classifyAnswer(answer, context) };
    const parsed = parse(answer);
    if (!parsed.ok) return { ok: false, ...unreadableAnswer(answer, context, parsed.reason) };
    for (const warning of parsed.warnings) {
      this.#logger.warn(warning, {
        operation: call.operation,
        correlationId: call.correlationId,
        traceId: answer.traceId,
      });
    }
    return { ok: true, value: parsed.value };
  }

  /**
   * One request with Node's own HTTP client (`node:https`, or `node:http` for a local simulator), bounded by
   * `timeoutMs` from the request until the whole body is read. Redirects are not followed: a redirect would
   * carry credentials to wherever it points, so it is answered as a failure instead.
   */
  #send(call: Call, mtls: Mtls | undefined, request: HttpRequest, timeoutMs: number): Promise<WiseAnswer> {
    const url = new URL(`${this.#apiUrl}${request.path}`);
    const secure = url.protocol === 'https:';
    const headers: Record<string, string> = {
      accept: 'application/json',
      'x-external-correlation-id': call.correlationId,
      ...request.headers,
    };
    if (request.body !== undefined) headers['content-length'] = String(Buffer.byteLength(request.body));
    const pool = this.#poolFor(secure, mtls);
    const signal = AbortSignal.timeout(timeoutMs);
    return new Promise<WiseAnswer>((resolve, reject) => {
      const send = secure ? httpsRequest : httpRequest;
      const outgoing = send(url, { method: request.method, headers, agent: pool.agent }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        // A body cut off before its end (a dropped connection, the timeout) is no answer: ECONNRESET.
        response.on('error', fail);
        response.on('end', () => {
          const answer: WiseAnswer = {
            status: response.statusCode ?? 0,
            headers: answerHeaders(response.headers),
            body: Buffer.concat(chunks).toString('utf8'),
          };
          const traceId = answer.headers.get('x-trace-id');
          if (traceId !== null) answer.traceId = traceId;
          finish();
          resolve(answer);
        });
      });
      pool.active += 1;
      let done = false;
      const onTimeout = () => outgoing.destroy(signal.reason as Error);
      function finish() {
        if (done) return false;
        done = true;
        signal.removeEventListener('abort', onTimeout);
        return true;
      }
      // Once the timeout fired, whatever broke the request is the timeout.
      function fail(error: unknown) {
        if (finish()) reject(signal.aborted ? signal.reason : error);
      }
      signal.addEventListener('abort', onTimeout, { once: true });
      outgoing.on('error', fail);
      outgoing.on('close', () => {
        pool.active -= 1;
        this.#closeIfIdle(pool);
      });
      outgoing.end(request.body);
    });
  }

  /** The pool for this TLS material; a new one when it changed, while the old one finishes its requests. */
  #poolFor(secure: boolean, mtls: Mtls | undefined): Pool {
    const key = !secure
      ? 'http'
      : mtls === undefined
        ? 'https'
        : JSON.stringify([mtls.certificate, mtls.privateKey, mtls.ca ?? null]);
    if (this.#pool !== undefined && this.#pool.key === key) return this.#pool;
    const previous = this.#pool;
    const agent = !secure
      ? new HttpAgent({ keepAlive: true })
      : new HttpsAgent({
          keepAlive: true,
          ...(mtls === undefined
            ? {}
            : { cert: mtls.certificate, key: mtls.privateKey, ...(mtls.ca ? { ca: mtls.ca } : {}) }),
        });
    this.#pool = { agent, key, active: 0, retired: false };
    if (previous !== undefined) {
      previous.retired = true;
      this.#retired.add(previous);
      this.#closeIfIdle(previous);
    }
    return this.#pool;
  }

  /** A retired pool closes once its last request has ended. */
  #closeIfIdle(pool: Pool): void {
    if (pool.retired && pool.active === 0) {
      this.#retired.delete(pool);
      pool.agent.destroy();
    }
  }
}

/** The response's headers as `get(name)` reads them: a repeated header's values joined by ", ". */
function answerHeaders(headers: IncomingHttpHeaders): AnswerHeaders {
  return {
    get(name) {
      const value = headers[name.toLowerCase()];
      if (value === undefined) return null;
      return Array.isArray(value) ? value.join(', ') : value;
    },
  };
}
