import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { startGateway } from '#local/gateway/index.ts';
import type { GatewayMethod, GatewayRoute, LocalCredential, RunningGateway } from '#local/gateway/types.ts';
import { startSimulator } from '#local/simulator/index.ts';
import {
  type AssemblyStack,
  type CloudAssembly,
  PROJECT_ROOT,
  readAssembly,
  synthesize,
} from './assembly.ts';
import { readCustomDomains, type ServedDomain, throughCustomDomain } from './custom-domains.ts';
import { type DeployedFunction, type DeployedRoute, type Deployment, readDeployment } from './deployment.ts';
import { RehearsalError } from './errors.ts';
import { FunctionHost } from './function-host.ts';
import { type JourneyCaller, type JourneyStep, runJourney } from './journey.ts';
import { type MetricCoverage, metricCoverage, metricsInOutput } from './metric-coverage.ts';
import { actionMatches, type Grant, PolicyEvaluator } from './policy-check.ts';
import { CallRecorder, type RecordedCall } from './recorder.ts';
import { restEventOf } from './rest-event.ts';
import { restoredTable } from './restored-table.ts';
import { startStandIns } from './stand-ins.ts';
import { UNEMITTED_METRIC_REASONS } from './unemitted-metrics.ts';
import { unusedGrantReason } from './unused-grants.ts';
import {
  brokerConfigOf,
  callersOf,
  pointAtWise,
  REHEARSAL_RETURN_URL,
  returnUrlOf,
  WISE_STAND_IN,
} from './wise-stand-in.ts';

/** One unused permission of a function's role, and why it stays. */
export interface UnusedPermission {
  policy: string;
  statement: number;
  action: string;
  resources: string[];
  condition?: Grant['condition'];
  reason?: string;
}

/** The rehearsal's figures for one function. */
export interface FunctionReport {
  function: string;
  logicalId: string;
  handler: string;
  bundleBytes: number;
  /** From the process's start to its first `/invocation/next`; undefined when it never got there. */
  initMs?: number;
  invocations: number;
  callsByOperation: Record<string, number>;
  denials: number;
  unusedPermissions: UnusedPermission[];
}

export interface RehearsalResult {
  ok: boolean;
  /** Each sentence names one cause; empty when the rehearsal passed. */
  failures: string[];
  /** What the rehearsal could not cover, without failing: a function the journey never invoked. */
  warnings: string[];
  assembly: string;
  functions: FunctionReport[];
  journey: JourneyStep[];
  /**
   * The metrics the functions emitted during the journey (their embedded-metric-format lines), with the
   * alarms and dashboard widgets that watch each, and what the alarms and widgets watch that the journey
   * did not emit. Only once the whole journey passed.
   */
  metrics?: MetricCoverage;
  calls: RecordedCall[];
  durationMs: number;
}

export interface RehearsalOptions {
  /** A synthesized cloud assembly to take as it is; without it the app is synthesized first. */
  assemblyDir?: string;
  /** Where each function's copied code and process output go; a temporary folder by default. */
  workDir?: string;
  /** Synthesize the private access variant: the IAM routes on a private REST API (ignored with `assemblyDir`). */
  privateAccess?: boolean;
  /** Lifetime of the Wise stand-in's access tokens: the sweep's refresh is due 60 s before their end. */
  accessTokenSeconds?: number;
  /** Synthesize the variant with its own domain and brand, {@link REHEARSAL_DOMAIN} (ignored with `assemblyDir`). */
  customDomain?: boolean;
  /**
   * Synthesize the variant that uses an existing table, {@link REHEARSAL_EXISTING_TABLE} (ignored with
   * `assemblyDir`). Whenever the configuration names `existingTableName`, the rehearsal creates that table
   * as a restore from point-in-time recovery would leave it.
   */
  existingTable?: boolean;
}

/** How long the journey may wait for a token to fall due. */
const MAX_WAIT_MS = 120_000;
/** Wise's tokens then fall due 10 s after they are issued (EXPIRY_SKEW_MS of 60 s before the expiry). */
const DEFAULT_ACCESS_TOKEN_SECONDS = 70;

/**
 * Rehearses a deployment: synthesizes the app (or takes the given assembly), runs every function of the
 * templates from its asset folder under the Lambda Runtime Interface Client against local stand-ins of
 * every AWS resource, routes requests as the template's HTTP API does, delivers the schedule's event,
 * drives the broker's whole journey against the Wise simulator, and checks each AWS call against the
 * template's IAM and key policies.
 */
export async function rehearse(options: RehearsalOptions = {}): Promise<RehearsalResult> {
  const startedAt = performance.now();
  const workDir = options.workDir ?? mkdtempSync(join(tmpdir(), 'rehearsal-'));
  const failures: string[] = [];
  const warnings: string[] = [];
  const journey: JourneyStep[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  let assemblyDir = options.assemblyDir;
  let deployment: Deployment | undefined;
  let assembly: CloudAssembly | undefined;
  let recorder: CallRecorder | undefined;
  const hosts = new Map<string, FunctionHost>();
  const bundleBytes = new Map<string, number>();
  const secrets = new Set<string>([WISE_STAND_IN.clientSecret]);
  let evaluator: PolicyEvaluator | undefined;
  try {
    if (!assemblyDir) {
      assemblyDir = join(workDir, 'cdk.out');
      await synthesizeForRehearsal(assemblyDir, {
        ...(options.privateAccess ? { privateAccess: REHEARSAL_PRIVATE_ACCESS } : {}),
        ...(options.customDomain ? REHEARSAL_DOMAIN : {}),
        ...(options.existingTable ? { existingTableName: REHEARSAL_EXISTING_TABLE } : {}),
      });
    }
    assembly = readAssembly(assemblyDir);
    const config = brokerConfigOf(assembly);
    const apiPort = await freePort();
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const standIns = await startStandIns(assembly, {
      apiEndpoint: () => apiUrl,
      secretValue: (_stack, _id, templateValue) => WISE_STAND_IN.secretValue(config, templateValue),
      existingTables:
        config.existingTableName === undefined ? [] : [restoredTable(assembly, config.existingTableName)],
    });
    closers.push(() => standIns.close());
    deployment = readDeployment(assembly, standIns);
    for (const fn of deployment.functions) bundleBytes.set(fn.id, folderBytes(fn.assetDir));
    checkRuntimes(deployment, failures);

    const domains = readCustomDomains(assembly);
    failures.push(...domains.failures);
    const redirectUri = redirectUriOf(deployment);
    checkRedirectUri(redirectUri, apiUrl, domains.served, failures);
    const simulator = await startSimulator({
      clientId: config.wise.clientId ?? WISE_STAND_IN.clientId,
      clientSecret: WISE_STAND_IN.clientSecret,
      redirectUri,
      accessTokenSeconds: options.accessTokenSeconds ?? DEFAULT_ACCESS_TOKEN_SECONDS,
    });
    closers.push(() => simulator.close());
    for (const fn of deployment.functions) pointAtWise(fn.environment, simulator);

    evaluator = new PolicyEvaluator(deployment);
    const credentials = new Map(deployment.functions.map((fn) => [fn.id, roleCredentials(fn)]));
    recorder = new CallRecorder(
      standIns,
      evaluator,
      [...credentials].map(([functionId, value]) => ({ functionId, accessKeyId: value.accessKeyId })),
    );
    const awsEndpoint = await recorder.start();
    closers.push(() => recorder?.close() ?? Promise.resolve());
    const endpoints = {
      // Every other service too: the recorder refuses what it has no stand-in for, so nothing reaches AWS.
      AWS_ENDPOINT_URL: awsEndpoint,
      AWS_ENDPOINT_URL_DYNAMODB: awsEndpoint,
      AWS_ENDPOINT_URL_KMS: awsEndpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: awsEndpoint,
      AWS_ENDPOINT_URL_EVENTBRIDGE: awsEndpoint,
    };
    for (const fn of deployment.functions) {
      const host = new FunctionHost({
        fn,
        credentials: credentials.get(fn.id) ?? roleCredentials(fn),
        extraEnvironment: endpoints,
        workDir: join(workDir, 'functions', fn.logicalId),
      });
      hosts.set(fn.id, host);
    }
    closers.push(() => Promise.allSettled([...hosts.values()].map((host) => host.stop())));
    // One after the other, so each init time is the function's own, not the machine's contention.
    for (const host of hosts.values()) await host.start();
    for (const host of hosts.values()) {
      if (host.initError) {
        failures.push(
          `${host.fn.label} (${host.fn.logicalId}) failed to start with Handler "${host.fn.handler}": ${host.initError.errorType}: ${host.initError.errorMessage}`,
        );
      }
    }

    if (failures.length === 0) {
      const callers = journeyCallers(config, deployment.functions[0]?.stack);
      const iamApiUrl = iamRoutesUrl(deployment, apiUrl);
      const returnUrl = returnUrlOf(config);
      const trail: string[] = [];
      let stepStartedAt = Date.now();
      const gateway = await startApi(deployment, hosts, failures, apiPort, callers, trail);
      closers.push(() => gateway.close());
      try {
        await runJourney(
          {
            apiUrl: iamApiUrl,
            region: standIns.region,
            user: callers.user,
            admin: callers.admin,
            importer: callers.importer,
            simulator: {
              url: simulator.url,
              client: {
                id: config.wise.clientId ?? WISE_STAND_IN.clientId,
                secret: WISE_STAND_IN.clientSecret,
              },
              redirectUri,
            },
            ...(returnUrl === undefined ? {} : { returnUrl }),
            events: standIns.aws.events,
            onSecret: (secret) => secrets.add(secret),
            onStep: () => {
              trail.length = 0;
              stepStartedAt = Date.now();
            },
            runSchedule: () => runSchedules(deployment as Deployment, hosts, failures),
            browserUrl: (url) => throughCustomDomain(url, domains.served, apiUrl),
            waitUntil: async (epochMs) => {
              await sleep(Math.min(MAX_WAIT_MS, Math.max(0, epochMs - Date.now())));
            },
          },
          journey,
        );
        await deliverSubscriptions(deployment, hosts, journey, recorder);
      } catch (error) {
        const logged = [...hosts.values()].flatMap((host) =>
          host.errorsSince(stepStartedAt).map((text) => `${host.fn.label} logged "${text}"`),
        );
        const context = [
          trail.length > 0 ? `its requests: ${trail.join('; ')}` : undefined,
          logged.length > 0 ? logged.join('; ') : undefined,
        ].filter((part) => part !== undefined);
        const message = error instanceof Error ? error.message : String(error);
        failures.push(context.length > 0 ? `${message} (${context.join('; ')})` : message);
      }
    }
  } catch (error) {
    if (!(error instanceof RehearsalError)) throw error;
    failures.push(error.message);
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    for (const host of hosts.values()) {
      const leaked = [...secrets].filter((secret) => host.wrote(secret)).length;
      if (leaked > 0) {
        failures.push(
          `${host.fn.label} wrote ${leaked} secret(s) (access tokens, the registration code, the imported refresh token or the Wise client secret) to its log.`,
        );
      }
    }
    if (!options.workDir) rmSync(workDir, { recursive: true, force: true });
  }

  const calls = recorder?.calls ?? [];
  for (const unknown of recorder?.unknown ?? []) failures.push(unknown);
  for (const denial of recorder?.denials() ?? []) {
    failures.push(`${labelOf(deployment, denial.functionId)}: ${denial.explanation ?? denial.decision}`);
  }
  const journeyDone = journey.length > 0 && journey.every((step) => step.ok) && failures.length === 0;
  const functions = (deployment?.functions ?? []).map((fn) =>
    functionReport(fn, bundleBytes.get(fn.id) ?? 0, hosts.get(fn.id), calls, evaluator, journeyDone),
  );
  let metrics: MetricCoverage | undefined;
  if (journeyDone && assembly && deployment) {
    const checked = metricCoverage({
      assembly,
      emitted: [...hosts.values()].map((host) => ({
        function: host.fn.label,
        metrics: metricsInOutput(host.outputLines()),
      })),
      emitters: deployment.functions.flatMap((fn) => {
        const namespace = fn.environment.POWERTOOLS_METRICS_NAMESPACE;
        const service = fn.environment.POWERTOOLS_SERVICE_NAME;
        return namespace && service ? [{ function: fn.label, namespace, service }] : [];
      }),
      reasons: UNEMITTED_METRIC_REASONS,
    });
    metrics = checked.coverage;
    failures.push(...checked.failures);
  }
  if (journeyDone) {
    for (const report of functions) {
      if (report.invocations === 0) {
        // Its process started and loaded its handler; what it does is not rehearsed until the journey uses it.
        warnings.push(
          `${report.function}: started, but the journey never invoked it, so its calls and grants are not rehearsed: extend rehearsal/journey.ts to use its route or schedule.`,
        );
      }
      for (const unused of report.unusedPermissions) {
        if (unused.reason) continue;
        failures.push(
          `${report.function}: its role grants ${unused.action} on ${unused.resources.join(', ')}${unused.condition ? ` when ${JSON.stringify(unused.condition)}` : ''} (${unused.policy} statement ${unused.statement}), which no call of the journey used and no reason in rehearsal/unused-grants.ts explains: remove the grant or give its reason.`,
        );
      }
    }
  }
  return {
    ok: failures.length === 0,
    failures: [...new Set(failures)],
    warnings,
    assembly: assemblyDir ?? '',
    functions,
    journey,
    ...(metrics ? { metrics } : {}),
    calls,
    durationMs: Math.round(performance.now() - startedAt),
  };
}

/** The domain, hosted zone and brand of the custom-domain variant (no certificate ARN: one is issued). */
export const REHEARSAL_DOMAIN = {
  domain: {
    name: 'wise.rehearsal.example.com',
    hostedZone: { id: 'Z0REHEARSAL0000000000', name: 'example.com' },
  },
  brand: {
    name: 'Rehearsal Payments',
    logo: 'https://cdn.rehearsal.example.com/logo.svg',
    supportUrl: 'mailto:support@rehearsal.example.com',
    languages: ['en', 'de'],
  },
};

/**
 * Synthesizes the app with cdk.json's configuration and one more allowed return URL, so the journey's
 * connect sessions can name one (the example configuration allows none), a caller that may import when
 * none may (see {@link REHEARSAL_IMPORT_ROLE}), and the keys of `context` on top
 * (a variant: {@link REHEARSAL_PRIVATE_ACCESS}, {@link REHEARSAL_DOMAIN}).
 */
export async function synthesizeForRehearsal(
  outdir: string,
  context: Record<string, unknown> = {},
): Promise<void> {
  const cdkJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
    context?: { returnUrls?: string[]; callers?: CallerEntry[]; env?: { account?: string } };
  };
  const returnUrls = [...(cdkJson.context?.returnUrls ?? []), REHEARSAL_RETURN_URL];
  const callers = withImportCaller(cdkJson.context?.callers ?? [], cdkJson.context?.env?.account);
  await synthesize(outdir, [
    '--context',
    `returnUrls=${JSON.stringify(returnUrls)}`,
    '--context',
    `callers=${JSON.stringify(callers)}`,
    // `-c key=value` gives text as it is; an object or list is given as JSON text (infra/broker-app.ts).
    ...Object.entries(context).flatMap(([key, value]) => [
      '--context',
      `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`,
    ]),
  ]);
}

/** An entry of cdk.json's `callers`, as far as the rehearsal reads it. */
type CallerEntry = { principal: string; use?: string[]; import?: string[]; clientToken?: boolean };

/**
 * cdk.json's callers, and when none of them may import, one more that imports the connections the
 * journey's user connects ({@link REHEARSAL_IMPORT_ROLE}; the example grants no import), so the journey
 * can import one and vend its token.
 */
function withImportCaller(callers: CallerEntry[], account = '123456789012'): CallerEntry[] {
  if (callers.some((caller) => (caller.import ?? []).length > 0)) return callers;
  const user =
    callers.find((caller) => (caller.use ?? []).length > 0 && caller.clientToken) ??
    callers.find((caller) => (caller.use ?? []).length > 0);
  if (!user) return callers;
  return [
    ...callers,
    { principal: `arn:aws:iam::${account}:role/${REHEARSAL_IMPORT_ROLE}`, import: user.use ?? [] },
  ];
}

/** The role the rehearsal's synthesis grants `import` when cdk.json's callers hold no such grant. */
export const REHEARSAL_IMPORT_ROLE = 'rehearsal-migration';

/** The table the `--existing-table` synthesis names, which the rehearsal creates as a restore would. */
export const REHEARSAL_EXISTING_TABLE = 'wise-broker-rehearsal-restored';

/**
 * The redirect URI must reach the callback: on the API's own endpoint, or on a custom domain that an API
 * mapping and an alias record lead to.
 */
function checkRedirectUri(
  redirectUri: string,
  apiUrl: string,
  served: readonly ServedDomain[],
  failures: string[],
): void {
  if (redirectUri.startsWith(`${apiUrl}/`)) return;
  if (throughCustomDomain(redirectUri, served, apiUrl) !== redirectUri) return;
  failures.push(
    `REDIRECT_URI ${redirectUri} is neither on the API's endpoint nor on a custom domain of the assembly that is mapped to it: Wise would send users where no callback answers.`,
  );
}

/**
 * The private access the rehearsal's `--private` synthesis chooses: an example VPC endpoint (the gateway
 * checks signatures, not where a request comes from; the template tests evaluate the resource policy).
 */
export const REHEARSAL_PRIVATE_ACCESS = { vpcEndpointIds: ['vpce-0123456789abcdef0'] };

/** Lambda runs the template's `Runtime`; the rehearsal runs the Node.js it runs on, which must be that one. */
function checkRuntimes(deployment: Deployment, failures: string[]): void {
  const major = Number(process.versions.node.split('.')[0]);
  for (const fn of deployment.functions) {
    const wanted = /^nodejs(\d+)\.x$/.exec(fn.runtime)?.[1];
    if (wanted === undefined) {
      failures.push(`${fn.label}: its runtime ${fn.runtime} is not a Node.js runtime the rehearsal can run.`);
    } else if (Number(wanted) !== major) {
      failures.push(
        `${fn.label}: the template runs it on ${fn.runtime}, but the rehearsal runs on Node.js ${process.versions.node}; run it with npm run rehearse (the project's Node ${wanted}).`,
      );
    }
  }
}

function redirectUriOf(deployment: Deployment): string {
  const value = deployment.functions
    .map((fn) => fn.environment.REDIRECT_URI)
    .find((uri) => uri !== undefined);
  if (!value)
    throw new RehearsalError('No function is given a REDIRECT_URI: the callback cannot be rehearsed.');
  return value;
}

/**
 * Where the journey calls the IAM routes: the HTTP API, or the stage of the REST API that serves them all
 * (the private API), both served by the rehearsal's gateway.
 */
function iamRoutesUrl(deployment: Deployment, apiUrl: string): string {
  const iamRoutes = deployment.routes.filter((route) => route.authorizationType === 'AWS_IAM');
  const stages = new Set(iamRoutes.map((route) => (route.rest ? `/${route.rest.stage}` : '')));
  if (stages.size > 1) {
    throw new RehearsalError(
      `The IAM routes are split over ${[...stages].map((stage) => stage || 'the HTTP API').join(' and ')}; the journey calls them all at one base URL.`,
    );
  }
  return `${apiUrl}${[...stages][0] ?? ''}`;
}

/** Access keys for each function's role, as Lambda hands a function its role session. */
function roleCredentials(fn: DeployedFunction) {
  const digest = createHash('sha256').update(fn.id).digest('hex').toUpperCase();
  return {
    accessKeyId: `ASIA${digest.slice(0, 16)}`,
    secretAccessKey: `rehearsal-${digest.slice(16, 56)}`,
    sessionToken: `rehearsal-session-${digest.slice(0, 32)}`,
  };
}

function journeyCallers(
  config: ReturnType<typeof brokerConfigOf>,
  stack: AssemblyStack | undefined,
): Record<'user' | 'admin' | 'importer', JourneyCaller & LocalCredential> {
  if (!stack) throw new RehearsalError('The assembly has no function.');
  const { user, admin, importer } = callersOf(config);
  const credential = (principal: string, patterns: string[]) => {
    const digest = createHash('sha256').update(principal).digest('hex').toUpperCase();
    return {
      accessKeyId: `AKIA${digest.slice(0, 16)}`,
      secretAccessKey: `rehearsal-caller-${digest.slice(16, 48)}`,
      principal,
      sessionName: 'rehearsal',
      connectionId: (suffix: string) => (patterns[0] ?? '*').replace('*', suffix),
    };
  };
  return {
    user: credential(user.principal, user.patterns),
    admin: credential(admin.principal, admin.patterns),
    importer: credential(importer.principal, importer.patterns),
  };
}

/** The template's HTTP API: its routes, their authorization types and the function behind each. */
async function startApi(
  deployment: Deployment,
  hosts: ReadonlyMap<string, FunctionHost>,
  failures: string[],
  port: number,
  callers: Record<'user' | 'admin' | 'importer', LocalCredential>,
  trail: string[],
): Promise<RunningGateway> {
  const [first] = deployment.functions;
  // A REST API's method is served below its stage, as API Gateway serves it: `/broker/tokens`.
  const servedPath = (route: DeployedRoute) =>
    route.rest ? `/${route.rest.stage}${route.path}` : route.path;
  const wiring = new Map(
    deployment.routes.map((route) => [
      `${route.method} ${servedPath(route)}`,
      `${route.routeKey} (${route.rest ? `REST API ${route.rest.apiLogicalId}, ` : ''}authorization ${route.authorizationType}, function ${hosts.get(route.functionId)?.fn.label ?? route.functionId})`,
    ]),
  );
  const heard = (attributes: Record<string, unknown>) => {
    const route = wiring.get(String(attributes.routeKey)) ?? `${String(attributes.path)} (no route)`;
    const reason = attributes.reason === undefined ? '' : `: ${String(attributes.reason)}`;
    trail.push(`${route} answered ${String(attributes.status ?? 500)}${reason}`);
  };
  const routes: GatewayRoute[] = deployment.routes.map((route) => {
    const host = hosts.get(route.functionId);
    if (!host)
      throw new RehearsalError(`${route.routeKey}: its function ${route.functionId} was not started.`);
    const rest = route.rest;
    if (rest ? route.payloadFormatVersion !== '1.0' : route.payloadFormatVersion !== '2.0') {
      throw new RehearsalError(
        `${route.routeKey}: its integration sends payload format ${route.payloadFormatVersion}; the broker's handlers read 2.0 from an HTTP API and 1.0 from a REST API.`,
      );
    }
    if (!/^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)$/.test(route.method) || !route.path.startsWith('/')) {
      throw new RehearsalError(
        `${route.routeKey}: the rehearsal's gateway serves routes of one method and path only.`,
      );
    }
    const handler = async (event: APIGatewayProxyEventV2) => {
      const outcome = await host.invoke(rest ? restEventOf(event, route, rest.stage) : event);
      if (outcome.ok) return outcome.payload as object;
      failures.push(
        `${route.routeKey} → ${host.fn.label}: the function failed with ${outcome.errorType}: ${outcome.errorMessage}`,
      );
      throw new Error(outcome.errorMessage);
    };
    const base = {
      method: route.method as GatewayMethod,
      path: servedPath(route),
      functionName: host.fn.name,
      timeoutSeconds: host.fn.timeoutSeconds,
    };
    if (route.authorizationType === 'AWS_IAM') return { ...base, auth: 'iam' as const, handler };
    if (route.authorizationType === 'NONE') return { ...base, auth: 'none' as const, handler };
    throw new RehearsalError(
      `${route.routeKey}: authorization type ${route.authorizationType} is not rehearsed (only AWS_IAM and NONE).`,
    );
  });
  return startGateway({
    port,
    region: first?.stack.region ?? 'us-east-1',
    accountId: first?.stack.account ?? '000000000000',
    // One principal may be several of the journey's callers: the gateway knows each access key once.
    credentials: [...new Map(Object.values(callers).map((caller) => [caller.accessKeyId, caller])).values()],
    routes,
    logger: {
      info: (_message, attributes) => heard(attributes),
      warn: (_message, attributes) => heard(attributes),
      error: (_message, attributes) => heard(attributes),
    },
  });
}

/**
 * Delivers each function's output to the functions its log group's subscription filters name, as
 * CloudWatch Logs does (a gzipped, base64 `awslogs` event); every line is delivered, the filter pattern is
 * not evaluated. A step of the journey: it fails when a delivery fails or nothing reached CloudWatch Logs.
 */
async function deliverSubscriptions(
  deployment: Deployment,
  hosts: ReadonlyMap<string, FunctionHost>,
  journey: JourneyStep[],
  recorder: CallRecorder,
): Promise<void> {
  if (deployment.subscriptions.length === 0) return;
  const startedAt = performance.now();
  const name = 'log lines delivered by the subscription filters';
  const answers: unknown[] = [];
  try {
    for (const subscription of deployment.subscriptions) {
      const source = [...hosts.values()].find((host) => host.fn.logGroupName === subscription.logGroupName);
      const target = hosts.get(subscription.functionId);
      if (!source || !target) continue;
      const now = Date.now();
      const payload = {
        messageType: 'DATA_MESSAGE',
        owner: source.fn.stack.account,
        logGroup: subscription.logGroupName,
        logStream: `rehearsal/[$LATEST]${randomUUID().replaceAll('-', '')}`,
        subscriptionFilters: [subscription.logicalId],
        logEvents: source.outputLines().map((message, index) => ({
          id: `${now}${String(index).padStart(6, '0')}`,
          timestamp: now,
          message,
        })),
      };
      const data = gzipSync(Buffer.from(JSON.stringify(payload))).toString('base64');
      const outcome = await target.invoke({ awslogs: { data } });
      if (!outcome.ok) {
        throw new Error(
          `${subscription.logicalId} → ${target.fn.label}: the function failed with ${outcome.errorType}: ${outcome.errorMessage}`,
        );
      }
      answers.push(outcome.payload);
    }
    if (recorder.logEvents.length === 0) throw new Error('no line reached CloudWatch Logs');
    journey.push({
      name,
      ok: true,
      ms: Math.round(performance.now() - startedAt),
      detail: `${answers.length} deliveries, ${recorder.logEvents.length} lines written to ${[...new Set(recorder.logEvents.map((event) => event.logGroupName))].join(', ')}`,
    });
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    journey.push({ name, ok: false, ms: Math.round(performance.now() - startedAt), detail });
    throw new RehearsalError(`Journey step "${name}" failed: ${detail}`);
  }
}

/** Delivers every schedule's event to its function: the rule's scheduled event, or the target's input. */
async function runSchedules(
  deployment: Deployment,
  hosts: ReadonlyMap<string, FunctionHost>,
  failures: string[],
): Promise<unknown> {
  if (deployment.schedules.length === 0) throw new Error('the template schedules no function');
  const answers: unknown[] = [];
  for (const schedule of deployment.schedules) {
    const host = hosts.get(schedule.functionId);
    if (!host) throw new Error(`${schedule.logicalId}: its function was not started`);
    const stack = host.fn.stack;
    const event =
      schedule.input ??
      (schedule.kind === 'rule'
        ? {
            version: '0',
            id: randomUUID(),
            'detail-type': 'Scheduled Event',
            source: 'aws.events',
            account: stack.account,
            time: `${new Date().toISOString().slice(0, 19)}Z`,
            region: stack.region,
            resources: [schedule.arn],
            detail: {},
          }
        : {});
    const outcome = await host.invoke(event);
    if (!outcome.ok) {
      const message = `${schedule.logicalId} (${schedule.expression}) → ${host.fn.label}: the function failed with ${outcome.errorType}: ${outcome.errorMessage}`;
      failures.push(message);
      throw new Error(message);
    }
    answers.push(outcome.payload);
  }
  return answers.length === 1 ? answers[0] : answers;
}

function functionReport(
  fn: DeployedFunction,
  bytes: number,
  host: FunctionHost | undefined,
  calls: readonly RecordedCall[],
  evaluator: PolicyEvaluator | undefined,
  journeyDone: boolean,
): FunctionReport {
  const own = calls.filter((call) => call.functionId === fn.id);
  const callsByOperation: Record<string, number> = {};
  for (const call of own) {
    const name = call.viaService ? `${call.action} (via ${call.viaService.split('.')[0]})` : call.action;
    callsByOperation[name] = (callsByOperation[name] ?? 0) + 1;
  }
  const unusedPermissions: UnusedPermission[] = [];
  if (journeyDone && evaluator && (host?.invocations ?? 0) > 0) {
    for (const grant of evaluator.grants().filter((entry) => entry.functionId === fn.id)) {
      const key = `${grant.policy}#${grant.statement}`;
      const used = own.some(
        (call) =>
          call.decision === 'Allowed' &&
          call.allowedBy.includes(key) &&
          actionMatches(grant.action, call.action),
      );
      if (used) continue;
      const reason = unusedGrantReason(grant);
      unusedPermissions.push({
        policy: grant.policy,
        statement: grant.statement,
        action: grant.action,
        resources: grant.resources,
        ...(grant.condition ? { condition: grant.condition } : {}),
        ...(reason ? { reason } : {}),
      });
    }
  }
  return {
    function: fn.label,
    logicalId: fn.logicalId,
    handler: fn.handler,
    bundleBytes: bytes,
    ...(host?.initMs === undefined ? {} : { initMs: Math.round(host.initMs) }),
    invocations: host?.invocations ?? 0,
    callsByOperation,
    denials: own.filter((call) => call.decision !== 'Allowed').length,
    unusedPermissions,
  };
}

function labelOf(deployment: Deployment | undefined, functionId: string): string {
  return deployment?.functions.find((fn) => fn.id === functionId)?.label ?? functionId;
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  }
  return total;
}

/** A port free at this moment on loopback, for the API whose URL the functions' environment names. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
