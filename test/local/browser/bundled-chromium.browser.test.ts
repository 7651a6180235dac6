import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumSource, launchChromium } from '../../support/browser.ts';

let server: Server;
let url: string;
let browser: Browser | undefined;

beforeAll(async () => {
  server = createServer((_request, response) => {
    response
      .writeHead(200, { 'content-type': 'text/html' })
      .end(
        '<title>waiting</title><button type="button" onclick="document.title = \'pressed\'">Press</button>',
      );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server.close(resolve));
});

describe('the browser the tests use', () => {
  it('is the system Chromium when one is installed where it is looked for', () => {
    expect(chromiumSource(process.execPath)).toBe('system');
  });

  it('is the bundled Chromium when no system Chromium is found', () => {
    expect(chromiumSource('/nonexistent/chromium')).toBe('bundled');
  });

  // Unpacking the bundled browser and starting it can take a while on a busy two-core machine.
  it('runs the Chromium that npm ci brought: it loads a page and a click runs its script', {
    timeout: 90_000,
  }, async () => {
    browser = await launchChromium('bundled');
    const page = await browser.newPage();

    await page.goto(url);
    await page.getByRole('button', { name: 'Press' }).click();

    await expect.poll(() => page.title()).toBe('pressed');
    expect(browser.version()).toMatch(/^\d+\./);
  });
});
