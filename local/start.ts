import { parseArgs } from 'node:util';
import { SimulatorStateFileError } from '#local/simulator/index.ts';
import { BrokerError } from '#shared/domain/errors.ts';
import { type LocalBroker, startLocalBroker } from './local-broker.ts';
import { DEFAULT_CONFIG_FILE, type LocalConfig, loadLocalConfig } from './local-config.ts';
import { sweepLine } from './sweep-report.ts';

const USAGE = `Usage: npm start [-- --config FILE]

Runs the whole Wise token broker on this machine, with no AWS account: the Lambda handlers behind a
SigV4-checking local gateway, an embedded DynamoDB, a local KMS / Secrets Manager / EventBridge, the
refresh schedule, and the Wise simulator (or a real Wise sandbox when local.wiseCredentials is set).

  --config FILE   the configuration file (default: ${DEFAULT_CONFIG_FILE})
  --help          this text`;

function banner(broker: LocalBroker, config: LocalConfig): string {
  const [caller] = config.local.credentials;
  const lines = [
    'Wise token broker is running locally.',
    '',
    `  broker API         ${broker.url}`,
    `  OAuth callback     ${broker.redirectUri}`,
    `  Wise authorize     ${broker.authorizeUrl}`,
    broker.simulator
      ? `  Wise simulator     ${broker.simulator.url} (control interface under ${broker.simulator.url}/__control/)`
      : '  Wise               the sandbox configured in local.wiseCredentials',
    `  configuration      ${config.source}`,
    `  data               ${config.local.dataDir ?? 'in memory (lost on exit)'}`,
    `  refresh sweep      every ${config.broker.refresh.sweepSeconds} s (a line after each)`,
    broker.files
      ? `  audit trail        ${broker.files.audit}\n  metrics            ${broker.files.metrics}`
      : '  audit trail        standard output (no data folder)',
    '',
    'Local caller credentials (sign requests with SigV4, service execute-api, region ' +
      config.local.region +
      '):',
    ...config.local.credentials.map(
      (credential) =>
        `  ${credential.principal}\n    access key ${credential.accessKeyId}  secret ${credential.secretAccessKey}`,
    ),
  ];
  if (caller) {
    lines.push(
      '',
      'Try it:',
      `  curl -s --aws-sigv4 "aws:amz:${config.local.region}:execute-api" --user "${caller.accessKeyId}:${caller.secretAccessKey}" \\`,
      `    -H 'content-type: application/json' -d '{"connectionId":"acme-1"}' ${broker.url}/connect-sessions`,
      '  then open the authorizeUrl it answers in a browser, approve, and vend the token:',
      `  curl -s --aws-sigv4 "aws:amz:${config.local.region}:execute-api" --user "${caller.accessKeyId}:${caller.secretAccessKey}" \\`,
      `    -H 'content-type: application/json' -d '{"connectionId":"acme-1"}' ${broker.url}/tokens`,
    );
  }
  lines.push('', 'Press Ctrl-C to stop.');
  return lines.join('\n');
}

async function main(): Promise<void> {
  // Everything the local run writes (tokens, key material, the Wise secret) is for this user alone.
  process.umask(0o077);
  const { values } = parseArgs({
    options: {
      config: { type: 'string', default: DEFAULT_CONFIG_FILE },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const config = loadLocalConfig(values.config);
  const broker = await startLocalBroker(config, {
    onSweep: ({ summary, nextDueAt }) => console.log(sweepLine(summary, nextDueAt, Date.now())),
  });
  console.log(banner(broker, config));

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the local broker...`);
    broker.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('The local broker did not stop cleanly:', error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
  } else if (code === 'EADDRINUSE') {
    const { address, port } = error as { address?: string; port?: number };
    console.error(
      `${address ?? 'The address'}:${port ?? ''} is already in use: is another \`npm start\` running? ` +
        'Stop it (Ctrl-C in its terminal), or give this one other ports with local.port, local.simulator.port ' +
        'and local.awsPort in a configuration file of its own (npm start -- --config FILE).',
    );
  } else if (error instanceof BrokerError || error instanceof SimulatorStateFileError) {
    // A sentence that says what to fix; a stack would only bury it.
    console.error(error.message);
  } else {
    console.error(error);
  }
  process.exit(1);
});
