import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSimulator, startSimulator } from '#local/simulator/index.ts';
import { makeTestCertificates, type TestCertificates } from '#local/simulator/test-certificates.ts';
import { basic } from './support.ts';

let certificates: TestCertificates;
let simulator: RunningSimulator;

beforeAll(async () => {
  certificates = await makeTestCertificates();
  simulator = await startSimulator({
    mtls: { ca: certificates.ca, cert: certificates.serverCert, key: certificates.serverKey },
  });
});
afterAll(async () => {
  await simulator?.close();
});

/** POSTs a client_credentials grant over TLS, presenting `client` when given. */
function tokenOverTls(client?: { cert: string; key: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${simulator.mtlsUrl}/oauth/token`,
      {
        method: 'POST',
        ca: certificates.ca,
        ...client,
        headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end('grant_type=client_credentials');
  });
}

describe('the mutual-TLS listener', () => {
  it('listens on https beside the plain listener', () => {
    expect(simulator.mtlsUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(simulator.mtlsUrl).not.toBe(simulator.url.replace('http:', 'https:'));
  });

  it('serves the token endpoint to a client certificate signed by the configured CA', async () => {
    const answer = await tokenOverTls({ cert: certificates.clientCert, key: certificates.clientKey });

    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ token_type: 'bearer' });
  });

  it('refuses a self-signed client certificate', async () => {
    const attempt = tokenOverTls({ cert: certificates.strangerCert, key: certificates.strangerKey });

    await expect(attempt).rejects.toThrow();
  });

  it('refuses a client without a certificate', async () => {
    await expect(tokenOverTls()).rejects.toThrow();
  });

  it('shares its state with the plain listener', async () => {
    await tokenOverTls({ cert: certificates.clientCert, key: certificates.clientKey });

    const stats = await (await fetch(`${simulator.url}/__control/stats`)).json();

    expect(stats).toEqual(simulator.stats());
    expect(simulator.stats().grants.client_credentials).toBeGreaterThanOrEqual(2);
  });
});
