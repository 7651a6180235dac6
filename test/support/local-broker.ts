import type { LocalBroker } from '#local/local-broker.ts';

/** What a browser went through: the start URL's cookie, Wise's answer, and the broker's callback. */
export interface BrowserJourney {
  /** The `name=value` of the binding cookie the start URL set. */
  cookie: string;
  /** Where Wise sent the browser back (the callback URL with its query). */
  callbackUrl: string;
  /** The broker's answer to the callback, not followed. */
  callback: Response;
}

/**
 * Does what a person's browser does: opens a connect session's start URL (keeping the cookie it sets),
 * approves on the simulator's authorization page as the simulator's first user (or `userId`), then follows
 * the redirect to the broker's callback with the cookie.
 */
export async function approveAtSimulator(
  broker: LocalBroker,
  startUrl: string,
  options: { userId?: number } = {},
): Promise<BrowserJourney> {
  if (!broker.simulator) throw new Error('The local broker runs without its Wise simulator.');
  const simulator = broker.simulator.url;
  const start = await fetch(startUrl, { redirect: 'manual' });
  const cookie = start.headers.getSetCookie()[0]?.split(';')[0];
  const authorizeUrl = start.headers.get('location');
  if (start.status !== 303 || cookie === undefined || authorizeUrl === null) {
    throw new Error(`The start URL answered ${start.status} without a cookie and a redirect.`);
  }
  const query = new URL(authorizeUrl).searchParams;
  const users = (await (await fetch(`${simulator}/__control/users`)).json()) as Array<{ id: number }>;
  const answer = await fetch(`${simulator}/__control/authorize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      clientId: query.get('client_id'),
      redirectUri: query.get('redirect_uri'),
      state: query.get('state'),
      userId: options.userId ?? users[0]?.id,
      decision: 'approve',
      ...(query.has('code_challenge')
        ? {
            codeChallenge: query.get('code_challenge'),
            codeChallengeMethod: query.get('code_challenge_method'),
          }
        : {}),
    }),
  });
  const { location } = (await answer.json()) as { location: string };
  const callback = await fetch(location, { headers: { cookie }, redirect: 'manual' });
  return { cookie, callbackUrl: location, callback };
}

/**
 * Makes Wise (the simulator at `simulatorUrl`) refuse one access token from now on, its refresh token
 * untouched: what a caller's 401 means when the token really is dead.
 */
export async function endAccessTokenAtWise(simulatorUrl: string, accessToken: string): Promise<void> {
  const answer = await fetch(`${simulatorUrl}/__control/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ accessToken }),
  });
  const body = (await answer.json()) as { revoked?: { accessTokens?: number } };
  if (body.revoked?.accessTokens !== 1) throw new Error('The simulator did not hold that access token live.');
}

export { authorizeElsewhere, type ElsewhereConnection } from '#local/simulator/authorize-elsewhere.ts';
