import type { APIGatewayProxyEventV2WithIAMAuthorizer, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import {
  type GatewayResult,
  type IamGatewayRoute,
  type LocalCredential,
  startGateway,
} from '#local/gateway/index.ts';
import { BrokerClient } from '../../../client/index.ts';

export const region = 'eu-west-1';
export const caller: LocalCredential = {
  accessKeyId: 'AKIACLIENTTEST000001',
  secretAccessKey: 'local-secret-of-the-client-test-0000001',
  principal: 'arn:aws:iam::111122223333:role/payouts',
};
export const callerCredentials = { accessKeyId: caller.accessKeyId, secretAccessKey: caller.secretAccessKey };

/** A request the fake broker received. */
export interface Seen {
  /** The route as the broker defines it, without the stage a REST API serves it under. */
  routeKey: string;
  /** The path the request was sent to. */
  rawPath: string;
  pathParameters: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  body: unknown;
  userArn: string;
}

type Reply = (seen: Seen) => GatewayResult | Promise<GatewayResult>;

/** How long the fake broker's tokens live, and until when it promises to keep them. */
export const TOKEN_LIFETIME_MS = 60 * 60_000;
export const VALID_FOR_MS = 50 * 60_000;

/**
 * A stand-in for the broker behind the local gateway, playing the HTTP contract: `POST /tokens` vends
 * a token per target whose generation grows when the caller reports it rejected. Replies can be
 * replaced per route.
 */
export async function startFakeBroker(start = Date.parse('2026-11-26T12:00:00Z'), stagePath = '') {
  const clock = { now: start };
  const seen: Seen[] = [];
  const generations = new Map<string, number>();
  const replies = new Map<string, Reply>();

  const vend: Reply = ({ body }) => {
    const request = body as { connectionId?: string; kind?: string; rejectedGeneration?: number };
    const target = request.connectionId ?? request.kind ?? 'unknown';
    let generation = generations.get(target) ?? 1;
    if (request.rejectedGeneration === generation) generation += 1;
    generations.set(target, generation);
    return json(200, {
      accessToken: `token-${target}-${generation}`,
      tokenType: 'Bearer',
      expiresAt: new Date(clock.now + TOKEN_LIFETIME_MS).toISOString(),
      validUntil: new Date(clock.now + VALID_FOR_MS).toISOString(),
      generation,
      ...(request.connectionId ? { connectionId: request.connectionId } : {}),
    });
  };
  replies.set('POST /tokens', vend);

  const route = (method: IamGatewayRoute['method'], path: string): IamGatewayRoute => ({
    method,
    path: `${stagePath}${path}`,
    auth: 'iam',
    handler: async (event: APIGatewayProxyEventV2WithIAMAuthorizer) => {
      const routeKey = `${method} ${path}`;
      const request: Seen = {
        routeKey,
        rawPath: event.rawPath,
        pathParameters: event.pathParameters ?? {},
        query: event.queryStringParameters ?? {},
        body: event.body === undefined ? undefined : JSON.parse(event.body),
        userArn: event.requestContext.authorizer.iam.userArn,
      };
      seen.push(request);
      const reply = replies.get(routeKey);
      return reply ? reply(request) : json(500, { error: 'internal_error', message: 'No reply set.' });
    },
  });

  const gateway = await startGateway({
    region,
    credentials: [caller],
    now: () => clock.now,
    routes: [
      route('POST', '/tokens'),
      route('POST', '/connect-sessions'),
      route('POST', '/connections/{id}/completion'),
      route('POST', '/connections/{id}/registration-code'),
      route('GET', '/connections'),
      route('GET', '/connections/{id}'),
      route('DELETE', '/connections/{id}'),
    ],
  });

  return {
    url: gateway.url,
    clock,
    seen,
    /** The requests one route received. */
    requests: (routeKey: string) => seen.filter((request) => request.routeKey === routeKey),
    reply: (routeKey: string, reply: Reply) => replies.set(routeKey, reply),
    /** Back to the start: no requests seen, first generations, the default replies, the start time. */
    reset: () => {
      clock.now = start;
      seen.length = 0;
      generations.clear();
      replies.clear();
      replies.set('POST /tokens', vend);
    },
    close: () => gateway.close(),
  };
}

export type FakeBroker = Awaited<ReturnType<typeof startFakeBroker>>;

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}) {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  } satisfies APIGatewayProxyStructuredResultV2;
}

/**
 * Registers hooks that start one fake broker for the file (closed after it), and before each test reset
 * it and make a fresh client signed as `caller`, on the broker's clock. With `stagePath` the broker serves
 * its routes below it, as the private REST API serves them below its stage.
 */
export function useFakeBroker(baseUrlSuffix = '', stagePath = '') {
  const context = {} as { broker: FakeBroker; client: BrokerClient };
  beforeAll(async () => {
    context.broker = await startFakeBroker(undefined, stagePath);
  });
  afterAll(() => context.broker.close());
  beforeEach(() => {
    context.broker.reset();
    context.client = new BrokerClient({
      baseUrl: `${context.broker.url}${baseUrlSuffix}`,
      region,
      credentials: callerCredentials,
      now: () => context.broker.clock.now,
    });
  });
  return context;
}
