import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { DeployedFunction } from './deployment.ts';
import { type InvocationOutcome, RuntimeApi } from './runtime-api.ts';

/** The runtime interface client AWS's Node.js base images run: its entry script. */
const RIC_ENTRY = createRequire(import.meta.url).resolve('aws-lambda-ric');

/** The function's credentials, as Lambda gives a function its role's session. */
export interface RoleCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

export interface FunctionHostOptions {
  fn: DeployedFunction;
  credentials: RoleCredentials;
  /** Variables the rehearsal adds: the local endpoints (`AWS_ENDPOINT_URL_*`). */
  extraEnvironment: Record<string, string>;
  /** A folder of its own: the code is copied to `task/`, the process output goes to `output.log`. */
  workDir: string;
}

const OUTPUT_TAIL_LINES = 40;
/** The share of the function's memory given to V8's old space, as Lambda's Node.js bootstrap does. */
const HEAP_SHARE = 0.9;

/**
 * One function in its own Node.js process under the AWS Lambda Runtime Interface Client, as Lambda runs
 * it: the asset folder copied alone into `LAMBDA_TASK_ROOT` (no node_modules above it to hide a missing
 * module), its `Handler`, its environment with Lambda's own variables, and the Runtime API it polls.
 */
export class FunctionHost {
  readonly fn: DeployedFunction;
  /** From spawning the process to its first `GET /invocation/next`. */
  initMs: number | undefined;
  initError: { errorType: string; errorMessage: string } | undefined;
  invocations = 0;
  readonly #options: FunctionHostOptions;
  readonly #outputTail: string[] = [];
  readonly #errors: { at: number; text: string }[] = [];
  #output = '';
  #api: RuntimeApi | undefined;
  #process: ChildProcess | undefined;
  #log: WriteStream | undefined;
  #ready: Promise<void> | undefined;
  #exit: { code: number | null; signal: string | null } | undefined;

  constructor(options: FunctionHostOptions) {
    this.fn = options.fn;
    this.#options = options;
  }

  /** Starts the process; resolves when its init is over (its first `/invocation/next`) or it failed. */
  start(): Promise<void> {
    this.#ready ??= this.#start();
    return this.#ready;
  }

  async #start(): Promise<void> {
    const { fn, workDir, credentials } = this.#options;
    const taskRoot = join(workDir, 'task');
    mkdirSync(workDir, { recursive: true });
    cpSync(fn.assetDir, taskRoot, { recursive: true });
    this.#log = createWriteStream(join(workDir, 'output.log'));
    let startedAt = 0;
    let settle: () => void = () => {};
    const ready = new Promise<void>((resolve) => {
      settle = resolve;
    });
    this.#api = new RuntimeApi(fn.arn, {
      onFirstNext: () => {
        this.initMs = performance.now() - startedAt;
        settle();
      },
      onInitError: (errorType, errorMessage) => {
        this.initError = { errorType, errorMessage };
        settle();
      },
    });
    const runtimeApi = await this.#api.start();
    const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
    const environment: Record<string, string> = {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      ...fn.environment,
      ...this.#options.extraEnvironment,
      // Lambda's reserved variables: a function's own environment cannot set these.
      _HANDLER: fn.handler,
      LAMBDA_TASK_ROOT: taskRoot,
      LAMBDA_RUNTIME_DIR: taskRoot,
      AWS_LAMBDA_RUNTIME_API: runtimeApi,
      AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
      AWS_LAMBDA_FUNCTION_NAME: fn.name,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memorySize),
      AWS_LAMBDA_LOG_GROUP_NAME: fn.logGroupName,
      AWS_LAMBDA_LOG_STREAM_NAME: `${day}/[$LATEST]${randomBytes(16).toString('hex')}`,
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_REGION: fn.stack.region,
      AWS_DEFAULT_REGION: fn.stack.region,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_SESSION_TOKEN: credentials.sessionToken,
      AWS_XRAY_CONTEXT_MISSING: 'LOG_ERROR',
      AWS_XRAY_DAEMON_ADDRESS: '127.0.0.1:2000',
    };
    startedAt = performance.now();
    // Lambda's Node.js bootstrap gives the old space the function's memory less a tenth; so does the rehearsal.
    const heapMb = Math.floor(fn.memorySize * HEAP_SHARE);
    const child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, RIC_ENTRY], {
      cwd: taskRoot,
      env: environment,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#process = child;
    const capture = (chunk: Buffer) => {
      this.#log?.write(chunk);
      this.#output += chunk.toString('utf8');
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        this.#outputTail.push(line);
        if (this.#outputTail.length > OUTPUT_TAIL_LINES) this.#outputTail.shift();
        const error = errorOf(line);
        if (error) this.#errors.push({ at: Date.now(), text: error });
      }
    };
    child.stdout?.on('data', capture);
    child.stderr?.on('data', capture);
    child.on('exit', (code, signal) => {
      this.#exit = { code, signal };
      const message = `The function's process exited (code ${code}, signal ${signal}). Its last output:\n${this.outputTail()}`;
      this.initError ??=
        this.initMs === undefined ? { errorType: 'Runtime.ExitError', errorMessage: message } : undefined;
      this.#api?.fail('Runtime.ExitError', message);
      settle();
    });
    await ready;
  }

  /** Invokes the function with one event, with the deadline of its `Timeout`. */
  async invoke(event: unknown): Promise<InvocationOutcome> {
    await this.start();
    if (!this.#api) throw new Error('The function was not started.');
    this.invocations += 1;
    const outcome = await this.#api.invoke(event, this.fn.timeoutSeconds * 1000);
    if (!outcome.ok && outcome.errorType === 'Sandbox.Timedout') {
      // Lambda ends an execution environment whose invocation timed out.
      this.#process?.kill('SIGKILL');
    }
    return outcome;
  }

  /** What the function logged at level ERROR since `epochMs`: each line's message and error. */
  errorsSince(epochMs: number): string[] {
    return this.#errors.filter((entry) => entry.at >= epochMs).map((entry) => entry.text);
  }

  /** Every line the process wrote, as Lambda would put it into the function's log group. */
  outputLines(): string[] {
    return this.#output.split('\n').filter((line) => line.trim() !== '');
  }

  /** Whether the process ever wrote `text` to its output (which Lambda sends to CloudWatch Logs). */
  wrote(text: string): boolean {
    return this.#output.includes(text);
  }

  /** The last lines the process wrote. */
  outputTail(): string {
    return this.#outputTail.join('\n');
  }

  get exited(): boolean {
    return this.#exit !== undefined;
  }

  async stop(): Promise<void> {
    const child = this.#process;
    if (child && this.#exit === undefined) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
    await this.#api?.close();
    await new Promise<void>((resolve) => (this.#log ? this.#log.end(() => resolve()) : resolve()));
  }
}

/** A structured log line at level ERROR as `message: error name: error message`; undefined for others. */
function errorOf(line: string): string | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const entry = JSON.parse(line) as {
      level?: string;
      message?: string;
      error?: { name?: string; message?: string };
    };
    if (entry.level !== 'ERROR') return undefined;
    const error = entry.error ? `: ${entry.error.name ?? 'Error'}: ${entry.error.message ?? ''}` : '';
    return `${entry.message ?? ''}${error}`;
  } catch {
    return undefined;
  }
}
