import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import {
  CONNECTION_EVENT_TYPES,
  type ConnectionEventKind,
  EVENT_SOURCE,
} from '#shared/domain/connection-events.ts';
import { BrokerError } from '#shared/domain/errors.ts';
import type {
  BrokerEvents,
  ConnectedEvent,
  DisconnectedEvent,
  ReauthorizationRequiredEvent,
  RecoveredEvent,
} from '#shared/ports/events.ts';
import { reportUnavailable } from './aws-unavailable.ts';

/** The `detail-type` of the event a partner's rule matches to ask its Wise user to authorize again. */
export const REAUTHORIZATION_REQUIRED_DETAIL_TYPE = CONNECTION_EVENT_TYPES.reauthorizationRequired;

/** What {@link EventBridgeEvents} is built from. */
export interface EventBridgeEventsOptions {
  /** A client built by the composition root (credentials, region or local endpoint already set). */
  client: EventBridgeClient;
  eventBusName: string;
  /** The events' `source`; `wise-token-broker` unless given. */
  source?: string;
}

/**
 * Publishes the broker's events on an EventBridge bus, each with the `detail-type` and `detail` of
 * `CONNECTION_EVENTS` in `connection-event-schemas.ts` (times as ISO 8601, absent values as `null`).
 */
export class EventBridgeEvents implements BrokerEvents {
  readonly #client: EventBridgeClient;
  readonly #eventBusName: string;
  readonly #source: string;

  constructor(options: EventBridgeEventsOptions) {
    reportUnavailable(options.client, 'EventBridge');
    this.#client = options.client;
    this.#eventBusName = options.eventBusName;
    this.#source = options.source ?? EVENT_SOURCE;
  }

  /** Detail: `{ connectionId, reason, replacedBy?, at }`. Throws when the event was not accepted. */
  reauthorizationRequired(event: ReauthorizationRequiredEvent): Promise<void> {
    return this.#put('reauthorizationRequired', event.connectionId, event.at, {
      connectionId: event.connectionId,
      reason: event.reason,
      ...(event.replacedBy === undefined ? {} : { replacedBy: event.replacedBy }),
    });
  }

  /** Detail: `{ connectionId, grant, imported, profileId, generation, previousStatus, at }`. */
  connected(event: ConnectedEvent): Promise<void> {
    return this.#put('connected', event.connectionId, event.at, {
      connectionId: event.connectionId,
      grant: event.grant,
      imported: event.imported,
      profileId: event.profileId ?? null,
      generation: event.generation,
      previousStatus: event.previousStatus ?? null,
    });
  }

  /** Detail: `{ connectionId, failedRefreshes, lastErrorCode, generation, at }`. */
  recovered(event: RecoveredEvent): Promise<void> {
    return this.#put('recovered', event.connectionId, event.at, {
      connectionId: event.connectionId,
      failedRefreshes: event.failedRefreshes,
      lastErrorCode: event.lastErrorCode ?? null,
      generation: event.generation,
    });
  }

  /** Detail: `{ connectionId, at }`. */
  disconnected(event: DisconnectedEvent): Promise<void> {
    return this.#put('disconnected', event.connectionId, event.at, { connectionId: event.connectionId });
  }

  async #put(
    kind: ConnectionEventKind,
    connectionId: string,
    atMs: number,
    detail: Record<string, unknown>,
  ): Promise<void> {
    const at = new Date(atMs);
    const detailType = CONNECTION_EVENT_TYPES[kind];
    const output = await this.#client.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: this.#eventBusName,
            Source: this.#source,
            DetailType: detailType,
            Time: at,
            Detail: JSON.stringify({ ...detail, at: at.toISOString() }),
          },
        ],
      }),
    );
    if ((output.FailedEntryCount ?? 0) > 0) {
      const entry = output.Entries?.find((candidate) => candidate.ErrorCode !== undefined);
      const why = entry ? `${entry.ErrorCode}: ${entry.ErrorMessage ?? 'no message'}` : 'no reason given';
      throw new BrokerError(
        `EventBridge bus "${this.#eventBusName}" did not accept the "${detailType}" event for connection "${connectionId}" (${why}).`,
      );
    }
  }
}
