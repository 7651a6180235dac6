import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyEventV2WithIAMAuthorizer,
  APIGatewayProxyResultV2,
  Context,
} from 'aws-lambda';

/** The HTTP methods the broker's routes use. */
export type GatewayMethod = 'GET' | 'POST' | 'DELETE';

/**
 * What a handler may return, as HTTP API (payload format 2.0) reads it: a structured result with a
 * `statusCode`, or any other JSON value, which becomes a 200 `application/json` response.
 */
export type GatewayResult = APIGatewayProxyResultV2<object>;

interface GatewayRouteBase {
  method: GatewayMethod;
  /** The route's path; `{name}` matches exactly one non-empty path segment, e.g. `/connections/{id}`. */
  path: string;
  /** The Lambda function name the handler sees in its context; derived from the route when absent. */
  functionName?: string;
  /** The function timeout behind `context.getRemainingTimeInMillis()`; 29 s (API Gateway's limit) by default. */
  timeoutSeconds?: number;
}

/** A route that only requests signed with SigV4 by one of the gateway's local credentials reach. */
export interface IamGatewayRoute extends GatewayRouteBase {
  auth: 'iam';
  handler: (event: APIGatewayProxyEventV2WithIAMAuthorizer, context: Context) => Promise<GatewayResult>;
}

/** A public route: no signature is checked and the event carries no authorizer. */
export interface PublicGatewayRoute extends GatewayRouteBase {
  auth: 'none';
  handler: (event: APIGatewayProxyEventV2, context: Context) => Promise<GatewayResult>;
}

/** One route of the local gateway and the Lambda handler behind it. */
export type GatewayRoute = IamGatewayRoute | PublicGatewayRoute;

/** A caller's access key pair and the IAM principal it stands for. */
export interface LocalCredential {
  accessKeyId: string;
  secretAccessKey: string;
  /** The IAM role or user ARN, e.g. `arn:aws:iam::111122223333:role/payments`. */
  principal: string;
  /**
   * Present for temporary credentials: requests must then carry this exact `X-Amz-Security-Token`.
   * Without it, a request that carries a security token is refused, as AWS refuses one on a long-term key.
   */
  sessionToken?: string;
  /** The session name in the assumed-role ARN reported for a role principal; `local` by default. */
  sessionName?: string;
}

/**
 * Where the gateway writes one line per request and each refusal, never a secret nor a query string.
 * A Powertools `Logger` fits.
 */
export interface GatewayLogger {
  info(message: string, attributes: Record<string, unknown>): void;
  warn(message: string, attributes: Record<string, unknown>): void;
  error(message: string, attributes: Record<string, unknown>): void;
}

/** How to start the local gateway. */
export interface GatewayOptions {
  /** The interface to listen on; `127.0.0.1` by default. */
  host?: string;
  /** The port; 0 (any free port) by default. */
  port?: number;
  /** The region requests must be signed for. */
  region: string;
  credentials: LocalCredential[];
  routes: GatewayRoute[];
  /** How far `X-Amz-Date` may be from the gateway's clock; 300 s by default, as in AWS. */
  maxClockSkewSeconds?: number;
  /** Larger request bodies get a 413; 64 KiB by default. */
  maxBodyBytes?: number;
  /** The gateway's clock in epoch milliseconds; `Date.now` by default. */
  now?: () => number;
  logger?: GatewayLogger;
  /** The account that owns the API, reported as `requestContext.accountId`; `000000000000` by default. */
  accountId?: string;
  /**
   * Also accept a signature computed over the path and query string exactly as sent, which is how
   * curl before 8.x signs (AWS's canonical form percent-encodes the path once more and sorts the query).
   * Only for paths without percent-escapes, so both forms name the same resource. True by default.
   */
  acceptAsSentCanonicalForm?: boolean;
  /** Told of every response the gateway sends, after it is sent (tests check them against the API document). */
  observe?: GatewayObserver;
}

/** One response as the gateway sent it. */
export interface GatewayExchange {
  method: string;
  /** The matched route's key, such as `GET /connections/{id}`; `-` when no route matched. */
  routeKey: string;
  status: number;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: Buffer;
}

/** Sees each response; whatever it throws is ignored. */
export type GatewayObserver = (exchange: GatewayExchange) => void;

/** A running gateway. */
export interface RunningGateway {
  /** The base URL, e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}
