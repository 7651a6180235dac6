import type {
  DeserializeHandler,
  DeserializeHandlerArguments,
  DeserializeHandlerOutput,
  HandlerExecutionContext,
  MetadataBearer,
} from '@smithy/types';

/**
 * Faults injected into the real AWS SDK clients of a test, beneath the SDK's own retries: a middleware at
 * the end of the client's stack answers an armed operation with the service's own error (an HTTP answer the
 * SDK's deserializer turns into its real exception class) or a transport error, so the SDK classifies,
 * retries and backs off exactly as it does against AWS.
 */

/** The faults a rule can inject. */
export type AwsFault =
  /** `ThrottlingException` (400), as DynamoDB and KMS send it when a request rate is too high. */
  | 'throttling'
  /** DynamoDB's `ProvisionedThroughputExceededException` (400). */
  | 'provisioned_throughput'
  /** A 500 with the service's internal-error type. */
  | 'server_error'
  /** The SDK's socket timeout: no answer came, and nothing reached the service. */
  | 'timeout'
  /** The request reached the service and was applied, but its answer was lost to a timeout. */
  | 'timeout_after_applied'
  /** Nothing listens at the endpoint: `ECONNREFUSED`. */
  | 'unavailable'
  /** DynamoDB's `ConditionalCheckFailedException` (400), as when another writer got there first. */
  | 'conditional_conflict'
  /** `AccessDeniedException` (400): the function's role may not make the request. */
  | 'access_denied'
  /** KMS's `InvalidCiphertextException` (400): the ciphertext or its encryption context is not KMS's. */
  | 'invalid_ciphertext';

/** Which requests a rule hits: a command name (e.g. `UpdateItemCommand`) and an optional test of its input. */
export interface FaultTarget {
  command: string;
  /** Narrows the rule to some requests of the command (the input as the client got it). */
  matches?: (input: Record<string, unknown>) => boolean;
}

export interface FaultRule extends FaultTarget {
  fault: AwsFault;
  /** How many matching requests fail; `Infinity` until {@link AwsFaultInjector.clear}. */
  times: number;
}

/** The wire type of each service's internal error (awsJson protocols). */
const INTERNAL_ERROR: Record<string, string> = {
  DynamoDB: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
  KMS: 'KMSInternalException',
  'Secrets Manager': 'InternalServiceError',
  EventBridge: 'InternalException',
};

/** Arms faults on the clients it is attached to, and counts what it injected. */
export class AwsFaultInjector {
  /** Faults injected by every injector of this process, for a file's summary line. */
  static injectedInProcess = 0;
  #rules: Array<FaultRule & { left: number; injected: number }> = [];
  /** Requests each command sent through an attached client, faulted or not. */
  readonly sent = new Map<string, number>();

  /** Installs the fault middleware on a real SDK client; `service` picks the service's error types. */
  attach(
    client: { middlewareStack: { add: (...args: never[]) => void } },
    service: 'DynamoDB' | 'KMS' | 'Secrets Manager' | 'EventBridge',
  ): this {
    const middleware =
      (next: DeserializeHandler<object, MetadataBearer>, context: HandlerExecutionContext) =>
      async (args: DeserializeHandlerArguments<object>) => {
        const command = context.commandName ?? 'unknown';
        this.sent.set(command, (this.sent.get(command) ?? 0) + 1);
        const rule = this.#rules.find(
          (candidate) =>
            candidate.left > 0 &&
            candidate.command === command &&
            (candidate.matches?.(args.input as Record<string, unknown>) ?? true),
        );
        if (!rule) return next(args);
        rule.left -= 1;
        rule.injected += 1;
        AwsFaultInjector.injectedInProcess += 1;
        return inject(rule.fault, service, () => next(args));
      };
    (client.middlewareStack.add as (m: unknown, o: unknown) => void)(middleware, {
      step: 'deserialize',
      priority: 'low',
      name: 'testAwsFaultInjection',
    });
    return this;
  }

  /** Arms a rule; returns a view of how many requests it failed so far. */
  arm(rule: FaultRule): { injected(): number } {
    const armed = { ...rule, left: rule.times, injected: 0 };
    this.#rules.push(armed);
    return { injected: () => armed.injected };
  }

  /** The fault clears: every rule is disarmed. */
  clear(): void {
    for (const rule of this.#rules) rule.left = 0;
  }
}

async function inject(
  fault: AwsFault,
  service: string,
  send: () => Promise<DeserializeHandlerOutput<MetadataBearer>>,
): Promise<DeserializeHandlerOutput<MetadataBearer>> {
  switch (fault) {
    case 'throttling':
      return errorAnswer(
        400,
        service === 'DynamoDB'
          ? 'com.amazonaws.dynamodb.v20120810#ThrottlingException'
          : 'ThrottlingException',
        'Rate exceeded',
      );
    case 'provisioned_throughput':
      return errorAnswer(
        400,
        'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
        'The level of configured provisioned throughput for the table was exceeded.',
      );
    case 'server_error':
      return errorAnswer(500, INTERNAL_ERROR[service] ?? 'InternalFailure', 'Internal server error');
    case 'conditional_conflict':
      return errorAnswer(
        400,
        'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException',
        'The conditional request failed',
      );
    case 'access_denied':
      return errorAnswer(
        400,
        'AccessDeniedException',
        'User is not authorized to perform this action on this resource',
      );
    case 'invalid_ciphertext':
      return errorAnswer(400, 'InvalidCiphertextException', 'The ciphertext is invalid');
    case 'timeout':
      throw socketTimeout();
    case 'timeout_after_applied':
      await send();
      throw socketTimeout();
    case 'unavailable':
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), {
        code: 'ECONNREFUSED',
        errno: -111,
        syscall: 'connect',
      });
  }
}

/** What `@smithy/node-http-handler` rejects with when its socket timeout fires. */
function socketTimeout(): Error {
  return Object.assign(new Error('Connection timed out after 2000 ms'), { name: 'TimeoutError' });
}

function errorAnswer(
  statusCode: number,
  type: string,
  message: string,
): Promise<DeserializeHandlerOutput<MetadataBearer>> {
  const body = JSON.stringify({ __type: type, message });
  return Promise.resolve({
    // The shape of `HttpResponse` from `@smithy/protocol-http`, which checks it structurally.
    response: {
      statusCode,
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'content-length': String(Buffer.byteLength(body)),
        'x-amzn-requestid': 'FAULTINJECTED0000000000000000000000000000000000',
      },
      body: new Uint8Array(Buffer.from(body)),
    },
    output: { $metadata: {} },
  });
}
