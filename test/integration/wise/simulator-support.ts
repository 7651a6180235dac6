import { startSimulator } from '#local/simulator/index.ts';
import type { WiseCredentials, WiseCredentialsProvider } from '#shared/ports/wise-oauth.ts';
import { WiseError } from '#shared/wise/errors.ts';
import { WiseOAuthClient, type WiseOAuthClientOptions } from '#shared/wise/wise-oauth-client.ts';

export const CLIENT_ID = 'broker-test-client';
export const CLIENT_SECRET = 'broker-test-secret-0001';
export const REDIRECT_URI = 'http://127.0.0.1:3000/oauth/callback?tenant=acme';

export type Simulator = Awaited<ReturnType<typeof startSimulator>>;
type SimulatorOptions = NonNullable<Parameters<typeof startSimulator>[0]>;

/** A simulator registered with the test client. */
export function startTestSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  return startSimulator({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUri: REDIRECT_URI,
    ...options,
  });
}

/** Calls a control route and returns its JSON (or undefined for 204); fails the test on an error status. */
export async function control(simulator: Simulator, path: string, body?: unknown): Promise<unknown> {
  const init: RequestInit =
    body === undefined
      ? { method: 'GET' }
      : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
  const response = await fetch(`${simulator.url}/__control/${path}`, init);
  const text = await response.text();
  if (!response.ok) throw new Error(`control ${path} answered ${response.status}: ${text}`);
  return text === '' ? undefined : JSON.parse(text);
}

/** The id of the simulator's default user. */
export async function defaultUserId(simulator: Simulator): Promise<number> {
  const users = (await control(simulator, 'users')) as Array<{ id: number }>;
  const first = users[0];
  if (first === undefined) throw new Error('the simulator has no users');
  return first.id;
}

/** Has the user approve on the authorization page and returns the code from the redirect. */
export async function approve(simulator: Simulator, userId: number, state = 'state-1'): Promise<string> {
  const { location } = (await control(simulator, 'authorize', {
    clientId: CLIENT_ID,
    redirectUri: REDIRECT_URI,
    state,
    userId,
    decision: 'approve',
  })) as { location: string };
  const code = new URL(location).searchParams.get('code');
  if (code === null) throw new Error('the authorization redirect carries no code');
  return code;
}

/**
 * Credentials as a Secrets Manager cache would serve them: `stored` is what the secret holds now, and a
 * plain `get()` returns what was cached at the first call until `forceFresh` re-reads it.
 */
export function cachedCredentials(initial: WiseCredentials) {
  let stored = initial;
  let cached: WiseCredentials | undefined;
  const calls: Array<{ forceFresh?: boolean } | undefined> = [];
  const provider: WiseCredentialsProvider = {
    get: async (options) => {
      calls.push(options);
      if (cached === undefined || options?.forceFresh) cached = stored;
      return cached;
    },
  };
  return {
    provider,
    calls,
    store: (next: WiseCredentials) => {
      stored = next;
    },
  };
}

/** A client of the simulator whose back-off sleeps are recorded instead of waited. */
export function clientFor(simulator: Simulator, overrides: Partial<WiseOAuthClientOptions> = {}) {
  const sleeps: number[] = [];
  const client = new WiseOAuthClient({
    apiUrl: simulator.url,
    authorizeUrl: simulator.authorizeUrl,
    redirectUri: REDIRECT_URI,
    credentials: cachedCredentials({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }).provider,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...overrides,
  });
  return { client, sleeps };
}

/** The WiseError a promise rejects with; fails the test when it resolves or rejects with anything else. */
export async function wiseFailure(promise: Promise<unknown>): Promise<WiseError> {
  const outcome = await promise.then(
    () => new Error('expected a WiseError, but the call succeeded'),
    (thrown: unknown) => thrown,
  );
  if (!(outcome instanceof WiseError)) throw outcome;
  return outcome;
}
