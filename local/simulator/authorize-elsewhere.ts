/** The tokens another system holds for a Wise user it connected itself, and that user. */
export interface ElsewhereConnection {
  accessToken: string;
  refreshToken: string;
  user: { id: number; profiles: Array<{ id: number; type: string }> };
}

/**
 * Makes a new user at the simulator and authorizes it for `client` as another system would (the code
 * exchanged with Basic auth at the token endpoint), outside the broker: what an import hands over.
 * Throws when the simulator refuses a step.
 */
export async function authorizeElsewhere(
  simulatorUrl: string,
  client: { id: string; secret: string },
  redirectUri: string,
  email: string,
): Promise<ElsewhereConnection> {
  const post = (path: string, body: unknown) =>
    fetch(`${simulatorUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const created = await post('/__control/users', {
    email,
    profiles: [{ type: 'PERSONAL' }, { type: 'BUSINESS' }],
  });
  if (!created.ok) throw new Error(`the simulator refused to make user ${email}: ${created.status}`);
  const user = (await created.json()) as ElsewhereConnection['user'];
  const approved = await post('/__control/authorize', {
    clientId: client.id,
    redirectUri,
    state: `elsewhere-${crypto.randomUUID()}`,
    userId: user.id,
    decision: 'approve',
  });
  if (!approved.ok) throw new Error(`the simulator refused the approval: ${await approved.text()}`);
  const code = new URL(((await approved.json()) as { location: string }).location).searchParams.get('code');
  const granted = await fetch(`${simulatorUrl}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: client.id,
      code: code ?? '',
      redirect_uri: redirectUri,
    }),
  });
  // Its body holds the tokens: only the status is said.
  if (!granted.ok) throw new Error(`the simulator's token endpoint answered ${granted.status} to the code`);
  const body = (await granted.json()) as { access_token: string; refresh_token: string };
  return { accessToken: body.access_token, refreshToken: body.refresh_token, user };
}
