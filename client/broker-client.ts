import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { z } from 'zod';
import { BrokerClientError } from './errors.ts';
import { type BrokerRequest, SignedTransport } from './signed-transport.ts';
import {
  ConnectionPageBody,
  type ConnectionStatus,
  ConnectionStatusBody,
  type ConnectSession,
  ConnectSessionBody,
  type GetTokenOptions,
  type TokenTarget,
  type VendedToken,
  VendedTokenBody,
} from './types.ts';

/** How to reach the broker. */
export interface BrokerClientOptions {
  /** The broker's API URL, e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com`. */
  baseUrl: string;
  /** The region the API is in; requests are signed for it. */
  region: string;
  /** Whom to sign as; the AWS SDK's default credential chain when absent (environment, profile files, SSO, web identity, container and instance metadata). */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  fetch?: typeof fetch;
  /** The clock, in epoch milliseconds, for the token cache and the signing time. */
  now?: () => number;
}

/** The most pages `listConnections` follows before it gives up on a broker that never ends. */
const MAX_PAGES = 1000;

interface CachedToken {
  token: VendedToken;
  validUntil: number;
}

/**
 * Calls the Wise token broker with IAM (SigV4) credentials. Tokens are cached per target until their
 * `validUntil`, and concurrent requests for the same target share one call to the broker. Nothing is
 * logged.
 */
export class BrokerClient {
  readonly #transport: SignedTransport;
  readonly #now: () => number;
  readonly #tokens = new Map<string, CachedToken>();
  readonly #inFlight = new Map<string, Promise<VendedToken>>();

  constructor(options: BrokerClientOptions) {
    this.#now = options.now ?? Date.now;
    this.#transport = new SignedTransport({
      baseUrl: options.baseUrl,
      region: options.region,
      credentials: options.credentials ?? defaultCredentials(),
      fetch: options.fetch ?? globalThis.fetch,
      now: this.#now,
    });
  }

  /**
   * The current access token of a connection (`{connectionId}`) or the client-credentials token
   * (`{kind: 'client'}`). A cached token is used while its `validUntil` has not passed and it meets
   * `minValiditySeconds`; otherwise the broker is asked, once for all concurrent callers.
   *
   * @throws BrokerClientError with the broker's error code (e.g. `connection_not_found`,
   *   `reauthorization_required`; `provider_unavailable` or `service_unavailable`, both 503s to retry after
   *   `retryAfterSeconds`)
   */
  async getToken(target: TokenTarget, options: GetTokenOptions = {}): Promise<VendedToken> {
    const key = 'connectionId' in target ? `connection:${target.connectionId}` : 'client';
    const cached = this.#tokens.get(key);
    if (cached && this.#isUsable(cached, options)) return cached.token;
    if (cached && cached.token.generation === options.rejectedGeneration) this.#tokens.delete(key);

    const flightKey = `${key}|${options.rejectedGeneration ?? ''}|${options.minValiditySeconds ?? ''}`;
    const pending = this.#inFlight.get(flightKey);
    if (pending) return pending;
    const flight = this.#requestToken(key, target, options).finally(() => this.#inFlight.delete(flightKey));
    this.#inFlight.set(flightKey, flight);
    return flight;
  }

  /**
   * Runs `call` with the target's token. When Wise answers 401, the token is reported as rejected
   * (`rejectedGeneration`), and `call` runs once more with the token the broker gives then; that
   * second response is returned whatever it is.
   */
  async withToken(target: TokenTarget, call: (token: VendedToken) => Promise<Response>): Promise<Response> {
    const token = await this.getToken(target);
    const response = await call(token);
    if (response.status !== 401) return response;
    await response.body?.cancel().catch(() => undefined);
    const renewed = await this.getToken(target, { rejectedGeneration: token.generation });
    return call(renewed);
  }

  /**
   * Starts connecting a Wise user to `connectionId`: redirect the user's browser to the returned
   * `startUrl`. The user comes back to `returnUrl` with `status`, `connectionId` and, once Wise approved,
   * `completion`: pass it to {@link completeConnection} from the user's own authenticated session.
   */
  async createConnectSession(body: { connectionId: string; returnUrl?: string }): Promise<ConnectSession> {
    return this.#json({ method: 'POST', path: '/connect-sessions', body }, ConnectSessionBody);
  }

  /**
   * Confirms a connection with the completion code its return URL received. Call it only for the
   * connection of the user signed in to your application: a code issued for another connection is refused,
   * and burnt.
   */
  async completeConnection(connectionId: string, completionCode: string): Promise<ConnectionStatus> {
    const path = `/connections/${pathSegment(connectionId)}/completion`;
    return this.#json({ method: 'POST', path, body: { completionCode } }, ConnectionStatusBody);
  }

  /** Connects a user the partner created through Wise's API with its registration code. */
  async registerWithCode(
    connectionId: string,
    body: { email: string; registrationCode: string; signup?: boolean },
  ): Promise<ConnectionStatus> {
    const path = `/connections/${pathSegment(connectionId)}/registration-code`;
    return this.#json({ method: 'POST', path, body }, ConnectionStatusBody);
  }

  /** The status of one connection, without secrets. */
  async getConnection(connectionId: string): Promise<ConnectionStatus> {
    const path = `/connections/${pathSegment(connectionId)}`;
    return this.#json({ method: 'GET', path }, ConnectionStatusBody);
  }

  /** Every connection the caller administers, following the broker's pages to the end. */
  async listConnections(options: { status?: string } = {}): Promise<ConnectionStatus[]> {
    const connections: ConnectionStatus[] = [];
    let nextToken: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const query: Record<string, string> = {};
      if (options.status !== undefined) query.status = options.status;
      if (nextToken !== undefined) query.nextToken = nextToken;
      const answer = await this.#json({ method: 'GET', path: '/connections', query }, ConnectionPageBody);
      connections.push(...answer.connections);
      nextToken = answer.nextToken;
      if (nextToken === undefined) return connections;
    }
    throw new BrokerClientError(`The broker still had more connections after ${MAX_PAGES} pages.`, {
      status: 200,
      code: 'unexpected_response',
    });
  }

  /** Disconnects: the broker destroys the connection's tokens. */
  async deleteConnection(connectionId: string): Promise<void> {
    const response = await this.#transport.send({
      method: 'DELETE',
      path: `/connections/${pathSegment(connectionId)}`,
    });
    if (!response.ok) throw await this.#errorFrom(response);
    await response.body?.cancel();
  }

  #isUsable(cached: CachedToken, options: GetTokenOptions): boolean {
    const now = this.#now();
    if (now >= cached.validUntil) return false;
    // Before validUntil the broker answers with this same token whatever minValiditySeconds asks.
    return options.rejectedGeneration === undefined || cached.token.generation > options.rejectedGeneration;
  }

  async #requestToken(key: string, target: TokenTarget, options: GetTokenOptions): Promise<VendedToken> {
    const body = {
      ...target,
      ...(options.minValiditySeconds === undefined ? {} : { minValiditySeconds: options.minValiditySeconds }),
      ...(options.rejectedGeneration === undefined ? {} : { rejectedGeneration: options.rejectedGeneration }),
    };
    const token = Object.freeze(await this.#json({ method: 'POST', path: '/tokens', body }, VendedTokenBody));
    const current = this.#tokens.get(key);
    // A slower answer must not replace a newer token another call already cached.
    if (!current || token.generation >= current.token.generation) {
      this.#tokens.set(key, {
        token,
        validUntil: Date.parse(token.validUntil),
      });
    }
    return token;
  }

  async #json<T>(request: BrokerRequest, schema: z.ZodType<T>): Promise<T> {
    const response = await this.#transport.send(request);
    if (!response.ok) throw await this.#errorFrom(response);
    const parsed = schema.safeParse(await response.json().catch(() => undefined));
    if (!parsed.success) {
      // Never quote the body: it may hold a token.
      throw new BrokerClientError(
        `The broker answered ${request.method} ${request.path} with a body the client does not understand.`,
        { status: response.status, code: 'unexpected_response' },
      );
    }
    return parsed.data;
  }

  async #errorFrom(response: Response): Promise<BrokerClientError> {
    const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'), this.#now());
    const body = (await response.json().catch(() => undefined)) as
      | { error?: unknown; message?: unknown }
      | undefined;
    if (typeof body?.error === 'string' && typeof body.message === 'string') {
      return new BrokerClientError(body.message, {
        status: response.status,
        code: body.error,
        retryAfterSeconds,
      });
    }
    return new BrokerClientError(`The broker answered ${response.status} without its JSON error body.`, {
      status: response.status,
      code: 'unexpected_response',
      retryAfterSeconds,
    });
  }
}

/** A connection id as one path segment. `.` and `..` would be read as the path itself and its parent. */
function pathSegment(connectionId: string): string {
  if (connectionId === '' || connectionId === '.' || connectionId === '..') {
    throw new BrokerClientError(`The connection id "${connectionId}" cannot be used in a URL path.`, {
      status: 0,
      code: 'invalid_request',
    });
  }
  return encodeURIComponent(connectionId);
}

/** `Retry-After` in seconds, from either of its forms (a number of seconds, or an HTTP date). */
function parseRetryAfter(header: string | null, now: number): number | undefined {
  if (header === null) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

/** The AWS SDK's default credential chain, loaded only when a client needs it. */
function defaultCredentials(): AwsCredentialIdentityProvider {
  let provider: Promise<AwsCredentialIdentityProvider> | undefined;
  return async (properties) => {
    provider ??= import('@aws-sdk/credential-provider-node').then((module) => module.defaultProvider());
    return (await provider)(properties);
  };
}
