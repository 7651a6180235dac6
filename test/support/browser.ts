import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';

/**
 * Where the system's Chromium is looked for (Debian's `chromium` package). `SYSTEM_CHROMIUM_PATH`
 * points the lookup elsewhere; a path that does not exist makes the tests use the bundled browser.
 */
export const SYSTEM_CHROMIUM_PATH = process.env.SYSTEM_CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Flags for this closed network: no background connections, no GPU, no sandbox (tests run as root). */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Which Chromium a test gets: the system's, or the one shipped inside `@sparticuz/chromium`. */
export type ChromiumSource = 'system' | 'bundled';

/** The system Chromium when it is installed at `systemPath`, otherwise the one `npm ci` brought. */
export function chromiumSource(systemPath: string = SYSTEM_CHROMIUM_PATH): ChromiumSource {
  try {
    accessSync(systemPath, constants.X_OK);
    return 'system';
  } catch {
    return 'bundled';
  }
}

/**
 * The path of the Chromium shipped inside the `@sparticuz/chromium` package, unpacked from the package's
 * own files on first use. Never a URL: nothing is downloaded.
 *
 * The package unpacks into the temporary folder and takes any file already there as complete, so two
 * test files starting at once could launch a half-written browser. Here each unpacks into a folder of
 * its own, renamed into place only once complete; the first rename wins and the others are discarded.
 */
export async function bundledChromiumPath(): Promise<string> {
  const manifest = new URL('../../node_modules/@sparticuz/chromium/package.json', import.meta.url);
  const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
  const home = join(tmpdir(), `wise-broker-chromium-${version}`);
  const executable = join(home, 'chromium');
  if (existsSync(executable)) return executable;

  const staging = await mkdtemp(join(tmpdir(), 'wise-broker-chromium-unpacking-'));
  const { default: bundled } = await import('@sparticuz/chromium');
  const savedTmpdir = process.env.TMPDIR;
  // The package unpacks into `os.tmpdir()`, which follows TMPDIR.
  process.env.TMPDIR = staging;
  try {
    await bundled.executablePath();
  } finally {
    if (savedTmpdir === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmpdir;
  }
  try {
    await rename(staging, home);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    if (!existsSync(executable)) throw error;
  }
  return executable;
}

/**
 * Launches headless Chromium: the system's when found, otherwise the bundled one. The project never
 * downloads a browser at run time.
 */
export async function launchChromium(source: ChromiumSource = chromiumSource()): Promise<Browser> {
  const executablePath = source === 'system' ? SYSTEM_CHROMIUM_PATH : await bundledChromiumPath();
  return chromium.launch({ executablePath, args: FLAGS });
}
