/**
 * Cold start: each function's bundle, built exactly as the stack builds it ({@link BUNDLING}), against a
 * bare bundle built the same way that holds only the AWS SDK clients the function calls (read from its
 * access in `FUNCTIONS`). Compares their minified size and the time a fresh Node 24 process takes to load
 * each (medians, interleaved), and says what dominates each bundle (esbuild's metafile).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BuildOptions, build, type Metafile } from 'esbuild';
import { BUNDLING, PROJECT_ROOT } from '../infra/broker-function.ts';
import { FUNCTIONS, type FunctionAccess } from '../infra/stateless-stack.ts';
import { atMost, type Figure, median, reported } from './figures.ts';

/** The AWS SDK clients a function may call: their packages and client classes. */
export const CLIENTS = {
  dynamodb: ['@aws-sdk/client-dynamodb', 'DynamoDBClient'],
  kms: ['@aws-sdk/client-kms', 'KMSClient'],
  secrets: ['@aws-sdk/client-secrets-manager', 'SecretsManagerClient'],
  events: ['@aws-sdk/client-eventbridge', 'EventBridgeClient'],
} as const;

/** The SDK clients a function's access lets it call (with `wise.clientId` unset, the widest case). */
export function clientsOf(access: FunctionAccess): (keyof typeof CLIENTS)[] {
  return [
    ...(access.items.length > 0 || access.queryIndexes.length > 0 ? (['dynamodb'] as const) : []),
    ...(access.encrypts.length > 0 || access.decrypts.length > 0 ? (['kms'] as const) : []),
    ...(access.wiseCredentials === false ? [] : (['secrets'] as const)),
    ...(access.putEvents ? (['events'] as const) : []),
  ];
}

/** esbuild's options for what the CDK's NodejsFunction does with {@link BUNDLING}. */
export function esbuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: BUNDLING.target ?? 'node24',
    mainFields: [...(BUNDLING.mainFields ?? [])],
    minify: BUNDLING.minify ?? false,
    keepNames: BUNDLING.keepNames ?? false,
    sourcemap: BUNDLING.sourceMap ?? false,
    sourcesContent: BUNDLING.sourcesContent ?? true,
    external: [...(BUNDLING.externalModules ?? [])],
    ...(BUNDLING.banner ? { banner: { js: BUNDLING.banner } } : {}),
    metafile: true,
    logLevel: 'silent',
  };
}

function loadMs(file: string): number {
  const script = `const t=performance.now();await import(${JSON.stringify(file)});process.stdout.write(String(performance.now()-t));`;
  return Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
}

/** The bytes each package (or the broker's own code) puts in a bundle, from esbuild's metafile. */
function bytesByPackage(metafile: Metafile | undefined): Map<string, number> {
  const output = Object.values(metafile?.outputs ?? {}).find((entry) => entry.entryPoint !== undefined);
  const byPackage = new Map<string, number>();
  for (const [path, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    const name = match?.[1] ?? 'broker code';
    byPackage.set(name, (byPackage.get(name) ?? 0) + bytesInOutput);
  }
  return byPackage;
}

function listed(entries: Iterable<[string, number]>, count: number): string {
  return [...entries]
    .filter(([, bytes]) => bytes >= 512)
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, bytes]) => `${name} ${Math.round(bytes / 1024)} KB`)
    .join(', ');
}

/**
 * What dominates a function's bundle: its largest packages, and what it holds beyond the bare bundle of
 * its clients (the difference per package), which is what the size budget is about.
 */
function composition(built: Metafile | undefined, bare: Metafile | undefined): string {
  const own = bytesByPackage(built);
  const base = bytesByPackage(bare);
  const beyond = [...own].map(([name, bytes]): [string, number] => [name, bytes - (base.get(name) ?? 0)]);
  const extra = beyond.reduce((sum, [, bytes]) => sum + Math.max(0, bytes), 0);
  return `largest ${listed(own, 3)}; beyond the bare bundle ${Math.round(extra / 1024)} KB: ${listed(beyond, 6)}`;
}

export async function bundleFigures(options: {
  loads: number;
}): Promise<{ figures: Figure[]; notes: string[] }> {
  const folder = mkdtempSync(join(tmpdir(), 'broker-bundles-'));
  const figures: Figure[] = [];
  const notes: string[] = [];
  try {
    for (const [name, spec] of Object.entries(FUNCTIONS)) {
      const clients = clientsOf(spec.access);
      const bareEntry = join(folder, `${name}-bare.mjs`);
      writeFileSync(
        bareEntry,
        [
          ...clients.map((client) => `import { ${CLIENTS[client][1]} } from '${CLIENTS[client][0]}';`),
          `const clients = [${clients.map((client) => `new ${CLIENTS[client][1]}({})`).join(', ')}];`,
          'export const handler = async () => clients.length;',
        ].join('\n'),
      );
      const functionOut = join(folder, name, 'index.mjs');
      const bareOut = join(folder, `${name}-bare`, 'index.mjs');
      const built = await build({
        ...esbuildOptions(join(PROJECT_ROOT, 'functions', name, 'handler.ts'), functionOut),
        absWorkingDir: PROJECT_ROOT,
      });
      const bare = await build({
        ...esbuildOptions(bareEntry, bareOut),
        absWorkingDir: PROJECT_ROOT,
        nodePaths: [join(PROJECT_ROOT, 'node_modules')],
      });
      const functionLoads: number[] = [];
      const bareLoads: number[] = [];
      for (let i = 0; i < options.loads; i += 1) {
        functionLoads.push(loadMs(functionOut));
        bareLoads.push(loadMs(bareOut));
      }
      const sizeRatio = statSync(functionOut).size / statSync(bareOut).size;
      const loadRatio = median(functionLoads) / median(bareLoads);
      figures.push(
        reported(`${name} bundle size`, statSync(functionOut).size / 1024, 'KB'),
        atMost(`${name} bundle size / bare (${clients.join(', ') || 'no client'})`, sizeRatio, 'x', 1.2),
        atMost(`${name} load time / bare`, loadRatio, 'x', 1.2),
      );
      notes.push(`${name}: ${composition(built.metafile, bare.metafile)}`);
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  return { figures, notes };
}
