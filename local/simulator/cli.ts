import { parseArgs } from 'node:util';
import { SimulatorStateFileError, startSimulator } from './index.ts';
import type { RunningSimulator, SimulatorOptions } from './options.ts';

const USAGE = `Usage: npm run simulator -- [options]

  --host HOST                    interface to bind (default 127.0.0.1)
  --port N                       port, 0 for any free one (default 4010)
  --client-id ID                 the registered client id (default broker-local-client)
  --client-secret SECRET         its secret (default broker-local-secret)
  --redirect-uri URI             the one registered redirect URI (default http://127.0.0.1:3000/oauth/callback)
  --access-token-seconds S       access token lifetime (default 43199)
  --refresh-token-seconds S      refresh token lifetime (default 628639555)
  --code-seconds S               authorization code lifetime (default 1800)
  --invalid-grant-status 400|401 status of invalid_grant answers (default 400)
  --rotate-refresh-tokens        a refresh returns a new refresh token and the old one dies
  --omit-expires-at              leave out expires_at and refresh_token_expires_* (pre-2025 answers)
  --state-file FILE              keep users, tokens, the client secret and the clock in FILE across restarts
  --help                         show this text`;

/** The simulator's options from command-line arguments; throws a sentence a person can act on. */
export function optionsFromArgs(args: string[]): SimulatorOptions | 'help' {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      host: { type: 'string' },
      port: { type: 'string', default: '4010' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'redirect-uri': { type: 'string' },
      'access-token-seconds': { type: 'string' },
      'refresh-token-seconds': { type: 'string' },
      'code-seconds': { type: 'string' },
      'invalid-grant-status': { type: 'string' },
      'rotate-refresh-tokens': { type: 'boolean', default: false },
      'omit-expires-at': { type: 'boolean', default: false },
      'state-file': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';
  const options: SimulatorOptions = {
    port: wholeNumber('--port', values.port),
    rotateRefreshTokens: values['rotate-refresh-tokens'],
    omitExpiresAt: values['omit-expires-at'],
  };
  if (values.host !== undefined) options.host = values.host;
  if (values['client-id'] !== undefined) options.clientId = values['client-id'];
  if (values['client-secret'] !== undefined) options.clientSecret = values['client-secret'];
  if (values['redirect-uri'] !== undefined) options.redirectUri = values['redirect-uri'];
  if (values['state-file'] !== undefined) {
    if (values['state-file'] === '') throw new Error('--state-file must name a file.');
    options.stateFile = values['state-file'];
  }
  const seconds = {
    accessTokenSeconds: values['access-token-seconds'],
    refreshTokenSeconds: values['refresh-token-seconds'],
    codeSeconds: values['code-seconds'],
  };
  for (const [key, value] of Object.entries(seconds) as [keyof typeof seconds, string | undefined][]) {
    if (value !== undefined) options[key] = wholeNumber(`--${kebab(key)}`, value);
  }
  const status = values['invalid-grant-status'];
  if (status !== undefined) {
    if (status !== '400' && status !== '401') throw new Error('--invalid-grant-status must be 400 or 401.');
    options.invalidGrantStatus = status === '400' ? 400 : 401;
  }
  return options;
}

function wholeNumber(flag: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new Error(`${flag} must be a whole number, not "${value}".`);
  return Number(value);
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

async function main(): Promise<void> {
  let options: SimulatorOptions | 'help';
  try {
    options = optionsFromArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (options === 'help') {
    console.log(USAGE);
    return;
  }
  let simulator: RunningSimulator;
  try {
    simulator = await startSimulator(options);
  } catch (error) {
    // The sentence names the file and what to do; the stack would only bury it.
    if (!(error instanceof SimulatorStateFileError)) throw error;
    console.error(error.message);
    process.exitCode = 1;
    return;
  }
  const stop = () => {
    simulator.close().then(
      () => console.log('Wise simulator stopped.'),
      (error: unknown) => {
        console.error(`Wise simulator did not stop cleanly: ${(error as Error).message}`);
        process.exitCode = 1;
      },
    );
  };
  // Handlers first: whoever waits for the banner may signal at once.
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.log(
    [
      `Wise simulator listening on ${simulator.url}`,
      `  authorization page: ${simulator.authorizeUrl}`,
      `  token endpoint:     ${simulator.url}/oauth/token`,
      `  control interface:  ${simulator.url}/__control/ (see local/simulator/README.md)`,
    ].join('\n'),
  );
}

if (import.meta.main) await main();
