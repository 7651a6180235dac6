import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import { EVENTS_FILE, LocalEventBus, type RecordedEvent } from './events.ts';
import { closeServer, DEFAULT_HOST, listen } from './http-server.ts';
import { AwsServiceError, isJsonObject, type JsonObject, type LocalService } from './json-protocol.ts';
import { LocalKms } from './kms.ts';
import { makePrivate } from './private-files.ts';
import { LocalSecretsManager } from './secrets-manager.ts';

export type { RecordedEvent } from './events.ts';

/** AWS's own limits are smaller (Secrets Manager 64 KiB, PutEvents 256 KiB): this only bounds memory. */
const MAX_BODY_BYTES = 1024 * 1024;

/** Options for {@link startLocalAws}. */
export interface LocalAwsOptions {
  /** Interface to bind; `127.0.0.1` by default. */
  host?: string;
  /** Port to bind; `0` (the default) picks a free one. */
  port?: number;
  /** Region named in ARNs; `us-east-1` by default. */
  region?: string;
  /** Account named in ARNs; `000000000000` by default. */
  accountId?: string;
  /** Folder for key material and secrets (created if missing); `null` or absent keeps them in memory. */
  dataDir?: string | null;
  /** KMS keys to create unless they exist: key ids, or alias names such as `alias/wise-broker-local`. */
  keys?: string[];
  /** Secrets to create, by name, with their SecretString; a secret whose value differs gets a new version. */
  secrets?: Record<string, string>;
}

/** A running local AWS endpoint. */
export interface LocalAws {
  /** The URL to pass as the `endpoint` of the KMS, Secrets Manager and EventBridge clients. */
  endpoint: string;
  /** Every entry received by `PutEvents`, in order; the array is live. */
  events: RecordedEvent[];
  /** The key ARN for a key id, key ARN, alias name or alias ARN; throws when no such key exists. */
  keyArn(aliasOrId: string): string;
  /** Stops the server; calling it again does nothing more. */
  close(): Promise<void>;
}

/**
 * Starts one HTTP server that answers the AWS JSON 1.1 protocol (`X-Amz-Target` dispatch,
 * `application/x-amz-json-1.1`) for the few operations the broker uses, so its AWS adapters run
 * unchanged through the real SDK clients and their `endpoint` option:
 * - KMS: `Encrypt`, `Decrypt`, `DescribeKey`, `GenerateRandom`;
 * - Secrets Manager: `CreateSecret`, `GetSecretValue`, `PutSecretValue`, `DescribeSecret`;
 * - EventBridge: `PutEvents` (recorded in {@link LocalAws.events} and, with a data folder, appended to its
 *   `events.ndjson`; delivered nowhere).
 *
 * Errors carry AWS's exception names and HTTP statuses, so the SDK raises its own exception classes.
 *
 * Requests must carry an `Authorization` header, but the SigV4 signature is NOT verified: any
 * credentials are accepted. This is a development and test stand-in, not a security boundary; bind it
 * to loopback (the default).
 */
export async function startLocalAws(options: LocalAwsOptions = {}): Promise<LocalAws> {
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '000000000000';
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) {
    throw new Error(`"${region}" is not an AWS region name such as us-east-1.`);
  }
  if (!/^\d{12}$/.test(accountId)) throw new Error(`The account id must be 12 digits, not "${accountId}".`);
  const dataDir = options.dataDir ? resolve(options.dataDir) : undefined;
  if (dataDir !== undefined) makePrivate(dataDir);

  const kms = new LocalKms({ region, accountId, stateFile: dataDir && join(dataDir, 'kms-keys.json') });
  for (const key of options.keys ?? []) kms.ensureKey(key);
  const secretsManager = new LocalSecretsManager({
    region,
    accountId,
    stateFile: dataDir && join(dataDir, 'secrets.json'),
  });
  for (const [name, value] of Object.entries(options.secrets ?? {})) secretsManager.ensureSecret(name, value);
  const eventBus = new LocalEventBus({
    region,
    accountId,
    ...(dataDir === undefined ? {} : { file: join(dataDir, EVENTS_FILE) }),
  });

  const services = new Map<string, LocalService>(
    [kms, secretsManager, eventBus].map((service) => [service.targetPrefix, service]),
  );
  const server = createServer((request, response) => {
    answer(request, services).then(
      (body) => send(response, 200, body),
      (error: unknown) => sendError(response, error),
    );
  });
  const endpoint = await listen(server, options.host ?? DEFAULT_HOST, options.port ?? 0);
  let closing: Promise<void> | undefined;
  return {
    endpoint,
    events: eventBus.events,
    keyArn: (aliasOrId) => kms.keyArn(aliasOrId),
    close: () => {
      closing ??= closeServer(server);
      return closing;
    },
  };
}

async function answer(
  request: IncomingMessage,
  services: ReadonlyMap<string, LocalService>,
): Promise<JsonObject> {
  const body = await readBody(request);
  if (request.method !== 'POST') {
    throw new AwsServiceError(
      'UnknownOperationException',
      `The local AWS endpoint answers POST requests of the AWS JSON 1.1 protocol, not ${request.method}.`,
    );
  }
  if (!request.headers.authorization) {
    throw new AwsServiceError(
      'MissingAuthenticationTokenException',
      'Request is missing Authentication Token: sign it with SigV4 (any credentials are accepted locally).',
    );
  }
  const targetHeader = request.headers['x-amz-target'];
  const target = typeof targetHeader === 'string' ? targetHeader : '';
  const separator = target.lastIndexOf('.');
  const operation = services.get(target.slice(0, separator))?.operations.get(target.slice(separator + 1));
  if (separator < 0 || operation === undefined) {
    throw new AwsServiceError(
      'UnknownOperationException',
      `The local AWS endpoint does not implement the operation "${target}". It serves KMS Encrypt, Decrypt, DescribeKey and GenerateRandom; Secrets Manager CreateSecret, GetSecretValue, PutSecretValue and DescribeSecret; EventBridge PutEvents.`,
    );
  }
  return operation(parseJsonObject(body));
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Past the limit the rest is read and dropped, so the 413 answer still reaches the client.
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.on('end', () => {
      if (size <= MAX_BODY_BYTES) resolve(Buffer.concat(chunks).toString('utf8'));
      else {
        reject(
          new AwsServiceError(
            'RequestEntityTooLargeException',
            `The request body is larger than ${MAX_BODY_BYTES} bytes.`,
            413,
          ),
        );
      }
    });
    request.on('error', reject);
  });
}

function parseJsonObject(body: string): JsonObject {
  if (body.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new AwsServiceError('SerializationException', 'The request body is not valid JSON.');
  }
  if (!isJsonObject(parsed)) {
    throw new AwsServiceError('SerializationException', 'The request body must be a JSON object.');
  }
  return parsed;
}

function sendError(response: ServerResponse, error: unknown): void {
  if (error instanceof AwsServiceError) {
    send(response, error.statusCode, { __type: error.type, message: error.message }, error.type);
    return;
  }
  // An unexpected failure is a bug in this endpoint: say so on the console, keep the body generic.
  console.error('The local AWS endpoint failed to answer a request:', error);
  send(
    response,
    500,
    { __type: 'InternalFailure', message: 'The local AWS endpoint failed; see its console.' },
    'InternalFailure',
  );
}

function send(response: ServerResponse, statusCode: number, body: JsonObject, errorType?: string): void {
  const text = JSON.stringify(body);
  response.writeHead(statusCode, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    ...(errorType === undefined ? {} : { 'x-amzn-errortype': errorType }),
  });
  response.end(text);
}
