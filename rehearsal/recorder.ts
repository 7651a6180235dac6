import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listen } from '#local/aws/http-server.ts';
import { readBody } from './http-body.ts';
import { type AwsCall, type CallDecision, describeCall, type PolicyEvaluator } from './policy-check.ts';
import type { StandIns } from './stand-ins.ts';

/** A call, with its place in the order of all calls and how the policies answered it. */
export interface RecordedCall extends AwsCall, CallDecision {
  sequence: number;
  /** The call this one was made for, by sequence (KMS for Secrets Manager or DynamoDB). */
  onBehalfOf?: number;
}

/** Whose access key is whose: each function process gets its own. */
export interface FunctionCredentials {
  functionId: string;
  accessKeyId: string;
}

const MAX_BODY_BYTES = 16 * 1024 * 1024;

/**
 * An HTTP endpoint in front of the embedded DynamoDB and the local KMS / Secrets Manager / EventBridge
 * endpoint, which the functions' SDK clients reach through `AWS_ENDPOINT_URL_*`. It tells the calling
 * function by the access key in the SigV4 `Authorization` header, records each call (operation, resource
 * ARN, index, encryption context), evaluates it against the function's policies, and answers a denied one
 * with `AccessDeniedException` as AWS would, without passing it on.
 */
export class CallRecorder {
  readonly calls: RecordedCall[] = [];
  /** Requests to services the rehearsal does not stand in for. */
  readonly unknown: string[] = [];
  /** What the functions wrote to CloudWatch Logs, which the recorder itself stands in for. */
  readonly logEvents: { logGroupName: string; logStreamName: string; message: string }[] = [];
  readonly #logStreams = new Set<string>();
  readonly #standIns: StandIns;
  readonly #evaluator: PolicyEvaluator;
  readonly #functionsByKey = new Map<string, string>();
  #server: ReturnType<typeof createServer> | undefined;

  constructor(standIns: StandIns, evaluator: PolicyEvaluator, credentials: FunctionCredentials[]) {
    this.#standIns = standIns;
    this.#evaluator = evaluator;
    for (const entry of credentials) this.#functionsByKey.set(entry.accessKeyId, entry.functionId);
  }

  /** Starts listening on loopback; resolves with the endpoint URL. */
  async start(): Promise<string> {
    this.#server = createServer((request, response) => {
      this.#serve(request, response).catch((error: unknown) => {
        sendError(response, 500, 'InternalFailure', `The rehearsal's recorder failed: ${String(error)}`);
      });
    });
    return listen(this.#server, '127.0.0.1', 0);
  }

  async close(): Promise<void> {
    if (this.#server) await closeServer(this.#server);
  }

  /** The denied calls, in order. */
  denials(): RecordedCall[] {
    return this.calls.filter((call) => call.decision !== 'Allowed');
  }

  async #serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readBody(request, MAX_BODY_BYTES);
    const accessKeyId = /Credential=([^/]+)\//.exec(String(request.headers.authorization ?? ''))?.[1] ?? '';
    const functionId = this.#functionsByKey.get(accessKeyId);
    if (!functionId) {
      sendError(
        response,
        403,
        'UnrecognizedClientException',
        'The security token included in the request is invalid.',
      );
      return;
    }
    const target = String(request.headers['x-amz-target'] ?? '');
    const input = parseInput(body);
    const upstream = target.startsWith('DynamoDB_')
      ? this.#standIns.dynamodb.endpoint
      : this.#standIns.aws.endpoint;
    const calls = this.#callsOf(functionId, target, input);
    if (calls.length === 0) {
      const what = target || `${request.method} ${request.url}`;
      this.unknown.push(`${functionId} called ${what}, which the rehearsal has no stand-in for`);
      sendError(response, 400, 'UnknownOperationException', `The rehearsal has no stand-in for ${what}.`);
      return;
    }

    // CloudWatch Logs has no stand-in of its own: the recorder answers it.
    if (target.startsWith('Logs_')) {
      const denied = await this.#decide(calls);
      if (denied) {
        sendError(response, 400, 'AccessDeniedException', denied);
        return;
      }
      this.#answerLogs(response, target, input);
      return;
    }

    // A Decrypt without KeyId names its key only through the ciphertext: KMS answers, then the policy decides.
    const decryptWithoutKey = target === 'TrentService.Decrypt' && typeof input.KeyId !== 'string';
    if (!decryptWithoutKey) {
      const denied = await this.#decide(calls);
      if (denied) {
        sendError(response, 400, 'AccessDeniedException', denied);
        return;
      }
    }
    const answer = await forward(upstream, request, body);
    if (decryptWithoutKey && answer.status === 200) {
      const keyId = (JSON.parse(answer.body.toString('utf8')) as { KeyId?: string }).KeyId ?? '';
      for (const call of calls) call.resource = keyId;
      const denied = await this.#decide(calls);
      if (denied) {
        sendError(response, 400, 'AccessDeniedException', denied);
        return;
      }
    }
    response.writeHead(answer.status, answer.headers);
    response.end(answer.body);
  }

  /** Records and evaluates the calls; answers the first denial's message, or undefined when all are allowed. */
  async #decide(calls: (AwsCall & { onBehalfOf?: number })[]): Promise<string | undefined> {
    let outer: number | undefined;
    let denial: string | undefined;
    for (const call of calls) {
      const decision = await this.#evaluator.evaluate(call);
      const sequence = this.calls.length + 1;
      const recorded: RecordedCall = {
        ...call,
        ...decision,
        sequence,
        ...(call.viaService !== undefined && outer !== undefined ? { onBehalfOf: outer } : {}),
      };
      outer ??= sequence;
      this.calls.push(recorded);
      if (decision.decision !== 'Allowed' && denial === undefined) {
        denial = `User: ${call.functionId} is not authorized to perform: ${describeCall(call)}: ${decision.explanation ?? decision.decision}`;
      }
    }
    return denial;
  }

  /** The IAM requests one AWS request stands for, with the KMS use a service makes on its behalf. */
  #callsOf(functionId: string, target: string, input: Record<string, unknown>): AwsCall[] {
    const { account, region } = this.#standIns;
    const [prefix = '', operation = ''] = target.split('.');
    const calls: AwsCall[] = [];
    if (prefix.startsWith('DynamoDB_')) {
      const tables = new Set<string>();
      if (typeof input.TableName === 'string') tables.add(input.TableName);
      for (const name of Object.keys((input.RequestItems as object | undefined) ?? {})) tables.add(name);
      for (const item of (input.TransactItems as Record<string, { TableName?: string }>[] | undefined) ??
        []) {
        for (const entry of Object.values(item)) if (entry.TableName) tables.add(entry.TableName);
      }
      for (const table of tables) {
        const tableName = table.startsWith('arn:') ? table.replace(/^.*:table\//, '') : table;
        const tableArn = `arn:aws:dynamodb:${region}:${account}:table/${tableName}`;
        const index = typeof input.IndexName === 'string' ? input.IndexName : undefined;
        const leadingKeys = this.#leadingKeys(tableName, table, input);
        calls.push({
          functionId,
          action: `dynamodb:${operation}`,
          resource: index === undefined ? tableArn : `${tableArn}/index/${index}`,
          ...(index === undefined ? {} : { index }),
          context: leadingKeys.length > 0 ? { 'dynamodb:LeadingKeys': leadingKeys } : {},
        });
        const keyArn = this.#standIns.tableKeyArn(tableName);
        if (keyArn) {
          const encryptionContext = {
            'aws:dynamodb:tableName': tableName,
            'aws:dynamodb:subscriberId': account,
          };
          calls.push(
            kmsCall(
              functionId,
              'kms:Decrypt',
              keyArn,
              encryptionContext,
              account,
              `dynamodb.${region}.amazonaws.com`,
            ),
          );
        }
      }
      return calls;
    }
    if (prefix === 'TrentService') {
      const keyId = typeof input.KeyId === 'string' ? this.#keyArn(input.KeyId) : '';
      const context = (input.EncryptionContext as Record<string, string> | undefined) ?? undefined;
      calls.push(kmsCall(functionId, `kms:${operation}`, keyId, context, account));
      return calls;
    }
    if (prefix === 'secretsmanager') {
      const secretId = String(input.SecretId ?? input.Name ?? '');
      const secretArn = this.#standIns.secretArn(secretId) ?? secretId;
      calls.push({ functionId, action: `secretsmanager:${operation}`, resource: secretArn, context: {} });
      const keyArn = this.#standIns.secretKeyArn(secretArn);
      if (keyArn && operation === 'GetSecretValue') {
        calls.push(
          kmsCall(
            functionId,
            'kms:Decrypt',
            keyArn,
            { SecretARN: secretArn },
            account,
            `secretsmanager.${region}.amazonaws.com`,
          ),
        );
      }
      return calls;
    }
    if (prefix === 'Logs_20140328' && (operation === 'CreateLogStream' || operation === 'PutLogEvents')) {
      const group = String(input.logGroupName ?? '');
      const stream = String(input.logStreamName ?? '');
      calls.push({
        functionId,
        action: `logs:${operation}`,
        resource: `arn:aws:logs:${region}:${account}:log-group:${group}:log-stream:${stream}`,
        context: {},
      });
      return calls;
    }
    if (prefix === 'AWSEvents') {
      const entries =
        (input.Entries as { EventBusName?: string; Source?: string; DetailType?: string }[] | undefined) ??
        [];
      for (const entry of entries) {
        const bus = entry.EventBusName ?? 'default';
        calls.push({
          functionId,
          action: `events:${operation}`,
          resource: bus.startsWith('arn:') ? bus : `arn:aws:events:${region}:${account}:event-bus/${bus}`,
          context: {
            ...(entry.Source ? { 'events:source': entry.Source } : {}),
            ...(entry.DetailType ? { 'events:detail-type': entry.DetailType } : {}),
          },
        });
      }
      return calls;
    }
    return calls;
  }

  /** CloudWatch Logs' answers to CreateLogStream and PutLogEvents; the events are kept in `logEvents`. */
  #answerLogs(response: ServerResponse, target: string, input: Record<string, unknown>): void {
    const logGroupName = String(input.logGroupName ?? '');
    const logStreamName = String(input.logStreamName ?? '');
    const stream = `${logGroupName}:${logStreamName}`;
    if (target.endsWith('.CreateLogStream')) {
      if (this.#logStreams.has(stream)) {
        sendError(response, 400, 'ResourceAlreadyExistsException', 'The specified log stream already exists');
        return;
      }
      this.#logStreams.add(stream);
      sendJson(response, {});
      return;
    }
    if (!this.#logStreams.has(stream)) {
      sendError(response, 400, 'ResourceNotFoundException', 'The specified log stream does not exist.');
      return;
    }
    for (const event of (input.logEvents as { message?: string }[] | undefined) ?? []) {
      this.logEvents.push({ logGroupName, logStreamName, message: String(event.message ?? '') });
    }
    sendJson(response, { nextSequenceToken: String(this.logEvents.length) });
  }

  /**
   * The partition key values an item request names (`dynamodb:LeadingKeys`): its `Key` or `Item`, or each
   * of a batch's. A query's key condition is not read, so a query carries none.
   */
  #leadingKeys(tableName: string, requested: string, input: Record<string, unknown>): string[] {
    const attribute = this.#standIns.tablePartitionKey(tableName);
    if (!attribute) return [];
    type Item = Record<string, { S?: string; N?: string } | undefined>;
    const items: (Item | undefined)[] = [input.Key as Item | undefined, input.Item as Item | undefined];
    const batch = (input.RequestItems as Record<string, unknown> | undefined)?.[requested];
    if (Array.isArray(batch)) {
      for (const entry of batch as { PutRequest?: { Item: Item }; DeleteRequest?: { Key: Item } }[]) {
        items.push(entry.PutRequest?.Item, entry.DeleteRequest?.Key);
      }
    } else if (batch && typeof batch === 'object') {
      items.push(...((batch as { Keys?: Item[] }).Keys ?? []));
    }
    return [
      ...new Set(
        items.flatMap((item) => {
          const value = item?.[attribute];
          return value?.S ?? value?.N ?? [];
        }),
      ),
    ];
  }

  #keyArn(keyId: string): string {
    try {
      return this.#standIns.aws.keyArn(keyId);
    } catch {
      return keyId;
    }
  }
}

/** The AWS JSON protocol's request body; any other protocol's body reads as empty. */
function parseInput(body: Buffer): Record<string, unknown> {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as unknown;
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function kmsCall(
  functionId: string,
  action: string,
  keyArn: string,
  encryptionContext: Record<string, string> | undefined,
  account: string,
  viaService?: string,
): AwsCall {
  const context: Record<string, string | string[]> = { 'kms:CallerAccount': account };
  if (encryptionContext) {
    for (const [name, value] of Object.entries(encryptionContext))
      context[`kms:EncryptionContext:${name}`] = value;
    context['kms:EncryptionContextKeys'] = Object.keys(encryptionContext);
  }
  if (viaService) context['kms:ViaService'] = viaService;
  return {
    functionId,
    action,
    resource: keyArn,
    ...(encryptionContext ? { encryptionContext } : {}),
    ...(viaService ? { viaService } : {}),
    context,
  };
}

function forward(
  endpoint: string,
  request: IncomingMessage,
  body: Buffer,
): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: request.method,
        path: request.url,
        headers: { ...request.headers, host: url.host, 'content-length': String(body.length) },
      },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const headers: Record<string, string | string[]> = {};
          for (const [name, value] of Object.entries(answer.headers)) {
            if (value !== undefined && name !== 'transfer-encoding' && name !== 'connection')
              headers[name] = value;
          }
          const text = Buffer.concat(chunks);
          headers['content-length'] = String(text.length);
          resolve({ status: answer.statusCode ?? 500, headers, body: text });
        });
        answer.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

function sendJson(response: ServerResponse, body: object): void {
  const text = JSON.stringify(body);
  response.writeHead(200, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

function sendError(response: ServerResponse, status: number, type: string, message: string): void {
  if (response.headersSent) return;
  const text = JSON.stringify({ __type: type, message, Message: message });
  response.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-errortype': type,
  });
  response.end(text);
}
