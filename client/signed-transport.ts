import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { BrokerClientError } from './errors.ts';

/** One request to the broker: a path below the base URL, an optional query and JSON body. */
export interface BrokerRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: Record<string, string>;
  body?: unknown;
}

/**
 * Sends requests to the broker signed with AWS Signature Version 4 for `execute-api`, as API Gateway's
 * IAM authorization expects: the signature covers the host, path, query and the body's hash.
 */
export class SignedTransport {
  readonly #base: URL;
  readonly #signer: SignatureV4;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;

  constructor(options: {
    baseUrl: string;
    region: string;
    credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
    fetch: typeof fetch;
    now: () => number;
  }) {
    this.#base = new URL(options.baseUrl);
    this.#signer = new SignatureV4({
      service: 'execute-api',
      region: options.region,
      credentials: options.credentials,
      sha256: Sha256,
    });
    this.#fetch = options.fetch;
    this.#now = options.now;
  }

  async send(request: BrokerRequest): Promise<Response> {
    const url = new URL(this.#base);
    url.pathname = `${this.#base.pathname.replace(/\/$/, '')}${request.path}`;
    // Spaces as %20, never `+`: the signature's canonical query reads `+` as a plus sign.
    url.search = Object.entries(request.query ?? {})
      .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`)
      .join('&');
    const body = request.body === undefined ? undefined : JSON.stringify(request.body);
    const headers: Record<string, string> = { host: url.host, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const signed = await this.#signer.sign(
      {
        method: request.method,
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port === '' ? {} : { port: Number(url.port) }),
        path: url.pathname,
        query: request.query ?? {},
        headers,
        body,
      },
      { signingDate: new Date(this.#now()) },
    );
    // fetch sets Host itself, from the same URL.
    const { host: _host, ...sent } = signed.headers;
    try {
      return await this.#fetch(url, { method: request.method, headers: sent, body: body ?? null });
    } catch (error) {
      throw new BrokerClientError(`The broker at ${this.#base.origin} could not be reached.`, {
        status: 0,
        code: 'network_error',
        cause: error,
      });
    }
  }
}
