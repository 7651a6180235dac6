import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalBroker, startLocalBroker } from '#local/local-broker.ts';
import { LocalSettings } from '#local/local-config.ts';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';
import { BrokerClient } from '../../client/index.ts';
import { localBrokerStorage } from '../support/aws.ts';
import { launchChromium } from '../support/browser.ts';

const SCREENSHOTS = join('test-results', 'screenshots');
const PRINCIPAL = 'arn:aws:iam::000000000000:role/payments';
const CREDENTIALS = {
  accessKeyId: 'AKIAE2EPAYMENTS00000',
  secretAccessKey: 'e2e-payments-secret-access-key',
};

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

async function approveInBrowser(page: Page, authorizeUrl: string, decision: 'Approve' | 'Deny') {
  await page.goto(authorizeUrl);
  const callback = page.waitForResponse((response) => response.url().startsWith(broker.redirectUri));
  await page.getByRole('button', { name: decision }).click();
  return callback;
}

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  partnerApp = await startPartnerApp();
  partnerAppUrl = `http://127.0.0.1:${(partnerApp.address() as AddressInfo).port}/`;
  broker = await startLocalBroker(
    {
      source: 'the browser test',
      broker: parseBrokerConfig(
        {
          stage: 'e2e',
          callers: [{ principal: PRINCIPAL, use: ['shop-*'], clientToken: false }],
          returnUrls: [partnerAppUrl],
        },
        'the browser test',
      ),
      local: LocalSettings.parse({
        port: 0,
        dataDir: null,
        credentials: [{ ...CREDENTIALS, principal: PRINCIPAL }],
        simulator: { port: 0 },
      }),
    },
    { schedule: false, ...localBrokerStorage() },
  );
  client = new BrokerClient({ baseUrl: broker.url, region: 'us-east-1', credentials: CREDENTIALS });
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

    const callback = await approveInBrowser(page, session.authorizeUrl, 'Approve');

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

  it('redirects to the return URL with the outcome when the session has one', async () => {
    const session = await client.createConnectSession({ connectionId: 'shop-2', returnUrl: partnerAppUrl });
    const page = await browser.newPage();

    await approveInBrowser(page, session.authorizeUrl, 'Approve');
    await page.waitForURL(`${partnerAppUrl}**`);

    const landed = new URL(page.url());
    expect(landed.searchParams.get('status')).toBe('connected');
    expect(landed.searchParams.get('connectionId')).toBe('shop-2');
    await expect(page.locator('#partner').textContent()).resolves.toBe('Back in the partner app');
    await page.close();
  });

  it('shows the failure page when the user denies access, and stores nothing', async () => {
    const session = await client.createConnectSession({ connectionId: 'shop-3' });
    const page = await browser.newPage();

    const callback = await approveInBrowser(page, session.authorizeUrl, 'Deny');

    expect(callback.status()).toBe(400);
    await expect(page.locator('#outcome').getAttribute('data-status')).resolves.toBe('denied');
    await page.screenshot({ path: join(SCREENSHOTS, 'connect-denied.png'), fullPage: true });
    await page.close();
    await expect(broker.runtime.store.getConnection('shop-3')).resolves.toBeUndefined();
  });
});
