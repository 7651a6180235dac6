import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ConnectionRecord } from '#shared/domain/records.ts';
import { PAGE_TEXT } from '#shared/http/page-text.ts';
import {
  type BrandSettings,
  callbackResponse,
  escapeHtml,
  presentationFor,
  renderOutcomePage,
  returnTo,
} from '#shared/http/pages.ts';

const connection = { connectionId: 'acme-1' } as ConnectionRecord;

function headers(response: ReturnType<typeof callbackResponse>): Record<string, string | number | boolean> {
  return response.headers ?? {};
}

describe('escapeHtml', () => {
  it('escapes every character that could leave text or an attribute', () => {
    expect(escapeHtml(`<script>"a" & 'b' \`c\`</script>`)).toBe(
      '&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39; &#96;c&#96;&lt;/script&gt;',
    );
  });
});

describe('renderOutcomePage', () => {
  it('escapes every value it shows', () => {
    const html = renderOutcomePage({
      status: 'error',
      title: '<img src=x onerror=alert(1)>',
      message: '"><script>alert(1)</script>',
      advice: "'onmouseover='alert(1)",
      connectionId: '<b>acme</b>',
      returnLink: { href: 'https://app.example.com/return/?a="><script>', label: '<i>back</i>' },
    });

    expect(html).not.toMatch(/<script|<img|<b>|<i>/);
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('href="https://app.example.com/return/?a=&quot;&gt;&lt;script&gt;"');
  });

  it('gives the elements stable ids and the outcome as data-status', () => {
    const html = renderOutcomePage({
      status: 'denied',
      title: 'T',
      message: 'M',
      advice: 'A',
      connectionId: 'acme-1',
      returnLink: { href: 'https://app.example.com/', label: 'Back' },
    });

    expect(html).toContain('<main id="outcome" data-status="denied">');
    for (const id of ['outcome-title', 'outcome-message', 'outcome-advice', 'connection-id', 'return-link']) {
      expect(html).toContain(`id="${id}"`);
    }
  });

  it('carries no script and leaves out the link and the connection when there are none', () => {
    const html = renderOutcomePage({ status: 'error', title: 'T', message: 'M', advice: 'A' });

    expect(html).not.toMatch(/<script|javascript:|\son\w+=/i);
    expect(html).not.toContain('return-link');
    expect(html).not.toContain('connection-id');
  });
});

describe('returnTo', () => {
  it("adds status and connectionId, keeping the return URL's own query and fragment", () => {
    expect(returnTo('https://app.example.com/return/x?keep=1#frag', 'error', 'acme:1')).toBe(
      'https://app.example.com/return/x?keep=1&status=error&connectionId=acme%3A1#frag',
    );
  });

  it('replaces a status the return URL already carried', () => {
    expect(returnTo('https://app.example.com/return/?status=connected', 'denied', 'a')).toBe(
      'https://app.example.com/return/?status=denied&connectionId=a',
    );
  });
});

describe('callbackResponse', () => {
  it('redirects with 303 to the return URL after connecting', () => {
    const response = callbackResponse({
      kind: 'connected',
      connection,
      connectionId: 'acme-1',
      returnUrl: 'https://app.example.com/return/',
    });

    expect(response.statusCode).toBe(303);
    expect(headers(response).location).toBe(
      'https://app.example.com/return/?status=connected&connectionId=acme-1',
    );
    expect(headers(response)['cache-control']).toBe('no-store');
  });

  it('shows a connected page when there is no return URL', () => {
    const response = callbackResponse({ kind: 'connected', connection, connectionId: 'acme-1' });

    expect(response.statusCode).toBe(200);
    expect(headers(response)['content-type']).toBe('text/html; charset=utf-8');
    expect(response.body).toContain('data-status="connected"');
    expect(response.body).toContain('acme-1');
  });

  it('shows denied consent with a link back that says denied', () => {
    const response = callbackResponse({
      kind: 'refused',
      reason: 'denied',
      connectionId: 'acme-1',
      returnUrl: 'https://app.example.com/return/',
    });

    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('data-status="denied"');
    expect(response.body).toContain(
      'id="return-link" class="button" href="https://app.example.com/return/?status=denied&amp;connectionId=acme-1"',
    );
  });

  it.each([
    ['expired_state', /expired/],
    ['code_rejected', /expired or had already been used/],
    ['profile_not_owned', /does not belong/],
    ['authorization_failed', /Wise reported a problem/],
  ] as const)('shows %s as an error with a link back that says error', (reason, message) => {
    const response = callbackResponse({
      kind: 'refused',
      reason,
      connectionId: 'acme-1',
      returnUrl: 'https://app.example.com/return/',
    });

    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('data-status="error"');
    expect(response.body).toMatch(message);
    expect(response.body).toContain('?status=error&amp;connectionId=acme-1');
  });

  it('shows an unknown or used state without a link, since no session says where to go', () => {
    const response = callbackResponse({ kind: 'refused', reason: 'unknown_state' });

    expect(response.statusCode).toBe(400);
    expect(response.body).toMatch(/already been used/);
    expect(response.body).not.toContain('return-link');
  });

  it('answers 503 with Retry-After and a wait in minutes when Wise is unavailable', () => {
    const response = callbackResponse({
      kind: 'unavailable',
      retryAfterSeconds: 150,
      connectionId: 'acme-1',
    });

    expect(response.statusCode).toBe(503);
    expect(headers(response)['retry-after']).toBe('150');
    expect(headers(response)['content-security-policy']).toContain("default-src 'none'");
    expect(response.body).toContain('about 3 minutes');
  });

  it.each([
    [{ kind: 'malformed' } as const, 400],
    [{ kind: 'crashed' } as const, 500],
    [{ kind: 'failed', reason: 'invalid_client', connectionId: 'acme-1' } as const, 500],
  ])('shows %j as an error page with status %i', (outcome, statusCode) => {
    const response = callbackResponse(outcome);

    expect(response.statusCode).toBe(statusCode);
    expect(response.body).toContain('data-status="error"');
  });
});

describe('callback pages and redirects refuse to be framed', () => {
  it.each([
    ['the connected page', { kind: 'connected', connection, connectionId: 'acme-1' } as const],
    [
      'the redirect to the return URL',
      {
        kind: 'connected',
        connection,
        connectionId: 'acme-1',
        returnUrl: 'https://app.example.com/r/',
      } as const,
    ],
    ['the unknown-state page', { kind: 'refused', reason: 'unknown_state' } as const],
    ['the malformed-query page', { kind: 'malformed' } as const],
    ['the crash page', { kind: 'crashed' } as const],
  ])('%s carries frame-ancestors none and X-Frame-Options DENY', (_case, outcome) => {
    const response = callbackResponse(outcome);

    const policy = String(headers(response)['content-security-policy']);
    expect(policy.split(';').map((directive) => directive.trim())).toContain("frame-ancestors 'none'");
    expect(headers(response)['x-frame-options']).toBe('DENY');
  });
});

const ACME: BrandSettings = {
  name: 'Acme Payments',
  logo: 'https://cdn.acme.example/brand/logo.svg',
  supportUrl: 'https://acme.example/help',
  languages: ['en', 'de'],
};

function directives(response: ReturnType<typeof callbackResponse>): Map<string, string> {
  const policy = String(headers(response)['content-security-policy']);
  return new Map(
    policy.split(';').map((directive) => {
      const [name = '', ...values] = directive.trim().split(/\s+/);
      return [name, values.join(' ')];
    }),
  );
}

describe('presentationFor', () => {
  it.each([
    ['de-CH,de;q=0.9,en;q=0.8', 'de'],
    ['en-GB,en;q=0.9', 'en'],
    ['fr-FR, de;q=0.5', 'de'],
    ['fr-FR', 'en'],
    ['', 'en'],
    [undefined, 'en'],
    ['de;q=0, en;q=0.1', 'en'],
  ])('picks from Accept-Language %j the offered language %s, else the first offered', (header, language) => {
    expect(presentationFor(ACME, header).language).toBe(language);
  });

  it('never picks a language the brand does not offer', () => {
    expect(presentationFor({ languages: ['de'] }, 'en-US,en;q=0.9').language).toBe('de');
  });
});

describe('branded pages', () => {
  const connected = { kind: 'connected', connection, connectionId: 'acme-1' } as const;

  it("show the partner's name, logo and support link, and name the partner in the text", () => {
    const response = callbackResponse(connected, presentationFor(ACME, 'en'));

    expect(response.body).toContain('<span id="brand-name">Acme Payments</span>');
    expect(response.body).toContain(
      '<img id="brand-logo" src="https://cdn.acme.example/brand/logo.svg" alt="">',
    );
    expect(response.body).toContain(
      '<a id="support-link" href="https://acme.example/help" rel="noopener noreferrer">Contact Acme Payments support</a>',
    );
    expect(response.body).toContain('Acme Payments can now work with your Wise account on your behalf.');
    expect(response.body).toContain('<title>Your Wise account is connected · Acme Payments</title>');
  });

  it('speak German to a browser that prefers it, with the lang attribute', () => {
    const response = callbackResponse(
      { kind: 'refused', reason: 'denied', connectionId: 'acme-1', returnUrl: 'https://app.example.com/r/' },
      presentationFor(ACME, 'de-DE,de;q=0.9'),
    );

    expect(response.body).toContain('<html lang="de">');
    expect(response.body).toContain('Ihr Wise-Konto wurde nicht verbunden');
    expect(response.body).toContain('>Zurück zu Acme Payments</a>');
    expect(response.body).toContain('Support von Acme Payments kontaktieren');
    expect(response.body).not.toContain('Your Wise account');
  });

  it('have a text for every outcome in every language', () => {
    for (const [language, text] of Object.entries(PAGE_TEXT)) {
      for (const [key, entry] of Object.entries(text)) {
        if (typeof entry !== 'function') continue;
        const context = { app: 'Acme', minutes: 3 };
        const value = entry.length === 2 ? entry('Title', context) : entry(context);
        const texts = typeof value === 'string' ? [value] : Object.values(value as Record<string, string>);
        for (const sentence of texts) expect(sentence, `${language}.${key}`).toMatch(/\S/);
      }
    }
  });

  it('escape the brand name', () => {
    const html = renderOutcomePage(
      { status: 'error', title: 'T', message: 'M', advice: 'A' },
      presentationFor({ name: '<script>x</script>', languages: ['en'] }, undefined),
    );

    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;x&lt;/script&gt;');
  });

  it('leave out the brand header and the support link when there is no brand', () => {
    const response = callbackResponse(connected);

    expect(response.body).not.toMatch(/id="brand|id="support-link"/);
    expect(response.body).toContain('The application can now work with your Wise account');
  });
});

describe("the pages' Content-Security-Policy", () => {
  const denied = { kind: 'refused', reason: 'denied', connectionId: 'acme-1' } as const;

  it("allows the page's own style by its SHA-256 and nothing inline else: no unsafe-inline, no script", () => {
    const response = callbackResponse(denied, presentationFor(ACME, 'en'));
    const style = /<style>([\s\S]*?)<\/style>/.exec(response.body ?? '')?.[1] ?? '';
    const hash = createHash('sha256').update(style).digest('base64');

    const policy = directives(response);
    expect(policy.get('style-src')).toBe(`'sha256-${hash}'`);
    expect(policy.get('default-src')).toBe("'none'");
    expect(policy.has('script-src')).toBe(false);
    expect(String(headers(response)['content-security-policy'])).not.toContain('unsafe-inline');
    expect(policy.get('base-uri')).toBe("'none'");
    expect(policy.get('form-action')).toBe("'none'");
    expect(policy.get('frame-ancestors')).toBe("'none'");
  });

  it('allows exactly the logo URL as an image, and no image without a logo', () => {
    expect(directives(callbackResponse(denied, presentationFor(ACME, 'en'))).get('img-src')).toBe(
      'https://cdn.acme.example/brand/logo.svg',
    );
    expect(directives(callbackResponse(denied)).has('img-src')).toBe(false);
  });

  it('allows data: images only for an inline logo', () => {
    const inline = { ...ACME, logo: 'data:image/png;base64,iVBORw0KGgo=' };

    expect(directives(callbackResponse(denied, presentationFor(inline, 'en'))).get('img-src')).toBe('data:');
  });

  it('sends no Referer from the pages, so a logo host never sees the callback URL', () => {
    expect(headers(callbackResponse(denied, presentationFor(ACME, 'en')))['referrer-policy']).toBe(
      'no-referrer',
    );
  });
});
