import { describe, expect, it } from 'vitest';
import { REJECTION_CHECK_WINDOW_MS } from '#shared/use-cases/rejection-check.ts';
import { CLIENT_TOKEN_ARN } from '../../support/broker.ts';
import { endAccessTokenAtWise } from '../../support/local-broker.ts';
import { brokerPerTest, type VendBody, wiseAccepts } from './refresh-support.ts';

const connected = brokerPerTest();

describe('POST /tokens with rejectedGeneration, against the Wise simulator', () => {
  it('keeps a token Wise still accepts: ten false reports refresh nothing and ask Wise once', async () => {
    const { broker, routes } = await connected();
    const held = await routes.vendOk({ connectionId: 'acme-1' });
    const before = broker.simulator.stats();

    const answers: VendBody[] = [];
    for (let i = 0; i < 10; i++) {
      answers.push(await routes.vendOk({ connectionId: 'acme-1', rejectedGeneration: held.generation }));
    }

    const after = broker.simulator.stats();
    expect(after.grants.refresh_token).toBe(before.grants.refresh_token);
    expect(after.apiCalls - before.apiCalls).toBe(1);
    expect(new Set(answers.map((answer) => answer.accessToken))).toEqual(new Set([held.accessToken]));
    await expect(wiseAccepts(broker, held.accessToken)).resolves.toBe(true);
  });

  it('refreshes a token Wise really ended exactly once, however often a caller reports each token it gets', async () => {
    const { broker, routes } = await connected();
    const held = await routes.vendOk({ connectionId: 'acme-1' });
    await endAccessTokenAtWise(broker.simulator.url, held.accessToken);
    const before = broker.simulator.stats().grants.refresh_token;

    let current = held;
    for (let i = 0; i < 15; i++) {
      current = await routes.vendOk({ connectionId: 'acme-1', rejectedGeneration: current.generation });
    }

    expect(broker.simulator.stats().grants.refresh_token - before).toBe(1);
    expect(current.generation).toBe(held.generation + 1);
    await expect(wiseAccepts(broker, current.accessToken)).resolves.toBe(true);
  });

  it('mints the client token at most once a window for a caller that reports every client token rejected', async () => {
    const { broker, routes } = await connected();
    const vendClient = async (rejectedGeneration?: number) => {
      const response = await routes.vend(
        { kind: 'client', ...(rejectedGeneration === undefined ? {} : { rejectedGeneration }) },
        CLIENT_TOKEN_ARN,
      );
      expect(response.statusCode).toBe(200);
      return response.json as VendBody;
    };
    let current = await vendClient();
    const minted = broker.simulator.stats().grants.client_credentials;

    for (let i = 0; i < 15; i++) current = await vendClient(current.generation);
    const inWindow = broker.simulator.stats().grants.client_credentials - minted;
    broker.clock.advance(REJECTION_CHECK_WINDOW_MS + 1);
    for (let i = 0; i < 15; i++) current = await vendClient(current.generation);

    expect(inWindow).toBe(1);
    expect(broker.simulator.stats().grants.client_credentials - minted).toBe(2);
  });
});
