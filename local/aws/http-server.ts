import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Where a local endpoint listens unless told otherwise: loopback only, an ephemeral port. */
export const DEFAULT_HOST = '127.0.0.1';

/**
 * Starts `server` listening and resolves with the URL an SDK client should use as its `endpoint`.
 * A wildcard host (`0.0.0.0`, `::`) is answered with the matching loopback address, since a
 * client cannot connect to a wildcard.
 */
export function listen(server: Server, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address() as AddressInfo;
      resolve(endpointUrl(host, address.port));
    });
  });
}

function endpointUrl(host: string, port: number): string {
  if (host === '0.0.0.0') return `http://127.0.0.1:${port}`;
  if (host === '::') return `http://[::1]:${port}`;
  return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

/**
 * Stops accepting requests and drops open connections. SDK clients keep connections alive, and
 * `server.close()` alone would wait for them to time out.
 */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}
