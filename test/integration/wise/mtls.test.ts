import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCertificates, type TestCertificates } from '#local/simulator/test-certificates.ts';
import type { WiseCredentials } from '#shared/ports/wise-oauth.ts';
import { WiseTlsError, WiseUnavailableError } from '#shared/wise/errors.ts';
import type { WiseOAuthClient } from '#shared/wise/wise-oauth-client.ts';
import {
  approve,
  CLIENT_ID,
  CLIENT_SECRET,
  clientFor,
  control,
  defaultUserId,
  type Simulator,
  startTestSimulator,
  wiseFailure,
} from './simulator-support.ts';

describe('WiseOAuthClient over mutual TLS', () => {
  let certificates: TestCertificates;
  let simulator: Simulator;
  let mtlsUrl: string;
  const clients: WiseOAuthClient[] = [];

  beforeAll(async () => {
    certificates = await makeTestCertificates();
    simulator = await startTestSimulator({
      mtls: { ca: certificates.ca, cert: certificates.serverCert, key: certificates.serverKey },
    });
    if (simulator.mtlsUrl === undefined) throw new Error('the simulator started no mutual-TLS listener');
    mtlsUrl = simulator.mtlsUrl;
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await control(simulator, 'reset-stats', {});
  });

  afterAll(async () => {
    await simulator.close();
  });

  const right = () => ({
    certificate: certificates.clientCert,
    privateKey: certificates.clientKey,
    ca: certificates.ca,
  });
  const stranger = () => ({
    certificate: certificates.strangerCert,
    privateKey: certificates.strangerKey,
    ca: certificates.ca,
  });

  /** A client of the mutual-TLS listener whose credentials carry whatever `mtls()` returns at the time. */
  function mtlsClient(mtls: () => WiseCredentials['mtls'], overrides: Parameters<typeof clientFor>[1] = {}) {
    const credentials = {
      get: async (): Promise<WiseCredentials> => {
        const material = mtls();
        return material === undefined
          ? { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }
          : { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, mtls: material };
      },
    };
    const made = clientFor(simulator, { apiUrl: mtlsUrl, credentials, ...overrides });
    clients.push(made.client);
    return made;
  }

  it('grants tokens and reads the user with the right client certificate', async () => {
    const { client } = mtlsClient(right);

    const app = await client.clientCredentials();
    const user = await client.exchangeCode({
      code: await approve(simulator, await defaultUserId(simulator)),
    });
    const me = await client.getCurrentUser(user.accessToken);

    expect(app.accessToken).not.toBe('');
    expect(me.email).toBe('alex.morgan@example.com');
  });

  // The simulator's TLS listener (Node's) closes the connection without a TLS alert when it refuses a
  // client certificate, so the client sees a dropped connection: unavailable, retried, never a token.
  it('gets no token with a client certificate the CA never signed', async () => {
    const { client } = mtlsClient(stranger, { maxAttempts: 2 });

    const error = await wiseFailure(client.clientCredentials());

    expect(error).toBeInstanceOf(WiseUnavailableError);
    expect(error.status).toBeUndefined();
    expect(simulator.stats().grants.client_credentials).toBe(0);
  });

  it('fails with a TLS error, not retried, when the server certificate is not trusted', async () => {
    const { client, sleeps } = mtlsClient(() => ({
      certificate: certificates.clientCert,
      privateKey: certificates.clientKey,
    }));

    const error = await wiseFailure(client.clientCredentials());

    expect(error).toBeInstanceOf(WiseTlsError);
    expect(error.message).toContain('SELF_SIGNED_CERT_IN_CHAIN');
    expect(sleeps).toEqual([]);
  });

  it('switches to new certificate material at once, even over kept-alive connections', async () => {
    let material = right();
    const { client } = mtlsClient(() => material, { maxAttempts: 1 });
    await client.clientCredentials();

    material = stranger();
    const withStranger = await wiseFailure(client.clientCredentials());
    material = right();
    const withRightAgain = await client.clientCredentials();

    expect(withStranger).toBeInstanceOf(WiseUnavailableError);
    expect(withRightAgain.accessToken).not.toBe('');
    expect(simulator.stats().grants.client_credentials).toBe(2);
  });
});
