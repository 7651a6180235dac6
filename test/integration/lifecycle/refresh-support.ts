import { afterEach } from 'vitest';
import { createRefreshHandler } from '#functions/refresh/handler.ts';
import { createTokensHandler } from '#functions/tokens/handler.ts';
import type { TokenStore } from '#shared/ports/token-store.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import type { SweepSummary } from '#shared/use-cases/refresh-due.ts';
import type { VendedToken } from '#shared/use-cases/vend-token.ts';
import {
  type BrokerHarness,
  type BrokerHarnessOptions,
  invoke,
  lambdaContext,
  PARTNER_SESSION_ARN,
  startBroker,
} from '../../support/broker.ts';

/** Wise's access-token lifetime as the simulator grants it by default (`expires_in` 43199). */
export const TOKEN_LIFETIME_MS = 43_199_000;

/** A vend's 200 body. */
export type VendBody = VendedToken;

/**
 * The `POST /tokens` and refresh-sweep handlers of one simulated Lambda instance: its own runtime source
 * (by default the harness's runtime) and its own warm cache; `sleep` replaces the real pause of a vend
 * waiting for another instance's refresh.
 */
export function refreshRoutes(
  broker: BrokerHarness,
  options: { runtime?: () => Runtime; sleep?: (ms: number) => Promise<void> } = {},
) {
  const runtime = options.runtime ?? (() => broker.runtime);
  const tokens = createTokensHandler(runtime, options.sleep === undefined ? {} : { sleep: options.sleep });
  const refresh = createRefreshHandler(runtime);

  const vend = (body: unknown, caller = PARTNER_SESSION_ARN) =>
    invoke(tokens, { method: 'POST', route: '/tokens', caller, body });

  /** A vend that must succeed; its body. */
  const vendOk = async (body: unknown): Promise<VendBody> => {
    const response = await vend(body);
    if (response.statusCode !== 200)
      throw new Error(`POST /tokens answered ${response.statusCode} ${response.body}`);
    return response.json as VendBody;
  };

  /** One tick of the EventBridge schedule. */
  const sweep = (): Promise<SweepSummary> =>
    refresh(
      { 'detail-type': 'Scheduled Event', time: new Date(broker.clock.now()).toISOString() },
      lambdaContext('broker-refresh'),
    );

  return { tokens, vend, vendOk, sweep };
}

/** Whether the simulator's `GET /v1/me` accepts an access token. */
export async function wiseAccepts(broker: BrokerHarness, accessToken: string): Promise<boolean> {
  const response = await fetch(`${broker.simulator.url}/v1/me`, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  await response.arrayBuffer();
  return response.status === 200;
}

/** A runtime like the harness's, as another Lambda instance would build it, with some parts replaced. */
export function instanceRuntime(broker: BrokerHarness, name: string, parts: Partial<Runtime> = {}): Runtime {
  return { ...broker.runtime, instanceId: name, ...parts };
}

/** The store with one method replaced; every other method is the real one. */
export function storeWith<Name extends keyof TokenStore>(
  store: TokenStore,
  name: Name,
  replacement: (real: TokenStore[Name]) => TokenStore[Name],
): TokenStore {
  const real = (store[name] as (...args: unknown[]) => unknown).bind(store) as TokenStore[Name];
  const replaced = replacement(real);
  return new Proxy(store, {
    get(target, property) {
      if (property === name) return replaced;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * Gives each test its own broker (simulator, table, local AWS and clock), closed after the test, with
 * `acme-1` connected: simulator faults, grant counters and the clock are then the test's alone.
 */
export function brokerPerTest() {
  let current: BrokerHarness | undefined;
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
  return async (options: BrokerHarnessOptions = {}) => {
    await current?.close();
    const broker = await startBroker(options);
    current = broker;
    const connection = await broker.connect('acme-1');
    return { broker, connection, routes: refreshRoutes(broker) };
  };
}
