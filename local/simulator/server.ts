import { randomBytes } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { handleMe, handleProfiles, handleSignup } from './api.ts';
import { handleAuthorizePage } from './authorize-page.ts';
import { handleControl } from './control.ts';
import { sendJson } from './http.ts';
import type { SimulatorState } from './state.ts';
import { handleTokenRequest } from './token-endpoint.ts';

/** `/oauth/token`, optionally under a quarterly version prefix such as `/2026Q3`. */
const TOKEN_PATH = /^(?:\/\d{4}Q[1-4])?\/oauth\/token$/;

/**
 * The request listener both listeners share: stamps every answer with `x-trace-id` (and echoes
 * `X-External-Correlation-Id`) and routes it.
 */
export function createRequestListener(state: SimulatorState): RequestListener {
  return (req, res) => {
    res.setHeader('x-trace-id', randomBytes(8).toString('hex'));
    const correlationId = req.headers['x-external-correlation-id'];
    if (typeof correlationId === 'string') res.setHeader('x-external-correlation-id', correlationId);
    route(state, req, res)
      .catch(() => {
        if (!res.headersSent)
          sendJson(res, 500, { error: 'server_error', error_description: 'Internal error.' });
        else res.destroy();
      })
      .finally(() => {
        // Only POST routes change what a state file keeps; the file is rewritten only when it differs.
        if (req.method !== 'GET' && req.method !== 'HEAD') state.stateFile?.changed();
      });
  };
}

async function route(state: SimulatorState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://simulator.invalid');
  const path = url.pathname;
  const method = req.method ?? 'GET';
  if (TOKEN_PATH.test(path)) {
    return method === 'POST' ? handleTokenRequest(state, req, res) : methodNotAllowed(res, method, 'POST');
  }
  if (path === '/oauth/authorize/' || path === '/oauth/authorize') {
    return method === 'GET' || method === 'POST'
      ? handleAuthorizePage(state, req, res, url)
      : methodNotAllowed(res, method, 'GET, POST');
  }
  if (path === '/v1/me')
    return method === 'GET' ? handleMe(state, req, res) : methodNotAllowed(res, method, 'GET');
  if (path === '/v2/profiles') {
    return method === 'GET' ? handleProfiles(state, req, res) : methodNotAllowed(res, method, 'GET');
  }
  if (path === '/v1/user/signup/registration_code') {
    return method === 'POST' ? handleSignup(state, req, res) : methodNotAllowed(res, method, 'POST');
  }
  if (path.startsWith('/__control/')) return handleControl(state, req, res, path);
  sendJson(res, 404, { error: 'not_found', error_description: `No resource at ${path}.` });
}

function methodNotAllowed(res: ServerResponse, method: string, allow: string): void {
  sendJson(
    res,
    405,
    { error: 'method_not_allowed', error_description: `Request method '${method}' not supported` },
    { allow },
  );
}
