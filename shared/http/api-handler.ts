import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { flushMetrics, logger } from '#shared/observability.ts';
import { errorToResponse } from './responses.ts';

export type ApiEvent = APIGatewayProxyEventV2;

/** How long API Gateway waits for the function before it answers 504 itself. */
export const API_GATEWAY_TIMEOUT_MS = 29_000;

/** When a request's work must be over: the function's timeout or API Gateway's, whichever comes first. */
export function requestEndsAt(now: number, context: Pick<Context, 'getRemainingTimeInMillis'>): number {
  return now + Math.min(context.getRemainingTimeInMillis(), API_GATEWAY_TIMEOUT_MS);
}
export type ApiResult = APIGatewayProxyResultV2;

/** Maps every error to the broker's response, in one place; logs the unexpected ones. */
export function httpErrors(): middy.MiddlewareObj<ApiEvent, ApiResult> {
  return {
    onError: async (request) => {
      const { error } = request;
      const response = errorToResponse(error);
      if (response.statusCode !== undefined && response.statusCode < 500) {
        logger.info('Request refused', { error: error?.name, reason: error?.message });
      } else {
        logger.error('Request failed', error as Error);
      }
      request.response = response;
    },
  };
}

/**
 * Wraps an API route's function with the house middleware: Lambda context in the logs, metrics flushed,
 * errors mapped to responses (last, so it sees every error).
 */
export function apiHandler(run: (event: ApiEvent, context: Context) => Promise<ApiResult>) {
  return middy<ApiEvent, ApiResult>()
    .use(injectLambdaContext(logger, { clearState: true }))
    .use(flushMetrics())
    .use(httpErrors())
    .handler(run);
}
