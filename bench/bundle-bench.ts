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
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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

/** One load of a bundle in a fresh process: wall and CPU milliseconds. */
type Load = { wall: number; cpu: number };

const wallMs = (loads: readonly Load[]) => median(loads.map((load) => load.wall));
const cpuMs = (loads: readonly Load[]) => median(loads.map((load) => load.cpu));

/** Writes and builds the bare and floor bundles of one set of SDK clients. */
async function baselines(folder: string, clients: (keyof typeof CLIENTS)[]) {
  const key = clients.join('-') || 'none';
  const clientLines = [
    ...clients.map((client) => `import { ${CLIENTS[client][1]} } from '${CLIENTS[client][0]}';`),
    `import { deployedClientConfig } from ${JSON.stringify(CLIENT_CONFIG)};`,
    `const clients = [${clients.map((client) => `new ${CLIENTS[client][1]}(deployedClientConfig())`).join(', ')}];`,
  ];
  const built = async (kind: string, lines: string[]) => {
    const entry = join(folder, `${key}-${kind}.mjs`);
    const out = join(folder, `${key}-${kind}`, 'index.mjs');
    writeFileSync(entry, lines.join('\n'));
    const result = await build({
      ...esbuildOptions(entry, out),
      absWorkingDir: PROJECT_ROOT,
      nodePaths: [join(PROJECT_ROOT, 'node_modules')],
    });
    return { out, metafile: result.metafile };
  };
  const [bare, floor] = await Promise.all([
    built('bare', [...clientLines, 'export const handler = async () => clients.length;']),
    built('floor', [
      ...clientLines,
      ...FLOOR_LINES,
      'export const handler = async () => clients.length + libraries.length;',
    ]),
  ]);
  return { bare, floor };
}

export async function bundleFigures(options: {
  loads: number;
}): Promise<{ figures: Figure[]; notes: string[] }> {
  const folder = mkdtempSync(join(tmpdir(), 'broker-bundles-'));
  const figures: Figure[] = [];
  const notes: string[] = [];
  const size = (file: string) => statSync(file).size;
  try {
    const env = lambdaEnvironment();
    // Functions that call the same SDK clients share one bare and one floor bundle, loaded between each
    // of theirs: more loads of each baseline, and every function of the set against the same ones.
    const sets = new Map<string, { clients: (keyof typeof CLIENTS)[]; names: string[] }>();
    for (const [name, spec] of Object.entries(FUNCTIONS)) {
      const clients = clientsOf(spec.access);
      const key = clients.join(', ') || 'no client';
      sets.set(key, { clients, names: [...(sets.get(key)?.names ?? []), name] });
    }
    for (const [key, { clients, names }] of sets) {
      const { bare, floor } = await baselines(folder, clients);
      const built = new Map<string, { out: string; metafile: Metafile | undefined }>();
      for (const name of names) {
        const out = join(folder, name, 'index.mjs');
        const result = await build({
          ...esbuildOptions(join(PROJECT_ROOT, 'functions', name, 'handler.ts'), out),
          absWorkingDir: PROJECT_ROOT,
        });
        built.set(name, { out, metafile: result.metafile });
      }
      const loads = new Map<string, Load[]>(names.map((name) => [name, []]));
      const bareLoads: Load[] = [];
      // The bare bundle again under another name: two bundles that differ in nothing, so their ratio is
      // the measurement's own noise, the margin any other ratio here is read with.
      const copy = join(folder, `${key}-bare-copy`, 'index.mjs');
      mkdirSync(dirname(copy), { recursive: true });
      copyFileSync(bare.out, copy);
      const copyLoads: Load[] = [];
      const floorLoads: Load[] = [];
      // The vend function also loads with Node's source-map support on (`functions.sourceMaps`), which
      // reads the bundle's source map at load: what that option costs each cold start.
      const withSourceMaps = { ...env, NODE_OPTIONS: '--enable-source-maps' };
      const sourceMappedLoads: Load[] = [];
      let round = 0;
      for (let i = 0; i < options.loads; i += 1) {
        for (const name of names) {
          const out = built.get(name)?.out ?? '';
          const steps: (() => void)[] = [
            () => loads.get(name)?.push(loadMs(out, env)),
            () => bareLoads.push(loadMs(bare.out, env)),
            () => copyLoads.push(loadMs(copy, env)),
            () => floorLoads.push(loadMs(floor.out, env)),
            ...(name === 'tokens' ? [() => sourceMappedLoads.push(loadMs(out, withSourceMaps))] : []),
          ];
          // A load right after another of the same bundle is a few per cent faster, so the order turns
          // each round: every bundle takes every place in turn.
          round += 1;
          for (let step = 0; step < steps.length; step += 1) steps[(round + step) % steps.length]?.();
        }
      }
      figures.push(
        reported(
          `floor of ${key} (bare + logger, metrics, zod/mini): size / bare`,
          size(floor.out) / size(bare.out),
          'x',
        ),
        reported(`floor of ${key}: load time / bare`, wallMs(floorLoads) / wallMs(bareLoads), 'x'),
        reported(`floor of ${key}: load CPU / bare`, cpuMs(floorLoads) / cpuMs(bareLoads), 'x'),
        reported(
          `bare of ${key}, a copy / itself: load time (noise)`,
          wallMs(copyLoads) / wallMs(bareLoads),
          'x',
        ),
        reported(
          `bare of ${key}, a copy / itself: load CPU (noise)`,
          cpuMs(copyLoads) / cpuMs(bareLoads),
          'x',
        ),
      );
      for (const name of names) {
        const own = loads.get(name) ?? [];
        const out = built.get(name)?.out ?? '';
        figures.push(
          reported(`${name} bundle size`, size(out) / 1024, 'KB'),
          atMost(`${name} bundle size / bare (${key})`, size(out) / size(bare.out), 'x', 1.2),
          atMost(`${name} load time / bare`, wallMs(own) / wallMs(bareLoads), 'x', 1.2),
          reported(`${name} load CPU / bare`, cpuMs(own) / cpuMs(bareLoads), 'x'),
          reported(`${name} load time / floor`, wallMs(own) / wallMs(floorLoads), 'x'),
        );
        if (name === 'tokens') {
          figures.push(
            reported(
              `${name} load time with functions.sourceMaps / without`,
              wallMs(sourceMappedLoads) / wallMs(own),
              'x',
            ),
          );
        }
        notes.push(`${name}: ${composition(built.get(name)?.metafile, bare.metafile)}`);
      }
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  return { figures, notes };
}
