import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A fenced block of a Markdown file: its language, text, and the `file.json` label on the line before. */
export interface CodeBlock {
  file: string;
  language: string;
  text: string;
  /** `deploy/prod.json` when the block follows a line reading `` `deploy/prod.json`: ``. */
  label?: string;
}

/** Every fenced block of a Markdown text, also those indented inside list items. */
export function codeBlocks(file: string, markdown: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = markdown.split('\n');
  let open: { language: string; indent: number; lines: string[]; label?: string } | undefined;
  let previous = '';
  for (const line of lines) {
    const fence = /^(\s*)```(\S*)\s*$/.exec(line);
    if (!open && fence) {
      const label = /^\s*`([^`]+\.json)`:\s*$/.exec(previous)?.[1];
      open = {
        language: fence[2] ?? '',
        indent: fence[1]?.length ?? 0,
        lines: [],
        ...(label ? { label } : {}),
      };
      continue;
    }
    if (open && /^\s*```\s*$/.test(line)) {
      blocks.push({
        file,
        language: open.language,
        text: open.lines.join('\n'),
        ...(open.label ? { label: open.label } : {}),
      });
      open = undefined;
      continue;
    }
    if (open) {
      open.lines.push(line.slice(Math.min(open.indent, line.length - line.trimStart().length)));
    } else if (line.trim() !== '') {
      previous = line;
    }
  }
  return blocks;
}

/** The text inside `$( ... )` starting at `start` (just after `$(`), and where it ends. */
function substitution(text: string, start: number): { inner: string; end: number } {
  let depth = 1;
  let quote: string | undefined;
  for (let index = start; index < text.length; index += 1) {
    const char = text[index];
    if (quote === "'") {
      if (char === "'") quote = undefined;
      continue;
    }
    if (char === "'" && quote === undefined) quote = "'";
    else if (char === '"') quote = quote === '"' ? undefined : '"';
    else if (char === '(' && text[index - 1] === '$') depth += 1;
    else if (char === ')' && quote === undefined) {
      depth -= 1;
      if (depth === 0) return { inner: text.slice(start, index), end: index + 1 };
    }
  }
  return { inner: text.slice(start), end: text.length };
}

/**
 * The commands of a shell script, each as its words: continuation lines joined, comments dropped, the
 * commands inside `$(...)` included, pipelines and lists (`|`, `&&`, `||`, `;`) split, redirections and
 * leading variable assignments removed. Quotes are removed from words; `$(...)` becomes `$SUBST`.
 */
export function shellCommands(script: string): string[][] {
  const commands: string[][] = [];
  const logical = script.replace(/\\\n/g, ' ');
  for (const rawLine of logical.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    let flat = '';
    for (let index = 0; index < line.length; index += 1) {
      if (line[index] === '$' && line[index + 1] === '(') {
        const { inner, end } = substitution(line, index + 2);
        commands.push(...shellCommands(inner));
        flat += '$SUBST';
        index = end - 1;
      } else {
        flat += line[index];
      }
    }
    let words: string[] = [];
    let word = '';
    let inWord = false;
    let quote: string | undefined;
    const endWord = () => {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    };
    const endCommand = () => {
      endWord();
      const argv = withoutRedirections(words);
      while (argv.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(argv[0] as string)) argv.shift();
      if (argv.length > 0) commands.push(argv);
      words = [];
    };
    for (let index = 0; index < flat.length; index += 1) {
      const char = flat[index] as string;
      if (quote) {
        if (char === quote) quote = undefined;
        else word += char;
        continue;
      }
      if (char === "'" || char === '"') {
        quote = char;
        inWord = true;
      } else if (char === '#' && !inWord) {
        break;
      } else if (/\s/.test(char)) {
        endWord();
      } else if (char === '|' || char === ';' || (char === '&' && flat[index + 1] === '&')) {
        if (flat[index + 1] === char) index += 1;
        endCommand();
      } else {
        word += char;
        inWord = true;
      }
    }
    endCommand();
  }
  return commands;
}

function withoutRedirections(words: string[]): string[] {
  const argv: string[] = [];
  for (let index = 0; index < words.length; index += 1) {
    const word = words[index] as string;
    if (/^\d?[<>]{1,2}$/.test(word)) {
      index += 1;
      continue;
    }
    if (/^\d?[<>]{1,2}\S/.test(word)) continue;
    argv.push(word);
  }
  return argv;
}

/** A botocore service model, as the AWS CLI reads it. */
interface ServiceModel {
  operations: Record<string, { input?: { shape: string } }>;
  shapes: Record<string, { type: string; members?: Record<string, { shape: string }> }>;
}

/** An operation's input members, each with the members of its structure when it is one. */
export type OperationInput = Map<string, readonly string[] | undefined>;

/** Where the documented `aws` commands are looked up. */
export interface AwsModels {
  /** The operations of a service by their CLI names, or undefined for a service the CLI does not have. */
  operations(service: string): Map<string, () => OperationInput> | undefined;
  /** The operation a waiter (`aws <service> wait <waiter>`) polls. */
  waiterOperation(service: string, waiter: string): string | undefined;
}

/** botocore's `xform_name`: `RestoreTableToPointInTime` → `restore-table-to-point-in-time`. */
export function cliName(name: string): string {
  return name
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replaceAll('_', '-');
}

/** The AWS CLI's own options, valid for every command. */
const AWS_CLI_GLOBAL_OPTIONS = new Set([
  'query',
  'output',
  'region',
  'profile',
  'no-cli-pager',
  'cli-binary-format',
  'endpoint-url',
  'debug',
]);

/** Where Debian's python3-botocore keeps the service models (`.ci/run` installs it). */
export function botocoreDataDir(): string {
  const python = process.env.DEBIAN_PYTHON ?? '/usr/bin/python3';
  try {
    const dir = execFileSync(
      python,
      ['-c', 'import botocore, os; print(os.path.join(os.path.dirname(botocore.__file__), "data"))'],
      { encoding: 'utf8' },
    ).trim();
    if (existsSync(dir)) return dir;
  } catch {
    // Reported below with the fix.
  }
  throw new Error(
    `${python} cannot import botocore, whose service models check the documented aws commands: install Debian's python3-botocore (apt-get install -y python3-botocore, as .ci/run does).`,
  );
}

function latestModelFile(dataDir: string, service: string, name: string): string | undefined {
  const folder = join(dataDir, service);
  if (!existsSync(folder)) return undefined;
  const version = readdirSync(folder).sort().at(-1);
  const file = version === undefined ? undefined : join(folder, version, name);
  return file && existsSync(file) ? file : undefined;
}

/** A schema of the AWS SDK for JavaScript v3: `[3, namespace, name, traits, memberNames, memberSchemas]`. */
type SdkSchema = readonly unknown[];

function sdkStructureMembers(schema: unknown): { names: string[]; schemas: unknown[] } | undefined {
  const resolved = typeof schema === 'function' ? (schema as () => unknown)() : schema;
  if (!Array.isArray(resolved) || resolved[0] !== 3) return undefined;
  return { names: resolved[4] as string[], schemas: resolved[5] as unknown[] };
}

/**
 * botocore's models of every service, with the model of the AWS SDK for JavaScript v3 taking precedence
 * for the services whose client the project installs (`sdkClients`, by CLI service name): those follow
 * the current API, while Debian's botocore (1.29) predates later members such as DynamoDB's
 * `DeletionProtectionEnabled`.
 */
export function awsModels(
  dataDir: string,
  sdkClients: Readonly<Record<string, Record<string, unknown>>>,
): AwsModels {
  return {
    operations(service) {
      const client = sdkClients[service];
      if (client) {
        const operations = new Map<string, () => OperationInput>();
        for (const [name, value] of Object.entries(client)) {
          if (!name.endsWith('$') || !Array.isArray(value) || value[0] !== 9) continue;
          operations.set(cliName(name.slice(0, -1)), () => {
            const input: OperationInput = new Map();
            const members = sdkStructureMembers((value as SdkSchema)[4]);
            members?.names.forEach((member, index) => {
              input.set(cliName(member), sdkStructureMembers(members.schemas[index])?.names);
            });
            return input;
          });
        }
        return operations;
      }
      const file = latestModelFile(dataDir, service, 'service-2.json');
      if (!file) return undefined;
      const model = JSON.parse(readFileSync(file, 'utf8')) as ServiceModel;
      const operations = new Map<string, () => OperationInput>();
      for (const [name, operation] of Object.entries(model.operations)) {
        operations.set(cliName(name), () => {
          const input: OperationInput = new Map();
          const shape = operation.input ? model.shapes[operation.input.shape] : undefined;
          for (const [member, target] of Object.entries(shape?.members ?? {})) {
            const nested = model.shapes[target.shape];
            input.set(
              cliName(member),
              nested?.type === 'structure' ? Object.keys(nested.members ?? {}) : undefined,
            );
          }
          return input;
        });
      }
      return operations;
    },
    waiterOperation(service, waiter) {
      const file = latestModelFile(dataDir, service, 'waiters-2.json');
      if (!file) return undefined;
      const waiters = (
        JSON.parse(readFileSync(file, 'utf8')) as { waiters: Record<string, { operation: string }> }
      ).waiters;
      const operation = Object.entries(waiters).find(([name]) => cliName(name) === waiter)?.[1].operation;
      return operation === undefined ? undefined : cliName(operation);
    },
  };
}

/**
 * What is wrong with an `aws` command: the service, the operation (or waiter), each `--option` (an
 * input member, or one of the CLI's own), and the keys of a `Key=value,...` shorthand given to a
 * structure. Empty when it is a command the AWS CLI runs.
 */
export function awsCommandProblems(models: AwsModels, argv: readonly string[]): string[] {
  const [, service = '', command = '', ...rest] = argv;
  const operations = models.operations(service);
  if (!operations) return [`aws ${service}: no such AWS CLI service`];
  let operation = command;
  let args = rest;
  if (command === 'wait') {
    const waiter = rest[0] ?? '';
    const polled = models.waiterOperation(service, waiter);
    if (!polled) return [`aws ${service} wait ${waiter}: no such waiter`];
    operation = polled;
    args = rest.slice(1);
  }
  const input = operations.get(operation)?.();
  if (!input) return [`aws ${service} ${command}: no such operation`];
  const problems: string[] = [];
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index] as string;
    if (!arg.startsWith('--')) continue;
    const option = arg.slice(2).split('=')[0] as string;
    if (AWS_CLI_GLOBAL_OPTIONS.has(option)) continue;
    const name = input.has(option) ? option : option.replace(/^no-/, '');
    if (!input.has(name)) {
      problems.push(`aws ${service} ${command}: no option --${option}`);
      continue;
    }
    const structure = input.get(name);
    const value = args[index + 1];
    if (value && structure && /^\w+=[^,]*(,\w+=[^,]*)*$/.test(value)) {
      for (const key of value.split(',').map((pair) => pair.split('=')[0] as string)) {
        if (!structure.includes(key))
          problems.push(`aws ${service} ${command} --${option}: no member ${key}`);
      }
    }
  }
  return problems;
}
