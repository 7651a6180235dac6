import { vi } from 'vitest';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';
import { CallerPolicy } from '#shared/domain/caller-policy.ts';
import { TokenDecryptionError } from '#shared/domain/errors.ts';
import type { ConnectionRecord } from '#shared/domain/records.ts';
import type {
  CipherContext,
  RecordOpener,
  RecordSealer,
  SealBinding,
  TokenCipher,
} from '#shared/ports/token-cipher.ts';
import type { TokenGrant, WiseOAuth, WiseProfile, WiseUser } from '#shared/ports/wise-oauth.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import { fakeOpen, fakePrepare } from '../../../support/fake-envelope.ts';
import { InMemoryTokenStore } from '../../../support/in-memory-store.ts';
import { RecordingEvents } from './refresh-fakes.ts';

/** Fakes for the unit tests of connecting, completing, registering and administering connections. */

export const PARTNER = 'arn:aws:iam::111122223333:role/partner-app';
export const PARTNER_SESSION = 'arn:aws:sts::111122223333:assumed-role/partner-app/session-1';
export const ADMIN = 'arn:aws:iam::111122223333:role/broker-admin';
export const OTHER_ADMIN = 'arn:aws:iam::111122223333:role/other-admin';
export const STRANGER = 'arn:aws:iam::111122223333:role/stranger';
export const START = Date.parse('2026-11-26T10:00:00.000Z');

/**
 * A cipher whose ciphertext names its record and kind, so a mix-up shows in a test, and hides the
 * plaintext (each byte XORed) as KMS would. Decrypting under another context, or a ciphertext it did not
 * write, fails with `TokenDecryptionError`, as the KMS adapter does.
 */
export class FakeCipher implements TokenCipher {
  async encrypt(plaintext: string, context: CipherContext): Promise<Uint8Array> {
    return new TextEncoder().encode(
      `${label(context)}|${Buffer.from(obscure(Buffer.from(plaintext))).toString('base64')}`,
    );
  }

  async decrypt(ciphertext: Uint8Array, context: CipherContext): Promise<string> {
    const text = new TextDecoder().decode(ciphertext);
    const separator = text.lastIndexOf('|');
    if (separator < 0 || text.slice(0, separator) !== label(context)) {
      throw new TokenDecryptionError(`The ciphertext does not belong to ${label(context)}.`);
    }
    return Buffer.from(obscure(Buffer.from(text.slice(separator + 1), 'base64'))).toString();
  }

  prepare(binding: SealBinding): Promise<RecordSealer> {
    return fakePrepare(binding);
  }

  open(dataKey: Uint8Array, binding: SealBinding): Promise<RecordOpener> {
    return fakeOpen(dataKey, binding);
  }
}

function obscure(bytes: Uint8Array): Uint8Array {
  return Uint8Array.from(bytes, (byte) => byte ^ 0x5a);
}

function label(context: CipherContext): string {
  const { record } = context;
  const name =
    record.kind === 'connection'
      ? `connection:${record.connectionId}`
      : record.kind === 'listing'
        ? `listing:${record.principal}`
        : 'client';
  return `${name}:${context.kind}`;
}

/** A scripted Wise: every call is recorded; each method's behaviour can be replaced by a test. */
export class FakeWise implements WiseOAuth {
  readonly calls: Array<{ method: string; args: unknown[] }> = [];
  user: WiseUser = { id: 5550001, email: 'alex.morgan@example.com' };
  profiles: WiseProfile[] = [
    { id: 16550002, type: 'BUSINESS' },
    { id: 16550001, type: 'PERSONAL' },
  ];
  #issued = 0;
  #now: () => number;
  exchangeFailure: Error | undefined;
  grantFailure: Error | undefined;
  signupFailure: Error | undefined;
  /** Thrown by the next signups, one each, before `signupFailure` applies. */
  signupFailures: Error[] = [];

  constructor(now: () => number) {
    this.#now = now;
  }

  /** A fresh user token, 12 hours long, different on every call. */
  nextGrant(): TokenGrant {
    this.#issued += 1;
    return {
      accessToken: `access-token-${this.#issued}`,
      tokenType: 'bearer',
      expiresAt: this.#now() + 43_199_000,
      refreshToken: `refresh-token-${this.#issued}`,
      refreshTokenExpiresAt: this.#now() + 628_639_555_000,
      scope: 'transfers',
    };
  }

  async authorizationUrl(params: { state: string; codeChallenge?: string }): Promise<string> {
    this.calls.push({ method: 'authorizationUrl', args: [params] });
    return `https://wise.example/oauth/authorize/?client_id=c&state=${params.state}`;
  }

  async clientCredentials(): Promise<TokenGrant> {
    throw new Error('not scripted');
  }

  async exchangeCode(params: { code: string; codeVerifier?: string }): Promise<TokenGrant> {
    this.calls.push({ method: 'exchangeCode', args: [params] });
    if (this.exchangeFailure) throw this.exchangeFailure;
    return this.nextGrant();
  }

  async refresh(): Promise<TokenGrant> {
    throw new Error('not scripted');
  }

  async registrationCodeGrant(params: { email: string; registrationCode: string }): Promise<TokenGrant> {
    this.calls.push({ method: 'registrationCodeGrant', args: [params] });
    if (this.grantFailure) throw this.grantFailure;
    return this.nextGrant();
  }

  async signUpWithRegistrationCode(params: {
    email: string;
    registrationCode: string;
    language?: string;
    clientAccessToken: string;
  }): Promise<void> {
    this.calls.push({ method: 'signUpWithRegistrationCode', args: [params] });
    const next = this.signupFailures.shift();
    if (next) throw next;
    if (this.signupFailure) throw this.signupFailure;
  }

  async getCurrentUser(accessToken: string): Promise<WiseUser> {
    this.calls.push({ method: 'getCurrentUser', args: [accessToken] });
    return this.user;
  }

  async listProfiles(accessToken: string): Promise<WiseProfile[]> {
    this.calls.push({ method: 'listProfiles', args: [accessToken] });
    return this.profiles;
  }

  called(method: string): number {
    return this.calls.filter((call) => call.method === method).length;
  }
}

export interface FakeRuntime extends Runtime {
  store: InMemoryTokenStore;
  wise: FakeWise;
  cipher: FakeCipher;
  events: RecordingEvents;
  /** Moves the shared clock. */
  advance(ms: number): void;
}

/** A runtime of fakes: the partner may use `acme-*`, the admin administers `acme-*`, the other admin `beta-*`. */
export function fakeRuntime(
  options: { returnUrls?: string[]; connectWithoutConfirmation?: boolean; pkce?: boolean } = {},
): FakeRuntime {
  let now = START;
  const clock = { now: () => now };
  const config = parseBrokerConfig(
    {
      stage: 'test',
      wise: { pkce: options.pkce ?? false },
      connectWithoutConfirmation: options.connectWithoutConfirmation ?? true,
      returnUrls: options.returnUrls ?? [
        'https://app.example.com/wise/done',
        'https://app.example.com/return/',
      ],
      callers: [
        { principal: PARTNER, use: ['acme-*'] },
        { principal: ADMIN, administer: ['acme-*'] },
        { principal: OTHER_ADMIN, administer: ['beta-*'] },
      ],
    },
    'the unit test',
  );
  const wise = new FakeWise(clock.now);
  return {
    config,
    redirectUri: 'https://broker.example.com/oauth/callback',
    store: new InMemoryTokenStore(),
    cipher: new FakeCipher(),
    wise,
    events: new RecordingEvents(),
    policy: new CallerPolicy(config.callers),
    clock,
    random: () => 0.5,
    instanceId: 'unit-test',
    audit: { record: () => {} },
    advance: (ms) => {
      now += ms;
    },
  };
}

/** A stored connection, as a grant would have left it. */
export function storedConnection(
  connectionId: string,
  overrides: Partial<ConnectionRecord> = {},
): ConnectionRecord {
  return {
    connectionId,
    status: 'active',
    grant: 'authorization_code',
    accessToken: new TextEncoder().encode('sealed'),
    accessTokenExpiresAt: START + 43_199_000,
    refreshToken: new TextEncoder().encode('sealed-refresh'),
    nextRefreshAt: START + 34_000_000,
    lastRefreshAt: START,
    profileId: 16550001,
    userId: 5550001,
    generation: 1,
    version: 1,
    failureCount: 0,
    createdAt: START,
    updatedAt: START,
    ...overrides,
  };
}

/** Records, in order, when the runtime makes a data key and when it calls the named Wise grant. */
export function recordPrepareAndGrant(
  runtime: FakeRuntime,
  grant: 'exchangeCode' | 'registrationCodeGrant',
): string[] {
  const order: string[] = [];
  const prepare = runtime.cipher.prepare.bind(runtime.cipher);
  vi.spyOn(runtime.cipher, 'prepare').mockImplementation(async (binding) => {
    order.push('prepare');
    return prepare(binding);
  });
  const call = (runtime.wise[grant] as (...args: unknown[]) => Promise<TokenGrant>).bind(runtime.wise);
  vi.spyOn(runtime.wise, grant).mockImplementation(async (...args: unknown[]) => {
    order.push('grant');
    return call(...args);
  });
  return order;
}
