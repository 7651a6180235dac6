import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalBroker } from '#local/local-broker.ts';
import { CALLER_KEYS, connectAtSimulator, startCallerBroker } from '../support/caller-broker.ts';

const run = promisify(execFile);

/** The machine's own Node, not the one the project runs on: the package must work on what a team has. */
const SYSTEM_NODE = process.env.SYSTEM_NODE ?? '/usr/bin/node';
const CLIENT_FOLDER = resolve('client');
const TSC = resolve('node_modules/typescript/bin/tsc');

let folder: string;
let app: string;
let broker: LocalBroker;
let packed: { filename: string; files: Array<{ path: string }> };

/** A caller written in plain JavaScript, as a service team would write it after `npm install`. */
const CALLER = `
import { BrokerClient, BrokerClientError } from 'wise-token-broker-client';

const [connectionId] = process.argv.slice(2);
const broker = new BrokerClient({ baseUrl: process.env.BROKER_URL, region: 'us-east-1' });
const token = await broker.getToken({ connectionId });
const again = await broker.getToken({ connectionId });
const me = await broker.withToken({ connectionId }, (current) =>
  fetch(process.env.WISE_URL + '/v1/me', { headers: { authorization: 'Bearer ' + current.accessToken } }),
);
let missing;
try {
  await broker.getToken({ connectionId: 'acme-never-connected' });
} catch (error) {
  missing = { isBrokerClientError: error instanceof BrokerClientError, code: error.code, status: error.status };
}
console.log(JSON.stringify({
  node: process.version,
  tokenType: token.tokenType,
  generation: token.generation,
  fromCache: token === again,
  wiseStatus: me.status,
  missing,
}));
`;

/** A TypeScript caller: compiles only if the package's declarations type its answers. */
const TYPED_CALLER = `
import { BrokerClient, BrokerClientError, type VendedToken } from 'wise-token-broker-client';

const broker = new BrokerClient({ baseUrl: 'http://127.0.0.1:1', region: 'us-east-1' });
export async function generation(): Promise<number> {
  const token: VendedToken = await broker.getToken({ kind: 'client' });
  // @ts-expect-error a generation is a number, so the declarations are not \`any\`
  const wrong: string = token.generation;
  void wrong;
  return token.generation;
}
export const isError = (error: unknown): boolean => error instanceof BrokerClientError && error.status > 0;
`;

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'broker-client-package-'));
  // `npm pack` runs the package's prepack script, which compiles it.
  const pack = await run('npm', ['pack', '--json', '--pack-destination', folder], { cwd: CLIENT_FOLDER });
  [packed] = JSON.parse(pack.stdout) as [typeof packed];

  app = join(folder, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  writeFileSync(join(app, 'caller.mjs'), CALLER);
  writeFileSync(join(app, 'typed-caller.ts'), TYPED_CALLER);
  await run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', join(folder, packed.filename)],
    { cwd: app },
  );

  broker = await startCallerBroker('the client package test');
  await connectAtSimulator(broker, 'acme-packaged');
}, 300_000);

afterAll(async () => {
  await broker?.close();
  if (folder) rmSync(folder, { recursive: true, force: true });
});

describe('the caller client as a package', () => {
  it('packs compiled JavaScript and its declarations, and nothing of the broker', () => {
    const paths = packed.files.map((file) => file.path).sort();

    expect(paths).toContain('dist/index.js');
    expect(paths).toContain('dist/index.d.ts');
    expect(paths.filter((path) => !path.startsWith('dist/'))).toEqual(['README.md', 'package.json']);
    expect(paths.filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'))).toEqual([]);
  });

  it('depends on exactly the packages its compiled code imports, at the versions the broker tests', () => {
    const dist = join(CLIENT_FOLDER, 'dist');
    const imported = new Set<string>();
    for (const file of readdirSync(dist)) {
      const code = readFileSync(join(dist, file), 'utf8');
      for (const [, specifier] of code.matchAll(/(?:from |import\()["']([^"'.][^"']*)["']/g)) {
        const parts = (specifier ?? '').split('/');
        imported.add(parts[0]?.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? ''));
      }
    }
    const manifest = JSON.parse(readFileSync(join(CLIENT_FOLDER, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const root = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> };

    expect([...imported].sort()).toEqual(Object.keys(manifest.dependencies).sort());
    for (const [name, version] of Object.entries(manifest.dependencies)) {
      expect({ name, version }).toEqual({ name, version: root.dependencies[name] });
    }
  });

  it('calls the local broker from plain JavaScript on the system Node, signing with the default credential chain', async () => {
    const { stdout } = await run(SYSTEM_NODE, ['caller.mjs', 'acme-packaged'], {
      cwd: app,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: folder,
        BROKER_URL: broker.url,
        WISE_URL: broker.simulator?.url ?? '',
        AWS_ACCESS_KEY_ID: CALLER_KEYS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: CALLER_KEYS.secretAccessKey,
        AWS_EC2_METADATA_DISABLED: 'true',
      },
    });
    const answer = JSON.parse(stdout) as Record<string, unknown>;
    const { stdout: systemVersion } = await run(SYSTEM_NODE, ['--version']);

    expect(answer).toEqual({
      node: systemVersion.trim(),
      tokenType: 'Bearer',
      generation: expect.any(Number),
      fromCache: true,
      wiseStatus: 200,
      missing: { isBrokerClientError: true, code: 'connection_not_found', status: 404 },
    });
  });

  it('types a TypeScript caller through its declarations alone', async () => {
    const check = run(
      SYSTEM_NODE,
      [
        TSC,
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2024',
        '--lib',
        'es2024,dom',
        '--skipLibCheck',
        'typed-caller.ts',
      ],
      { cwd: app },
    );

    await expect(check).resolves.toMatchObject({ stdout: '' });
  });
});
