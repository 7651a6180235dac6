import { expect } from 'vitest';
import { REAUTHORIZATION_REQUIRED_DETAIL_TYPE } from '#shared/adapters/eventbridge-events.ts';
import type { ConnectionRecord } from '#shared/domain/records.ts';
import type { TokenStore } from '#shared/ports/token-store.ts';
import type { WiseOAuth } from '#shared/ports/wise-oauth.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import type { BrokerHarness } from '../../support/broker.ts';
import { openStored } from '../../support/fake-envelope.ts';
import { instanceRuntime, refreshRoutes, type VendBody, wiseAccepts } from '../lifecycle/refresh-support.ts';

/**
 * A point in a flow where one call stops until the test lets it go: `reached` resolves when the call
 * arrives, and the call goes on only after `open()`. Calls that arrive after `open()` pass at once.
 */
export class Gate {
  readonly #arrived = Promise.withResolvers<void>();
  readonly #opened = Promise.withResolvers<void>();
  #passes = 0;

  /** Resolves when the first call arrived at the gate. */
  get reached(): Promise<void> {
    return this.#arrived.promise;
  }

  /** How many calls arrived at the gate. */
  get passes(): number {
    return this.#passes;
  }

  /** Called by the flow: waits until the gate is open. */
  async pass(): Promise<void> {
    this.#passes += 1;
    this.#arrived.resolve();
    await this.#opened.promise;
  }

  open(): void {
    this.#opened.resolve();
  }
}

/**
 * A barrier for `count` calls: each `arrive()` waits until `count` calls arrived; `done` resolves then.
 * `void arrive()` only counts.
 */
export function barrier(count: number): { arrive(): Promise<void>; done: Promise<void> } {
  const all = Promise.withResolvers<void>();
  let arrived = 0;
  return {
    arrive: async () => {
      arrived += 1;
      if (arrived >= count) all.resolve();
      await all.promise;
    },
    done: all.promise,
  };
}

/**
 * A port with some methods replaced; every other method is the real one, bound to it. Each replacement
 * receives the real method.
 */
export function portWith<Port extends object>(
  port: Port,
  replacements: { [Name in keyof Port]?: (real: Port[Name]) => Port[Name] },
): Port {
  const replaced = new Map<PropertyKey, unknown>();
  for (const [name, replace] of Object.entries(replacements) as Array<[keyof Port, unknown]>) {
    const real = (port[name] as (...args: unknown[]) => unknown).bind(port);
    replaced.set(name, (replace as (real: unknown) => unknown)(real));
  }
  return new Proxy(port, {
    get(target, property) {
      if (replaced.has(property)) return replaced.get(property);
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Where a refresh (or a grant) can be held: before Wise is asked, or after Wise answered and before the write. */
export interface WisePauses {
  beforeRefresh?: Gate;
  afterRefresh?: Gate;
  /** After Wise exchanged an authorization code, before the callback stores the connection. */
  afterExchange?: Gate;
  /** Receives the access token of every refresh Wise answered. */
  refreshedTokens?: string[];
}

/** Where a test holds the refresh it races against, with Wise rotating refresh tokens or not. */
export const HELD_REFRESHES = [
  { pause: 'before Wise is asked', at: 'beforeRefresh', rotateRefreshTokens: false },
  { pause: 'after Wise answered, before the write', at: 'afterRefresh', rotateRefreshTokens: false },
  { pause: 'after Wise answered, before the write', at: 'afterRefresh', rotateRefreshTokens: true },
] as const;

/** The Wise port with the given pauses around its real calls to the simulator. */
export function pausingWise(wise: WiseOAuth, pauses: WisePauses): WiseOAuth {
  return portWith(wise, {
    refresh: (real) => async (params, options) => {
      await pauses.beforeRefresh?.pass();
      const grant = await real(params, options);
      pauses.refreshedTokens?.push(grant.accessToken);
      await pauses.afterRefresh?.pass();
      return grant;
    },
    exchangeCode: (real) => async (params, options) => {
      const grant = await real(params, options);
      await pauses.afterExchange?.pass();
      return grant;
    },
  });
}

/**
 * The store of every simulated instance in a test, which tells when a lease was given back (a refresh
 * stored, failed or released): what a vend waiting for another instance's refresh waits for, instead of
 * sleeping. `settled` stays resolved once resolved; `reset()` arms it again for the next refresh.
 */
export function observedStore(store: TokenStore) {
  let settled = Promise.withResolvers<void>();
  const settles =
    <Args extends unknown[], Result>(real: (...args: Args) => Promise<Result>) =>
    async (...args: Args): Promise<Result> => {
      try {
        return await real(...args);
      } finally {
        settled.resolve();
      }
    };
  const observed = portWith(store, {
    completeRefresh: settles,
    failRefresh: settles,
    releaseLease: settles,
  });
  return {
    store: observed,
    /** What a waiting vend sleeps on: the next lease given back. */
    sleep: (): Promise<void> => settled.promise,
    reset: () => {
      settled = Promise.withResolvers<void>();
    },
  };
}

/**
 * `count` simulated Lambda instances, each with its own runtime (instance id), warm cache and routes, the
 * runtime parts given replaced. `waitForOther` is what a vend waiting for another instance's refresh
 * sleeps on; the sweep's pacer does not wait (the test's clock does not move by itself).
 */
export function instances(
  broker: BrokerHarness,
  count: number,
  options: {
    name?: string;
    parts?: (index: number) => Partial<Runtime>;
    waitForOther?: () => Promise<void>;
  } = {},
) {
  return Array.from({ length: count }, (_, index) => {
    const runtime = Object.assign(
      instanceRuntime(broker, `${options.name ?? 'instance'}-${index}`, options.parts?.(index) ?? {}),
      { sleep: async () => {} },
    );
    const { waitForOther } = options;
    return refreshRoutes(broker, {
      runtime: () => runtime,
      ...(waitForOther === undefined ? {} : { sleep: waitForOther }),
    });
  });
}

/**
 * The tokens each caller was handed, in the order it received them: a caller asks again only after its
 * previous answer came, as a partner service does.
 */
export class CallerLog {
  readonly #received = new Map<string, VendBody[]>();

  record(caller: string, body: VendBody): void {
    const list = this.#received.get(caller) ?? [];
    list.push(body);
    this.#received.set(caller, list);
  }

  /** Every token handed out, to any caller. */
  all(): VendBody[] {
    return [...this.#received.values()].flat();
  }

  /** The last token each caller holds. */
  latest(): VendBody[] {
    return [...this.#received.values()].map((list) => list[list.length - 1] as VendBody);
  }

  /**
   * Asserts that no caller was handed a token older than one it already had: per caller, the generation
   * and the expiry never go down.
   */
  expectNeverOlder(): void {
    for (const [caller, list] of this.#received) {
      for (let index = 1; index < list.length; index++) {
        const before = list[index - 1] as VendBody;
        const after = list[index] as VendBody;
        expect(after.generation, `${caller}'s token ${index}`).toBeGreaterThanOrEqual(before.generation);
        expect(Date.parse(after.expiresAt), `${caller}'s token ${index}`).toBeGreaterThanOrEqual(
          Date.parse(before.expiresAt),
        );
      }
    }
  }
}

/** The plaintext access token a stored connection holds. */
export async function storedAccessToken(
  broker: BrokerHarness,
  connection: ConnectionRecord | undefined,
): Promise<string | undefined> {
  if (!connection?.accessToken || !connection.dataKey) return undefined;
  return openStored(
    broker.runtime.cipher,
    { kind: 'connection', connectionId: connection.connectionId },
    connection,
    'access_token',
  );
}

/** Asserts the connection is active and its stored access token is one Wise accepts; returns the token. */
export async function expectLiveConnection(broker: BrokerHarness, connectionId: string): Promise<string> {
  const stored = await broker.runtime.store.getConnection(connectionId);
  expect(stored?.status).toBe('active');
  expect(stored?.lease).toBeUndefined();
  const accessToken = await storedAccessToken(broker, stored);
  expect(accessToken).toBeDefined();
  await expect(wiseAccepts(broker, accessToken ?? '')).resolves.toBe(true);
  return accessToken ?? '';
}

/** Refresh-token grants the simulator issued so far. */
export function refreshGrants(broker: BrokerHarness): number {
  return broker.simulator.stats().grants.refresh_token;
}

/** Refresh-token requests the simulator answered without a token. */
export function failedRefreshGrants(broker: BrokerHarness): number {
  return broker.simulator.stats().failedGrants.refresh_token;
}

/** The "Connection Reauthorization Required" events published so far, as their details. */
export function reauthorizationEvents(
  broker: BrokerHarness,
): Array<{ connectionId: string; reason: string }> {
  return broker.aws.recordedEvents
    .filter((event) => event.detailType === REAUTHORIZATION_REQUIRED_DETAIL_TYPE)
    .map((event) => JSON.parse(event.detail ?? '{}'));
}
