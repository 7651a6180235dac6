import { describe, expect, it } from 'vitest';
import { json, useFakeBroker } from './fake-broker.ts';

describe('BrokerClient with the private API URL', () => {
  // The private API's ApiUrl ends in its stage, `/broker`; the broker serves every route below it.
  const env = useFakeBroker('/broker', '/broker');

  it('signs and sends each request below the stage of its base URL', async () => {
    env.broker.reply('GET /connections', () => json(200, { connections: [] }));

    const token = await env.client.getToken({ connectionId: 'acme-1' });
    const connections = await env.client.listConnections();

    expect(token.accessToken).toBe('token-acme-1-1');
    expect(connections).toEqual([]);
    expect(env.broker.seen.map((request) => [request.routeKey, request.rawPath])).toEqual([
      ['POST /tokens', '/broker/tokens'],
      ['GET /connections', '/broker/connections'],
    ]);
  });
});
