import type { IncomingMessage, ServerResponse } from 'node:http';
import { noteSecret } from '../leak-watch.ts';
import type { Fault } from './faults.ts';
import { basicCredentials, formFields, readBody, sendJson } from './http.ts';
import { GRANT_TYPES } from './options.ts';
import { pause, type SimulatorState } from './state.ts';
import type { IssuedTokens } from './token-store.ts';

/** A token-endpoint answer before it is written. */
interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };

/**
 * `POST /oauth/token`: form bodies, HTTP Basic client authentication and Wise's four grants, after any
 * injected fault and the per-client rate limit.
 */
export async function handleTokenRequest(
  state: SimulatorState,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const body = await readBody(req);
  const form = body === undefined ? new URLSearchParams() : formFields(req, body);
  const grantType = GRANT_TYPES.find((type) => type === form.get('grant_type'));
  const fault = state.faults.take();
  if (fault?.delayMs) await pause(state, fault.delayMs);
  if (fault?.drop === true) {
    if (grantType) state.stats.grantFailed(grantType);
    req.socket.destroy();
    return;
  }
  if (fault?.drop === 'after-grant') {
    // Wise acted on the request (a refresh token rotated, a code consumed); only its answer is lost.
    const served = body === undefined ? undefined : answerGrant(state, req, form);
    if (grantType) {
      if (served?.status === 200) state.stats.grantServed(grantType);
      else state.stats.grantFailed(grantType);
    }
    state.stats.answerLost();
    req.socket.destroy();
    return;
  }
  const answer =
    fault?.status !== undefined && fault.status !== 200
      ? faultAnswer({ ...fault, status: fault.status })
      : body === undefined
        ? oauthError(413, 'invalid_request', 'The request body is larger than 64 KiB.')
        : answerGrant(state, req, form);
  if (grantType) {
    if (answer.status === 200) state.stats.grantServed(grantType);
    else state.stats.grantFailed(grantType);
  }
  sendJson(res, answer.status, answer.body, { ...NO_STORE, ...answer.headers });
}

function answerGrant(state: SimulatorState, req: IncomingMessage, form: URLSearchParams): Answer {
  const credentials = basicCredentials(req);
  const verdict = state.rateLimiter.check(credentials?.id ?? req.socket.remoteAddress ?? 'anonymous');
  if (verdict.limited) {
    state.stats.rateLimited();
    return rateLimited(verdict.retryAfterSeconds, verdict.limitedBy);
  }
  if (credentials?.id !== state.client.id || credentials.secret !== state.client.secret) {
    return invalidClient('Bad client credentials');
  }
  const grantType = form.get('grant_type');
  switch (grantType) {
    case null:
    case '':
      return oauthError(400, 'invalid_request', 'Missing grant type');
    case 'client_credentials':
      return { status: 200, body: tokenBody(state, state.tokens.mintClientToken()) };
    case 'authorization_code':
      return authorizationCodeGrant(state, form);
    case 'refresh_token':
      return refreshTokenGrant(state, form);
    case 'registration_code':
      return registrationCodeGrant(state, form);
    default:
      return oauthError(400, 'unsupported_grant_type', `Unsupported grant type: ${grantType}`);
  }
}

function authorizationCodeGrant(state: SimulatorState, form: URLSearchParams): Answer {
  const fields = requiredFields(form, ['client_id', 'code', 'redirect_uri']);
  if ('missing' in fields) return oauthError(400, 'invalid_request', `Missing ${fields.missing}`);
  if (fields.client_id !== state.client.id)
    return invalidClient('Given client ID does not match authenticated client');
  // Without PKCE honoured, a code_verifier is ignored, as by a server that does not know the parameter.
  const verifier = state.config.pkce ? (form.get('code_verifier') ?? undefined) : undefined;
  const userId = state.tokens.redeemCode(fields.code, fields.redirect_uri, verifier);
  if (userId === undefined) return invalidGrant(state);
  return { status: 200, body: tokenBody(state, state.tokens.grantUserTokens(userId)) };
}

function refreshTokenGrant(state: SimulatorState, form: URLSearchParams): Answer {
  const fields = requiredFields(form, ['refresh_token']);
  if ('missing' in fields) return oauthError(400, 'invalid_request', `Missing ${fields.missing}`);
  const issued = state.tokens.refresh(fields.refresh_token);
  return issued ? { status: 200, body: tokenBody(state, issued) } : invalidGrant(state);
}

function registrationCodeGrant(state: SimulatorState, form: URLSearchParams): Answer {
  const fields = requiredFields(form, ['client_id', 'email', 'registration_code']);
  if ('missing' in fields) return oauthError(400, 'invalid_request', `Missing ${fields.missing}`);
  noteSecret('registration_code', fields.registration_code);
  if (fields.client_id !== state.client.id)
    return invalidClient('Given client ID does not match authenticated client');
  const user = state.users.findByEmail(fields.email);
  const registration = user?.registration;
  if (!user || !registration || registration.reclaimed || registration.code !== fields.registration_code) {
    return invalidGrant(state);
  }
  return { status: 200, body: tokenBody(state, state.tokens.grantUserTokens(user.id)) };
}

/** Wise's token JSON: the refresh fields and `created_at` only for user tokens. */
function tokenBody(state: SimulatorState, issued: IssuedTokens): Record<string, unknown> {
  const { omitExpiresAt, accessTokenSeconds } = state.config;
  const body: Record<string, unknown> = { access_token: issued.accessToken, token_type: 'bearer' };
  if (issued.refresh) body.refresh_token = issued.refresh.token;
  body.expires_in = accessTokenSeconds;
  if (!omitExpiresAt) body.expires_at = new Date(issued.accessExpiresAt).toISOString();
  if (issued.refresh && !omitExpiresAt) {
    body.refresh_token_expires_in = Math.floor((issued.refresh.expiresAt - issued.createdAt) / 1000);
    body.refresh_token_expires_at = new Date(issued.refresh.expiresAt).toISOString();
  }
  body.scope = 'transfers';
  if (issued.refresh) body.created_at = new Date(issued.createdAt).toISOString();
  return body;
}

/** The named form fields, or the first one missing. */
function requiredFields<Name extends string>(
  form: URLSearchParams,
  names: Name[],
): Record<Name, string> | { missing: Name } {
  const fields = {} as Record<Name, string>;
  for (const name of names) {
    const value = form.get(name);
    if (!value) return { missing: name };
    fields[name] = value;
  }
  return fields;
}

function oauthError(
  status: number,
  error: string,
  description: string,
  headers?: Record<string, string>,
): Answer {
  return { status, body: { error, error_description: description }, ...(headers && { headers }) };
}

function invalidGrant(state: SimulatorState): Answer {
  return oauthError(state.config.invalidGrantStatus, 'invalid_grant', 'Invalid user credentials.');
}

function invalidClient(description: string): Answer {
  return oauthError(401, 'invalid_client', description, {
    'www-authenticate': 'Basic realm="oauth2/client"',
  });
}

function rateLimited(retryAfterSeconds: number, limitedBy: string): Answer {
  return oauthError(
    429,
    'too_many_requests',
    `Rate limit exceeded; retry after ${retryAfterSeconds} seconds.`,
    {
      'retry-after': String(retryAfterSeconds),
      'x-rate-limited-by': limitedBy,
    },
  );
}

function faultAnswer(fault: Fault & { status: number }): Answer {
  if (fault.status === 429) return rateLimited(fault.retryAfter ?? 1, 'per-second');
  const answer = oauthError(
    fault.status,
    fault.status >= 500 ? 'server_error' : 'simulated_fault',
    `Simulated failure with status ${fault.status}.`,
  );
  if (fault.retryAfter !== undefined) answer.headers = { 'retry-after': String(fault.retryAfter) };
  return answer;
}
