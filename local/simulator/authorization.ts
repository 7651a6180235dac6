import { noteSecret } from '../leak-watch.ts';
import { withQuery } from './http.ts';
import type { SimulatorState } from './state.ts';

/** A user's answer on the authorization page. */
export interface AuthorizationDecision {
  clientId: string;
  redirectUri: string;
  state?: string | undefined;
  /** Who approves; not needed to deny. */
  userId?: number | undefined;
  /** Which of the user's profiles; the first one when omitted. */
  profileId?: number | undefined;
  decision: 'approve' | 'deny';
  /** The authorization request's PKCE parameters; used only when the simulator honours PKCE. */
  codeChallenge?: string | undefined;
  codeChallengeMethod?: string | undefined;
}

/** Where the browser goes next, or why the request cannot be answered with a redirect. */
export type AuthorizationOutcome = { ok: true; location: string } | { ok: false; message: string };

/**
 * Why an authorization request must not redirect anywhere: an unknown client, or a redirect URI that is
 * not byte for byte the registered one. `undefined` when it is acceptable.
 */
export function rejectAuthorizationRequest(
  state: SimulatorState,
  clientId: string | null | undefined,
  redirectUri: string | null | undefined,
): string | undefined {
  if (!clientId) return 'The request names no client_id.';
  if (clientId !== state.client.id) return `No application with client_id "${clientId}" is registered.`;
  if (redirectUri !== state.config.redirectUri) {
    return 'The redirect_uri does not match the one registered for this application.';
  }
  return undefined;
}

/** Approves (issuing a single-use code) or denies, and says where Wise would send the browser. */
export function decideAuthorization(
  state: SimulatorState,
  decision: AuthorizationDecision,
): AuthorizationOutcome {
  noteSecret('state', decision.state);
  const rejection = rejectAuthorizationRequest(state, decision.clientId, decision.redirectUri);
  if (rejection) return { ok: false, message: rejection };
  if (decision.decision === 'deny') {
    const location = withQuery(decision.redirectUri, {
      error: 'access_denied',
      error_description: 'The user denied access to the application.',
      state: decision.state,
    });
    return { ok: true, location };
  }
  if (decision.userId === undefined) return { ok: false, message: 'Name the user who approves (userId).' };
  const user = state.users.find(decision.userId);
  if (!user) return { ok: false, message: `No user ${decision.userId} exists.` };
  const profile =
    decision.profileId === undefined
      ? user.profiles[0]
      : user.profiles.find((candidate) => candidate.id === decision.profileId);
  if (!profile) {
    const which = decision.profileId === undefined ? 'to connect' : String(decision.profileId);
    return { ok: false, message: `User ${user.id} has no profile ${which}.` };
  }
  let codeChallenge: string | undefined;
  if (state.config.pkce && decision.codeChallenge !== undefined) {
    if (decision.codeChallengeMethod !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(decision.codeChallenge)) {
      return {
        ok: false,
        message:
          'code_challenge must be an S256 challenge (43 base64url characters) with code_challenge_method=S256.',
      };
    }
    codeChallenge = decision.codeChallenge;
  }
  const code = state.tokens.issueCode(user.id, decision.redirectUri, codeChallenge);
  const location = withQuery(decision.redirectUri, {
    code,
    state: decision.state,
    profileId: String(profile.id),
  });
  return { ok: true, location };
}
