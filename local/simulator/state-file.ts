import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import type { SimulatorState } from './state.ts';
import { TokenSnapshot } from './token-store.ts';
import { SimulatedUser } from './users.ts';

/** How long after a change the state is saved, so that a burst of grants costs one write. */
const SAVE_DELAY_MS = 100;

/**
 * What a simulator keeps across a restart, checked when it is read back. Codes, pending faults,
 * rate-limit windows and stats start afresh: losing them costs at most a user approving once more.
 */
export const SavedSimulatorState = z
  .object({
    version: z.literal(1),
    client: z.object({
      /** The secret the options named when this was saved; a different one now means it was reconfigured. */
      configuredSecret: z.string().min(1),
      /** The secret in force, perhaps rotated through the control interface. */
      secret: z.string().min(1),
    }),
    clockOffsetMs: z.number().finite(),
    users: z.array(SimulatedUser),
    tokens: TokenSnapshot,
  })
  .superRefine((saved, context) => {
    const userIds = new Set<number>();
    for (const [index, user] of saved.users.entries()) {
      if (userIds.has(user.id)) {
        context.addIssue({ code: 'custom', path: ['users', index, 'id'], message: 'is a duplicate user id' });
      }
      userIds.add(user.id);
    }
    const owners = [
      ...saved.tokens.accessTokens.map(([, grant]) => (grant.kind === 'user' ? grant.userId : undefined)),
      ...saved.tokens.refreshTokens.map(([, record]) => record.userId),
    ];
    const unknown = owners.find((owner) => owner !== undefined && !userIds.has(owner));
    if (unknown !== undefined) {
      context.addIssue({
        code: 'custom',
        path: ['tokens'],
        message: `names user ${unknown}, who is not in users`,
      });
    }
  });
export type SavedSimulatorState = z.infer<typeof SavedSimulatorState>;

/** A state file that cannot be read or written; the message names the file and what to do. */
export class SimulatorStateFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SimulatorStateFileError';
  }
}

/** What the simulator knows now, in the shape of a state file. */
export function snapshotState(state: SimulatorState): SavedSimulatorState {
  return {
    version: 1,
    client: { configuredSecret: state.config.clientSecret, secret: state.client.secret },
    clockOffsetMs: state.clock.offsetMs,
    users: state.users.list(),
    tokens: state.tokens.snapshot(),
  };
}

/**
 * The client secret to start with: the saved one (which may have been rotated), unless the configured
 * secret changed since it was saved; then the configuration wins, as the broker will use it too.
 */
export function clientSecretOnStart(
  saved: SavedSimulatorState | undefined,
  configuredSecret: string,
): string {
  return saved && saved.client.configuredSecret === configuredSecret ? saved.client.secret : configuredSecret;
}

/** Reads a state file; `undefined` when there is none yet. */
export function readStateFile(path: string): SavedSimulatorState | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SimulatorStateFileError(
      `The Wise simulator cannot read its state file ${path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const afresh =
    'fix it, or delete it to start afresh (connections made with the old state will need authorizing again)';
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // No cause: JSON.parse quotes the text around the fault, and this text holds tokens.
    throw new SimulatorStateFileError(`The Wise simulator state file ${path} is not JSON; ${afresh}.`);
  }
  const parsed = SavedSimulatorState.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    throw new SimulatorStateFileError(
      `The Wise simulator state file ${path} does not hold a simulator state (${where}${issue?.message}); ${afresh}.`,
      { cause: parsed.error },
    );
  }
  return parsed.data;
}

/**
 * Keeps a state file in step with the simulator: `changed()` saves a little later, `close()` at once
 * and for the last time. A save that would write what the file already holds is skipped.
 */
export class StateFileWriter {
  readonly #path: string;
  readonly #snapshot: () => SavedSimulatorState;
  #timer: NodeJS.Timeout | undefined;
  #dirty = false;
  #closed = false;
  #written: string | undefined;

  constructor(path: string, snapshot: () => SavedSimulatorState) {
    this.#path = path;
    this.#snapshot = snapshot;
  }

  /** Something may have changed: save within {@link SAVE_DELAY_MS}. */
  changed(): void {
    if (this.#closed) return;
    this.#dirty = true;
    this.#timer ??= setTimeout(() => {
      try {
        this.#flush();
      } catch (error) {
        // Nobody awaits a timer; say so now, and let close() try again and fail loudly.
        process.emitWarning((error as Error).message);
      }
    }, SAVE_DELAY_MS);
  }

  /** Saves now if anything changed since the last save; throws {@link SimulatorStateFileError}. */
  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#dirty) return;
    const text = `${JSON.stringify(this.#snapshot(), null, 2)}\n`;
    if (text !== this.#written) writeAtomically(this.#path, text);
    this.#written = text;
    this.#dirty = false;
  }

  /**
   * Saves what is left to save and ignores changes from then on, so that a request still finishing on a
   * closed simulator cannot overwrite the file a new one has taken over.
   */
  close(): void {
    this.#closed = true;
    this.#flush();
  }
}

/** Write aside, then rename: a reader sees the old file or the new one, never half of one. */
function writeAtomically(path: string, text: string): void {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Owner only: the file holds live tokens and the client secret.
    writeFileSync(temporary, text, { mode: 0o600, flag: 'wx' });
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new SimulatorStateFileError(
      `The Wise simulator could not save its state to ${path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}
