import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { AuthorizationResult } from '#shared/use-cases/complete-authorization.ts';
import { CONNECT_SESSION_TTL_MS } from '#shared/use-cases/connect-session.ts';
import { htmlResponse, pageSecurityHeaders } from './responses.ts';

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

/** What the callback answers when the query itself is not a usable answer from Wise. */
export type CallbackOutcome = AuthorizationResult | { kind: 'malformed' } | { kind: 'crashed' };

const START_AGAIN = 'Go back to the application and start connecting your Wise account again.';

/**
 * The response for a callback outcome: a redirect to the session's return URL on success when there is
 * one, otherwise a page that says what happened and what to do, with a link back when there is a return URL.
 */
export function callbackResponse(outcome: CallbackOutcome): APIGatewayProxyStructuredResultV2 {
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
  const { statusCode, page, retryAfterSeconds } = pageFor(outcome);
  const response = htmlResponse(statusCode, renderOutcomePage(page));
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

function pageFor(outcome: Exclude<CallbackOutcome, { kind: 'approved' }>): {
  statusCode: number;
  page: OutcomePage;
  retryAfterSeconds?: number;
} {
  switch (outcome.kind) {
    case 'connected':
      return {
        statusCode: 200,
        page: {
          status: 'connected',
          title: 'Your Wise account is connected',
          message:
            outcome.connection.replacedConnectionId === undefined
              ? 'The application can now work with your Wise account on your behalf.'
              : `The application can now work with your Wise account on your behalf. This Wise account was connected before as "${outcome.connection.replacedConnectionId}": that earlier connection no longer works.`,
          advice: 'You can close this page. You can remove the access at any time in your Wise settings.',
          connectionId: outcome.connectionId,
        },
      };
    case 'malformed':
      return {
        statusCode: 400,
        page: {
          status: 'error',
          title: 'This link is incomplete',
          message: "The address is missing parts of Wise's answer, or they were changed on the way.",
          advice: START_AGAIN,
        },
      };
    case 'crashed':
      return {
        statusCode: 500,
        page: {
          status: 'error',
          title: 'Your Wise account could not be connected',
          message: 'Something went wrong on our side while finishing the connection.',
          advice: `Please try again in a few minutes. ${START_AGAIN} If it keeps happening, contact the application's support.`,
        },
      };
    case 'refused':
      if (outcome.reason === 'other_browser') {
        return {
          statusCode: 400,
          page: {
            status: 'error',
            title: 'Finish connecting in the browser where you started',
            message:
              'This page was opened in a browser that did not start the connection, so nothing was connected. This protects your account from connection links sent by someone else.',
            advice: START_AGAIN,
          },
        };
      }
      if (outcome.reason === 'unknown_state') {
        return {
          statusCode: 400,
          page: {
            status: 'error',
            title: 'This connection link is not valid',
            message:
              'Each connection link works only once, in the browser that opened it, and this one has already been used, was opened elsewhere, or was never issued.',
            advice: START_AGAIN,
          },
        };
      }
      return withReturnLink(outcome, 400, REFUSALS[outcome.reason]);
    case 'unavailable': {
      const minutes = Math.max(1, Math.ceil(outcome.retryAfterSeconds / 60));
      return {
        ...withReturnLink(outcome, 503, {
          status: 'error',
          title: 'Wise is not available right now',
          message: 'Wise did not answer in time, so your account was not connected.',
          advice: `Please wait about ${minutes === 1 ? 'a minute' : `${minutes} minutes`}, then start connecting again from the application.`,
        }),
        retryAfterSeconds: outcome.retryAfterSeconds,
      };
    }
    case 'failed':
      return withReturnLink(outcome, 500, {
        status: 'error',
        title: 'Your Wise account could not be connected',
        message: 'Wise did not accept the request to finish the connection. The operators have been told.',
        advice: "Please try again later. If it keeps happening, contact the application's support.",
      });
  }
}

type RefusalPage = Pick<OutcomePage, 'status' | 'title' | 'message' | 'advice'>;

const REFUSALS: Record<
  Exclude<Extract<AuthorizationResult, { kind: 'refused' }>['reason'], 'unknown_state' | 'other_browser'>,
  RefusalPage
> = {
  expired_state: {
    status: 'error',
    title: 'This connection link has expired',
    message: `Connection links are valid for ${CONNECT_SESSION_TTL_MS / 60_000} minutes, and this one is older.`,
    advice: START_AGAIN,
  },
  denied: {
    status: 'denied',
    title: 'Your Wise account was not connected',
    message: "You declined access on Wise's page, so nothing was shared with the application.",
    advice: 'If that was a mistake, go back to the application and start connecting again.',
  },
  authorization_failed: {
    status: 'error',
    title: 'Wise could not complete the authorization',
    message: 'Wise reported a problem instead of confirming the connection.',
    advice: `${START_AGAIN} If it keeps happening, contact the application's support.`,
  },
  code_rejected: {
    status: 'error',
    title: 'Wise did not accept this authorization',
    message: 'The authorization from Wise had expired or had already been used.',
    advice: START_AGAIN,
  },
  profile_not_owned: {
    status: 'error',
    title: 'The chosen Wise profile could not be confirmed',
    message: 'The profile in the answer from Wise does not belong to the Wise account that signed in.',
    advice: 'Start connecting again from the application and choose one of your own profiles.',
  },
};

function withReturnLink(
  outcome: { connectionId: string; returnUrl?: string },
  statusCode: number,
  content: RefusalPage,
): { statusCode: number; page: OutcomePage } {
  const page: OutcomePage = { ...content, connectionId: outcome.connectionId };
  if (outcome.returnUrl !== undefined) {
    page.returnLink = {
      href: returnTo(
        outcome.returnUrl,
        content.status === 'denied' ? 'denied' : 'error',
        outcome.connectionId,
      ),
      label: 'Back to the application',
    };
  }
  return { statusCode, page };
}
