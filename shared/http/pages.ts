/**
 * The HTML pages people see at the end of connecting their Wise account. Every value is escaped; the
 * pages carry no script (the CSP of `htmlResponse` forbids one anyway) and never show a token, a code, a
 * state or Wise's `error_description`.
 *
 * Stable hooks for browser tests: `#outcome` (with `data-status`), `#outcome-title`, `#outcome-message`,
 * `#outcome-advice`, `#connection-id` and `#return-link`.
 */

/** What the page reports: the same words as the `status` query parameter of a return URL. */
export type PageStatus = 'connected' | 'denied' | 'error';

/** The content of an outcome page; plain text, escaped when rendered. */
export interface OutcomePage {
  status: PageStatus;
  /** The page's heading, a few words. */
  title: string;
  /** What happened, in a sentence or two. */
  message: string;
  /** What the person can do now. */
  advice: string;
  connectionId?: string;
  /** Where the "back" link goes; only ever a URL the broker built from an allowed return URL. */
  returnLink?: { href: string; label: string };
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (character) => HTML_ESCAPES[character] ?? character);
}

const ACCENTS: Record<PageStatus, { colour: string; tint: string; symbol: string; label: string }> = {
  connected: { colour: '#2f7d32', tint: '#e8f5e9', symbol: '&#10003;', label: 'Connected' },
  denied: { colour: '#8a5a00', tint: '#fff4e0', symbol: '&#8722;', label: 'Not connected' },
  error: { colour: '#b3261e', tint: '#fdecea', symbol: '!', label: 'Something went wrong' },
};

/** Renders an outcome page as a complete HTML document. */
export function renderOutcomePage(page: OutcomePage): string {
  const accent = ACCENTS[page.status];
  const connection =
    page.connectionId === undefined
      ? ''
      : `<p class="meta">Connection <code id="connection-id">${escapeHtml(page.connectionId)}</code></p>`;
  const link =
    page.returnLink === undefined
      ? ''
      : `<a id="return-link" class="button" href="${escapeHtml(page.returnLink.href)}">${escapeHtml(page.returnLink.label)}</a>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(page.title)} · Wise connection</title>
<style>
  :root { color-scheme: light; }
  * { box-sizing: border-box; }
  body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
    background: #f4f6f8; color: #1f2933; padding: 24px;
    font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
  main { width: 100%; max-width: 480px; background: #fff; border-radius: 16px; padding: 40px 36px;
    box-shadow: 0 1px 3px rgba(16, 24, 40, .08), 0 12px 32px rgba(16, 24, 40, .08); text-align: center; }
  .badge { width: 56px; height: 56px; margin: 0 auto 20px; border-radius: 50%; display: flex;
    align-items: center; justify-content: center; font-size: 28px; font-weight: 700;
    color: ${accent.colour}; background: ${accent.tint}; }
  .label { margin: 0 0 6px; font-size: 13px; font-weight: 600; letter-spacing: .06em; text-transform: uppercase;
    color: ${accent.colour}; }
  h1 { margin: 0 0 12px; font-size: 24px; line-height: 1.3; }
  p { margin: 0 0 12px; }
  .advice { color: #52606d; }
  .meta { margin-top: 20px; font-size: 14px; color: #7b8794; }
  code { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f4f6f8;
    border-radius: 6px; padding: 2px 6px; word-break: break-all; }
  .button { display: inline-block; margin-top: 20px; padding: 12px 24px; border-radius: 999px;
    background: #163300; color: #fff; text-decoration: none; font-weight: 600; }
  .button:hover, .button:focus { background: #254d00; }
</style>
</head>
<body>
<main id="outcome" data-status="${page.status}">
  <div class="badge" aria-hidden="true">${accent.symbol}</div>
  <p class="label">${accent.label}</p>
  <h1 id="outcome-title">${escapeHtml(page.title)}</h1>
  <p id="outcome-message">${escapeHtml(page.message)}</p>
  <p id="outcome-advice" class="advice">${escapeHtml(page.advice)}</p>
  ${connection}
  ${link}
</main>
</body>
</html>
`;
}
