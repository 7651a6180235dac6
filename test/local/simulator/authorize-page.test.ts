import { afterEach, describe, expect, it } from 'vitest';
import { type RunningSimulator, type SimulatorOptions, startSimulator } from '#local/simulator/index.ts';
import { CLIENT_ID, control, FORM, postToken, REDIRECT_URI } from './support.ts';

let simulator: RunningSimulator | undefined;
async function start(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  simulator = await startSimulator(options);
  return simulator;
}
afterEach(async () => {
  await simulator?.close();
  simulator = undefined;
});

function pageUrl(base: string, params: Record<string, string>): string {
  return `${base}?${new URLSearchParams(params)}`;
}

function submit(sim: RunningSimulator, fields: Record<string, string>) {
  return fetch(sim.authorizeUrl, {
    method: 'POST',
    headers: { 'content-type': FORM },
    body: new URLSearchParams(fields),
    redirect: 'manual',
  });
}

const request = { client_id: CLIENT_ID, redirect_uri: REDIRECT_URI, state: 'st-1' };

describe('GET /oauth/authorize/', () => {
  it('shows the users and their profiles with Approve and Deny buttons', async () => {
    const sim = await start();

    const response = await fetch(pageUrl(sim.authorizeUrl, request));
    const html = await response.text();

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(html).toContain('alex.morgan@example.com');
    expect(html).toContain('Morgan Trading Ltd');
    expect(html).toMatch(/<button[^>]*id="approve"[^>]*>Approve<\/button>/);
    expect(html).toMatch(/<button[^>]*id="deny"[^>]*>Deny<\/button>/);
    expect(html).toMatch(
      /<input type="radio" id="account-5550001-16550002" name="account" value="5550001:16550002">/,
    );
  });

  it('is also served without the trailing slash', async () => {
    const sim = await start();

    const response = await fetch(pageUrl(`${sim.url}/oauth/authorize`, request));

    expect(response.status).toBe(200);
    expect(await response.text()).toContain('action="/oauth/authorize"');
  });

  it('accepts the response_type=code some clients add', async () => {
    const sim = await start();

    const response = await fetch(pageUrl(sim.authorizeUrl, { ...request, response_type: 'code' }));

    expect(response.status).toBe(200);
  });

  it('lists users added through the control interface', async () => {
    const sim = await start();
    await control(sim, 'users', { email: 'sam.lee@example.com', fullName: 'Sam Lee' });

    const html = await (await fetch(pageUrl(sim.authorizeUrl, request))).text();

    expect(html).toContain('sam.lee@example.com');
  });

  it('escapes what it shows', async () => {
    const sim = await start();
    await control(sim, 'users', { email: 'odd@example.com', fullName: '<script>alert(1)</script>' });

    const html = await (await fetch(pageUrl(sim.authorizeUrl, request))).text();

    expect(html).not.toContain('<script>');
    expect(html).toContain('&#60;script&#62;');
  });

  it('shows a 400 error page, never a redirect, for an unknown client_id', async () => {
    const sim = await start();

    const response = await fetch(pageUrl(sim.authorizeUrl, { ...request, client_id: 'someone-else' }), {
      redirect: 'manual',
    });

    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(await response.text()).toContain('No application with client_id');
  });

  it('shows a 400 error page for a redirect_uri that differs in any byte, its query included', async () => {
    const sim = await start();
    const variants = [
      `${REDIRECT_URI}/`,
      `${REDIRECT_URI}?x=1`,
      REDIRECT_URI.replace('127.0.0.1', 'localhost'),
    ];

    const statuses = await Promise.all(
      variants.map(async (redirectUri) => {
        const response = await fetch(pageUrl(sim.authorizeUrl, { ...request, redirect_uri: redirectUri }), {
          redirect: 'manual',
        });
        return [response.status, response.headers.get('location')];
      }),
    );

    expect(statuses).toEqual(variants.map(() => [400, null]));
  });
});

describe('POST /oauth/authorize/', () => {
  it('redirects an approval with 303 to the redirect URI with code, state and profileId', async () => {
    const sim = await start();

    const response = await submit(sim, { ...request, account: '5550001:16550002', decision: 'approve' });

    expect(response.status).toBe(303);
    const location = response.headers.get('location') ?? '';
    expect(location.startsWith(`${REDIRECT_URI}?code=`)).toBe(true);
    const query = new URL(location).searchParams;
    expect([...query.keys()]).toEqual(['code', 'state', 'profileId']);
    expect(query.get('state')).toBe('st-1');
    expect(query.get('profileId')).toBe('16550002');
  });

  it('issues a code that the token endpoint exchanges', async () => {
    const sim = await start();
    const response = await submit(sim, { ...request, account: '5550001:16550001', decision: 'approve' });
    const code = new URL(response.headers.get('location') ?? '').searchParams.get('code') ?? '';

    const answer = await postToken(sim, {
      grant_type: 'authorization_code',
      client_id: CLIENT_ID,
      code,
      redirect_uri: REDIRECT_URI,
    });

    expect(answer.status).toBe(200);
  });

  it('redirects a denial with error=access_denied, a description and the state', async () => {
    const sim = await start();

    const response = await submit(sim, { ...request, account: '5550001:16550001', decision: 'deny' });

    expect(response.status).toBe(303);
    const query = new URL(response.headers.get('location') ?? '').searchParams;
    expect(query.get('error')).toBe('access_denied');
    expect(query.get('error_description')).toEqual(expect.any(String));
    expect(query.get('state')).toBe('st-1');
    expect(query.has('code')).toBe(false);
  });

  it('keeps a registered redirect URI with its own query intact and adds to it', async () => {
    const redirectUri = 'https://partner.example/callback?tenant=eu';
    const sim = await start({ redirectUri });

    const response = await submit(sim, {
      client_id: CLIENT_ID,
      redirect_uri: redirectUri,
      state: 's',
      account: '5550001:16550001',
      decision: 'approve',
    });

    expect(response.headers.get('location')).toMatch(
      /^https:\/\/partner\.example\/callback\?tenant=eu&code=/,
    );
  });

  it('refuses a tampered redirect_uri with an error page', async () => {
    const sim = await start();

    const response = await submit(sim, {
      ...request,
      redirect_uri: 'https://attacker.example/cb',
      account: '5550001:16550001',
      decision: 'approve',
    });

    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
  });

  it('refuses a profile that is not the chosen user’s', async () => {
    const sim = await start();

    const response = await submit(sim, { ...request, account: '5550001:99', decision: 'approve' });

    expect(response.status).toBe(400);
    expect(await response.text()).toContain('has no profile 99');
  });
});
