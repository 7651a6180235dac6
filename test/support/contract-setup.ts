import { afterEach, vi } from 'vitest';
import type { GatewayExchange } from '#local/gateway/index.ts';
import type * as LocalBrokerModule from '#local/local-broker.ts';

// Every local broker a test starts reports each response its gateway sends; a response that does not
// fit docs/openapi.json fails the test that was running when it was sent (or the first test after a
// beforeAll that received it).
const violations = vi.hoisted((): string[] => []);

vi.mock('#local/local-broker.ts', async (importOriginal) => {
  const original = await importOriginal<typeof LocalBrokerModule>();
  const { contractViolations } = await import('./openapi.ts');
  const check = (exchange: GatewayExchange) => {
    const route =
      exchange.routeKey === '-' ? '-' : exchange.routeKey.slice(exchange.routeKey.indexOf(' ') + 1);
    violations.push(
      ...contractViolations({
        method: exchange.method,
        route,
        status: exchange.status,
        headers: exchange.headers,
        body: exchange.body.toString('utf8'),
      }),
    );
  };
  const startLocalBroker: typeof original.startLocalBroker = (config, options = {}) =>
    original.startLocalBroker(config, {
      ...options,
      observe: (exchange) => {
        check(exchange);
        options.observe?.(exchange);
      },
    });
  return { ...original, startLocalBroker };
});

afterEach(() => {
  const found = violations.splice(0);
  if (found.length > 0) throw new Error(`Responses that do not fit docs/openapi.json:\n${found.join('\n')}`);
});
