import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ForbiddenError,
  InvalidRequestError,
  ProviderUnavailableError,
  ReauthorizationRequiredError,
} from '#shared/domain/errors.ts';
import { parseValue } from '#shared/http/request.ts';
import { errorToResponse } from '#shared/http/responses.ts';
import { logger, MetricName, metrics } from '#shared/observability.ts';
import { LOOKUP_BUDGET_MS } from '#shared/use-cases/complete-authorization.ts';
import {
  INVALID_CLIENT_RETRY_AFTER_SECONDS,
  RegistrationRequest,
  registerWithCode,
} from '#shared/use-cases/register-with-code.ts';
import {
  WiseInvalidClientError,
  WiseInvalidGrantError,
  WiseInvalidRequestError,
  WiseInvalidTokenError,
  WiseRateLimitedError,
  WiseUnavailableError,
} from '#shared/wise/errors.ts';
import { openStored } from '../../../support/fake-envelope.ts';
import {
  type FakeRuntime,
  fakeRuntime,
  PARTNER,
  recordPrepareAndGrant,
  START,
  STRANGER,
  storedConnection,
} from './connect-fakes.ts';

const CODE = 'rc-0123456789abcdef0123456789abcdef';
/** Generation 1 first; a newer one (`client-access-token-2`) when the caller says Wise refused one. */
const clientToken = {
  clientAccessToken: async (rejectedGeneration?: number) =>
    rejectedGeneration === undefined
      ? { accessToken: 'client-access-token', generation: 1 }
      : { accessToken: `client-access-token-${rejectedGeneration + 1}`, generation: rejectedGeneration + 1 },
};

function register(
  runtime: FakeRuntime,
  extra: { signup?: boolean; language?: string; callerArn?: string } = {},
) {
  return registerWithCode(
    runtime,
    {
      callerArn: PARTNER,
      connectionId: 'acme-7',
      email: 'jo.bloggs@example.com',
      registrationCode: CODE,
      ...extra,
    },
    clientToken,
  );
}

afterEach(() => {
  vi.restoreAllMocks();
});

/** Wise's answer to a signup with a client token it ended early. */
function staleClientToken(): WiseInvalidTokenError {
  return new WiseInvalidTokenError('Wise refused the access token on registration code signup (401).', {
    status: 401,
    wiseError: 'invalid_token',
  });
}

describe('registerWithCode', () => {
  it('grants with the registration code and stores the code encrypted beside the tokens', async () => {
    const runtime = fakeRuntime();

    const status = await register(runtime);

    expect(runtime.wise.calls[0]).toEqual({
      method: 'registrationCodeGrant',
      args: [{ email: 'jo.bloggs@example.com', registrationCode: CODE }],
    });
    expect(status).toEqual({
      connectionId: 'acme-7',
      status: 'active',
      profileId: 16550001,
      grant: 'registration_code',
      accessTokenExpiresAt: new Date(START + 43_199_000).toISOString(),
      nextRefreshAt: expect.any(String),
      lastRefreshAt: new Date(START).toISOString(),
      lastError: null,
    });
    const stored = await runtime.store.getConnection('acme-7');
    expect(stored).toMatchObject({ grant: 'registration_code', email: 'jo.bloggs@example.com' });
    const code =
      stored &&
      (await openStored(
        runtime.cipher,
        { kind: 'connection', connectionId: 'acme-7' },
        stored,
        'registration_code',
      ));
    expect(code).toBe(CODE);
  });

  it.each([
    ['an expired-token refusal', () => new WiseInvalidTokenError('rejected', { status: 401 })],
    ['Wise being unavailable', () => new WiseUnavailableError('down', { status: 503 })],
    ['a fault that is not Wise', () => new Error('socket hang up')],
  ])('stores the grant though the lookup of the user after it fails with %s', async (_, failure) => {
    const runtime = fakeRuntime();
    vi.spyOn(runtime.wise, 'getCurrentUser').mockRejectedValue(failure());
    vi.spyOn(runtime.wise, 'listProfiles').mockRejectedValue(failure());
    vi.spyOn(logger, 'warn').mockImplementation(() => {});

    const status = await register(runtime);

    expect(status).toMatchObject({ connectionId: 'acme-7', status: 'active', profileId: null });
    const stored = await runtime.store.getConnection('acme-7');
    expect(stored).toMatchObject({ status: 'active', grant: 'registration_code', generation: 1 });
    expect(stored).not.toHaveProperty('userId');
    const refresh =
      stored &&
      (await openStored(
        runtime.cipher,
        { kind: 'connection', connectionId: 'acme-7' },
        stored,
        'refresh_token',
      ));
    expect(refresh).toBe('refresh-token-1');
  });

  it('makes the data key before the grant, so nothing but the write follows it', async () => {
    const runtime = fakeRuntime();
    const order = recordPrepareAndGrant(runtime, 'registrationCodeGrant');

    await register(runtime);

    expect(order).toEqual(['prepare', 'grant']);
  });

  it('never puts the registration code into the answer', async () => {
    const runtime = fakeRuntime();

    const status = await register(runtime);

    expect(JSON.stringify(status)).not.toContain(CODE);
  });

  it('signs the user up first with the client token when asked', async () => {
    const runtime = fakeRuntime();

    await register(runtime, { signup: true, language: 'pt-BR' });

    expect(runtime.wise.calls.map((call) => call.method).slice(0, 2)).toEqual([
      'signUpWithRegistrationCode',
      'registrationCodeGrant',
    ]);
    expect(runtime.wise.calls[0]?.args[0]).toEqual({
      email: 'jo.bloggs@example.com',
      registrationCode: CODE,
      language: 'pt-BR',
      clientAccessToken: 'client-access-token',
    });
  });

  it('does not sign up unless asked', async () => {
    const runtime = fakeRuntime();

    await register(runtime, { signup: false });

    expect(runtime.wise.called('signUpWithRegistrationCode')).toBe(0);
  });

  it('goes on with the grant when Wise already has the user', async () => {
    const runtime = fakeRuntime();
    runtime.wise.signupFailure = new WiseInvalidRequestError('exists', {
      status: 409,
      wiseError: 'NOT_UNIQUE',
    });

    const status = await register(runtime, { signup: true });

    expect(status.status).toBe('active');
  });

  it('mints a new client token once and signs up again when Wise refuses the stored one with invalid_token', async () => {
    const runtime = fakeRuntime();
    runtime.wise.signupFailures = [staleClientToken()];
    const token = vi.fn(clientToken.clientAccessToken);

    const status = await registerWithCode(
      runtime,
      {
        callerArn: PARTNER,
        connectionId: 'acme-7',
        email: 'jo@example.com',
        registrationCode: CODE,
        signup: true,
      },
      { clientAccessToken: token },
    );

    expect(status.status).toBe('active');
    expect(token.mock.calls).toEqual([[], [1]]);
    const signups = runtime.wise.calls.filter((call) => call.method === 'signUpWithRegistrationCode');
    expect(signups.map((call) => (call.args[0] as { clientAccessToken: string }).clientAccessToken)).toEqual([
      'client-access-token',
      'client-access-token-2',
    ]);
  });

  it('answers 503 with a Retry-After, never a 500, when Wise refuses the new client token too, alarming the operator', async () => {
    vi.spyOn(logger, 'error').mockImplementation(() => {});
    const addMetric = vi.spyOn(metrics, 'addMetric').mockImplementation(() => metrics);
    const runtime = fakeRuntime();
    runtime.wise.signupFailure = staleClientToken();

    const failure = await register(runtime, { signup: true }).catch((caught: unknown) => caught);

    expect(failure).toBeInstanceOf(ProviderUnavailableError);
    const response = errorToResponse(failure);
    expect(response.statusCode).toBe(503);
    expect(response.headers?.['retry-after']).toBe(String(INVALID_CLIENT_RETRY_AFTER_SECONDS));
    expect(runtime.wise.called('signUpWithRegistrationCode')).toBe(2);
    expect(addMetric).toHaveBeenCalledWith(MetricName.invalidClient, 'Count', 1);
    expect(await runtime.store.getConnection('acme-7')).toBeUndefined();
  });

  it('answers 503, never a 500, when Wise refuses a grant request for a reason on the broker side', async () => {
    vi.spyOn(logger, 'error').mockImplementation(() => {});
    const runtime = fakeRuntime();
    runtime.wise.grantFailure = new WiseInvalidRequestError('Missing grant type', {
      status: 400,
      wiseError: 'invalid_request',
    });

    const response = errorToResponse(await register(runtime).catch((caught: unknown) => caught));

    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body ?? '{}')).toMatchObject({ error: 'provider_unavailable' });
  });

  it('answers 400 when Wise refuses the signup as a bad request, storing nothing', async () => {
    const runtime = fakeRuntime();
    runtime.wise.signupFailure = new WiseInvalidRequestError('bad', { status: 400 });

    const attempt = register(runtime, { signup: true });

    await expect(attempt).rejects.toThrow(InvalidRequestError);
    await expect(attempt).rejects.not.toThrow(CODE);
    expect(runtime.wise.called('signUpWithRegistrationCode')).toBe(1);
    expect(runtime.wise.called('registrationCodeGrant')).toBe(0);
    expect(await runtime.store.getConnection('acme-7')).toBeUndefined();
  });

  it.each([
    {
      name: '403: Wise refuses the broker itself',
      failure: () => new WiseInvalidRequestError('signups not allowed', { status: 403 }),
      message: /alerted; try the registration again in 5 minutes\.$/,
      alarms: true,
    },
    {
      name: '429: Wise rate limits',
      failure: () => new WiseRateLimitedError('slow down', { status: 429, retryAfterSeconds: 30 }),
      message: /unavailable or rate limiting; try the registration again in 30 s\.$/,
      alarms: false,
    },
    {
      name: '500: Wise fails',
      failure: () => new WiseUnavailableError('Wise answered 500.', { status: 500 }),
      message: /unavailable or rate limiting/,
      alarms: false,
    },
  ])('answers 503, not 400, when the signup meets $name', async ({ failure, message, alarms }) => {
    vi.spyOn(logger, 'error').mockImplementation(() => {});
    const addMetric = vi.spyOn(metrics, 'addMetric').mockImplementation(() => metrics);
    const runtime = fakeRuntime();
    runtime.wise.signupFailure = failure();

    const refused = await register(runtime, { signup: true }).catch((caught: unknown) => caught);

    expect(refused).toBeInstanceOf(ProviderUnavailableError);
    expect((refused as Error).message).toMatch(message);
    expect(runtime.wise.called('signUpWithRegistrationCode')).toBe(1);
    expect(runtime.wise.called('registrationCodeGrant')).toBe(0);
    if (alarms) expect(addMetric).toHaveBeenCalledWith(MetricName.invalidClient, 'Count', 1);
    else
      expect(addMetric).not.toHaveBeenCalledWith(
        MetricName.invalidClient,
        expect.anything(),
        expect.anything(),
      );
  });

  it('names the connection the same Wise user was connected as before', async () => {
    const runtime = fakeRuntime();
    await register(runtime);

    const status = await registerWithCode(
      runtime,
      { callerArn: PARTNER, connectionId: 'acme-8', email: 'jo.bloggs@example.com', registrationCode: CODE },
      clientToken,
    );

    expect(status).toMatchObject({ connectionId: 'acme-8', replacedConnectionId: 'acme-7' });
    expect((await runtime.store.getConnection('acme-7'))?.status).toBe('needs_reauth');
  });

  it('names no replaced connection for a Wise user seen for the first time', async () => {
    const status = await register(fakeRuntime());

    expect(status).not.toHaveProperty('replacedConnectionId');
  });

  it("gives the lookups after the grant the route's lookup budget as their deadline", async () => {
    const runtime = fakeRuntime();
    const lookUp = vi.spyOn(runtime.wise, 'getCurrentUser');

    await register(runtime);

    expect(lookUp).toHaveBeenCalledWith(expect.any(String), { deadlineMs: START + LOOKUP_BUDGET_MS });
  });

  it('asks for reauthorization through the authorization page when the user reclaimed the account', async () => {
    const runtime = fakeRuntime();
    runtime.wise.grantFailure = new WiseInvalidGrantError('reclaimed', {
      status: 400,
      wiseError: 'invalid_grant',
    });

    const attempt = register(runtime);

    await expect(attempt).rejects.toThrow(ReauthorizationRequiredError);
    await expect(attempt).rejects.toThrow(/must connect through the authorization page instead/);
    expect(await runtime.store.getConnection('acme-7')).toBeUndefined();
  });

  it('leaves an existing connection untouched when the grant is refused', async () => {
    const runtime = fakeRuntime();
    const existing = storedConnection('acme-7', { grant: 'registration_code', version: 3 });
    runtime.store.seedConnection(existing);
    runtime.wise.grantFailure = new WiseInvalidGrantError('reclaimed', { status: 400 });

    await expect(register(runtime)).rejects.toThrow(ReauthorizationRequiredError);

    expect(await runtime.store.getConnection('acme-7')).toEqual(existing);
  });

  it("answers provider unavailable with Wise's wait when Wise is down", async () => {
    const runtime = fakeRuntime();
    runtime.wise.grantFailure = new WiseUnavailableError('down', { status: 503, retryAfterSeconds: 20 });

    const attempt = register(runtime);

    await expect(attempt).rejects.toThrow(ProviderUnavailableError);
    await expect(attempt).rejects.toMatchObject({ retryAfterSeconds: 20 });
  });

  it('answers 503 provider_unavailable with a Retry-After when Wise refuses the client secret, alarming the operator', async () => {
    const addMetric = vi.spyOn(metrics, 'addMetric').mockImplementation(() => metrics);
    const error = vi.spyOn(logger, 'error').mockImplementation(() => {});
    const runtime = fakeRuntime();
    runtime.wise.grantFailure = new WiseInvalidClientError('bad secret', { status: 401 });

    const failure = await register(runtime).catch((caught: unknown) => caught);

    expect(failure).toBeInstanceOf(ProviderUnavailableError);
    expect(failure).toMatchObject({ retryAfterSeconds: INVALID_CLIENT_RETRY_AFTER_SECONDS });
    const response = errorToResponse(failure);
    expect(response.statusCode).toBe(503);
    expect(response.headers?.['retry-after']).toBe(String(INVALID_CLIENT_RETRY_AFTER_SECONDS));
    expect(JSON.parse(response.body ?? '{}')).toMatchObject({ error: 'provider_unavailable' });
    expect(response.body).not.toContain('secret');
    expect(addMetric).toHaveBeenCalledWith(MetricName.invalidClient, 'Count', 1);
    expect(error).toHaveBeenCalledWith(
      expect.stringContaining('client credentials'),
      expect.objectContaining({ connectionId: 'acme-7' }),
    );
    expect(await runtime.store.getConnection('acme-7')).toBeUndefined();
  });

  it('counts no invalid_client when Wise is only unavailable', async () => {
    const addMetric = vi.spyOn(metrics, 'addMetric').mockImplementation(() => metrics);
    const runtime = fakeRuntime();
    runtime.wise.grantFailure = new WiseUnavailableError('down', { status: 503 });

    await expect(register(runtime)).rejects.toThrow(ProviderUnavailableError);

    expect(addMetric).not.toHaveBeenCalledWith(
      MetricName.invalidClient,
      expect.anything(),
      expect.anything(),
    );
  });

  it('refuses a caller whose patterns do not cover the connection, without calling Wise', async () => {
    const runtime = fakeRuntime();
    const token = vi.fn(clientToken.clientAccessToken);

    await expect(
      registerWithCode(
        runtime,
        {
          callerArn: STRANGER,
          connectionId: 'acme-7',
          email: 'a@example.com',
          registrationCode: CODE,
          signup: true,
        },
        { clientAccessToken: token },
      ),
    ).rejects.toThrow(ForbiddenError);
    expect(runtime.wise.calls).toEqual([]);
    expect(token).not.toHaveBeenCalled();
  });
});

describe('RegistrationRequest', () => {
  it.each([
    [{ registrationCode: CODE }, /Field "email": is required/],
    [{ email: 'not-an-email', registrationCode: CODE }, /Field "email": must be an e-mail address/],
    [{ email: 'a@example.com' }, /Field "registrationCode": is required .* at least 32 characters/],
    [
      { email: 'a@example.com', registrationCode: 'short-code' },
      /Field "registrationCode": must be at least 32/,
    ],
    [{ email: 'a@example.com', registrationCode: 12345 }, /Field "registrationCode": must be a string/],
    [
      { email: 'a@example.com', registrationCode: CODE, signup: 'yes' },
      /Field "signup": must be true or false/,
    ],
    [
      { email: 'a@example.com', registrationCode: CODE, language: 'english' },
      /Field "language": must be a language code/,
    ],
    [{ email: 'a@example.com', registrationCode: CODE, code: CODE }, /unknown field "code"/],
  ])('refuses %j with a message that names the field', (body, message) => {
    expect(() => parseValue(body, RegistrationRequest)).toThrow(message);
  });

  it('never repeats the registration code in its messages', () => {
    const tooLong = `${CODE}${'x'.repeat(1100)}`;
    const withSpace = `${CODE} more`;

    for (const registrationCode of [tooLong, withSpace, 'secret-but-short']) {
      expect(() => parseValue({ email: 'a@example.com', registrationCode }, RegistrationRequest)).toThrow(
        expect.objectContaining({ message: expect.not.stringContaining(registrationCode.slice(0, 16)) }),
      );
    }
  });
});
