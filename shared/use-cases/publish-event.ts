import { logger } from '#shared/observability.ts';
import type { BrokerEvents } from '#shared/ports/events.ts';

/**
 * Publishes the event of a change that is already stored. The change stands whatever EventBridge does, so a
 * failed publish (after the SDK's own retries) is logged as an error, with what the event would have said,
 * and does not fail the request or the refresh.
 */
export async function publishStoredChange(
  events: BrokerEvents,
  kind: Exclude<keyof BrokerEvents, 'reauthorizationRequired'>,
  connectionId: string,
  publish: (events: BrokerEvents) => Promise<void>,
): Promise<void> {
  try {
    await publish(events);
  } catch (error) {
    logger.error('The connection event was not published; the change it reports is stored', {
      connectionId,
      event: kind,
      error: error instanceof Error ? error.name : 'Error',
    });
  }
}
