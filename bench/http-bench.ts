/**
 * Vends over HTTP through the local gateway (SigV4 checked, handler, JSON), with 1, 8 and 64 callers
 * signing every request, each sending as soon as its previous answer arrives, for a bounded time.
 */
import { performance } from 'node:perf_hooks';
import type { LocalBroker } from '#local/local-broker.ts';
import { SignedTransport } from '../client/signed-transport.ts';
import type { BenchCaller } from './connect.ts';
import { type Figure, quantile, reported } from './figures.ts';

export async function httpFigures(
  broker: LocalBroker,
  caller: BenchCaller,
  connectionId: string,
  options: { concurrency: readonly number[]; seconds: number },
): Promise<Figure[]> {
  const transport = new SignedTransport({
    baseUrl: broker.url,
    region: 'us-east-1',
    credentials: caller.credentials,
    fetch,
    now: Date.now,
  });
  const vend = async () => {
    const response = await transport.send({ method: 'POST', path: '/tokens', body: { connectionId } });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`A vend over HTTP answered ${response.status}.`);
  };
  for (let i = 0; i < 100; i += 1) await vend();

  const figures: Figure[] = [];
  for (const callers of options.concurrency) {
    const latencies: number[] = [];
    const endsAt = performance.now() + options.seconds * 1000;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: callers }, async () => {
        while (performance.now() < endsAt) {
          const start = performance.now();
          await vend();
          latencies.push(performance.now() - start);
        }
      }),
    );
    const elapsedSeconds = (performance.now() - started) / 1000;
    figures.push(
      reported(
        `HTTP vends a second, ${callers} caller${callers === 1 ? '' : 's'}`,
        latencies.length / elapsedSeconds,
        '/s',
      ),
      reported(`HTTP vend p50, ${callers} caller${callers === 1 ? '' : 's'}`, quantile(latencies, 0.5), 'ms'),
      reported(
        `HTTP vend p99, ${callers} caller${callers === 1 ? '' : 's'}`,
        quantile(latencies, 0.99),
        'ms',
      ),
    );
  }
  return figures;
}
