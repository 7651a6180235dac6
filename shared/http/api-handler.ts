import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { flushMetrics, logger } from '#shared/observability.ts';
import { errorToResponse, isClientError } from './responses.ts';

export type ApiEvent = APIGatewayProxyEventV2;
export type ApiResult = APIGatewayProxyResultV2;

/** Maps every error to the broker's response, in one place; logs the unexpected ones. */
export function httpErrors(): middy.MiddlewareObj<ApiEvent, ApiResult> {
  return {
    onError: async (request) => {
      const { error } = request;
      if (isClientError(error)) {
        logger.info('Request refused', { error: error?.name, reason: error?.message });
      } else {
        logger.error('Request failed', error as Error);
      }
      request.response = errorToResponse(error);
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
