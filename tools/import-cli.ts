import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { checkImportFile, outcomeFileFor, runImport } from './import-connections.ts';

/** Wise allows 1000 token calls a minute; the import stays well under, leaving room for the broker's sweep. */
export const DEFAULT_PER_MINUTE = 300;

const USAGE = `Imports existing Wise connections into the broker, one JSON object per line:
  {"connectionId": "acme-1", "refreshToken": "...", "userId": 123, "profileId": 456}
(userId and profileId are optional).

Usage: npm run import -- --file connections.jsonl --url https://API-ID.execute-api.REGION.amazonaws.com --region REGION
  --dry-run            check the whole file and stop; nothing is sent
  --per-minute N       imports started per minute at most (default ${DEFAULT_PER_MINUTE}; Wise allows 1000 token calls a minute)
  --replace            overwrite connections the broker already has under the same ids

Signs with the AWS SDK's default credential chain (environment, profile, SSO, instance role); the principal
needs the broker's import policy and "import" patterns covering the ids. Each line's outcome is written to
FILE.outcomes.jsonl; run the same command again to resume after Ctrl-C or a failure: lines already imported
are skipped. No token is ever printed.`;

/** Runs the command; returns the exit code (0 done, 1 a line failed or the run stopped, 2 bad usage or file). */
export async function main(argv: string[], print: (line: string) => void = console.log): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (error) {
    print(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    print(USAGE);
    return 0;
  }
  if (values.file === undefined) {
    print(`--file is required: the JSONL file of connections to import.\n\n${USAGE}`);
    return 2;
  }
  const perMinute = Number(values['per-minute']);
  if (!Number.isInteger(perMinute) || perMinute < 1 || perMinute > 1000) {
    print('--per-minute must be a whole number from 1 to 1000 (Wise allows 1000 token calls a minute).');
    return 2;
  }
  let text: string;
  try {
    text = await readFile(values.file, 'utf8');
  } catch (error) {
    print(`Cannot read ${values.file}: ${(error as Error).message}`);
    return 2;
  }
  const checked = checkImportFile(text);
  for (const bad of checked.bad) print(`line ${bad.line}: ${bad.problem}`);
  if (checked.bad.length > 0) {
    print(
      `${checked.bad.length} line(s) of ${values.file} must be fixed first; nothing was sent. Fix them and run again (--dry-run checks without sending).`,
    );
    return 2;
  }
  if (values['dry-run']) {
    print(
      `${checked.lines.length} connection(s) in ${values.file} are ready to import; nothing was sent (dry run). Outcomes will be written to ${outcomeFileFor(values.file)}.`,
    );
    return 0;
  }
  if (values.url === undefined || values.region === undefined) {
    print(`--url and --region are required to import: the broker's API URL and its region.\n\n${USAGE}`);
    return 2;
  }
  const controller = new AbortController();
  const stop = () => {
    print('Stopping after the line in progress...');
    controller.abort();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const summary = await runImport(checked, {
      file: values.file,
      url: values.url,
      region: values.region,
      credentials: fromNodeProviderChain(),
      perMinute,
      replace: values.replace === true,
      signal: controller.signal,
      print,
    });
    const { counts } = summary;
    print(
      `${counts.imported} imported, ${counts.skipped} skipped (done by an earlier run), ${counts.exists} already at the broker, ${counts.rejected} with a dead refresh token, ${counts.refused} refused, ${counts.unavailable} not reached. Outcomes: ${summary.outcomeFile}`,
    );
    return summary.stopped || counts.rejected + counts.refused + counts.unavailable > 0 ? 1 : 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      file: { type: 'string' },
      url: { type: 'string' },
      region: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      'per-minute': { type: 'string', default: String(DEFAULT_PER_MINUTE) },
      replace: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
