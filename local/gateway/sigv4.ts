import { createHash, timingSafeEqual } from 'node:crypto';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import type { LocalCredential } from './types.ts';

const ALGORITHM = 'AWS4-HMAC-SHA256';
const SERVICE = 'execute-api';
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const SIGNATURE = /^[0-9a-f]{64}$/;

/** A received request, as the signature covers it. */
export interface ReceivedRequest {
  method: string;
  /** The path exactly as received, still percent-encoded. */
  rawPath: string;
  /** The query string exactly as received, without the `?`. */
  rawQuery: string;
  /** The already percent-decoded query parameters, repeated names as arrays. */
  query: Record<string, string | string[]>;
  /** Lower-cased names; repeated headers joined with commas. */
  headers: Record<string, string>;
  body: Buffer;
}

/** The outcome of checking a request's signature; `reason` is safe to show the caller. */
export type Verification = { ok: true; credential: LocalCredential } | { ok: false; reason: string };

interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

/**
 * Checks AWS Signature Version 4 on requests for the `execute-api` service the way API Gateway does
 * with IAM authorization: the signature is recomputed with the caller's secret over the received
 * method, path, query, exactly the signed headers and the body's hash.
 */
export class SigV4Verifier {
  readonly #region: string;
  readonly #credentials: Map<string, LocalCredential>;
  readonly #maxClockSkewMs: number;
  readonly #now: () => number;
  readonly #acceptAsSent: boolean;

  constructor(options: {
    region: string;
    credentials: readonly LocalCredential[];
    maxClockSkewSeconds: number;
    now: () => number;
    acceptAsSentCanonicalForm: boolean;
  }) {
    this.#region = options.region;
    this.#credentials = new Map(
      options.credentials.map((credential) => [credential.accessKeyId, credential]),
    );
    this.#maxClockSkewMs = options.maxClockSkewSeconds * 1000;
    this.#now = options.now;
    this.#acceptAsSent = options.acceptAsSentCanonicalForm;
  }

  async verify(request: ReceivedRequest): Promise<Verification> {
    const authorization = request.headers.authorization;
    if (authorization === undefined) {
      const presigned = Object.keys(request.query).some((name) => name.toLowerCase() === 'x-amz-signature');
      return refuse(
        presigned
          ? 'Presigned URLs are not accepted; sign the request with an Authorization header.'
          : `The request is not signed: send an AWS Signature Version 4 Authorization header for the ${SERVICE} service.`,
      );
    }
    const parsed = parseAuthorization(authorization);
    if (typeof parsed === 'string') return refuse(parsed);
    if (parsed.service !== SERVICE) {
      return refuse(`The request is signed for the service "${parsed.service}"; sign it for "${SERVICE}".`);
    }
    if (parsed.region !== this.#region) {
      return refuse(
        `The request is signed for the region "${parsed.region}"; sign it for "${this.#region}".`,
      );
    }
    const credential = this.#credentials.get(parsed.accessKeyId);
    if (!credential) return refuse('The access key in the signature is not one of the local credentials.');

    const signingDate = this.#checkDate(request.headers['x-amz-date'], parsed.date);
    if (typeof signingDate === 'string') return refuse(signingDate);
    const headerProblem = checkSignedHeaders(parsed.signedHeaders, request.headers);
    if (headerProblem) return refuse(headerProblem);
    const tokenProblem = checkSessionToken(credential, request.headers['x-amz-security-token']);
    if (tokenProblem) return refuse(tokenProblem);
    const payloadHash = createHash('sha256').update(request.body).digest('hex');
    const declaredHash = request.headers['x-amz-content-sha256'];
    if (declaredHash === UNSIGNED_PAYLOAD) {
      return refuse("Unsigned payloads are not accepted; sign the SHA-256 hash of the request's body.");
    }
    if (declaredHash !== undefined && declaredHash !== payloadHash) {
      return refuse('The request body does not match its signed hash (x-amz-content-sha256).');
    }

    const signer = new SignatureV4({
      service: SERVICE,
      region: this.#region,
      credentials: { accessKeyId: credential.accessKeyId, secretAccessKey: credential.secretAccessKey },
      sha256: Sha256,
      applyChecksum: false,
    });
    const provided = Buffer.from(parsed.signature, 'hex');
    const candidates = [await awsCanonicalSignature(signer, request, parsed, signingDate)];
    if (this.#acceptAsSent && !request.rawPath.includes('%')) {
      candidates.push(await asSentSignature(signer, request, parsed, signingDate, payloadHash));
    }
    const matches = candidates.map((expected) => timingSafeEqual(Buffer.from(expected, 'hex'), provided));
    if (!matches.includes(true)) {
      return refuse(
        'The signature does not match the request: check the secret access key, the region, the signed headers and that nothing changed the request after signing.',
      );
    }
    return { ok: true, credential };
  }

  /** The signing time from `X-Amz-Date`, or why it is refused. */
  #checkDate(amzDate: string | undefined, scopeDate: string): Date | string {
    if (amzDate === undefined) return 'The X-Amz-Date header is missing; it must carry the signing time.';
    const parts = AMZ_DATE.exec(amzDate);
    if (!parts) return 'The X-Amz-Date header is not a time of the form YYYYMMDDTHHMMSSZ.';
    const [, year, month, day, hour, minute, second] = parts;
    const signingDate = new Date(`${year}-${month}-${day}T${hour}:${minute}:${second}Z`);
    if (Number.isNaN(signingDate.getTime())) return 'The X-Amz-Date header is not a valid time.';
    if (amzDate.slice(0, 8) !== scopeDate) {
      return 'The date in the signature credential scope is not the date of X-Amz-Date.';
    }
    const now = this.#now();
    if (Math.abs(now - signingDate.getTime()) > this.#maxClockSkewMs) {
      return `The request was signed at ${signingDate.toISOString()}, more than ${this.#maxClockSkewMs / 1000} seconds from the gateway's time ${new Date(now).toISOString()}; check the clock and sign it again.`;
    }
    return signingDate;
  }
}

function refuse(reason: string): Verification {
  return { ok: false, reason };
}

/** Splits `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`; a string says what is wrong. */
function parseAuthorization(header: string): ParsedAuthorization | string {
  const malformed =
    'The Authorization header is not an AWS Signature Version 4 header with Credential, SignedHeaders and Signature.';
  const space = header.indexOf(' ');
  const algorithm = space < 0 ? header : header.slice(0, space);
  if (algorithm !== ALGORITHM) {
    return `The Authorization header uses "${algorithm.slice(0, 40)}"; only ${ALGORITHM} is accepted.`;
  }
  const fields = new Map<string, string>();
  for (const part of header.slice(space + 1).split(',')) {
    const equals = part.indexOf('=');
    if (equals > 0) fields.set(part.slice(0, equals).trim(), part.slice(equals + 1).trim());
  }
  const credential = fields.get('Credential')?.split('/');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (credential?.length !== 5 || !signedHeaders || !signature || !SIGNATURE.test(signature)) {
    return malformed;
  }
  const [accessKeyId = '', date = '', region = '', service = '', terminator] = credential;
  if (terminator !== 'aws4_request' || accessKeyId === '') return malformed;
  return { accessKeyId, date, region, service, signedHeaders: signedHeaders.split(';'), signature };
}

function checkSignedHeaders(signed: readonly string[], headers: Record<string, string>): string | undefined {
  if (!signed.includes('host') || !signed.includes('x-amz-date')) {
    return 'The signature must cover the host and x-amz-date headers.';
  }
  const missing = signed.find((name) => headers[name] === undefined);
  return missing === undefined ? undefined : `The signed header "${missing}" is not in the request.`;
}

function checkSessionToken(credential: LocalCredential, token: string | undefined): string | undefined {
  if (credential.sessionToken === undefined) {
    return token === undefined
      ? undefined
      : 'This access key takes no security token; send the request without X-Amz-Security-Token.';
  }
  if (token === undefined) return 'This access key is temporary; the request needs its X-Amz-Security-Token.';
  const expected = createHash('sha256').update(credential.sessionToken).digest();
  const received = createHash('sha256').update(token).digest();
  return timingSafeEqual(expected, received)
    ? undefined
    : 'The security token does not belong to the access key in the signature.';
}

/** Only the headers the caller signed, with their received values. */
function signedHeaderValues(request: ReceivedRequest, parsed: ParsedAuthorization): Record<string, string> {
  const values: Record<string, string> = {};
  for (const name of parsed.signedHeaders) values[name] = request.headers[name] ?? '';
  return values;
}

/** The signature in AWS's canonical form, computed by the SDK's own signer. */
async function awsCanonicalSignature(
  signer: SignatureV4,
  request: ReceivedRequest,
  parsed: ParsedAuthorization,
  signingDate: Date,
): Promise<string> {
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: 'http:',
      hostname: request.headers.host ?? '',
      path: request.rawPath,
      query: request.query,
      headers: signedHeaderValues(request, parsed),
      body: request.body.length > 0 ? request.body : undefined,
    },
    { signingDate, signableHeaders: new Set(parsed.signedHeaders) },
  );
  return /Signature=([0-9a-f]{64})/.exec(signed.headers.authorization ?? '')?.[1] ?? '';
}

/** The signature over the path and query string exactly as sent (curl before 8.x signs this way). */
async function asSentSignature(
  signer: SignatureV4,
  request: ReceivedRequest,
  parsed: ParsedAuthorization,
  signingDate: Date,
  payloadHash: string,
): Promise<string> {
  const headers = signedHeaderValues(request, parsed);
  const canonicalHeaders = parsed.signedHeaders.map(
    (name) => `${name}:${(headers[name] ?? '').replace(/\s+/g, ' ').trim()}\n`,
  );
  const canonicalRequest = [
    request.method,
    request.rawPath,
    request.rawQuery,
    canonicalHeaders.join(''),
    parsed.signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${parsed.date}/${parsed.region}/${SERVICE}/aws4_request`;
  const amzDate = request.headers['x-amz-date'] ?? '';
  const stringToSign = [
    ALGORITHM,
    amzDate,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  return signer.sign(stringToSign, { signingDate, signingRegion: parsed.region, signingService: SERVICE });
}
