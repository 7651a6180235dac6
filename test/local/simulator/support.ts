import type { RunningSimulator } from '#local/simulator/index.ts';

export const CLIENT_ID = 'broker-local-client';
export const CLIENT_SECRET = 'broker-local-secret';
export const REDIRECT_URI = 'http://127.0.0.1:3000/oauth/callback';
export const FORM = 'application/x-www-form-urlencoded';

/** A token-endpoint answer, success or error. */
export interface TokenJson {
  access_token?: string;
  token_type?: string;
  refresh_token?: string;
  expires_in?: number;
  expires_at?: string;
  refresh_token_expires_in?: number;
  refresh_token_expires_at?: string;
  scope?: string;
  created_at?: string;
  error?: string;
  error_description?: string;
}

export interface Answer<Body> {
  status: number;
  headers: Headers;
  body: Body;
}

/** A clock the test moves by hand. */
export function fakeClock(start = Date.parse('2026-03-02T09:00:00.000Z')) {
  let now = start;
  return {
    now: () => now,
    advance(seconds: number) {
      now += seconds * 1000;
    },
  };
}

export function basic(id = CLIENT_ID, secret = CLIENT_SECRET): string {
  return `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
}

/** `POST /oauth/token` with a form body and, unless `auth` is null, the default client's Basic header. */
export async function postToken(
  simulator: Pick<RunningSimulator, 'url'>,
  fields: Record<string, string>,
  options: { auth?: string | null; path?: string; headers?: Record<string, string> } = {},
): Promise<Answer<TokenJson>> {
  const auth = options.auth === undefined ? basic() : options.auth;
  const response = await fetch(`${simulator.url}${options.path ?? '/oauth/token'}`, {
    method: 'POST',
    headers: { 'content-type': FORM, ...(auth && { authorization: auth }), ...options.headers },
    body: new URLSearchParams(fields),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as TokenJson };
}

/** A control call: GET without a body, POST with one. */
export async function control<Body = unknown>(
  simulator: Pick<RunningSimulator, 'url'>,
  path: string,
  body?: unknown,
): Promise<Answer<Body>> {
  const response = await fetch(`${simulator.url}/__control/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    ...(body !== undefined && {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: (text ? JSON.parse(text) : undefined) as Body,
  };
}

export interface ControlUser {
  id: number;
  email: string;
  fullName: string;
  profiles: { id: number; type: 'PERSONAL' | 'BUSINESS'; fullName: string }[];
}

/** The default user's approval through the control interface; the code and profile it yields. */
export async function approve(
  simulator: Pick<RunningSimulator, 'url'>,
  userId?: number,
): Promise<{ code: string; profileId: string; userId: number }> {
  const id = userId ?? (await control<ControlUser[]>(simulator, 'users')).body[0]?.id;
  const { body } = await control<{ location: string }>(simulator, 'authorize', {
    clientId: CLIENT_ID,
    redirectUri: REDIRECT_URI,
    state: 'test-state',
    userId: id,
    decision: 'approve',
  });
  const query = new URL(body.location).searchParams;
  return { code: query.get('code') ?? '', profileId: query.get('profileId') ?? '', userId: Number(id) };
}

/** Approves and exchanges the code: a user token of the default user (or `userId`). */
export async function userToken(
  simulator: Pick<RunningSimulator, 'url'>,
  userId?: number,
): Promise<TokenJson> {
  const { code } = await approve(simulator, userId);
  const answer = await postToken(simulator, {
    grant_type: 'authorization_code',
    client_id: CLIENT_ID,
    code,
    redirect_uri: REDIRECT_URI,
  });
  if (answer.status !== 200) throw new Error(`code exchange answered ${answer.status}`);
  return answer.body;
}

export function refresh(simulator: Pick<RunningSimulator, 'url'>, refreshToken: string | undefined) {
  return postToken(simulator, { grant_type: 'refresh_token', refresh_token: refreshToken ?? '' });
}

/** `GET` an API route with a bearer token. */
export async function callApi<Body = unknown>(
  simulator: Pick<RunningSimulator, 'url'>,
  path: string,
  accessToken: string | undefined,
): Promise<Answer<Body>> {
  const response = await fetch(`${simulator.url}${path}`, {
    headers: accessToken === undefined ? {} : { authorization: `Bearer ${accessToken}` },
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Body };
}
