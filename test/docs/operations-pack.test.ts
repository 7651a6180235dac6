import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as cloudWatchLogs from '@aws-sdk/client-cloudwatch-logs';
import * as dynamodb from '@aws-sdk/client-dynamodb';
import * as eventBridge from '@aws-sdk/client-eventbridge';
import * as kms from '@aws-sdk/client-kms';
import * as secretsManager from '@aws-sdk/client-secrets-manager';
import { validateTrustPolicy } from '@cloud-copilot/iam-policy';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { brokerConfigSchema, parseBrokerConfig } from '#shared/config/broker-config.ts';
import { CONFIG_FILE_CONTEXT_KEY, stackNames } from '../../infra/broker-app.ts';
import { PROJECT_ROOT } from '../../infra/broker-function.ts';
import { buildApp, NO_BUNDLING, removeOutdirs } from '../infra/support.ts';
import {
  type AwsModels,
  awsCommandProblems,
  awsModels,
  botocoreDataDir,
  type CodeBlock,
  codeBlocks,
  shellCommands,
} from './docs-commands.ts';

/** The operations pack: every command and configuration in these files is checked below. */
const DOCS = [
  'docs/runbook.md',
  'docs/restore-from-backup.md',
  'docs/rotating-credentials.md',
  'docs/stages-and-ci.md',
  'docs/upgrading.md',
];
const WORKFLOW = 'docs/ci/github-actions-deploy.yml';
/** The programs the docs may run besides npm, npx cdk and aws: plain utilities with no broker meaning. */
const UTILITIES = new Set(['jq', 'rm', 'cat', 'date', 'test', 'curl', 'echo', 'apt-get']);

const read = (file: string) => readFileSync(join(PROJECT_ROOT, file), 'utf8');
const blocks: CodeBlock[] = DOCS.flatMap((file) => codeBlocks(file, read(file)));
const workflow = parseYaml(read(WORKFLOW)) as {
  jobs: Record<string, { steps: { run?: string; uses?: string }[] }>;
};
const scripts: { file: string; text: string }[] = [
  ...blocks.filter((block) => block.language === 'sh').map(({ file, text }) => ({ file, text })),
  ...Object.values(workflow.jobs).flatMap((job) =>
    job.steps.flatMap((step) => (step.run ? [{ file: WORKFLOW, text: step.run }] : [])),
  ),
];
const commands = scripts.flatMap(({ file, text }) =>
  shellCommands(text).map((argv) => ({ file, argv: argv[0] === 'sudo' ? argv.slice(1) : argv })),
);
const labelled = new Map(
  blocks.flatMap((block) => (block.label ? [[block.label, block.text] as const] : [])),
);

/** The AWS CLI's models: the project's own SDK clients where it has them, botocore's for the rest. */
function models(): AwsModels {
  return awsModels(botocoreDataDir(), {
    dynamodb,
    kms,
    secretsmanager: secretsManager,
    logs: cloudWatchLogs,
    events: eventBridge,
  });
}

const folder = mkdtempSync(join(tmpdir(), 'docs-configs-'));
afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
  removeOutdirs();
});

const built = new Map<string, ReturnType<typeof buildApp>>();

/** The example configuration files of the docs, synthesized (without bundling), once each. */
function synthesized(label: string): ReturnType<typeof buildApp> {
  const done = built.get(label);
  if (done) return done;
  const text = labelled.get(label);
  if (text === undefined) throw new Error(`the docs show no ${label}`);
  const file = join(folder, label.replaceAll('/', '_'));
  writeFileSync(file, text);
  const app = buildApp({ [CONFIG_FILE_CONTEXT_KEY]: file, ...NO_BUNDLING });
  built.set(label, app);
  return app;
}

/** The runbook's entries: `## \`Name\`` headings and the text up to the next heading. */
function runbookEntries(markdown: string): { name: string; pattern: RegExp; text: string }[] {
  const parts = markdown.split(/^## /m).slice(1);
  return parts.flatMap((part) => {
    const name = /^`([^`]+)`/.exec(part)?.[1];
    if (!name) return [];
    const pattern = new RegExp(
      `^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace('<function>', '[a-z][a-z-]*')}$`,
    );
    return [{ name, pattern, text: part }];
  });
}

/** The alarms (by name less their `wise-broker-<stage>-` prefix) that no runbook entry covers. */
function alarmsWithoutEntry(alarms: readonly string[], markdown: string): string[] {
  const entries = runbookEntries(markdown);
  return alarms.filter((alarm) => !entries.some((entry) => entry.pattern.test(alarm)));
}

describe('the runbook', () => {
  const runbook = read('docs/runbook.md');
  let alarms: string[];

  beforeAll(() => {
    const { stateless } = synthesized('deploy/prod.json');
    alarms = Object.values(Template.fromStack(stateless).findResources('AWS::CloudWatch::Alarm')).map(
      (alarm) => String(alarm.Properties.AlarmName).replace(/^wise-broker-prod-/, ''),
    );
  });

  it('has an entry for every alarm the stacks create', () => {
    expect(alarms.length).toBeGreaterThan(10);
    expect(alarmsWithoutEntry(alarms, runbook)).toEqual([]);
  });

  it('names an alarm that has no entry', () => {
    expect(alarmsWithoutEntry([...alarms, 'TableThrottled'], runbook)).toEqual(['TableThrottled']);
  });

  it('has no entry for an alarm the stacks do not create', () => {
    const stale = runbookEntries(runbook).filter(
      (entry) => !alarms.some((alarm) => entry.pattern.test(alarm)),
    );

    expect(stale.map((entry) => entry.name)).toEqual([]);
  });

  it('says in every entry what the alarm means, what to check, what to do and how urgent it is', () => {
    for (const entry of runbookEntries(runbook)) {
      for (const part of ['**What it means**', '**What to check**', '**What to do**', '**Urgency**']) {
        expect(entry.text, `${entry.name}: ${part}`).toContain(part);
      }
    }
  });

  it("names only log groups the stateless stack creates, by their CloudFormation name's prefix", () => {
    const { stateless } = synthesized('deploy/prod.json');
    const logGroups = Object.keys(Template.fromStack(stateless).findResources('AWS::Logs::LogGroup'));
    const named = [...read('docs/runbook.md').matchAll(/WiseBroker-<stage>-Stateless-(\w+Logs)/g)].map(
      (match) => match[1] as string,
    );
    const listed = [...read('docs/runbook.md').matchAll(/`(\w+Logs)`/g)].map((match) => match[1] as string);

    expect(named.length + listed.length).toBeGreaterThan(5);
    for (const prefix of [...named, ...listed]) {
      expect(
        logGroups.some((logicalId) => logicalId.startsWith(prefix)),
        prefix,
      ).toBe(true);
    }
  });
});

describe('the commands of the operations pack', () => {
  it('finds commands in every document and the workflow', () => {
    for (const file of [
      ...DOCS.filter((doc) => doc !== 'docs/upgrading.md'),
      WORKFLOW,
      'docs/upgrading.md',
    ]) {
      expect(
        commands.some((command) => command.file === file),
        file,
      ).toBe(true);
    }
  });

  it('runs only npm, npx cdk, aws and plain utilities', () => {
    const others = commands.filter(
      ({ argv }) => !['npm', 'npx', 'aws'].includes(argv[0] as string) && !UTILITIES.has(argv[0] as string),
    );

    expect(others.map(({ file, argv }) => `${file}: ${argv.join(' ')}`)).toEqual([]);
  });

  it('names only npm scripts the project has', () => {
    const { scripts: defined } = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    const npm = commands.filter(({ argv }) => argv[0] === 'npm');

    expect(npm.length).toBeGreaterThan(0);
    for (const { file, argv } of npm) {
      const [, verb = '', script = ''] = argv;
      if (verb === 'ci') continue;
      const name = verb === 'run' ? script : verb;
      expect(Object.keys(defined), `${file}: ${argv.join(' ')}`).toContain(name);
    }
  });

  it('gives the CDK CLI only commands and options it has, and context keys the configuration has', () => {
    const cdk = commands.filter(({ argv }) => argv[0] === 'npx');
    const help = new Map<string, string>();
    const configKeys = [...Object.keys(brokerConfigSchema.shape), CONFIG_FILE_CONTEXT_KEY];

    expect(cdk.length).toBeGreaterThan(5);
    for (const { file, argv } of cdk) {
      const where = `${file}: ${argv.join(' ')}`;
      expect(argv[1], where).toBe('cdk');
      const sub = argv[2] ?? '';
      if (!help.has(sub)) {
        help.set(
          sub,
          execFileSync(join(PROJECT_ROOT, 'node_modules', '.bin', 'cdk'), [sub, '--help'], {
            cwd: PROJECT_ROOT,
            encoding: 'utf8',
            env: { ...process.env, CI: 'true' },
          }),
        );
      }
      const text = help.get(sub) ?? '';
      expect(text, where).toContain(`cdk ${sub}`);
      for (let index = 3; index < argv.length; index += 1) {
        const arg = argv[index] as string;
        if (arg === '-c' || arg === '--context') {
          const key = (argv[index + 1] ?? '').split('=')[0] as string;
          expect(configKeys, where).toContain(key);
          index += 1;
        } else if (arg.startsWith('--')) {
          expect(text, where).toContain(arg.split('=')[0]);
        }
      }
    }
  });

  it('deploys the stacks the documented configuration files synthesize, by their names', () => {
    for (const { file, argv } of commands.filter(({ argv }) => argv[0] === 'npx')) {
      const context = argv.find((arg) => arg.startsWith(`${CONFIG_FILE_CONTEXT_KEY}=`));
      if (!context) continue;
      const label = context.slice(CONFIG_FILE_CONTEXT_KEY.length + 1);
      const { config, stateful, stateless } = synthesized(label);
      const names = stackNames(config.stage);
      expect([stateful.stackName, stateless.stackName]).toEqual([names.stateful, names.stateless]);
      for (const stack of argv.filter((arg) => arg.startsWith('WiseBroker-'))) {
        expect([names.stateful, names.stateless], `${file}: ${argv.join(' ')}`).toContain(stack);
      }
    }
  });

  it('gives the AWS CLI only services, operations and options it has', () => {
    const aws = commands.filter(({ argv }) => argv[0] === 'aws');
    const checker = models();

    expect(aws.length).toBeGreaterThan(10);
    const problems = aws.flatMap(({ file, argv }) =>
      awsCommandProblems(checker, argv).map((problem) => `${file}: ${problem}`),
    );
    expect(problems).toEqual([]);
  });

  it('refuses an aws command with a misspelt operation or option', () => {
    const checker = models();

    expect(awsCommandProblems(checker, ['aws', 'dynamodb', 'restore-table-to-point-in-tim'])).toEqual([
      'aws dynamodb restore-table-to-point-in-tim: no such operation',
    ]);
    expect(
      awsCommandProblems(checker, [
        'aws',
        'dynamodb',
        'restore-table-to-point-in-time',
        '--sse-specification-override',
        'Enabled=true,KmsKeyId=x',
      ]),
    ).toEqual([
      'aws dynamodb restore-table-to-point-in-time --sse-specification-override: no member KmsKeyId',
    ]);
    expect(awsCommandProblems(checker, ['aws', 'ssm', 'get-parameter', '--nam', 'x'])).toEqual([
      'aws ssm get-parameter: no option --nam',
    ]);
  });

  it("names only the stage's own resources: the secret, the parameter, the stacks and their outputs", () => {
    const { stateful, stateless } = synthesized('deploy/prod.json');
    const templates = [Template.fromStack(stateful), Template.fromStack(stateless)];
    const secret = templates.flatMap((template) =>
      Object.values(template.findResources('AWS::SecretsManager::Secret')).map((r) => r.Properties.Name),
    );
    const parameters = templates.flatMap((template) =>
      Object.values(template.findResources('AWS::SSM::Parameter')).map((r) => r.Properties.Name),
    );
    const outputs = templates.flatMap((template) => Object.keys(template.toJSON().Outputs ?? {}));
    const text = commands.map(({ argv }) => argv.join(' ')).join('\n');

    for (const name of text.match(/(?<!\/)wise-broker\/prod\/[\w-]+/g) ?? []) expect(secret).toContain(name);
    for (const name of text.match(/\/wise-broker\/prod\/api-url/g) ?? []) expect(parameters).toContain(name);
    for (const match of text.matchAll(/OutputKey=='(\w+)'/g)) expect(outputs).toContain(match[1]);
    expect(text).toContain('/wise-broker/prod/api-url');
  });
});

describe('the configuration in the operations pack', () => {
  it('synthesizes every configuration file the docs show', () => {
    expect([...labelled.keys()].sort()).toEqual(['deploy/prod.json', 'deploy/staging.json']);
    for (const label of labelled.keys()) {
      expect(synthesized(label).config.env).toBeDefined();
    }
  });

  it('accepts every configuration snippet and names a valid trust policy', () => {
    const json = blocks.filter((block) => block.language === 'json' && !block.label);

    expect(json.length).toBeGreaterThan(1);
    for (const block of json) {
      const value = JSON.parse(block.text) as Record<string, unknown>;
      if ('Statement' in value) {
        expect(validateTrustPolicy(value), block.file).toEqual([]);
      } else {
        expect(() => parseBrokerConfig(value, block.file)).not.toThrow();
      }
    }
  });

  it('names only configuration fields the schema has', () => {
    const text = DOCS.map(read).join('\n');
    const fields = [...text.matchAll(/`((?:wise|refresh|audit|functions|api)\.[A-Za-z.]+)`/g)].map(
      (match) => match[1] as string,
    );

    expect(fields.length).toBeGreaterThan(3);
    for (const field of fields) {
      let shape: unknown = brokerConfigSchema;
      for (const key of field.split('.')) {
        shape = objectShape(shape)?.[key];
        expect(shape, field).toBeDefined();
      }
    }
    for (const field of ['existingTableName', 'removalPolicy', 'alarmEmail']) {
      if (text.includes(`\`${field}\``)) expect(Object.keys(brokerConfigSchema.shape)).toContain(field);
    }
  });
});

/** The fields of a zod object schema, through its defaults, transforms and refinements. */
function objectShape(schema: unknown): Record<string, unknown> | undefined {
  let current = schema as { shape?: Record<string, unknown>; _zod?: { def?: Record<string, unknown> } };
  for (let depth = 0; depth < 10 && current; depth += 1) {
    if (current.shape && typeof current.shape === 'object') return current.shape;
    const def = current._zod?.def ?? {};
    current = (def.innerType ?? def.in ?? def.schema) as typeof current;
  }
  return undefined;
}
