import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSimulator, startSimulator } from '#local/simulator/index.ts';
import { launchChromium } from '../../support/browser.ts';
import { CLIENT_ID, REDIRECT_URI } from './support.ts';

let simulator: RunningSimulator;
let browser: Browser;

beforeAll(async () => {
  simulator = await startSimulator();
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await simulator?.close();
});

/** Opens the authorization page with the callback answered in the browser, so nothing need listen there. */
async function openAuthorizePage() {
  const page = await browser.newPage();
  await page.route(`${REDIRECT_URI}?**`, (route) =>
    route.fulfill({ contentType: 'text/plain', body: 'callback' }),
  );
  const query = new URLSearchParams({
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
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
    await page.waitForURL(`${REDIRECT_URI}?**`);

    const query = new URL(page.url()).searchParams;
    expect(query.get('code')).toEqual(expect.any(String));
    expect(query.get('state')).toBe('browser-state');
    expect(query.get('profileId')).toBe('16550002');
    await page.close();
  });

  it('lands on the callback with access_denied when the person denies', async () => {
    const page = await openAuthorizePage();

    await page.getByRole('button', { name: 'Deny' }).click();
    await page.waitForURL(`${REDIRECT_URI}?**`);

    const query = new URL(page.url()).searchParams;
    expect(query.get('error')).toBe('access_denied');
    expect(query.get('state')).toBe('browser-state');
    await page.close();
  });
});
