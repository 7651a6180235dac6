import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, type Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENTS, clientsOf, esbuildOptions } from '../../bench/bundle-bench.ts';
import { PROJECT_ROOT } from '../../infra/broker-function.ts';
import { FUNCTIONS } from '../../infra/stateless-stack.ts';

const NAMES = Object.keys(FUNCTIONS) as (keyof typeof FUNCTIONS)[];
let folder: string;
const inputs = new Map<string, string[]>();

// Each function's bundle built as the stack builds it; what it holds is read from esbuild's metafile.
beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'broker-bundle-contents-'));
  for (const name of NAMES) {
    const built = await build({
      ...esbuildOptions(join(PROJECT_ROOT, 'functions', name, 'handler.ts'), join(folder, name, 'index.mjs')),
      absWorkingDir: PROJECT_ROOT,
      sourcemap: false,
    });
    const outputs = (built.metafile as Metafile).outputs;
    const output = Object.values(outputs).find((entry) => entry.entryPoint !== undefined);
    inputs.set(name, Object.keys(output?.inputs ?? {}));
  }
}, 120_000);
afterAll(() => rmSync(folder, { recursive: true, force: true }));

function holds(name: string, fragment: string): boolean {
  return (inputs.get(name) ?? []).some((path) => path.includes(fragment));
}

describe("each function's bundle", () => {
  it.each(NAMES)('%s holds exactly the AWS SDK clients its access lets it call', (name) => {
    const expected = clientsOf(FUNCTIONS[name].access).map((client) => CLIENTS[client][0]);
    const held = Object.values(CLIENTS)
      .map(([packageName]) => packageName)
      .filter((packageName) => holds(name, `node_modules/${packageName}/`));

    expect(held.sort()).toEqual(expected.sort());
  });

  it.each(NAMES)('%s holds the Wise client only when it reads the Wise credentials', (name) => {
    expect(holds(name, 'shared/wise/wise-oauth-client.ts')).toBe(
      FUNCTIONS[name].access.wiseCredentials === true,
    );
  });

  it.each(NAMES)(
    '%s leaves out undici, the full zod build, the configuration and event schemas and the local composition',
    (name) => {
      expect(inputs.get(name)?.length).toBeGreaterThan(0);
      for (const fragment of [
        'node_modules/undici/',
        'node_modules/zod/v4/classic/',
        'node_modules/zod/v4/locales/de.js',
        'shared/config/broker-config.ts',
        // The events' detail schemas serve the schema registry and the tests; publishing needs only the type.
        'shared/domain/connection-event-schemas.ts',
        'shared/runtime/runtime.ts',
        'local/',
      ]) {
        expect(holds(name, fragment), `${name} holds ${fragment}`).toBe(false);
      }
    },
  );
});
