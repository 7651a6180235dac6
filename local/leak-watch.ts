/**
 * A process-wide tap for leak checks. The local stand-ins (the Wise simulator, the local gateway, local
 * KMS) say here which credentials they create or are given, and the gateway what it answers with an error
 * or a page; a watcher (the test suite's leak scan) checks every output it sees against every credential.
 * Without a watcher every call is a no-op. The watcher lives on `globalThis`, so every copy of this
 * module in a process reports to the same one.
 */

/** What a credential is, for counts and reports (the value itself is never reported). */
export type WatchedSecretKind =
  | 'access_token'
  | 'refresh_token'
  | 'authorization_code'
  | 'state'
  | 'completion_code'
  | 'browser_binding'
  | 'registration_code'
  | 'client_secret'
  | 'secret_access_key'
  | 'key_material';

export interface LeakWatcher {
  secret(kind: WatchedSecretKind, value: string): void;
  /**
   * Text someone other than the secret's owner may see: an error body or a page, and a redirect's
   * location (which may carry what OAuth sends there by design: the state to Wise's authorization page).
   */
  output(source: string, text: string, location?: string): void;
}

const WATCHER = Symbol.for('wise-token-broker.leak-watcher');

type WithWatcher = typeof globalThis & { [WATCHER]?: LeakWatcher };

/** Installs the process's watcher; returns what uninstalls it. */
export function watchLeaks(watcher: LeakWatcher): () => void {
  (globalThis as WithWatcher)[WATCHER] = watcher;
  return () => {
    if ((globalThis as WithWatcher)[WATCHER] === watcher) delete (globalThis as WithWatcher)[WATCHER];
  };
}

/** Tells the watcher, if any, of a credential created or received. */
export function noteSecret(kind: WatchedSecretKind, value: string | undefined): void {
  if (value !== undefined && value !== '') (globalThis as WithWatcher)[WATCHER]?.secret(kind, value);
}

/** Tells the watcher, if any, of an output to check: a body, and the location of a redirect. */
export function noteOutput(source: string, text: string, location?: string): void {
  (globalThis as WithWatcher)[WATCHER]?.output(source, text, location);
}
