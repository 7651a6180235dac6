import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { noteSecret } from '../leak-watch.ts';
import { decideAuthorization } from './authorization.ts';
import { parseJson, readBody, sendJson, sendNoContent } from './http.ts';
import type { SimulatorState } from './state.ts';
import { ProfileType, type SimulatedUser } from './users.ts';

const Id = z.union([z.number().int().positive(), z.string().regex(/^\d+$/).transform(Number)]);
const Email = z.string().regex(/^[^@\s]+@[^@\s]+$/, 'must be an email address');

const NewUserBody = z.object({
  email: Email,
  fullName: z.string().min(1).optional(),
  profiles: z
    .array(z.object({ type: ProfileType, fullName: z.string().min(1).optional() }))
    .min(1)
    .optional(),
});
const AuthorizeBody = z.object({
  clientId: z.string(),
  redirectUri: z.string(),
  state: z.string().optional(),
  userId: Id.optional(),
  profileId: Id.optional(),
  decision: z.enum(['approve', 'deny']),
  codeChallenge: z.string().optional(),
  codeChallengeMethod: z.string().optional(),
});
const FaultBody = z
  .object({
    status: z.number().int().min(200).max(599).optional(),
    count: z.number().int().positive().default(1),
    forSeconds: z
      .number()
      .positive()
      .max(7 * 24 * 3600)
      .optional(),
    retryAfter: z.number().int().nonnegative().optional(),
    delayMs: z.number().int().nonnegative().max(600_000).optional(),
    drop: z.union([z.boolean(), z.literal('after-grant')]).optional(),
  })
  .refine((fault) => (fault.status ?? 200) !== 200 || fault.delayMs !== undefined || isDrop(fault.drop), {
    message: 'give a failing status, a delayMs or drop: true',
  });
function isDrop(drop: boolean | 'after-grant' | undefined): boolean {
  return drop === true || drop === 'after-grant';
}
const RevokeBody = z.union([z.object({ userId: Id }), z.object({ accessToken: z.string().min(1) })]);
const ReclaimBody = z.object({ email: Email });
const ClientSecretBody = z.object({ clientSecret: z.string().min(1) });
const ClockBody = z.object({ advanceSeconds: z.number().finite() });

type Route = (state: SimulatorState, body: unknown, res: ServerResponse) => void;

/** The control interface under `/__control/`, keyed by `METHOD path`. */
const ROUTES: Record<string, Route> = {
  'GET /__control/users': (state, _body, res) => sendJson(res, 200, state.users.list().map(userJson)),
  'POST /__control/users': (state, body, res) => {
    const input = parse(NewUserBody, body, res);
    if (!input) return;
    const user = state.users.add(input);
    if (!user) return controlError(res, 409, 'conflict', `A user with email ${input.email} already exists.`);
    sendJson(res, 201, userJson(user));
  },
  'POST /__control/authorize': (state, body, res) => {
    const input = parse(AuthorizeBody, body, res);
    if (!input) return;
    const outcome = decideAuthorization(state, input);
    if (!outcome.ok) return controlError(res, 400, 'invalid_request', outcome.message);
    sendJson(res, 200, { location: outcome.location });
  },
  'POST /__control/faults': (state, body, res) => {
    const fault = parse(FaultBody, body, res);
    if (!fault) return;
    state.faults.set(fault);
    sendNoContent(res);
  },
  'DELETE /__control/faults': (state, _body, res) => {
    state.faults.clear();
    sendNoContent(res);
  },
  'POST /__control/revoke': (state, body, res) => {
    const input = parse(RevokeBody, body, res);
    if (!input) return;
    if ('accessToken' in input) {
      const revoked = state.tokens.revokeAccessToken(input.accessToken);
      return sendJson(res, 200, { revoked: { refreshTokens: 0, accessTokens: revoked ? 1 : 0 } });
    }
    if (!state.users.find(input.userId))
      return controlError(res, 404, 'not_found', `No user ${input.userId} exists.`);
    sendJson(res, 200, { revoked: state.tokens.revokeUser(input.userId) });
  },
  'POST /__control/reclaim': (state, body, res) => {
    const input = parse(ReclaimBody, body, res);
    if (!input) return;
    const registration = state.users.findByEmail(input.email)?.registration;
    if (!registration) {
      return controlError(
        res,
        404,
        'not_found',
        `No user signed up with a registration code has email ${input.email}.`,
      );
    }
    registration.reclaimed = true;
    sendNoContent(res);
  },
  'POST /__control/client-secret': (state, body, res) => {
    const input = parse(ClientSecretBody, body, res);
    if (!input) return;
    noteSecret('client_secret', input.clientSecret);
    state.client.secret = input.clientSecret;
    sendNoContent(res);
  },
  'POST /__control/clock': (state, body, res) => {
    const input = parse(ClockBody, body, res);
    if (!input) return;
    state.clock.advance(input.advanceSeconds);
    sendJson(res, 200, { now: new Date(state.clock.now()).toISOString() });
  },
  'GET /__control/stats': (state, _body, res) => sendJson(res, 200, state.stats.snapshot()),
  'POST /__control/reset-stats': (state, _body, res) => {
    state.stats.reset();
    sendNoContent(res);
  },
};

/** Serves one control request; JSON in, JSON out. */
export async function handleControl(
  state: SimulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const route = ROUTES[`${req.method} ${path}`];
  if (!route) {
    const known = Object.keys(ROUTES).some((key) => key.endsWith(` ${path}`));
    return known
      ? controlError(res, 405, 'method_not_allowed', `${req.method} is not supported on ${path}.`)
      : controlError(res, 404, 'not_found', `No control route ${path}; see local/simulator/README.md.`);
  }
  const text = req.method === 'POST' ? ((await readBody(req)) ?? '') : '';
  const body = text.trim() === '' ? {} : parseJson(text);
  if (body === undefined)
    return controlError(res, 400, 'invalid_request', 'The request body is not valid JSON.');
  route(state, body, res);
}

function parse<Schema extends z.ZodType>(
  schema: Schema,
  body: unknown,
  res: ServerResponse,
): z.output<Schema> | undefined {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.join('.');
  controlError(
    res,
    400,
    'invalid_request',
    `${field ? `${field}: ` : ''}${issue?.message ?? 'invalid body'}.`,
  );
  return undefined;
}

function controlError(res: ServerResponse, status: number, error: string, message: string): void {
  sendJson(res, status, { error, message });
}

function userJson(user: SimulatedUser): Record<string, unknown> {
  return { id: user.id, email: user.email, fullName: user.fullName, profiles: user.profiles };
}
