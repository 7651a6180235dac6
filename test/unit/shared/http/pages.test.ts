import { describe, expect, it } from 'vitest';
import type { ConnectionRecord } from '#shared/domain/records.ts';
import { callbackResponse, escapeHtml, renderOutcomePage, returnTo } from '#shared/http/pages.ts';

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
