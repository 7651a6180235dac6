import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { BrokerError } from '#shared/domain/errors.ts';
import type { BrokerEvents, ReauthorizationRequiredEvent } from '#shared/ports/events.ts';

/** The `detail-type` of the event a partner's rule matches to ask its Wise user to authorize again. */
export const REAUTHORIZATION_REQUIRED_DETAIL_TYPE = 'Connection Reauthorization Required';

/** What {@link EventBridgeEvents} is built from. */
export interface EventBridgeEventsOptions {
  /** A client built by the composition root (credentials, region or local endpoint already set). */
  client: EventBridgeClient;
  eventBusName: string;
  /** The events' `source`; `wise-token-broker` unless given. */
  source?: string;
}

/** Publishes the broker's events on an EventBridge bus. */
export class EventBridgeEvents implements BrokerEvents {
  readonly #client: EventBridgeClient;
  readonly #eventBusName: string;
  readonly #source: string;

  constructor(options: EventBridgeEventsOptions) {
    this.#client = options.client;
    this.#eventBusName = options.eventBusName;
    this.#source = options.source ?? 'wise-token-broker';
  }

  /** Detail: `{ connectionId, reason, at }` with `at` as an ISO 8601 time. Throws when the event was not accepted. */
  async reauthorizationRequired(event: ReauthorizationRequiredEvent): Promise<void> {
    const at = new Date(event.at);
    const output = await this.#client.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: this.#eventBusName,
            Source: this.#source,
            DetailType: REAUTHORIZATION_REQUIRED_DETAIL_TYPE,
            Time: at,
            Detail: JSON.stringify({
              connectionId: event.connectionId,
              reason: event.reason,
              at: at.toISOString(),
            }),
          },
        ],
      }),
    );
    if ((output.FailedEntryCount ?? 0) > 0) {
      const entry = output.Entries?.find((candidate) => candidate.ErrorCode !== undefined);
      const why = entry ? `${entry.ErrorCode}: ${entry.ErrorMessage ?? 'no message'}` : 'no reason given';
      throw new BrokerError(
        `EventBridge bus "${this.#eventBusName}" did not accept the reauthorization event for connection "${event.connectionId}" (${why}).`,
      );
    }
  }
}
