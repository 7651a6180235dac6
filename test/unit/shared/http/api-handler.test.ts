import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StdoutAuditTrail } from '#shared/adapters/stdout-audit-trail.ts';
import { ConnectionNotFoundError } from '#shared/domain/errors.ts';
import { API_GATEWAY_TIMEOUT_MS, apiHandler, requestEndsAt } from '#shared/http/api-handler.ts';
import { errorBody, jsonResponse } from '#shared/http/responses.ts';
import { logger } from '#shared/observability.ts';
import type { AuditEntry } from '#shared/ports/audit-trail.ts';

const ARN = 'arn:aws:sts::111122223333:assumed-role/broker-admin/alice';

function event(): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: 'GET /v1/connections/{id}',
    rawPath: '/v1/connections/acme-1',
    rawQueryString: '',
    headers: {},
    isBase64Encoded: false,
    requestContext: { requestId: 'req-1', authorizer: { iam: { userArn: ARN } } },
  } as unknown as APIGatewayProxyEventV2;
}

function context(remainingMs = 30_000): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'broker-test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:111122223333:function:broker-test',
    memoryLimitInMB: '1024',
    awsRequestId: 'lambda-request-1',
    logGroupName: '/aws/lambda/broker-test',
    logStreamName: 'test',
    getRemainingTimeInMillis: () => remainingMs,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

function recorder() {
  const entries: AuditEntry[] = [];
  return { entries, trail: () => ({ record: (entry: AuditEntry) => entries.push(entry) }) };
}

beforeEach(() => {
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    vi.spyOn(logger, level).mockImplementation(() => {});
  }
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('requestEndsAt', () => {
  it("is the function's end when that comes first, and API Gateway's otherwise", () => {
    expect(requestEndsAt(1_000, context(5_000))).toBe(6_000);
    expect(requestEndsAt(1_000, context(900_000))).toBe(1_000 + API_GATEWAY_TIMEOUT_MS);
  });
});

describe('apiHandler', () => {
  it('answers what the route returns and audits it as ok, with the caller and the request id', async () => {
    const { entries, trail } = recorder();
    const handler = apiHandler(trail, async (_event, _context, request) => {
      request.note({ action: 'status', connectionId: 'acme-1' });
      return jsonResponse(200, { connectionId: 'acme-1' });
    });

    const result = await handler(event(), context());

    expect(result).toMatchObject({ statusCode: 200, body: '{"connectionId":"acme-1"}' });
    expect(entries).toEqual([
      {
        action: 'status',
        status: 200,
        outcome: 'ok',
        callerArn: ARN,
        connectionId: 'acme-1',
        requestId: 'req-1',
      },
    ]);
  });

  it('maps a refusal to its 4xx, audits it as refused with its error code, and logs it as a refusal', async () => {
    const { entries, trail } = recorder();
    const handler = apiHandler(trail, async (_event, _context, request) => {
      request.note({ action: 'status', connectionId: 'acme-9' });
      throw new ConnectionNotFoundError('acme-9');
    });

    const result = await handler(event(), context());

    expect(result).toMatchObject({ statusCode: 404 });
    expect(JSON.parse((result as { body: string }).body)).toMatchObject({ error: 'connection_not_found' });
    expect(entries).toEqual([
      expect.objectContaining({
        action: 'status',
        status: 404,
        outcome: 'refused',
        error: 'connection_not_found',
      }),
    ]);
    expect(logger.info).toHaveBeenCalledWith(
      'Request refused',
      expect.objectContaining({ outcome: 'refused', error: 'ConnectionNotFoundError' }),
    );
    expect(logger.error).not.toHaveBeenCalled();
  });

  it('maps an unexpected error to a bare 500, audits it as failed and logs the error', async () => {
    const { entries, trail } = recorder();
    const failure = new Error('socket hang up');
    const handler = apiHandler(trail, async (_event, _context, request) => {
      request.note({ action: 'vend', connectionId: 'acme-1' });
      throw failure;
    });

    const result = await handler(event(), context());

    expect(result).toMatchObject({ statusCode: 500 });
    expect((result as { body: string }).body).not.toContain('socket');
    expect(entries).toEqual([
      expect.objectContaining({ action: 'vend', status: 500, outcome: 'failed', error: 'internal_error' }),
    ]);
    expect(logger.error).toHaveBeenCalledWith('Request failed', { outcome: 'failed', error: failure });
  });

  it('keeps the outcome and error a route noted over the ones its status implies', async () => {
    const { entries, trail } = recorder();
    const handler = apiHandler(trail, async (_event, _context, request) => {
      request.note({ action: 'connect', outcome: 'refused', error: 'access_denied' });
      return { statusCode: 302, headers: { location: 'https://app.example.com/done' } };
    });

    await handler(event(), context());

    expect(entries).toEqual([
      expect.objectContaining({ action: 'connect', status: 302, outcome: 'refused', error: 'access_denied' }),
    ]);
  });

  it('audits a 4xx the route returns as refused, with the error code of its body', async () => {
    const { entries, trail } = recorder();
    const handler = apiHandler(trail, async (_event, _context, request) => {
      request.note({ action: 'connect_session' });
      return errorBody(400, 'invalid_request', 'Field "returnUrl": must be one of the return URLs.');
    });

    await handler(event(), context());

    expect(entries).toEqual([
      expect.objectContaining({ status: 400, outcome: 'refused', error: 'invalid_request' }),
    ]);
  });

  it('audits a 2xx as ok with no error, whatever its body holds, and a result without a status as 200', async () => {
    const { entries, trail } = recorder();
    const handler = apiHandler(trail, async (_event, _context, request) => {
      request.note({ action: 'list' });
      return jsonResponse(200, { error: 'a field that happens to be called error' });
    });
    const bare = apiHandler(trail, async (_event, _context, request) => {
      request.note({ action: 'status' });
      return 'plain text';
    });

    await handler(event(), context());
    await bare(event(), context());

    expect(entries).toEqual([
      expect.objectContaining({ action: 'list', status: 200, outcome: 'ok' }),
      expect.objectContaining({ action: 'status', status: 200, outcome: 'ok' }),
    ]);
    expect(entries[0]).not.toHaveProperty('error');
  });

  it('puts the caller, the connection and the client token into the log lines of the request', async () => {
    const appendKeys = vi.spyOn(logger, 'appendKeys');
    const handler = apiHandler(recorder().trail, async (_event, _context, request) => {
      request.note({ action: 'vend', connectionId: 'acme-1' });
      request.note({ clientToken: true });
      request.note({ generation: 3 });
      return jsonResponse(200, {});
    });

    await handler(event(), context());

    expect(appendKeys.mock.calls).toEqual([
      [{ callerArn: ARN }],
      [{ connectionId: 'acme-1' }],
      [{ clientToken: true }],
    ]);
  });

  it('names no caller for a request API Gateway verified no principal for', async () => {
    const { entries, trail } = recorder();
    const appendKeys = vi.spyOn(logger, 'appendKeys');
    const handler = apiHandler(trail, async (_event, _context, request) => {
      request.note({ action: 'connect' });
      return jsonResponse(200, {});
    });
    const unsigned = {
      ...event(),
      requestContext: { requestId: 'req-2', authorizer: { iam: { userArn: '' } } },
    };

    await handler(unsigned as unknown as APIGatewayProxyEventV2, context());

    expect(entries).toEqual([{ action: 'connect', status: 200, outcome: 'ok', requestId: 'req-2' }]);
    expect(appendKeys).not.toHaveBeenCalled();
  });

  it('audits nothing for a request whose route named no action', async () => {
    const { entries, trail } = recorder();
    const handler = apiHandler(trail, async () => jsonResponse(200, {}));

    await handler(event(), context());

    expect(entries).toEqual([]);
  });

  it('writes the audit entry to standard output when the trail cannot be built', async () => {
    const stdout = vi.spyOn(StdoutAuditTrail.prototype, 'record').mockImplementation(() => {});
    const handler = apiHandler(
      () => {
        throw new Error('no trail');
      },
      async (_event, _context, request) => {
        request.note({ action: 'list' });
        return jsonResponse(200, {});
      },
    );

    await handler(event(), context());

    expect(stdout).toHaveBeenCalledWith(
      expect.objectContaining({ action: 'list', status: 200, outcome: 'ok' }),
    );
  });
});
