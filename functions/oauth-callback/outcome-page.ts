import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { type OutcomePage, type PageStatus, renderOutcomePage } from '#shared/http/pages.ts';
import { htmlResponse } from '#shared/http/responses.ts';
import type { AuthorizationResult } from '#shared/use-cases/complete-authorization.ts';
import { CONNECT_SESSION_TTL_MS } from '#shared/use-cases/connect-session.ts';

/** What the callback answers when the query itself is not a usable answer from Wise. */
export type CallbackOutcome = AuthorizationResult | { kind: 'malformed' } | { kind: 'crashed' };

const START_AGAIN = 'Go back to the application and start connecting your Wise account again.';

/**
 * The response for a callback outcome: a redirect to the session's return URL on success when there is
 * one, otherwise a page that says what happened and what to do, with a link back when there is a return URL.
 */
export function callbackResponse(outcome: CallbackOutcome): APIGatewayProxyStructuredResultV2 {
  if (outcome.kind === 'connected' && outcome.returnUrl !== undefined) {
    return {
      statusCode: 303,
      headers: {
        location: returnTo(outcome.returnUrl, 'connected', outcome.connectionId),
        'cache-control': 'no-store',
        'referrer-policy': 'no-referrer',
      },
    };
  }
  const { statusCode, page, retryAfterSeconds } = describe(outcome);
  const response = htmlResponse(statusCode, renderOutcomePage(page));
  if (retryAfterSeconds !== undefined) {
    response.headers = { ...response.headers, 'retry-after': String(retryAfterSeconds) };
  }
  return response;
}

/** The return URL with `status` and `connectionId` set, keeping its own query and fragment. */
export function returnTo(returnUrl: string, status: PageStatus, connectionId: string): string {
  const url = new URL(returnUrl);
  url.searchParams.set('status', status);
  url.searchParams.set('connectionId', connectionId);
  return url.href;
}

function describe(outcome: CallbackOutcome): {
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
          message: 'The application can now work with your Wise account on your behalf.',
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
      if (outcome.reason === 'unknown_state') {
        return {
          statusCode: 400,
          page: {
            status: 'error',
            title: 'This connection link is not valid',
            message:
              'Each connection link works only once, and this one has already been used or was never issued.',
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
  Exclude<Extract<AuthorizationResult, { kind: 'refused' }>['reason'], 'unknown_state'>,
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
