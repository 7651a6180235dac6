import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { flushMetrics, logger } from '#shared/observability.ts';
import { composedAtInit } from '#shared/runtime/function-environment.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import { deployedRuntime } from '#shared/runtime/wise-parts.ts';
import { refreshDue, type SweepSummary } from '#shared/use-cases/refresh-due.ts';

/** The part of EventBridge's scheduled event the sweep reads; anything else in it is ignored. */
export interface ScheduledTick {
  time?: string;
  'detail-type'?: string;
}

/**
 * The refresh sweep, run by the EventBridge schedule: refreshes every record whose refresh is due and
 * returns the sweep's summary. The invocation's remaining time bounds the sweep.
 */
export function createRefreshHandler(runtime: () => Runtime) {
  return middy<ScheduledTick, SweepSummary, Error, Context>()
    .use(injectLambdaContext(logger, { clearState: true }))
    .use(flushMetrics())
    .handler(async (event, context) => {
      logger.info('Refresh sweep started', {
        scheduledAt: typeof event?.time === 'string' ? event.time : undefined,
      });
      return refreshDue(runtime(), { remainingTimeMs: () => context.getRemainingTimeInMillis() });
    });
}

/** This function's composition root: the token store, cipher, events and Wise client it uses. */
export const handler = createRefreshHandler(composedAtInit(deployedRuntime));
