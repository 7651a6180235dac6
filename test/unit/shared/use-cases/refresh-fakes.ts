import { vi } from 'vitest';
import { CallerPolicy } from '#shared/domain/caller-policy.ts';
import { TokenDecryptionError } from '#shared/domain/errors.ts';
import type { ConnectionRecord, ConnectionStatus, GrantType, RecordKey } from '#shared/domain/records.ts';
import { logger, metrics } from '#shared/observability.ts';
import type {
  BrokerEvents,
  ConnectedEvent,
  DisconnectedEvent,
  ReauthorizationRequiredEvent,
  RecoveredEvent,
} from '#shared/ports/events.ts';
import type { CipherContext, TokenCipher } from '#shared/ports/token-cipher.ts';
import type {
  TokenGrant,
  WiseCallOptions,
  WiseOAuth,
  WiseProfile,
  WiseUser,
} from '#shared/ports/wise-oauth.ts';
import type { SweepDeps } from '#shared/use-cases/refresh-due.ts';
import type { VendDeps } from '#shared/use-cases/vend-token.ts';
import { WiseInvalidTokenError, WiseRateLimitedError } from '#shared/wise/errors.ts';
import { InMemoryTokenStore } from '../../../support/in-memory-store.ts';

/** 2026-01-01T00:00:00Z: every unit test starts here. */
export const T0 = Date.UTC(2026, 0, 1);
export const HOUR = 3_600_000;
/** Wise's access-token lifetime. */
export const TTL = 12 * HOUR;

export const PAYMENTS = 'arn:aws:iam::111122223333:role/payments';
export const PAYMENTS_SESSION = 'arn:aws:sts::111122223333:assumed-role/payments/session-1';
export const STRANGER = 'arn:aws:iam::111122223333:role/stranger';

export class FakeClock {
  #now: number;

  constructor(start = T0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  advance(ms: number): void {
    this.#now += ms;
  }
}

/**
 * Encrypts by obscuring the plaintext with its context and a counter (so no two ciphertexts are equal, as
 * with KMS); decrypting under another context fails with `TokenDecryptionError`, as KMS does.
 */
export class FakeCipher implements TokenCipher {
  #count = 0;

  async encrypt(plaintext: string, context: CipherContext): Promise<Uint8Array> {
    const text = JSON.stringify({ c: contextId(context), p: plaintext, n: ++this.#count });
    return Uint8Array.from(Buffer.from(text, 'utf8'), (byte) => byte ^ 0x5a);
  }

  async decrypt(ciphertext: Uint8Array, context: CipherContext): Promise<string> {
    const text = Buffer.from(Uint8Array.from(ciphertext, (byte) => byte ^ 0x5a)).toString('utf8');
    const parsed = JSON.parse(text) as { c: string; p: string };
    if (parsed.c !== contextId(context)) {
      throw new TokenDecryptionError('A stored ciphertext does not belong to this record.');
    }
    return parsed.p;
  }
}

function contextId(context: CipherContext): string {
  const record =
    context.record.kind === 'connection' ? `connection:${context.record.connectionId}` : 'client';
  return `${record}/${context.kind}`;
}

type Scripted = Error | { [K in keyof TokenGrant]?: TokenGrant[K] | undefined };
type ScriptedMethod = 'refresh' | 'clientCredentials' | 'registrationCodeGrant';

/**
 * Plays Wise: every grant issues `access-N` (and, for user grants, `refresh-N` when rotating, else the same
 * refresh token) living {@link TTL}; scripted answers (an error to throw, or fields to override) come first.
 */
export class FakeWise implements WiseOAuth {
  readonly calls: Array<{ method: string; refreshToken?: string; options?: WiseCallOptions }> = [];
  rotateRefreshTokens = false;
  readonly #clock: FakeClock;
  readonly #scripts: Record<ScriptedMethod, Scripted[]> = {
    refresh: [],
    clientCredentials: [],
    registrationCodeGrant: [],
  };
  #issued = 0;

  constructor(clock: FakeClock) {
    this.#clock = clock;
  }

  /** The next answers of one grant, in order. */
  script(method: ScriptedMethod, ...answers: Scripted[]): void {
    this.#scripts[method].push(...answers);
  }

  count(method: string): number {
    return this.calls.filter((call) => call.method === method).length;
  }

  async authorizationUrl(): Promise<string> {
    return 'https://wise.example/oauth/authorize/';
  }

  async clientCredentials(options?: WiseCallOptions): Promise<TokenGrant> {
    this.calls.push({ method: 'clientCredentials', ...(options ? { options } : {}) });
    return this.#answer('clientCredentials', undefined, options);
  }

  async exchangeCode(): Promise<TokenGrant> {
    throw new Error('not used by the refresh protocol');
  }

  async refresh(params: { refreshToken: string }, options?: WiseCallOptions): Promise<TokenGrant> {
    this.calls.push({
      method: 'refresh',
      refreshToken: params.refreshToken,
      ...(options ? { options } : {}),
    });
    return this.#answer('refresh', params.refreshToken, options);
  }

  async registrationCodeGrant(
    params: { email: string; registrationCode: string },
    options?: WiseCallOptions,
  ): Promise<TokenGrant> {
    this.calls.push({ method: 'registrationCodeGrant', ...(options ? { options } : {}) });
    if (params.registrationCode !== REGISTRATION_CODE || params.email !== EMAIL) {
      throw new Error('the fake Wise got the wrong registration code or e-mail');
    }
    return this.#answer('registrationCodeGrant', 'refresh-from-registration', options);
  }

  async signUpWithRegistrationCode(): Promise<void> {}

  /**
   * What `GET /v1/me` says of any token: `dead` (401, the default: the callers of these tests met a 401),
   * `alive`, or an error to throw.
   */
  tokenCheck: 'dead' | 'alive' | Error = 'dead';

  async getCurrentUser(accessToken: string, options?: WiseCallOptions): Promise<WiseUser> {
    this.calls.push({ method: 'getCurrentUser', ...(options ? { options } : {}) });
    if (this.tokenCheck === 'alive') return { id: 1 };
    if (this.tokenCheck instanceof Error) throw this.tokenCheck;
    throw new WiseInvalidTokenError(`Wise refused the access token (${accessToken.length} characters).`, {
      status: 401,
      wiseError: 'invalid_token',
    });
  }

  async listProfiles(): Promise<WiseProfile[]> {
    return [];
  }

  /** A scripted 429 is heard by `onRateLimited` first, as the real client tells it. */
  async #answer(
    method: ScriptedMethod,
    refreshToken: string | undefined,
    options: WiseCallOptions | undefined,
  ): Promise<TokenGrant> {
    const scripted = this.#scripts[method].shift();
    if (scripted instanceof WiseRateLimitedError) {
      options?.onRateLimited?.({ retryAfterSeconds: scripted.retryAfterSeconds });
    }
    if (scripted instanceof Error) throw scripted;
    const n = ++this.#issued;
    const grant: TokenGrant = {
      accessToken: `access-${n}`,
      tokenType: 'bearer',
      expiresAt: this.#clock.now() + TTL,
      scope: 'transfers',
      traceId: `trace-${n}`,
    };
    if (refreshToken !== undefined) {
      grant.refreshToken =
        this.rotateRefreshTokens || method === 'registrationCodeGrant' ? `refresh-${n}` : refreshToken;
    }
    const answer: Record<string, unknown> = { ...grant, ...scripted };
    for (const [field, value] of Object.entries(answer)) if (value === undefined) delete answer[field];
    return answer as unknown as TokenGrant;
  }
}

export class RecordingEvents implements BrokerEvents {
  /** The reauthorization events. */
  readonly published: ReauthorizationRequiredEvent[] = [];
  readonly connectedEvents: ConnectedEvent[] = [];
  readonly recoveredEvents: RecoveredEvent[] = [];
  readonly disconnectedEvents: DisconnectedEvent[] = [];

  async reauthorizationRequired(event: ReauthorizationRequiredEvent): Promise<void> {
    this.published.push(event);
  }

  async connected(event: ConnectedEvent): Promise<void> {
    this.connectedEvents.push(event);
  }

  async recovered(event: RecoveredEvent): Promise<void> {
    this.recoveredEvents.push(event);
  }

  async disconnected(event: DisconnectedEvent): Promise<void> {
    this.disconnectedEvents.push(event);
  }
}

export const EMAIL = 'user@example.com';
export const REGISTRATION_CODE = 'registration-code-0123456789abcdefghijklmnop';

/** Everything a refresh, a sweep and a vend need, with fakes; `sleep` only counts its calls. */
export function fakeBroker(
  options: { leaseSeconds?: number; concurrency?: number; random?: () => number } = {},
) {
  const clock = new FakeClock();
  const store = new InMemoryTokenStore();
  const cipher = new FakeCipher();
  const wise = new FakeWise(clock);
  const events = new RecordingEvents();
  const sleeps: number[] = [];
  const deps: VendDeps & SweepDeps = {
    config: {
      refresh: {
        fraction: 0.8,
        leaseSeconds: options.leaseSeconds ?? 120,
        concurrency: options.concurrency ?? 4,
        sweepSeconds: 60,
        tokenCallsPerMinute: 1000,
        atRiskShare: 0.1,
      },
    },
    store,
    cipher,
    wise,
    events,
    clock,
    random: options.random ?? (() => 0),
    instanceId: 'instance-1',
    policy: new CallerPolicy([
      { principal: 'arn:aws:iam::111122223333:role/payments', use: ['acme-*'], clientToken: true },
    ]),
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  };
  return { deps, clock, store, cipher, wise, events, sleeps };
}

export interface SeedConnection {
  connectionId?: string;
  status?: ConnectionStatus;
  grant?: GrantType;
  accessToken?: string;
  refreshToken?: string;
  /** When the stored token was issued; its expiry is `lifetimeMs` later. Default `clock.now()`. */
  issuedAt?: number;
  /** How long the stored token lives. Default {@link TTL}. */
  lifetimeMs?: number;
  /** Default: 80 % of the lifetime after `issuedAt`. */
  nextRefreshAt?: number;
  generation?: number;
  failureCount?: number;
  withRegistrationCode?: boolean;
  profileId?: number;
}

/** Stores an active connection whose secrets are encrypted with the fake cipher. */
export async function seedConnection(
  broker: Pick<ReturnType<typeof fakeBroker>, 'store' | 'cipher' | 'clock'>,
  seed: SeedConnection = {},
): Promise<ConnectionRecord> {
  const connectionId = seed.connectionId ?? 'acme-1';
  const key: RecordKey = { kind: 'connection', connectionId };
  const issuedAt = seed.issuedAt ?? broker.clock.now();
  const lifetime = seed.lifetimeMs ?? TTL;
  const record: ConnectionRecord = {
    connectionId,
    status: seed.status ?? 'active',
    grant: seed.grant ?? 'authorization_code',
    accessToken: await broker.cipher.encrypt(seed.accessToken ?? 'access-stored', {
      record: key,
      kind: 'access_token',
    }),
    accessTokenExpiresAt: issuedAt + lifetime,
    refreshToken: await broker.cipher.encrypt(seed.refreshToken ?? 'refresh-stored', {
      record: key,
      kind: 'refresh_token',
    }),
    scope: 'transfers',
    generation: seed.generation ?? 1,
    version: 1,
    nextRefreshAt: seed.nextRefreshAt ?? issuedAt + 0.8 * lifetime,
    failureCount: seed.failureCount ?? 0,
    createdAt: issuedAt,
    updatedAt: issuedAt,
    profileId: seed.profileId ?? 42,
  };
  if (seed.withRegistrationCode) {
    record.grant = 'registration_code';
    record.email = EMAIL;
    record.registrationCode = await broker.cipher.encrypt(REGISTRATION_CODE, {
      record: key,
      kind: 'registration_code',
    });
  }
  broker.store.seedConnection(record);
  return record;
}

/** Decrypts one of a stored record's secrets with the fake cipher. */
export function reveal(
  cipher: FakeCipher,
  key: RecordKey,
  kind: 'access_token' | 'refresh_token',
  ciphertext: Uint8Array | undefined,
): Promise<string> {
  if (!ciphertext) throw new Error(`no ${kind} stored`);
  return cipher.decrypt(ciphertext, { record: key, kind });
}

/**
 * Silences the logger and the metrics for one test file (call in `beforeEach`, restore with
 * `vi.restoreAllMocks()`); the spies let a test assert what was logged and counted.
 */
export function silenceObservability() {
  const addMetric = vi.spyOn(metrics, 'addMetric').mockImplementation(() => metrics);
  const logged = (['debug', 'info', 'warn', 'error'] as const).map((level) =>
    vi.spyOn(logger, level).mockImplementation(() => {}),
  );
  return { addMetric, logged };
}
