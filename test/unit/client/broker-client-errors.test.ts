import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { BrokerClient, BrokerClientError } from '../../../client/index.ts';
import { callerCredentials, json, region, useFakeBroker } from './fake-broker.ts';

describe('BrokerClient errors', () => {
  const env = useFakeBroker();
  const target = { connectionId: 'acme:user-42' };

  /** The error a call rejects with. */
  async function errorOf(call: Promise<unknown>): Promise<BrokerClientError> {
    const error = await call.then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(BrokerClientError);
    return error as BrokerClientError;
  }

  it.each([
    [400, 'invalid_request', 'Field "connectionId": must be 1 to 128 characters.'],
    [403, 'forbidden', 'The caller may not vend tokens of connection "acme:user-42".'],
    [
      404,
      'connection_not_found',
      'No connection "acme:user-42" exists; create one with POST /connect-sessions.',
    ],
    [409, 'reauthorization_required', 'Connection "acme:user-42" needs the Wise user to authorize again.'],
  ])('maps a %i {"error","message"} body to status, code and message', async (status, code, message) => {
    env.broker.reply('POST /tokens', () => json(status, { error: code, message }));

    const error = await errorOf(env.client.getToken(target));

    expect(error).toMatchObject({ name: 'BrokerClientError', status, code, message });
    expect(error.retryAfterSeconds).toBeUndefined();
  });

  it.each([
    ['provider_unavailable', 'Wise is unavailable; try again later.'],
    ['service_unavailable', "The broker's storage is unavailable just now; try again in 30 s."],
  ])('reads Retry-After in seconds from a 503 %s', async (code, message) => {
    env.broker.reply('POST /tokens', () => json(503, { error: code, message }, { 'retry-after': '30' }));

    const error = await errorOf(env.client.getToken(target));

    expect(error).toMatchObject({ status: 503, code, message, retryAfterSeconds: 30 });
  });

  it('reads a Retry-After date as the seconds left on the client clock', async () => {
    const retryAt = new Date(env.broker.clock.now + 90_000).toUTCString();
    env.broker.reply('POST /tokens', () =>
      json(
        503,
        { error: 'provider_unavailable', message: 'Wise is unavailable.' },
        { 'retry-after': retryAt },
      ),
    );

    const error = await errorOf(env.client.getToken(target));

    expect(error.retryAfterSeconds).toBe(90);
  });

  it('reports an answer without the JSON error body as unexpected_response with its status', async () => {
    env.broker.reply('POST /tokens', () => ({
      statusCode: 502,
      headers: { 'content-type': 'text/html' },
      body: '<h1>Bad</h1>',
    }));

    const error = await errorOf(env.client.getToken(target));

    expect(error).toMatchObject({ status: 502, code: 'unexpected_response' });
  });

  it('refuses a 200 that is not a vended token, without quoting the body', async () => {
    env.broker.reply('POST /tokens', () =>
      json(200, { accessToken: 'tok-should-not-leak', tokenType: 'mac' }),
    );

    const error = await errorOf(env.client.getToken(target));

    expect(error).toMatchObject({ status: 200, code: 'unexpected_response' });
    expect(error.message).not.toContain('tok-should-not-leak');
  });

  it('does not cache a failure: the next call asks the broker again', async () => {
    env.broker.reply('POST /tokens', () => json(503, { error: 'provider_unavailable', message: 'Later.' }));
    await errorOf(env.client.getToken(target));
    env.broker.reset();

    const token = await env.client.getToken(target);

    expect(token.generation).toBe(1);
    expect(env.broker.requests('POST /tokens')).toHaveLength(1);
  });

  it('gives every concurrent caller the same failure from one request', async () => {
    env.broker.reply('POST /tokens', () =>
      json(409, { error: 'reauthorization_required', message: 'Authorize again.' }),
    );

    const errors = await Promise.all([1, 2, 3].map(() => errorOf(env.client.getToken(target))));

    expect(errors.map((error) => error.code)).toEqual([
      'reauthorization_required',
      'reauthorization_required',
      'reauthorization_required',
    ]);
    expect(env.broker.requests('POST /tokens')).toHaveLength(1);
  });

  it('reports a broker it cannot reach as network_error with status 0', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = new BrokerClient({
      baseUrl: `http://127.0.0.1:${port}`,
      region,
      credentials: callerCredentials,
    });

    const error = await errorOf(unreachable.getToken(target));

    expect(error).toMatchObject({ status: 0, code: 'network_error' });
  });
});
