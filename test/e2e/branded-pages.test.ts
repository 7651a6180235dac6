import { mkdirSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalBroker } from '#local/local-broker.ts';
import { callbackResponse, presentationFor } from '#shared/http/pages.ts';
import { BrokerClient } from '../../client/index.ts';
import { launchChromium } from '../support/browser.ts';
import { CALLER_KEYS, CALLER_PRINCIPAL, startCallerBroker } from '../support/caller-broker.ts';

const SCREENSHOTS = join('test-results', 'screenshots');
const SUPPORT_URL = 'https://acme.example/help';
/** The partner's logo: a green rounded square with a white "A", 120 by 40 pixels. */
const LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" viewBox="0 0 120 40">
<rect width="120" height="40" rx="8" fill="#0b6e4f"/>
<text x="60" y="28" font-family="sans-serif" font-size="22" font-weight="700" fill="#fff" text-anchor="middle">ACME</text>
</svg>`;

let broker: LocalBroker;
let browser: Browser;
let client: BrokerClient;
let logoHost: Server;
let logoUrl: string;
let partnerApp: Server;
let partnerAppUrl: string;
/** The headers of every request the logo host received. */
const logoRequests: IncomingHttpHeaders[] = [];

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

/**
 * The errors and warnings the page reports on its console (CSP violations among them), and its script
 * errors. Left out: the line Chromium writes for the document's own 4xx status, and the 404 of the
 * /favicon.ico that the browser itself asks every host for (neither broker nor simulator serves one).
 */
function watch(page: Page): { console: () => string[] } {
  const seen: { text: string; url: string }[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') {
      seen.push({ text: message.text(), url: message.location().url });
    }
  });
  page.on('pageerror', (error) => seen.push({ text: error.message, url: '' }));
  return {
    console: () =>
      seen
        .filter(
          (entry) =>
            !(
              (entry.url === page.url() || new URL(entry.url, page.url()).pathname === '/favicon.ico') &&
              /^Failed to load resource: the server responded with a status of 4\d\d/.test(entry.text)
            ),
        )
        .map((entry) => `${entry.text} (${entry.url})`),
  };
}

/**
 * The CSP violations the document itself recorded: a listener added before any content (through the
 * DevTools protocol, which the page's CSP does not govern) keeps each `securitypolicyviolation` event.
 */
async function recordViolations(context: BrowserContext): Promise<void> {
  await context.addInitScript({
    content: `globalThis.__violations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  globalThis.__violations.push(event.violatedDirective + ' ' + event.blockedURI);
});`,
  });
}

async function violationsOf(page: Page): Promise<string[]> {
  return page.evaluate(() => (globalThis as { __violations?: string[] }).__violations ?? ['not recorded']);
}

/** Opens the start URL, answers at the simulator's page, and waits for the broker's callback. */
async function connectInBrowser(
  page: Page,
  startUrl: string,
  decision: 'Approve' | 'Deny',
): Promise<Response> {
  await page.goto(startUrl);
  const callback = page.waitForResponse((response) => response.url().startsWith(broker.redirectUri));
  await page.getByRole('button', { name: decision }).click();
  const response = await callback;
  await page.waitForLoadState('load');
  return response;
}

/** The brand as the person sees it: name, logo loaded and drawn, support link. */
async function expectBrand(page: Page): Promise<void> {
  await expect(page.locator('#brand-name').textContent()).resolves.toBe('Acme Payments');
  const logo = page.locator('#brand-logo');
  await expect(logo.getAttribute('src')).resolves.toBe(`${logoUrl}logo.svg`);
  // Expressions run in the page (the test's TypeScript has no DOM types); the DevTools protocol runs them
  // whatever the page's CSP says.
  await expect.poll(() => page.evaluate("document.querySelector('#brand-logo').naturalWidth")).toBe(120);
  await expect(page.locator('#support-link').getAttribute('href')).resolves.toBe(SUPPORT_URL);
  // The stylesheet applied (its hash matched): the card is white on the grey page, the logo 40 px high.
  const background = (selector: string) =>
    page.evaluate(`getComputedStyle(document.querySelector('${selector}')).backgroundColor`);
  await expect(background('#outcome')).resolves.toBe('rgb(255, 255, 255)');
  await expect(background('body')).resolves.toBe('rgb(244, 246, 248)');
  await expect(
    page.evaluate("document.querySelector('#brand-logo').getBoundingClientRect().height"),
  ).resolves.toBe(40);
}

function expectStrictPolicy(response: Response): void {
  const policy = response.headers()['content-security-policy'] ?? '';
  const directives = new Map(
    policy.split(';').map((directive) => {
      const [name = '', ...values] = directive.trim().split(/\s+/);
      return [name, values];
    }),
  );
  expect(directives.get('default-src')).toEqual(["'none'"]);
  expect(directives.get('style-src')).toEqual([expect.stringMatching(/^'sha256-[A-Za-z0-9+/]{43}='$/)]);
  expect(directives.get('img-src')).toEqual([`${logoUrl}logo.svg`]);
  expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
  expect(directives.has('script-src')).toBe(false);
  expect(policy).not.toContain('unsafe');
  expect(response.headers()['x-frame-options']).toBe('DENY');
  expect(response.headers()['referrer-policy']).toBe('no-referrer');
}

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  logoHost = createServer((request, response) => {
    logoRequests.push(request.headers);
    response.writeHead(200, { 'content-type': 'image/svg+xml' }).end(LOGO_SVG);
  });
  logoUrl = await listen(logoHost);
  partnerApp = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html' }).end('<h1 id="partner">Back at Acme</h1>');
  });
  partnerAppUrl = await listen(partnerApp);
  broker = await startCallerBroker('the branded pages test', {
    stage: 'e2e',
    callers: [{ principal: CALLER_PRINCIPAL, use: ['brand-*'] }],
    returnUrls: [partnerAppUrl],
    connectWithoutConfirmation: true,
    brand: {
      name: 'Acme Payments',
      logo: `${logoUrl}logo.svg`,
      supportUrl: SUPPORT_URL,
      languages: ['en', 'de'],
    },
  });
  client = new BrokerClient({ baseUrl: broker.url, region: 'us-east-1', credentials: CALLER_KEYS });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await broker?.close();
  await new Promise((resolve) => logoHost?.close(resolve));
  await new Promise((resolve) => partnerApp?.close(resolve));
});

// Chromium on a busy two-core machine can take a few seconds per page.
describe("the connect pages in the partner's brand, in a real browser", { timeout: 90_000 }, () => {
  it('shows the English success page with the name, logo and support link, under a strict CSP with no violation', async () => {
    const session = await client.createConnectSession({ connectionId: 'brand-1' });
    const context = await browser.newContext({ locale: 'en-GB' });
    await recordViolations(context);
    const page = await context.newPage();
    const seen = watch(page);
    const requestsBefore = logoRequests.length;

    const callback = await connectInBrowser(page, session.startUrl, 'Approve');

    expect(callback.status()).toBe(200);
    expectStrictPolicy(callback);
    await expect(page.locator('html').getAttribute('lang')).resolves.toBe('en');
    await expect(page.locator('#outcome').getAttribute('data-status')).resolves.toBe('connected');
    await expect(page.locator('#outcome-message').textContent()).resolves.toBe(
      'Acme Payments can now work with your Wise account on your behalf.',
    );
    await expect(page.locator('#support-link').textContent()).resolves.toBe('Contact Acme Payments support');
    await expect(page.title()).resolves.toBe('Your Wise account is connected · Acme Payments');
    await expect(violationsOf(page)).resolves.toEqual([]);
    expect(seen.console()).toEqual([]);
    await expectBrand(page);
    // The logo was fetched without the callback's address (code and state) in a Referer.
    const logoFetches = logoRequests.slice(requestsBefore);
    expect(logoFetches.length).toBeGreaterThan(0);
    expect(logoFetches.map((headers) => headers.referer)).toEqual(logoFetches.map(() => undefined));
    await page.screenshot({ path: join(SCREENSHOTS, 'branded-connected-en.png'), fullPage: true });
    await context.close();
  });

  it('speaks German to a browser that prefers it: the denied page with the way back to the partner', async () => {
    const session = await client.createConnectSession({ connectionId: 'brand-2', returnUrl: partnerAppUrl });
    const context = await browser.newContext({ locale: 'de-DE' });
    await recordViolations(context);
    const page = await context.newPage();
    const seen = watch(page);

    const callback = await connectInBrowser(page, session.startUrl, 'Deny');

    expect(callback.status()).toBe(400);
    expectStrictPolicy(callback);
    await expect(page.locator('html').getAttribute('lang')).resolves.toBe('de');
    await expect(page.locator('#outcome-title').textContent()).resolves.toBe(
      'Ihr Wise-Konto wurde nicht verbunden',
    );
    await expect(page.locator('#return-link').textContent()).resolves.toBe('Zurück zu Acme Payments');
    await expect(page.locator('#support-link').textContent()).resolves.toBe(
      'Support von Acme Payments kontaktieren',
    );
    await expect(violationsOf(page)).resolves.toEqual([]);
    expect(seen.console()).toEqual([]);
    await expectBrand(page);
    await page.screenshot({ path: join(SCREENSHOTS, 'branded-denied-de.png'), fullPage: true });

    await page.locator('#return-link').click();
    await page.waitForURL(`${partnerAppUrl}**`);
    expect(new URL(page.url()).searchParams.get('status')).toBe('denied');
    await context.close();
  });

  it('brands the error page of a start URL that is not valid, in the first offered language by default', async () => {
    const context = await browser.newContext({ locale: 'fr-FR' });
    await recordViolations(context);
    const page = await context.newPage();
    const seen = watch(page);

    const response = await page.goto(`${broker.url}/oauth/start?state=${'A'.repeat(43)}`);

    expect(response?.status()).toBe(400);
    if (response) expectStrictPolicy(response);
    await expect(page.locator('html').getAttribute('lang')).resolves.toBe('en');
    await expect(page.locator('#outcome-title').textContent()).resolves.toBe(
      'This connection link is not valid',
    );
    await expect(page.locator('#outcome-advice').textContent()).resolves.toBe(
      'Go back to Acme Payments and start connecting your Wise account again.',
    );
    await expect(violationsOf(page)).resolves.toEqual([]);
    expect(seen.console()).toEqual([]);
    await expectBrand(page);
    await page.screenshot({ path: join(SCREENSHOTS, 'branded-error-en.png'), fullPage: true });
    await context.close();
  });

  it('draws an inline logo, which the CSP allows as data: only', async () => {
    const logo = `data:image/svg+xml;base64,${Buffer.from(LOGO_SVG).toString('base64')}`;
    // The callback's page for a malformed query, served with its own headers, as the handler answers it.
    const pageHost = createServer((request, response) => {
      const page = callbackResponse(
        { kind: 'malformed' },
        presentationFor(
          { name: 'Acme Payments', logo, languages: ['en'] },
          request.headers['accept-language'],
        ),
      );
      response.writeHead(page.statusCode ?? 200, page.headers as Record<string, string>).end(page.body);
    });
    const url = await listen(pageHost);
    const context = await browser.newContext({ locale: 'en-GB' });
    await recordViolations(context);
    const page = await context.newPage();
    const seen = watch(page);

    const response = await page.goto(url);

    expect(response?.headers()['content-security-policy']).toContain('img-src data:;');
    await expect(violationsOf(page)).resolves.toEqual([]);
    expect(seen.console()).toEqual([]);
    await expect.poll(() => page.evaluate("document.querySelector('#brand-logo').naturalWidth")).toBe(120);
    await expect(page.locator('#outcome-title').textContent()).resolves.toBe('This link is incomplete');
    await page.screenshot({ path: join(SCREENSHOTS, 'branded-inline-logo.png'), fullPage: true });
    await context.close();
    await new Promise((resolve) => pageHost.close(resolve));
  });
});
