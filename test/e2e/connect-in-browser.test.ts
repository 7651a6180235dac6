import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalBroker } from '#local/local-broker.ts';
import { BrokerClient } from '../../client/index.ts';
import { launchChromium } from '../support/browser.ts';
import { CALLER_KEYS, CALLER_PRINCIPAL, startCallerBroker } from '../support/caller-broker.ts';

const SCREENSHOTS = join('test-results', 'screenshots');

let broker: LocalBroker;
let browser: Browser;
let partnerApp: Server;
let partnerAppUrl: string;
let client: BrokerClient;

/** A stand-in for the partner's own web app, where the return URL leads. */
async function startPartnerApp(): Promise<Server> {
  const server = createServer((_request, response) => {
    response
      .writeHead(200, { 'content-type': 'text/html' })
      .end('<h1 id="partner">Back in the partner app</h1>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Opens the start URL (Wise's page follows), answers there, and waits for the broker's callback. */
async function approveInBrowser(page: Page, startUrl: string, decision: 'Approve' | 'Deny') {
  await page.goto(startUrl);
  const callback = page.waitForResponse((response) => response.url().startsWith(broker.redirectUri));
  await page.getByRole('button', { name: decision }).click();
  return callback;
}

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  partnerApp = await startPartnerApp();
  partnerAppUrl = `http://127.0.0.1:${(partnerApp.address() as AddressInfo).port}/`;
  broker = await startCallerBroker('the browser test', {
    stage: 'e2e',
    callers: [{ principal: CALLER_PRINCIPAL, use: ['shop-*'], clientToken: false }],
    returnUrls: [partnerAppUrl],
    // shop-1 and shop-3 connect without a partner app to confirm them.
    connectWithoutConfirmation: true,
  });
  client = new BrokerClient({ baseUrl: broker.url, region: 'us-east-1', credentials: CALLER_KEYS });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await broker?.close();
  await new Promise((resolve) => partnerApp?.close(resolve));
});

// Chromium on a busy two-core machine can take a few seconds per page.
describe('connecting a Wise user in a real browser', { timeout: 90_000 }, () => {
  it('shows the success page after approval and then vends a token the simulator accepts', async () => {
    const session = await client.createConnectSession({ connectionId: 'shop-1' });
    const page = await browser.newPage();

    const callback = await approveInBrowser(page, session.startUrl, 'Approve');

    expect(callback.status()).toBe(200);
    await expect(page.locator('#outcome').getAttribute('data-status')).resolves.toBe('connected');
    await expect(page.locator('#connection-id').textContent()).resolves.toContain('shop-1');
    await page.screenshot({ path: join(SCREENSHOTS, 'connect-success.png'), fullPage: true });
    await page.close();

    const token = await client.getToken({ connectionId: 'shop-1' });
    const me = await fetch(`${broker.simulator?.url}/v1/me`, {
      headers: { authorization: `Bearer ${token.accessToken}` },
    });
    expect(me.status).toBe(200);
    expect(token.generation).toBe(1);
  });

  it('keeps the __Host- binding cookie of the start URL on http://127.0.0.1 and sends it to the callback', async () => {
    const session = await client.createConnectSession({ connectionId: 'shop-4' });
    const context = await browser.newContext();
    const page = await context.newPage();

    await page.goto(session.startUrl);
    const cookies = await context.cookies(broker.url);

    expect(page.url().startsWith(broker.authorizeUrl)).toBe(true);
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ secure: true, httpOnly: true, sameSite: 'Lax', path: '/' });
    expect(cookies[0]?.name.startsWith('__Host-wise-connect-')).toBe(true);
    const callback = page.waitForResponse((response) => response.url().startsWith(broker.redirectUri));
    await page.getByRole('button', { name: 'Approve' }).click();
    expect((await callback).status()).toBe(200);
    await expect(context.cookies(broker.url)).resolves.toEqual([]);
    await context.close();
  });

  it('connects through the return URL only once the partner exchanges the completion code', async () => {
    const session = await client.createConnectSession({ connectionId: 'shop-2', returnUrl: partnerAppUrl });
    const page = await browser.newPage();

    await approveInBrowser(page, session.startUrl, 'Approve');
    await page.waitForURL(`${partnerAppUrl}**`);

    const landed = new URL(page.url());
    expect(landed.searchParams.get('status')).toBe('approved');
    expect(landed.searchParams.get('connectionId')).toBe('shop-2');
    await expect(page.locator('#partner').textContent()).resolves.toBe('Back in the partner app');
    await page.close();
    await expect(broker.runtime.store.getConnection('shop-2')).resolves.toBeUndefined();

    const status = await client.completeConnection('shop-2', landed.searchParams.get('completion') ?? '');

    expect(status).toMatchObject({ connectionId: 'shop-2', status: 'active' });
    await expect(client.getToken({ connectionId: 'shop-2' })).resolves.toMatchObject({ generation: 1 });
  });

  it("refuses Wise's page forwarded to another browser: the callback there connects nothing", async () => {
    const session = await client.createConnectSession({ connectionId: 'shop-5', returnUrl: partnerAppUrl });
    const starter = await browser.newContext();
    const starterPage = await starter.newPage();
    await starterPage.goto(session.startUrl);
    const forwarded = starterPage.url();
    await starter.close();
    const other = await browser.newContext();
    const page = await other.newPage();

    await page.goto(forwarded);
    const callback = page.waitForResponse((response) => response.url().startsWith(broker.redirectUri));
    await page.getByRole('button', { name: 'Approve' }).click();

    expect((await callback).status()).toBe(400);
    await expect(page.locator('#outcome-title').textContent()).resolves.toBe(
      'Finish connecting in the browser where you started',
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'connect-other-browser.png'), fullPage: true });
    await other.close();
    await expect(broker.runtime.store.getConnection('shop-5')).resolves.toBeUndefined();
  });

  it('shows the failure page when the user denies access, and stores nothing', async () => {
    const session = await client.createConnectSession({ connectionId: 'shop-3' });
    const page = await browser.newPage();

    const callback = await approveInBrowser(page, session.startUrl, 'Deny');

    expect(callback.status()).toBe(400);
    await expect(page.locator('#outcome').getAttribute('data-status')).resolves.toBe('denied');
    await page.screenshot({ path: join(SCREENSHOTS, 'connect-denied.png'), fullPage: true });
    await page.close();
    await expect(broker.runtime.store.getConnection('shop-3')).resolves.toBeUndefined();
  });
});
