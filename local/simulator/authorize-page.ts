import type { IncomingMessage, ServerResponse } from 'node:http';
import { decideAuthorization, rejectAuthorizationRequest } from './authorization.ts';
import { formFields, readBody, sendHtml, sendRedirect } from './http.ts';
import type { SimulatorState } from './state.ts';
import type { SimulatedUser } from './users.ts';

/**
 * `GET /oauth/authorize/` shows the consent page; its form posts back to the same path, which answers
 * 303 to the redirect URI. A bad client or redirect URI gets an error page, never a redirect.
 */
export async function handleAuthorizePage(
  state: SimulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  if (req.method === 'GET') {
    const query = url.searchParams;
    const rejection = rejectAuthorizationRequest(state, query.get('client_id'), query.get('redirect_uri'));
    if (rejection) return sendHtml(res, 400, errorPage(rejection));
    const page = consentPage({
      action: url.pathname,
      clientId: state.client.id,
      redirectUri: state.config.redirectUri,
      state: query.get('state'),
      codeChallenge: query.get('code_challenge'),
      codeChallengeMethod: query.get('code_challenge_method'),
      users: state.users.list(),
    });
    return sendHtml(res, 200, page);
  }
  const form = formFields(req, (await readBody(req)) ?? '');
  const clientId = form.get('client_id') ?? '';
  const redirectUri = form.get('redirect_uri') ?? '';
  const rejection = rejectAuthorizationRequest(state, clientId, redirectUri);
  if (rejection) return sendHtml(res, 400, errorPage(rejection));
  const decision = form.get('decision');
  const account = /^(\d+):(\d+)$/.exec(form.get('account') ?? '');
  if (decision !== 'approve' && decision !== 'deny') {
    return sendHtml(res, 400, errorPage('Press Approve or Deny to answer the request.'));
  }
  if (decision === 'approve' && !account) {
    return sendHtml(res, 400, errorPage('Choose the account and profile to connect, then press Approve.'));
  }
  const outcome = decideAuthorization(state, {
    clientId,
    redirectUri,
    state: form.get('state') ?? undefined,
    userId: account ? Number(account[1]) : undefined,
    profileId: account ? Number(account[2]) : undefined,
    decision,
    codeChallenge: form.get('code_challenge') ?? undefined,
    codeChallengeMethod: form.get('code_challenge_method') ?? undefined,
  });
  if (!outcome.ok) return sendHtml(res, 400, errorPage(outcome.message));
  sendRedirect(res, outcome.location);
}

interface ConsentPage {
  action: string;
  clientId: string;
  redirectUri: string;
  state: string | null;
  codeChallenge: string | null;
  codeChallengeMethod: string | null;
  users: SimulatedUser[];
}

function consentPage(page: ConsentPage): string {
  const hidden = [
    hiddenInput('client_id', page.clientId),
    hiddenInput('redirect_uri', page.redirectUri),
    page.state === null ? '' : hiddenInput('state', page.state),
    page.codeChallenge === null ? '' : hiddenInput('code_challenge', page.codeChallenge),
    page.codeChallengeMethod === null ? '' : hiddenInput('code_challenge_method', page.codeChallengeMethod),
  ].join('');
  const accounts = page.users.map((user, index) => userFieldset(user, index === 0)).join('');
  return layout(
    `Connect your Wise account to ${page.clientId}`,
    `<h1>Connect your Wise account</h1>
    <p class="lead"><strong>${escapeHtml(page.clientId)}</strong> asks to access your Wise account.
    Choose the profile to connect.</p>
    <form id="authorize-form" method="post" action="${escapeHtml(page.action)}">${hidden}
      <div id="accounts" role="radiogroup" aria-label="Account">${accounts}</div>
      <div class="actions">
        <button type="submit" id="approve" name="decision" value="approve">Approve</button>
        <button type="submit" id="deny" name="decision" value="deny" class="secondary">Deny</button>
      </div>
    </form>`,
  );
}

function userFieldset(user: SimulatedUser, firstUser: boolean): string {
  const profiles = user.profiles
    .map((profile, index) => {
      const id = `account-${user.id}-${profile.id}`;
      const checked = firstUser && index === 0 ? ' checked' : '';
      const kind = profile.type === 'PERSONAL' ? 'Personal' : 'Business';
      return `<label class="profile" for="${id}">
          <input type="radio" id="${id}" name="account" value="${user.id}:${profile.id}"${checked}>
          <span class="name">${escapeHtml(profile.fullName)}</span>
          <span class="tag ${kind.toLowerCase()}">${kind}</span>
          <span class="meta">profile ${profile.id}</span>
        </label>`;
    })
    .join('');
  return `<fieldset class="user" id="user-${user.id}">
        <legend><span class="name">${escapeHtml(user.fullName)}</span>
          <span class="meta">${escapeHtml(user.email)} · user ${user.id}</span></legend>${profiles}
      </fieldset>`;
}

function errorPage(message: string): string {
  return layout(
    'Authorization failed',
    `<h1>This request can't be completed</h1>
    <p class="lead" id="error-message">${escapeHtml(message)}</p>
    <p class="meta">Nothing was shared with the application. Ask it to start the connection again.</p>`,
  );
}

function layout(title: string, content: string): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(title)} · Wise simulator</title>
  <style>${STYLES}</style>
</head>
<body>
  <main class="card">
    <p class="brand">wise <span>simulator</span></p>
    ${content}
  </main>
</body>
</html>
`;
}

function hiddenInput(name: string, value: string): string {
  return `\n      <input type="hidden" name="${name}" value="${escapeHtml(value)}">`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

const STYLES = `
  * { box-sizing: border-box; }
  body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: #f2f5f7;
    font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #0e0f0c; }
  .card { width: min(34rem, 100% - 2rem); margin: 2rem 0; padding: 2rem; background: #fff;
    border-radius: 1rem; box-shadow: 0 2px 12px rgb(0 0 0 / 8%); }
  .brand { margin: 0 0 1.5rem; font-weight: 800; font-size: 1.4rem; color: #163300; }
  .brand span { font-weight: 500; font-size: 0.8rem; color: #5d7079; text-transform: uppercase; }
  h1 { margin: 0 0 0.5rem; font-size: 1.5rem; }
  .lead { margin: 0 0 1.5rem; color: #454745; }
  .user { margin: 0 0 1rem; padding: 0.75rem 1rem 1rem; border: 1px solid #dfe4e7; border-radius: 0.75rem; }
  .user legend { padding: 0 0.4rem; font-weight: 600; }
  .meta { color: #5d7079; font-size: 0.85rem; font-weight: 400; }
  .profile { display: flex; gap: 0.6rem; align-items: center; padding: 0.5rem 0.6rem; border-radius: 0.5rem;
    cursor: pointer; }
  .profile:hover { background: #f2f5f7; }
  .profile .meta { margin-left: auto; }
  .tag { padding: 0.05rem 0.5rem; border-radius: 1rem; font-size: 0.75rem; font-weight: 600; }
  .tag.personal { background: #e2f6d5; color: #163300; }
  .tag.business { background: #e1ecff; color: #0b2f66; }
  .actions { display: flex; gap: 0.75rem; margin-top: 1.5rem; }
  button { flex: 1; padding: 0.75rem 1rem; border: 0; border-radius: 2rem; font: inherit; font-weight: 600;
    cursor: pointer; background: #9fe870; color: #163300; }
  button.secondary { background: #fff; border: 1px solid #c9cfd2; color: #0e0f0c; }
  button:focus-visible, input:focus-visible { outline: 2px solid #163300; outline-offset: 2px; }
`;
