import { createHash } from 'node:crypto';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import Negotiator from 'negotiator';
import type { BrokerConfig, PageLanguage } from '#shared/config/broker-config.ts';
import type { AuthorizationResult } from '#shared/use-cases/complete-authorization.ts';
import { CONNECT_SESSION_TTL_MS } from '#shared/use-cases/connect-session.ts';
import { PAGE_TEXT, type PageStatus, type PageText, type TextContext } from './page-text.ts';
import { htmlResponse, pageContentSecurityPolicy, pageSecurityHeaders } from './responses.ts';

export type { PageStatus } from './page-text.ts';

/**
 * The HTML pages people see at the end of connecting their Wise account, in the partner's brand (name,
 * logo, support link) and in one of the languages the deployment offers. Every value is escaped; the pages
 * carry no script (their CSP forbids one) and never show a token, a code, a state or Wise's
 * `error_description`. Their one inline style is allowed by its SHA-256 hash, nothing else.
 *
 * Stable hooks for browser tests: `#outcome` (with `data-status`), `#outcome-title`, `#outcome-message`,
 * `#outcome-advice`, `#connection-id`, `#return-link`, `#brand`, `#brand-logo`, `#brand-name` and
 * `#support-link`.
 */

/** The partner's brand, as configured (`brand`). */
export type BrandSettings = BrokerConfig['brand'];

/** How the pages look and speak: the brand, and the language chosen for this request. */
export interface PagePresentation {
  brand: BrandSettings;
  language: PageLanguage;
}

/** The pages without a brand, in English. */
export const UNBRANDED: PagePresentation = { brand: { languages: ['en'] }, language: 'en' };

/**
 * The presentation for one request: the brand, in the language the browser prefers (its
 * `Accept-Language`, matched by primary tag, so `de-CH` gets `de`) among those the brand offers, or the
 * first offered language when it accepts none of them.
 */
export function presentationFor(brand: BrandSettings, acceptLanguage: string | undefined): PagePresentation {
  const offered = brand.languages;
  const fallback = offered[0] ?? 'en';
  if (acceptLanguage === undefined || acceptLanguage.trim() === '') return { brand, language: fallback };
  const preferred = new Negotiator({ headers: { 'accept-language': acceptLanguage } }).language([...offered]);
  const language = offered.find((candidate) => candidate === preferred) ?? fallback;
  return { brand, language };
}

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

const ACCENTS: Record<PageStatus, { colour: string; tint: string; symbol: string }> = {
  connected: { colour: '#2f7d32', tint: '#e8f5e9', symbol: '&#10003;' },
  denied: { colour: '#8a5a00', tint: '#fff4e0', symbol: '&#8722;' },
  error: { colour: '#b3261e', tint: '#fdecea', symbol: '!' },
};

/** The page's one stylesheet; its SHA-256 is the only style the CSP allows. */
function pageStyle(status: PageStatus): string {
  const accent = ACCENTS[status];
  return `
  :root { color-scheme: light; }
  * { box-sizing: border-box; }
  body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
    background: #f4f6f8; color: #1f2933; padding: 24px;
    font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
  .page { width: 100%; max-width: 480px; }
  .brand { display: flex; align-items: center; justify-content: center; gap: 12px; margin: 0 0 20px; }
  .brand img { display: block; max-height: 40px; max-width: 160px; }
  .brand span { font-size: 18px; font-weight: 700; }
  main { background: #fff; border-radius: 16px; padding: 40px 36px;
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
  footer { margin-top: 16px; text-align: center; font-size: 14px; }
  footer a { color: #163300; }
`;
}

/** The CSP source that allows exactly the brand's logo: the URL's origin and path, or `data:` inline. */
function logoSource(logo: string): string {
  if (logo.startsWith('data:')) return 'data:';
  const url = new URL(logo);
  return `${url.origin}${url.pathname}`;
}

/** A page as HTML with the Content-Security-Policy that lets exactly it render. */
interface RenderedPage {
  html: string;
  contentSecurityPolicy: string;
}

function renderPage(page: OutcomePage, presentation: PagePresentation): RenderedPage {
  const { brand } = presentation;
  const text = PAGE_TEXT[presentation.language];
  const context: TextContext = { app: brand.name };
  const accent = ACCENTS[page.status];
  const style = pageStyle(page.status);
  const connection =
    page.connectionId === undefined
      ? ''
      : `<p class="meta">${escapeHtml(text.connection)} <code id="connection-id">${escapeHtml(page.connectionId)}</code></p>`;
  const link =
    page.returnLink === undefined
      ? ''
      : `<a id="return-link" class="button" href="${escapeHtml(page.returnLink.href)}">${escapeHtml(page.returnLink.label)}</a>`;
  const logo =
    brand.logo === undefined
      ? ''
      : `<img id="brand-logo" src="${escapeHtml(brand.logo)}" alt="${escapeHtml(brand.name === undefined ? text.logoAlt(context) : '')}">`;
  const name = brand.name === undefined ? '' : `<span id="brand-name">${escapeHtml(brand.name)}</span>`;
  const header = logo === '' && name === '' ? '' : `<header id="brand" class="brand">${logo}${name}</header>`;
  const footer =
    brand.supportUrl === undefined
      ? ''
      : `<footer><a id="support-link" href="${escapeHtml(brand.supportUrl)}" rel="noopener noreferrer">${escapeHtml(text.contactSupport(context))}</a></footer>`;
  const html = `<!doctype html>
<html lang="${escapeHtml(text.htmlLang)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(text.documentTitle(page.title, context))}</title>
<style>${style}</style>
</head>
<body>
<div class="page">
${header}
<main id="outcome" data-status="${page.status}">
  <div class="badge" aria-hidden="true">${accent.symbol}</div>
  <p class="label">${escapeHtml(text.statusLabels[page.status])}</p>
  <h1 id="outcome-title">${escapeHtml(page.title)}</h1>
  <p id="outcome-message">${escapeHtml(page.message)}</p>
  <p id="outcome-advice" class="advice">${escapeHtml(page.advice)}</p>
  ${connection}
  ${link}
</main>
${footer}
</div>
</body>
</html>
`;
  const styleHash = `sha256-${createHash('sha256').update(style).digest('base64')}`;
  return {
    html,
    contentSecurityPolicy: pageContentSecurityPolicy({
      styleHashes: [styleHash],
      images: brand.logo === undefined ? [] : [logoSource(brand.logo)],
    }),
  };
}

/** Renders an outcome page as a complete HTML document. */
export function renderOutcomePage(page: OutcomePage, presentation: PagePresentation = UNBRANDED): string {
  return renderPage(page, presentation).html;
}

/** An outcome page as a response, with the Content-Security-Policy of exactly that page. */
export function outcomePageResponse(
  statusCode: number,
  page: OutcomePage,
  presentation: PagePresentation = UNBRANDED,
): APIGatewayProxyStructuredResultV2 {
  const rendered = renderPage(page, presentation);
  return htmlResponse(statusCode, rendered.html, rendered.contentSecurityPolicy);
}

/** What the callback answers when the query itself is not a usable answer from Wise. */
export type CallbackOutcome = AuthorizationResult | { kind: 'malformed' } | { kind: 'crashed' };

/**
 * The response for a callback outcome: a redirect to the session's return URL on success when there is
 * one, otherwise a page that says what happened and what to do, with a link back when there is a return
 * URL, in the presentation's brand and language.
 */
export function callbackResponse(
  outcome: CallbackOutcome,
  presentation: PagePresentation = UNBRANDED,
): APIGatewayProxyStructuredResultV2 {
  if (outcome.kind === 'approved') {
    const location = new URL(returnTo(outcome.returnUrl, 'approved', outcome.connectionId));
    location.searchParams.set('completion', outcome.completionCode);
    return { statusCode: 303, headers: { location: location.href, ...pageSecurityHeaders } };
  }
  if (outcome.kind === 'connected' && outcome.returnUrl !== undefined) {
    return {
      statusCode: 303,
      headers: {
        location: returnTo(
          outcome.returnUrl,
          'connected',
          outcome.connectionId,
          outcome.connection.replacedConnectionId,
        ),
        ...pageSecurityHeaders,
      },
    };
  }
  const text = PAGE_TEXT[presentation.language];
  const context: TextContext = { app: presentation.brand.name };
  const { statusCode, page, retryAfterSeconds } = pageFor(outcome, text, context);
  const response = outcomePageResponse(statusCode, page, presentation);
  if (retryAfterSeconds !== undefined) {
    response.headers = { ...response.headers, 'retry-after': String(retryAfterSeconds) };
  }
  return response;
}

/**
 * What a return URL's `status` says: a page's status, or `approved` (Wise granted; the partner's service
 * confirms the connection with the `completion` code beside it).
 */
export type ReturnStatus = PageStatus | 'approved';

/**
 * The return URL with `status` and `connectionId` set (and `replacedConnectionId` when the Wise user was
 * connected under that other id, which this connection ended), keeping its own query and fragment.
 */
export function returnTo(
  returnUrl: string,
  status: ReturnStatus,
  connectionId: string,
  replacedConnectionId?: string,
): string {
  const url = new URL(returnUrl);
  url.searchParams.set('status', status);
  url.searchParams.set('connectionId', connectionId);
  if (replacedConnectionId !== undefined) url.searchParams.set('replacedConnectionId', replacedConnectionId);
  return url.href;
}

type RefusalReason = Extract<AuthorizationResult, { kind: 'refused' }>['reason'];

/** Which text each refusal shows, and whether it is the person's own choice (denied) or an error. */
const REFUSALS: Record<
  Exclude<RefusalReason, 'unknown_state' | 'other_browser'>,
  { status: PageStatus; text: (text: PageText, context: TextContext) => ReturnType<PageText['denied']> }
> = {
  expired_state: {
    status: 'error',
    text: (text, context) => text.expiredState({ ...context, minutes: CONNECT_SESSION_TTL_MS / 60_000 }),
  },
  denied: { status: 'denied', text: (text, context) => text.denied(context) },
  authorization_failed: { status: 'error', text: (text, context) => text.authorizationFailed(context) },
  code_rejected: { status: 'error', text: (text, context) => text.codeRejected(context) },
  profile_not_owned: { status: 'error', text: (text, context) => text.profileNotOwned(context) },
};

function pageFor(
  outcome: Exclude<CallbackOutcome, { kind: 'approved' }>,
  text: PageText,
  context: TextContext,
): {
  statusCode: number;
  page: OutcomePage;
  retryAfterSeconds?: number;
} {
  const withReturnLink = (
    session: { connectionId: string; returnUrl?: string },
    statusCode: number,
    status: PageStatus,
    content: ReturnType<PageText['denied']>,
  ): { statusCode: number; page: OutcomePage } => {
    const page: OutcomePage = { status, ...content, connectionId: session.connectionId };
    if (session.returnUrl !== undefined) {
      page.returnLink = {
        href: returnTo(session.returnUrl, status === 'denied' ? 'denied' : 'error', session.connectionId),
        label: text.backLink(context),
      };
    }
    return { statusCode, page };
  };
  switch (outcome.kind) {
    case 'connected':
      return {
        statusCode: 200,
        page: {
          status: 'connected',
          ...text.connected({ ...context, replacedConnectionId: outcome.connection.replacedConnectionId }),
          connectionId: outcome.connectionId,
        },
      };
    case 'malformed':
      return { statusCode: 400, page: { status: 'error', ...text.malformed(context) } };
    case 'crashed':
      return { statusCode: 500, page: { status: 'error', ...text.crashed(context) } };
    case 'refused': {
      if (outcome.reason === 'other_browser') {
        return { statusCode: 400, page: { status: 'error', ...text.otherBrowser(context) } };
      }
      if (outcome.reason === 'unknown_state') {
        return { statusCode: 400, page: { status: 'error', ...text.unknownState(context) } };
      }
      const refusal = REFUSALS[outcome.reason];
      return withReturnLink(outcome, 400, refusal.status, refusal.text(text, context));
    }
    case 'unavailable': {
      const minutes = Math.max(1, Math.ceil(outcome.retryAfterSeconds / 60));
      return {
        ...withReturnLink(outcome, 503, 'error', text.unavailable({ ...context, minutes })),
        retryAfterSeconds: outcome.retryAfterSeconds,
      };
    }
    case 'failed':
      return withReturnLink(outcome, 500, 'error', text.failed(context));
  }
}
