/**
 * Cold start: each function's bundle, built exactly as the stack builds it ({@link BUNDLING}), against a
 * bare bundle built the same way that holds only the AWS SDK clients the function calls (read from its
 * access in `FUNCTIONS`) and builds them when loaded, with the functions' client settings. Compares their minified size and the time a fresh
 * Node 24 process takes to load each (medians, interleaved), and says what dominates each bundle
 * (esbuild's metafile). Each load runs in a Lambda environment as the stack writes it, so the function
 * builds its composition (settings, SDK clients, adapters) while loading, as in Lambda's init phase, just
 * as the bare bundle builds its clients. A third bundle, the floor, holds the bare bundle's clients and
 * the libraries every function runs (Powertools' logger and metrics, zod/mini with one schema): what is
 * left above it is the broker's own code.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BuildOptions, build, type Metafile } from 'esbuild';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';
import { BUNDLING, commonEnvironment, PROJECT_ROOT } from '../infra/broker-function.ts';
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

/**
 * The environment of a deployed function, as the stack writes it (with made-up resource names and
 * credentials: nothing is called while loading), plus what Lambda itself sets.
 */
function lambdaEnvironment(): NodeJS.ProcessEnv {
  const config = parseBrokerConfig({ stage: 'bench', callers: [] }, 'the benchmark');
  return {
    PATH: process.env.PATH ?? '',
    ...commonEnvironment({
      config,
      redirectUri: 'https://broker.example.com/oauth/callback',
      tableName: 'wise-broker-bench',
      keyArn: 'arn:aws:kms:eu-west-1:000000000000:key/00000000-0000-0000-0000-000000000000',
      secretArn: 'arn:aws:secretsmanager:eu-west-1:000000000000:secret:wise-broker-bench-wise',
      eventBusName: 'wise-broker-bench',
    }),
    // Node's source-map support costs the same in every bundle's load; left out so the ratios compare code.
    NODE_OPTIONS: '',
    AWS_LAMBDA_FUNCTION_NAME: 'wise-broker-bench',
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'AKIABENCH00000000000',
    AWS_SECRET_ACCESS_KEY: 'bench-secret-access-key',
    POWERTOOLS_LOG_LEVEL: 'WARN',
  };
}

/**
 * What a fresh Node process spends importing a bundle: milliseconds of wall time, and of CPU time (all its
 * threads), which the other processes of a busy machine disturb less. The process prints nothing else: a
 * function whose composition failed while loading logs that, and the load would not count.
 */
function loadMs(file: string, env: NodeJS.ProcessEnv): { wall: number; cpu: number } {
  const script = `const c=process.cpuUsage();const t=performance.now();await import(${JSON.stringify(file)});const w=performance.now()-t;const u=process.cpuUsage(c);process.stdout.write(w+' '+(u.user+u.system)/1000);`;
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env,
  });
  const match = /^(\d+(?:\.\d+)?) (\d+(?:\.\d+)?)$/.exec(output);
  if (!match) {
    throw new Error(`Loading ${file} printed more than its load time: ${output.slice(0, 500)}`);
  }
  return { wall: Number(match[1]), cpu: Number(match[2]) };
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

/** The client settings every function builds its SDK clients with (timeouts), which the bare bundle uses too. */
const CLIENT_CONFIG = join(PROJECT_ROOT, 'shared', 'runtime', 'aws-client-config.ts');

/**
 * What the floor bundle adds to the bare one: the libraries every broker function loads, built as a
 * function builds them (a logger, a metrics object, one small schema).
 */
const FLOOR_LINES = [
  "import { Logger } from '@aws-lambda-powertools/logger';",
  "import { Metrics } from '@aws-lambda-powertools/metrics';",
  `import * as z from ${JSON.stringify(join(PROJECT_ROOT, 'shared', 'validation.ts'))};`,
  'const libraries = [',
  "  new Logger({ serviceName: 'floor' }),",
  "  new Metrics({ namespace: 'floor', serviceName: 'floor' }),",
  '  z.strictObject({ connectionId: z.string().check(z.minLength(1)), seconds: z.optional(z.int()) }),',
  '];',
];

export async function bundleFigures(options: {
  loads: number;
}): Promise<{ figures: Figure[]; notes: string[] }> {
  const folder = mkdtempSync(join(tmpdir(), 'broker-bundles-'));
  const figures: Figure[] = [];
  const notes: string[] = [];
  try {
    const env = lambdaEnvironment();
    for (const [name, spec] of Object.entries(FUNCTIONS)) {
      const clients = clientsOf(spec.access);
      const clientLines = [
        ...clients.map((client) => `import { ${CLIENTS[client][1]} } from '${CLIENTS[client][0]}';`),
        `import { deployedClientConfig } from ${JSON.stringify(CLIENT_CONFIG)};`,
        `const clients = [${clients.map((client) => `new ${CLIENTS[client][1]}(deployedClientConfig())`).join(', ')}];`,
      ];
      const bareEntry = join(folder, `${name}-bare.mjs`);
      writeFileSync(
        bareEntry,
        [...clientLines, 'export const handler = async () => clients.length;'].join('\n'),
      );
      const floorEntry = join(folder, `${name}-floor.mjs`);
      writeFileSync(
        floorEntry,
        [
          ...clientLines,
          ...FLOOR_LINES,
          'export const handler = async () => clients.length + libraries.length;',
        ].join('\n'),
      );
      const functionOut = join(folder, name, 'index.mjs');
      const bareOut = join(folder, `${name}-bare`, 'index.mjs');
      const floorOut = join(folder, `${name}-floor`, 'index.mjs');
      const built = await build({
        ...esbuildOptions(join(PROJECT_ROOT, 'functions', name, 'handler.ts'), functionOut),
        absWorkingDir: PROJECT_ROOT,
      });
      const [bare] = await Promise.all(
        [
          [bareEntry, bareOut],
          [floorEntry, floorOut],
        ].map(([entry = '', out = '']) =>
          build({
            ...esbuildOptions(entry, out),
            absWorkingDir: PROJECT_ROOT,
            nodePaths: [join(PROJECT_ROOT, 'node_modules')],
          }),
        ),
      );
      const functionLoads: { wall: number; cpu: number }[] = [];
      const bareLoads: { wall: number; cpu: number }[] = [];
      const floorLoads: { wall: number; cpu: number }[] = [];
      // The vend function also loads with Node's source-map support on (`functions.sourceMaps`), which
      // reads the bundle's source map at load: what that option costs each cold start.
      const withSourceMaps = name === 'tokens' ? { ...env, NODE_OPTIONS: '--enable-source-maps' } : undefined;
      const sourceMappedLoads: { wall: number; cpu: number }[] = [];
      for (let i = 0; i < options.loads; i += 1) {
        functionLoads.push(loadMs(functionOut, env));
        bareLoads.push(loadMs(bareOut, env));
        floorLoads.push(loadMs(floorOut, env));
        if (withSourceMaps) sourceMappedLoads.push(loadMs(functionOut, withSourceMaps));
      }
      const size = (file: string) => statSync(file).size;
      const w = (load: { wall: number }) => load.wall;
      const c = (load: { cpu: number }) => load.cpu;
      figures.push(
        reported(`${name} bundle size`, size(functionOut) / 1024, 'KB'),
        atMost(
          `${name} bundle size / bare (${clients.join(', ') || 'no client'})`,
          size(functionOut) / size(bareOut),
          'x',
          1.2,
        ),
        atMost(`${name} load time / bare`, median(functionLoads.map(w)) / median(bareLoads.map(w)), 'x', 1.2),
        reported(`${name} load CPU / bare`, median(functionLoads.map(c)) / median(bareLoads.map(c)), 'x'),
        reported(
          `${name} floor (bare + logger, metrics, zod/mini) size / bare`,
          size(floorOut) / size(bareOut),
          'x',
        ),
        reported(`${name} floor load time / bare`, median(floorLoads.map(w)) / median(bareLoads.map(w)), 'x'),
        reported(`${name} load time / floor`, median(functionLoads.map(w)) / median(floorLoads.map(w)), 'x'),
      );
      if (sourceMappedLoads.length > 0) {
        figures.push(
          reported(
            `${name} load time with functions.sourceMaps / without`,
            median(sourceMappedLoads.map(w)) / median(functionLoads.map(w)),
            'x',
          ),
        );
      }
      notes.push(`${name}: ${composition(built.metafile, bare?.metafile)}`);
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  return { figures, notes };
}
