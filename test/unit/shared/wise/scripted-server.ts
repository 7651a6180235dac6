import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request the scripted server received. */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One scripted answer: a response, a dropped connection, an answer cut off mid-body, or no answer at all. */
export type Reply =
  | { status: number; headers?: Record<string, string>; body?: string | object }
  | { drop: true }
  | { cutOff: true }
  | { hang: true };

/** A tiny HTTP server on 127.0.0.1 that answers from a script, for responses Wise's simulator cannot give. */
export interface ScriptedServer {
  url: string;
  requests: RecordedRequest[];
  /** Queues replies, used in order; an unscripted request gets a 599 so a test notices. */
  reply(...replies: Reply[]): void;
  /** Forgets the recorded requests and any unused replies. */
  reset(): void;
  close(): Promise<void>;
}

export async function startScriptedServer(): Promise<ScriptedServer> {
  const requests: RecordedRequest[] = [];
  const script: Reply[] = [];
  const hanging: ServerResponse[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      requests.push({
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const next: Reply = script.shift() ?? { status: 599, body: { error: 'unscripted' } };
      if ('drop' in next) {
        request.socket.destroy();
        return;
      }
      if ('cutOff' in next) {
        // Promises a body of 1000 bytes, sends part of it, and closes the connection.
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        response.write('{"access_token":"', () => request.socket.destroy());
        return;
      }
      if ('hang' in next) {
        hanging.push(response);
        return;
      }
      const body = typeof next.body === 'string' ? next.body : JSON.stringify(next.body ?? {});
      response.writeHead(next.status, { 'content-type': 'application/json', ...next.headers });
      response.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    reply: (...replies) => {
      script.push(...replies);
    },
    reset: () => {
      requests.length = 0;
      script.length = 0;
    },
    close: async () => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
