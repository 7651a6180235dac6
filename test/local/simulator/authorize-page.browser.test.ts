import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSimulator, startSimulator } from '#local/simulator/index.ts';
import { launchChromium } from '../../support/browser.ts';
import { CLIENT_ID } from './support.ts';

let simulator: RunningSimulator;
let browser: Browser;
let callbackServer: Server;
let redirectUri: string;

beforeAll(async () => {
  // The callback is a real listener: redirects into a route the browser fulfils itself are not
  // intercepted by every Chromium build.
  callbackServer = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/plain' }).end('callback');
  });
  await new Promise<void>((resolve) => callbackServer.listen(0, '127.0.0.1', resolve));
  redirectUri = `http://127.0.0.1:${(callbackServer.address() as AddressInfo).port}/oauth/callback`;
  simulator = await startSimulator({ redirectUri: redirectUri });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await simulator?.close();
  await new Promise((resolve) => callbackServer?.close(resolve));
});

/** Opens the authorization page. */
async function openAuthorizePage() {
  const page = await browser.newPage();
  const query = new URLSearchParams({
    client_id: CLIENT_ID,
    redirect_uri: redirectUri,
    state: 'browser-state',
  });
  await page.goto(`${simulator.authorizeUrl}?${query}`);
  return page;
}

// A browser on a busy two-core machine can take a while.
describe('the authorization page in a headless browser', { timeout: 60_000 }, () => {
  it('lands on the callback with a code for the profile the person picked', async () => {
    const page = await openAuthorizePage();

    await page.getByLabel(/Morgan Trading Ltd/).check();
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL(`${redirectUri}?**`);

    const query = new URL(page.url()).searchParams;
    expect(query.get('code')).toEqual(expect.any(String));
    expect(query.get('state')).toBe('browser-state');
    expect(query.get('profileId')).toBe('16550002');
    await page.close();
  });

  it('lands on the callback with access_denied when the person denies', async () => {
    const page = await openAuthorizePage();

    await page.getByRole('button', { name: 'Deny' }).click();
    await page.waitForURL(`${redirectUri}?**`);

    const query = new URL(page.url()).searchParams;
    expect(query.get('error')).toBe('access_denied');
    expect(query.get('state')).toBe('browser-state');
    await page.close();
  });
});
