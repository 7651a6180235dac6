import type { LocalBroker } from '#local/local-broker.ts';

/**
 * Does what a person does on the simulator's authorization page: approves a connect session's `state` as
 * the simulator's first user (or `userId`), then follows the redirect to the broker's callback, whose response it returns.
 */
export async function approveAtSimulator(
  broker: LocalBroker,
  state: string,
  options: { userId?: number } = {},
): Promise<Response> {
  if (!broker.simulator) throw new Error('The local broker runs without its Wise simulator.');
  const simulator = broker.simulator.url;
  const users = (await (await fetch(`${simulator}/__control/users`)).json()) as Array<{ id: number }>;
  const answer = await fetch(`${simulator}/__control/authorize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      clientId: 'broker-local-client',
      redirectUri: broker.redirectUri,
      state,
      userId: options.userId ?? users[0]?.id,
      decision: 'approve',
    }),
  });
  const { location } = (await answer.json()) as { location: string };
  return fetch(location);
}
