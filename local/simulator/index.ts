import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type RunningSimulator, resolveOptions, type SimulatorOptions } from './options.ts';
import { createRequestListener } from './server.ts';
import { createSimulatorState } from './state.ts';

export type { GrantType, RunningSimulator, SimulatorOptions, SimulatorStats } from './options.ts';
export { SimulatorStateFileError } from './state-file.ts';

/**
 * Starts an in-process stand-in for Wise's OAuth surface (token endpoint, authorization page, `/v1/me`,
 * `/v2/profiles`, registration sign-up) with a control interface under `/__control/`. See README.md.
 * Rejects with `SimulatorStateFileError` when `stateFile` names a file it cannot use.
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  const config = resolveOptions(options);
  const state = createSimulatorState(config);
  const listener = createRequestListener(state);
  const servers: Server[] = [];
  const close = async (): Promise<void> => {
    for (const timer of state.timers) clearTimeout(timer);
    state.timers.clear();
    await Promise.all(servers.map((server) => closeServer(server)));
    state.stateFile?.close();
  };
  try {
    const plain = createServer(listener);
    servers.push(plain);
    const url = baseUrl('http', config.host, await listen(plain, config.port, config.host));
    const running: RunningSimulator = {
      url,
      authorizeUrl: `${url}/oauth/authorize/`,
      stats: () => state.stats.snapshot(),
      close,
    };
    if (config.mtls) {
      const { ca, cert, key, port } = config.mtls;
      const tls = createTlsServer({ ca, cert, key, requestCert: true, rejectUnauthorized: true }, listener);
      servers.push(tls);
      running.mtlsUrl = baseUrl('https', config.host, await listen(tls, port, config.host));
    }
    return running;
  } catch (error) {
    await close();
    throw error;
  }
}

async function listen(server: Server, port: number, host: string): Promise<number> {
  server.listen(port, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function baseUrl(scheme: 'http' | 'https', host: string, port: number): string {
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `${scheme}://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}
