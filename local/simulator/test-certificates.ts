import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** PEM strings of a throwaway certificate authority and the certificates mutual-TLS tests need. */
export interface TestCertificates {
  /** The CA that signs the server and client certificates. */
  ca: string;
  /** Server certificate for `IP:127.0.0.1` and `DNS:localhost`. */
  serverCert: string;
  serverKey: string;
  /** Client certificate signed by the CA, CN = the simulator's default client id. */
  clientCert: string;
  clientKey: string;
  /** A self-signed client certificate the CA never saw. */
  strangerCert: string;
  strangerKey: string;
}

/**
 * Makes a fresh CA, server certificate and client certificates with the system `openssl` in a temporary
 * folder (removed afterwards). P-256 keys, valid for two days: for tests only.
 */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), 'wise-simulator-certs-'));
  const file = (name: string) => join(dir, name);
  try {
    await selfSigned(file('ca'), '/CN=Wise simulator test CA', [
      'basicConstraints=critical,CA:TRUE',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    await signedByCa(dir, 'server', '/CN=localhost', [
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      'extendedKeyUsage=serverAuth',
    ]);
    await signedByCa(dir, 'client', '/CN=broker-local-client', ['extendedKeyUsage=clientAuth']);
    await selfSigned(file('stranger'), '/CN=broker-local-client', ['extendedKeyUsage=clientAuth']);
    const read = (name: string) => readFile(file(name), 'utf8');
    return {
      ca: await read('ca.crt'),
      serverCert: await read('server.crt'),
      serverKey: await read('server.key'),
      clientCert: await read('client.crt'),
      clientKey: await read('client.key'),
      strangerCert: await read('stranger.crt'),
      strangerKey: await read('stranger.key'),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function selfSigned(base: string, subject: string, extensions: string[]): Promise<void> {
  const addext = extensions.flatMap((extension) => ['-addext', extension]);
  await run('openssl', [
    'req',
    '-x509',
    ...NEW_KEY,
    '-keyout',
    `${base}.key`,
    '-out',
    `${base}.crt`,
    '-days',
    '2',
    '-subj',
    subject,
    ...addext,
  ]);
}

async function signedByCa(dir: string, name: string, subject: string, extensions: string[]): Promise<void> {
  const base = join(dir, name);
  await writeFile(`${base}.ext`, `${extensions.join('\n')}\n`);
  await run('openssl', [
    'req',
    '-new',
    ...NEW_KEY,
    '-keyout',
    `${base}.key`,
    '-out',
    `${base}.csr`,
    '-subj',
    subject,
  ]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    `${base}.csr`,
    '-CA',
    join(dir, 'ca.crt'),
    '-CAkey',
    join(dir, 'ca.key'),
    '-set_serial',
    `0x${Date.now().toString(16)}${name.length}`,
    '-days',
    '2',
    '-out',
    `${base}.crt`,
    '-extfile',
    `${base}.ext`,
  ]);
}
