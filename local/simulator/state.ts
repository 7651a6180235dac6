import { noteSecret } from '../leak-watch.ts';
import { SimulatorClock } from './clock.ts';
import { FaultPlan } from './faults.ts';
import type { SimulatorConfig } from './options.ts';
import { RateLimiter } from './rate-limit.ts';
import { clientSecretOnStart, readStateFile, StateFileWriter, snapshotState } from './state-file.ts';
import { StatsCounter } from './stats.ts';
import { TokenStore } from './token-store.ts';
import { UserDirectory } from './users.ts';

/** Everything one simulator knows; shared by its listeners and its control interface. */
export interface SimulatorState {
  readonly config: SimulatorConfig;
  readonly clock: SimulatorClock;
  /** The registered client; the secret changes through `POST /__control/client-secret`. */
  readonly client: { id: string; secret: string };
  readonly users: UserDirectory;
  readonly tokens: TokenStore;
  readonly stats: StatsCounter;
  readonly faults: FaultPlan;
  readonly rateLimiter: RateLimiter;
  /** Timers of delayed answers, cleared on close so nothing keeps the process alive. */
  readonly timers: Set<NodeJS.Timeout>;
  /** Saves the state when `config.stateFile` is set. */
  readonly stateFile: StateFileWriter | undefined;
}

/**
 * The simulator's state from resolved options: what `config.stateFile` holds when it exists, a fresh
 * state otherwise. Throws `SimulatorStateFileError` for a file it cannot use.
 */
export function createSimulatorState(config: SimulatorConfig): SimulatorState {
  const saved = config.stateFile === undefined ? undefined : readStateFile(config.stateFile);
  const clock = new SimulatorClock(config.now, saved?.clockOffsetMs);
  noteSecret('client_secret', config.clientSecret);
  const state: SimulatorState = {
    config,
    clock,
    client: { id: config.clientId, secret: clientSecretOnStart(saved, config.clientSecret) },
    users: new UserDirectory(clock, saved?.users),
    tokens: new TokenStore(config, clock, saved?.tokens),
    stats: new StatsCounter(),
    faults: new FaultPlan(clock),
    rateLimiter: new RateLimiter(config.rateLimit, clock),
    timers: new Set(),
    stateFile:
      config.stateFile === undefined
        ? undefined
        : new StateFileWriter(config.stateFile, () => snapshotState(state)),
  };
  return state;
}

/** Resolves after `ms` on a timer that `close()` can cancel. */
export function pause(state: SimulatorState, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      state.timers.delete(timer);
      resolve();
    }, ms);
    state.timers.add(timer);
  });
}
