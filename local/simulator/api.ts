import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { noteSecret } from '../leak-watch.ts';
import { bearerToken, parseJson, readBody, sendJson } from './http.ts';
import type { SimulatorState } from './state.ts';
import type { SimulatedUser } from './users.ts';
import { meJson, profilesJson, signupJson } from './wise-shapes.ts';

const SignupRequest = z.object({
  email: z.string().regex(/^[^@\s]+@[^@\s]+$/, 'must be an email address'),
  registrationCode: z.string().min(32, 'must be at least 32 characters long'),
  language: z.string().optional(),
});

/** `GET /v1/me`: the user behind a live user access token. */
export function handleMe(state: SimulatorState, req: IncomingMessage, res: ServerResponse): void {
  state.stats.apiCall();
  const user = userOf(state, req);
  if (user) sendJson(res, 200, meJson(user));
  else invalidToken(req, res);
}

/** `GET /v2/profiles`: the profiles of the user behind a live user access token. */
export function handleProfiles(state: SimulatorState, req: IncomingMessage, res: ServerResponse): void {
  state.stats.apiCall();
  const user = userOf(state, req);
  if (user) sendJson(res, 200, profilesJson(user));
  else invalidToken(req, res);
}

/**
 * `POST /v1/user/signup/registration_code` with a client-credentials token: creates a user that the
 * `registration_code` grant can then connect.
 */
export async function handleSignup(
  state: SimulatorState,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  state.stats.apiCall();
  const grant = state.tokens.liveAccess(bearerToken(req));
  if (!grant) return invalidToken(req, res);
  if (grant.kind !== 'client') {
    return sendJson(res, 403, { error: 'access_denied', error_description: 'Access is denied' });
  }
  const parsed = SignupRequest.safeParse(parseJson((await readBody(req)) ?? ''));
  if (!parsed.success) {
    const errors = parsed.error.issues.map((issue) => {
      const path = issue.path.join('.');
      return { code: 'INVALID', message: `${path || 'body'} ${issue.message}`, path };
    });
    return sendJson(res, 400, { errors });
  }
  const { email, registrationCode, language } = parsed.data;
  noteSecret('registration_code', registrationCode);
  const user = state.users.add({
    email,
    registration: { code: registrationCode, language: language ?? 'en' },
  });
  if (!user) {
    const error = {
      code: 'NOT_UNIQUE',
      message: 'A Wise user with this email already exists.',
      path: 'email',
    };
    return sendJson(res, 409, { errors: [error] });
  }
  sendJson(res, 200, signupJson(user));
}

function userOf(state: SimulatorState, req: IncomingMessage): SimulatedUser | undefined {
  const grant = state.tokens.liveAccess(bearerToken(req));
  return grant?.kind === 'user' ? state.users.find(grant.userId) : undefined;
}

/** Wise's answer to a dead or wrong token; like Wise, it echoes the token. */
function invalidToken(req: IncomingMessage, res: ServerResponse): void {
  sendJson(res, 401, { error: 'invalid_token', error_description: bearerToken(req) });
}
