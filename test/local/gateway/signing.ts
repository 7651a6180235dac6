import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { promisify } from 'node:util';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

const run = promisify(execFile);

export interface TestCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SignedFetchOptions {
  method: string;
  credentials: TestCredentials;
  region: string;
  service?: string;
  body?: string;
  headers?: Record<string, string>;
  signingDate?: Date;
  /** Whether the signer adds and signs x-amz-content-sha256; true by default, as the SDK does. */
  contentSha256Header?: boolean;
  /** Sends the signed request to this URL instead, as an attacker replaying it would. */
  sendTo?: string;
  /** Changes the request after signing, as an attacker on the wire would. */
  afterSigning?: (request: { headers: Record<string, string>; body: string | undefined }) => void;
}

/** Signs a request with the AWS SDK's own SigV4 signer and sends it with fetch. */
export async function sdkSignedFetch(url: string, options: SignedFetchOptions): Promise<Response> {
  const sent = await sdkSign(url, options);
  return fetch(options.sendTo ?? url, {
    method: options.method,
    headers: sent.headers,
    body: sent.body ?? null,
  });
}

/** The headers (without `host`) and body of a request signed with the AWS SDK's own SigV4 signer. */
export async function sdkSign(
  url: string,
  options: SignedFetchOptions,
): Promise<{ headers: Record<string, string>; body: string | undefined }> {
  const target = new URL(url);
  const query: Record<string, string | string[]> = {};
  for (const [name, value] of target.searchParams) {
    const existing = query[name];
    query[name] =
      existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
  }
  const signer = new SignatureV4({
    service: options.service ?? 'execute-api',
    region: options.region,
    credentials: options.credentials,
    sha256: Sha256,
    applyChecksum: options.contentSha256Header ?? true,
  });
  const signed = await signer.sign(
    {
      method: options.method,
      protocol: target.protocol,
      hostname: target.hostname,
      port: Number(target.port),
      path: target.pathname,
      query,
      headers: { host: target.host, ...options.headers },
      body: options.body,
    },
    options.signingDate ? { signingDate: options.signingDate } : {},
  );
  const { host: _host, ...headers } = signed.headers;
  const sent = { headers, body: options.body };
  options.afterSigning?.(sent);
  return sent;
}

/**
 * Sends a request with exactly these header lines (after `host` and `content-length`), repeats included
 * (fetch would fold repeated names into one line); resolves to the status and the body.
 */
export function sendRawHeaders(
  url: string,
  method: string,
  headerLines: ReadonlyArray<readonly [string, string]>,
  body: string | undefined,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const lines = [
      ['host', target.host],
      ...(body === undefined ? [] : [['content-length', String(Buffer.byteLength(body))]]),
      ...headerLines,
    ];
    const request = httpRequest(url, { method, headers: lines.flat() }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** What curl printed: the status and the body. */
export interface CurlResult {
  status: number;
  body: string;
}

/** Sends a request signed by the system curl's `--aws-sigv4`. */
export async function curlSigned(
  url: string,
  options: { method: string; accessKeyId: string; secretAccessKey: string; region: string; body?: string },
): Promise<CurlResult> {
  const args = [
    '--silent',
    '--show-error',
    '--globoff',
    '--max-time',
    '10',
    '--aws-sigv4',
    `aws:amz:${options.region}:execute-api`,
    '--user',
    `${options.accessKeyId}:${options.secretAccessKey}`,
    '--request',
    options.method,
    '--write-out',
    '\n%{http_code}',
  ];
  if (options.body !== undefined) {
    args.push('--header', 'content-type: application/json', '--data-binary', options.body);
  }
  const { stdout } = await run('curl', [...args, url]);
  const split = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(split + 1)), body: stdout.slice(0, split) };
}
