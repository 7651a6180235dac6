import { z } from 'zod';
import { CONNECTION_GRANTS, type ConnectionGrant } from '#shared/domain/caller-policy.ts';
import { BrokerError } from '#shared/domain/errors.ts';

/**
 * Whether a caller's connection pattern covers a connection id: `*` matches any run of characters (also
 * none), every other character only itself. The caller policy owns the rule; configuration re-exports it.
 */
export { connectionPatternMatches } from '#shared/domain/caller-policy.ts';

/**
 * Wise's hosts per environment (WISE.md, "Hosts"). They are only defaults: an explicit `wise.apiUrl` or
 * `wise.authorizeUrl` in the configuration wins, so integrations on the older hosts keep working.
 */
export const WISE_HOSTS = {
  sandbox: {
    apiUrl: 'https://api.wise-sandbox.com',
    mtlsApiUrl: 'https://api-mtls.wise-sandbox.com',
    authorizeUrl: 'https://wise-sandbox.com/oauth/authorize/',
  },
  production: {
    apiUrl: 'https://api.wise.com',
    mtlsApiUrl: 'https://api-mtls.transferwise.com',
    authorizeUrl: 'https://wise.com/oauth/authorize/',
  },
} as const;

const CONNECTION_PATTERN = /^[A-Za-z0-9._:*-]{1,128}$/;
const PRINCIPAL_ARN =
  /^arn:aws(?:-cn|-us-gov)?:iam::\d{12}:(?:role|user)\/(?:[A-Za-z0-9+=,.@_-]+\/)*[A-Za-z0-9+=,.@_-]{1,64}$/;
const STAGE = /^[a-z0-9-]{1,20}$/;
const VERSION_PREFIX = /^(?:[A-Za-z0-9._~-]+(?:\/[A-Za-z0-9._~-]+)*)?$/;
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Error options for a schema whose type is wrong: says "is required" when the field is absent, so the
 * message names the fix in both cases.
 */
function must(rule: string) {
  return {
    error: (issue: { input?: unknown }) =>
      issue.input === undefined ? `is required and must ${rule}` : `must ${rule}`,
  };
}

function isWebUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  const secure = url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
  return secure && url.hash === '' && url.username === '' && url.password === '';
}

/** An absolute https URL (http only on the loopback host, for the local run). */
function webUrl(example: string) {
  const rule = `be an absolute https:// URL (http:// only for localhost) without a #fragment or user info, for example "${example}"`;
  return z.string(must(rule)).refine(isWebUrl, { error: `must ${rule}` });
}

const wiseSchema = z
  .strictObject({
    environment: z.enum(['sandbox', 'production'], must('be "sandbox" or "production"')).default('sandbox'),
    apiUrl: webUrl('https://api.wise.com')
      .refine((value) => !value.includes('?'), { error: 'must not carry a ?query: give the bare API host' })
      .optional(),
    authorizeUrl: webUrl('https://wise.com/oauth/authorize/').optional(),
    versionPrefix: z
      .string(must('be text such as "/2026Q3", or "" for none'))
      .transform((value) => value.replace(/^\/+|\/+$/g, ''))
      .refine((value) => VERSION_PREFIX.test(value), {
        error:
          'must be path segments of letters, digits, ".", "_", "~" or "-", such as "/2026Q3", or "" for none',
      })
      .transform((value) => (value === '' ? '' : `/${value}`))
      .default(''),
    mtls: z.boolean(must('be true or false')).default(false),
    pkce: z.boolean(must('be true or false')).default(false),
    clientId: z
      .string(must('be your Wise client id, as in the secret'))
      .regex(/^[\x21-\x7e]{1,256}$/, { error: 'must be your Wise client id: 1 to 256 visible characters' })
      .optional(),
  })
  .transform((wise) => {
    const hosts = WISE_HOSTS[wise.environment];
    return {
      environment: wise.environment,
      apiUrl: (wise.apiUrl ?? (wise.mtls ? hosts.mtlsApiUrl : hosts.apiUrl)).replace(/\/+$/, ''),
      authorizeUrl: wise.authorizeUrl ?? hosts.authorizeUrl,
      versionPrefix: wise.versionPrefix,
      mtls: wise.mtls,
      pkce: wise.pkce,
      ...(wise.clientId === undefined ? {} : { clientId: wise.clientId }),
    };
  })
  .prefault({});

/** A grant's connection-id patterns; a message about the list says what the grant allows. */
function connectionPatterns(grant: ConnectionGrant) {
  return z
    .array(
      z.string(must('be a connection id pattern')).regex(CONNECTION_PATTERN, {
        error:
          'must be 1 to 128 letters, digits, ".", "_", ":", "-" or "*" (any run of characters), for example "acme-*"',
      }),
      must(
        `be a list of the connection id patterns this caller may ${CONNECTION_GRANTS[grant].replace(/,$/, '')}, for example ["acme-*"]`,
      ),
    )
    .default([]);
}

/**
 * Fields of the configuration's earlier shape, where one `connections` list gave every right and `admin`
 * added administration on top. Each is refused with how to move to the separate grants.
 */
const RETIRED_CALLER_FIELDS = {
  connections:
    'is no longer a field: use and administration are separate grants. Move these patterns to "use" (connect sessions, registrations and tokens); if this caller had "admin": true, put only the patterns it must list, read and delete in "administer", and leave it out of "use" unless it also needs their tokens',
  admin:
    'is no longer a field: list the connection patterns this caller may list, read and delete in "administer" (for example "administer": ["*"]). Administration no longer includes using a connection: a caller that also connects or takes tokens needs "use" patterns too',
} as const;

function retired(field: keyof typeof RETIRED_CALLER_FIELDS) {
  return z.undefined({ error: RETIRED_CALLER_FIELDS[field] }).optional();
}

/**
 * One calling service: its IAM principal, the connection-id patterns of each grant it holds, and whether
 * it may fetch the client-credentials token. Each grant stands alone (see {@link CONNECTION_GRANTS}).
 */
const callerSchema = z
  .strictObject({
    principal: z.string(must('be an IAM role or user ARN')).regex(PRINCIPAL_ARN, {
      error:
        'must be an IAM role or user ARN such as "arn:aws:iam::123456789012:role/payments" (not an assumed-role session ARN)',
    }),
    use: connectionPatterns('use'),
    administer: connectionPatterns('administer'),
    import: connectionPatterns('import'),
    clientToken: z.boolean(must('be true or false')).default(false),
    /**
     * Principals of other accounts that may assume this caller's role, which the deployment then creates in
     * its own account with exactly this trust: how a service elsewhere reaches the HTTP API.
     */
    assumableBy: z
      .array(
        z.string(must('be an IAM role or user ARN')).regex(PRINCIPAL_ARN, {
          error:
            'must be the IAM role or user ARN of the service that assumes this role, such as "arn:aws:iam::210987654321:role/payments"',
        }),
        must("be a list of IAM role or user ARNs that may assume this caller's role"),
      )
      .min(1, { error: 'must name at least one principal, or be left out' })
      .optional(),
    connections: retired('connections'),
    admin: retired('admin'),
  })
  .transform(({ connections: _connections, admin: _admin, ...caller }) => caller);

/** A whole number in [min, max]; `why` says the reason for a bound in its message. */
function wholeNumber(min: number, max: number, unit: string, why: { min?: string; max?: string } = {}) {
  const rule = `be a whole number${unit} from ${min} to ${max}`;
  const reason = (text: string | undefined) => (text === undefined ? '' : `, ${text}`);
  return z
    .number(must(rule))
    .int({ error: `must ${rule}` })
    .min(min, { error: `must be at least ${min}${reason(why.min)}` })
    .max(max, { error: `must be at most ${max}${reason(why.max)}` });
}

const refreshSchema = z
  .strictObject({
    fraction: z
      .number(must('be a number between 0.5 and 0.95'))
      .min(0.5, { error: 'must be at least 0.5 (Wise refreshes at half the token lifetime)' })
      .max(0.95, { error: 'must be at most 0.95, to leave time for retries before the token expires' })
      .default(0.8),
    sweepSeconds: z
      .number(must('be a whole number of seconds'))
      .int({ error: 'must be a whole number of seconds' })
      .min(60, { error: 'must be at least 60: EventBridge schedules run at most once a minute' })
      .multipleOf(60, { error: 'must be a multiple of 60 (EventBridge schedules have minute granularity)' })
      .max(3600, { error: 'must be at most 3600: a sweep an hour is already coarse for 12-hour tokens' })
      .default(60),
    shards: wholeNumber(1, 16, '').default(4),
    concurrency: wholeNumber(1, 50, '', { max: "to stay under Wise's token rate limit" }).default(8),
    leaseSeconds: wholeNumber(30, 900, ' of seconds', {
      min: 'longer than the longest refresh',
      max: 'the longest a Lambda function runs',
    }).default(120),
    tokenCallsPerMinute: wholeNumber(10, 100_000, ' of token calls a minute', {
      max: 'ask Wise to confirm a limit this high',
    }).default(1000),
    atRiskShare: z
      .number(must('be a number between 0.01 and 0.5'))
      .min(0.01, { error: 'must be at least 0.01' })
      .max(0.5, { error: 'must be at most 0.5' })
      .optional(),
  })
  .refine((refresh) => refresh.atRiskShare === undefined || refresh.atRiskShare < 1 - refresh.fraction, {
    error:
      'must be below 1 - fraction: a token is refreshed with that share of its life left, so a connection is at risk only once it has less',
    path: ['atRiskShare'],
  })
  // 0.1 unless the refresh fraction leaves less than twice that: then half of what it leaves.
  .transform((refresh) => ({
    ...refresh,
    atRiskShare: refresh.atRiskShare ?? Math.min(0.1, Math.round((1 - refresh.fraction) * 500) / 1000),
  }))
  .prefault({});

const apiSchema = z
  .strictObject({
    throttle: z
      .strictObject({
        rateLimit: wholeNumber(1, 10_000, ' of requests a second', {
          max: "API Gateway's default account quota",
        }).default(100),
        burstLimit: wholeNumber(1, 5_000, ' of requests', {
          max: "API Gateway's default account quota",
        }).default(200),
      })
      .prefault({}),
  })
  .prefault({});

const MEMORY_RULE = [
  128,
  10_240,
  ' of MB',
  { min: "Lambda's smallest size", max: "Lambda's largest size" },
] as const;

const functionsSchema = z
  .strictObject({
    memorySize: wholeNumber(...MEMORY_RULE).default(512),
    memorySizes: z
      .record(z.string().regex(/^[a-z][a-z-]{0,62}$/), wholeNumber(...MEMORY_RULE), {
        error: (issue) => {
          if (issue.code === 'invalid_key') return 'must name a broker function, such as "tokens"';
          if (issue.code === 'invalid_type') {
            return 'must be an object of function names and MB, for example {"tokens": 1024}';
          }
          return undefined;
        },
      })
      .default({}),
    /**
     * Whether Node.js maps stack positions to source files (`NODE_OPTIONS=--enable-source-maps`). It costs
     * every cold start the reading of the bundle's `.map` file; the `.map` files are deployed either way.
     */
    sourceMaps: z
      .boolean(
        must(
          'be true (stack traces name the source files, at the cost of reading the source map at every cold start) or false (positions in the minified index.mjs)',
        ),
      )
      .default(false),
  })
  .prefault({});

/** The retention periods CloudWatch Logs offers, in days. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

const auditSchema = z
  .strictObject({
    retentionDays: z
      .number(must('be a whole number of days'))
      .refine((days) => (LOG_RETENTION_DAYS as readonly number[]).includes(days), {
        error: `must be one of the retention periods CloudWatch Logs offers: ${LOG_RETENTION_DAYS.join(', ')}`,
      })
      .default(365),
  })
  .prefault({});

/**
 * Private access: the IAM routes on a private REST API reachable only through the partner's interface VPC
 * endpoints for `execute-api`, with a resource policy that refuses any other endpoint (and, when given,
 * any principal outside the AWS Organization). The OAuth start and callback pages stay public.
 */
const privateAccessSchema = z.strictObject({
  vpcEndpointIds: z
    .array(
      z.string(must('be a VPC endpoint id')).regex(/^vpce-[0-9a-f]{8,17}$/, {
        error: 'must be an interface VPC endpoint id such as "vpce-0123456789abcdef0"',
      }),
      must('be a list of the interface VPC endpoint ids (execute-api) that may reach the broker'),
    )
    .min(1, { error: 'must name at least one interface VPC endpoint for execute-api' }),
  organizationId: z
    .string(must('be an AWS Organizations id'))
    .regex(/^o-[a-z0-9]{10,32}$/, { error: 'must be an AWS Organizations id such as "o-a1b2c3d4e5"' })
    .optional(),
});

/** The page languages the broker has text for (`shared/http/page-text.ts`). */
export const PAGE_LANGUAGES = ['en', 'de'] as const;

/** One of {@link PAGE_LANGUAGES}. */
export type PageLanguage = (typeof PAGE_LANGUAGES)[number];

/** The longest inline (`data:`) logo: the configuration travels in Lambda's 4 KB of environment. */
export const MAX_INLINE_LOGO_CHARACTERS = 2048;

const INLINE_LOGO = /^data:image\/(?:png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/]+={0,2}$/;
const HOST_NAME = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
// Characters a Content-Security-Policy source cannot hold (the logo URL is written into img-src).
const CSP_UNSAFE = /[;,'"\s]/;

/** The partner's name as shown on the connect pages: printable text, no markup characters needed. */
const brandName = z
  .string(must('be the name your users know you by, such as "Acme Payments"'))
  .trim()
  .min(1, { error: 'must not be empty; leave "name" out for the unbranded pages' })
  .max(60, { error: 'must be at most 60 characters' })
  .refine((name) => !/[\p{Cc}\p{Cf}]/u.test(name), {
    error: 'must not hold control or formatting characters',
  });

const brandSchema = z
  .strictObject({
    name: brandName.optional(),
    logo: z
      .string(must('be an https:// URL of an image, or a data:image/...;base64, URI'))
      .refine(
        (logo) =>
          logo.startsWith('data:')
            ? INLINE_LOGO.test(logo)
            : isWebUrl(logo) && !CSP_UNSAFE.test(new URL(logo).href) && !logo.includes('?'),
        {
          error:
            'must be an https:// URL of an image without a ?query, ";", "," or quotes (it is written into the pages\' Content-Security-Policy), or an inline data:image/png, jpeg, gif, webp or svg+xml URI in base64',
        },
      )
      .refine((logo) => !logo.startsWith('data:') || logo.length <= MAX_INLINE_LOGO_CHARACTERS, {
        error: `must be at most ${MAX_INLINE_LOGO_CHARACTERS} characters when inline (the configuration travels in Lambda's 4 KB of environment): give a larger logo as an https:// URL`,
      })
      .optional(),
    supportUrl: z
      .string(must('be an https:// URL or a mailto: address of your support'))
      .refine(
        (value) =>
          value.startsWith('mailto:') ? /^mailto:[^\s@<>"]+@[^\s@<>"]+$/.test(value) : isWebUrl(value),
        {
          error:
            'must be an https:// URL (http:// only for localhost) or a mailto: address, such as "mailto:help@example.com"',
        },
      )
      .optional(),
    languages: z
      .array(
        z.enum(PAGE_LANGUAGES, {
          error: `must be a language the pages have text for: ${PAGE_LANGUAGES.map((language) => `"${language}"`).join(', ')} (add one in shared/http/page-text.ts)`,
        }),
        must('be a list of languages such as ["en", "de"], the first the default'),
      )
      .min(1, { error: 'must name at least one language, such as ["en"]' })
      .refine((languages) => new Set(languages).size === languages.length, {
        error: 'must name each language once',
      })
      .default(['en']),
  })
  .prefault({});

/** A hosted zone named by its attributes, so the synth needs no look-up in the account. */
const hostedZoneSchema = z.strictObject({
  id: z
    .string(must('be the Route 53 hosted zone id, such as "Z0123456789ABCDEFGHIJ"'))
    .regex(/^Z[A-Z0-9]{1,31}$/, {
      error: 'must be a Route 53 hosted zone id, such as "Z0123456789ABCDEFGHIJ"',
    }),
  name: z
    .string(must('be the hosted zone\'s domain, such as "example.com"'))
    .transform((name) => name.replace(/\.$/, '').toLowerCase())
    .refine((name) => HOST_NAME.test(name), { error: 'must be a domain name such as "example.com"' }),
});

const domainSchema = z
  .strictObject({
    name: z
      .string(must('be the host name of the broker, such as "wise.example.com"'))
      .transform((name) => name.toLowerCase())
      .refine((name) => HOST_NAME.test(name), {
        error: 'must be a host name such as "wise.example.com" (no scheme, path or port)',
      }),
    hostedZone: hostedZoneSchema,
    certificateArn: z
      .string(must("be the ARN of an ACM certificate for the domain, in the deployment's region"))
      .regex(
        /^arn:aws(?:-cn|-us-gov)?:acm:[a-z]{2}(?:-[a-z]+)+-\d{1,2}:\d{12}:certificate\/[A-Za-z0-9-]{1,64}$/,
        {
          error:
            'must be an ACM certificate ARN such as "arn:aws:acm:eu-west-1:123456789012:certificate/..."; leave it out to have one issued with DNS validation in the hosted zone',
        },
      )
      .optional(),
  })
  .refine(
    (domain) => domain.name.endsWith(`.${domain.hostedZone.name}`) || domain.name === domain.hostedZone.name,
    {
      error: 'must lie in the hosted zone: "name" must end with hostedZone.name',
      path: ['name'],
    },
  );

const envSchema = z.strictObject({
  account: z
    .string(must('be a 12-digit AWS account id'))
    .regex(/^\d{12}$/, { error: 'must be a 12-digit AWS account id, for example "123456789012"' }),
  region: z
    .string(must('be an AWS region'))
    .regex(/^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/, { error: 'must be an AWS region such as "eu-west-1"' }),
});

/**
 * The schema of a deployment's configuration: the CDK context, the `BROKER_CONFIG` environment variable of
 * every Lambda function, and the local run's configuration file all use it.
 */
export const brokerConfigSchema = z
  .strictObject({
    stage: z
      .string(must('be 1 to 20 lowercase letters, digits or hyphens'))
      .regex(STAGE, {
        error: 'must be 1 to 20 lowercase letters, digits or hyphens, for example "prod" or "test-1"',
      })
      .default('dev'),
    wise: wiseSchema,
    redirectUri: webUrl('https://broker.example.com/oauth/callback').optional(),
    /** The broker's own domain in front of the API (deployment only). */
    domain: domainSchema.optional(),
    /** The partner's name, logo, support link and page languages on the connect pages. */
    brand: brandSchema,
    callers: z.array(callerSchema, must('be a list of callers')).default([]),
    returnUrls: z.array(webUrl('https://app.example.com/wise/done'), must('be a list of URLs')).default([]),
    connectWithoutConfirmation: z.boolean(must('be true or false')).default(false),
    refresh: refreshSchema,
    /** The API stage's throttling (deployment only). */
    api: apiSchema,
    /**
     * The functions' memory sizes (one for all, and per function by name) and whether they enable source maps
     * (deployment only).
     */
    functions: functionsSchema,
    audit: auditSchema,
    alarmEmail: z
      .email({ error: 'must be an e-mail address such as "ops@example.com", or be left out' })
      .optional(),
    /**
     * A table that exists already (a point-in-time restore), used instead of creating one (deployment only).
     */
    existingTableName: z
      .string(must('be the name of an existing DynamoDB table'))
      .regex(/^[A-Za-z0-9_.-]{3,255}$/, {
        error:
          'must be a DynamoDB table name: 3 to 255 letters, digits, "_", "." or "-", for example "wise-broker-prod-restored"',
      })
      .optional(),
    removalPolicy: z
      .enum(['retain', 'destroy'], {
        error:
          'must be "retain" (keep the table, key and secret when the stack is deleted) or "destroy" (test stages only)',
      })
      .default('retain'),
    /** The IAM routes on a private REST API, reachable only from these VPC endpoints (deployment only). */
    privateAccess: privateAccessSchema.optional(),
    env: envSchema.optional(),
    local: z.record(z.string(), z.unknown(), must('be an object')).optional(),
  })
  .superRefine((config, context) => {
    checkDomain(config, context);
    config.callers.forEach((caller, index) => {
      if (caller.assumableBy !== undefined && !caller.principal.includes(':role/')) {
        context.addIssue({
          code: 'custom',
          path: ['callers', index, 'assumableBy'],
          message:
            'needs "principal" to be a role ARN of the deployment\'s account: the role the deployment creates for these principals to assume',
        });
      }
      const grants = Object.keys(CONNECTION_GRANTS) as ConnectionGrant[];
      if (grants.every((grant) => caller[grant].length === 0) && !caller.clientToken) {
        context.addIssue({
          code: 'custom',
          path: ['callers', index],
          message: `grants nothing: give it connection patterns in ${grants.map((grant) => `"${grant}"`).join(' or ')}, set "clientToken" to true, or remove it`,
        });
      }
    });
  });

/** The domain's certificate is in the deployment's region; the redirect URI, if given, is on the domain. */
function checkDomain(
  config: {
    domain?: z.output<typeof domainSchema> | undefined;
    redirectUri?: string | undefined;
    env?: { region: string } | undefined;
  },
  context: z.RefinementCtx,
): void {
  const { domain } = config;
  if (domain === undefined) return;
  const certificateRegion = domain.certificateArn?.split(':')[3];
  if (
    certificateRegion !== undefined &&
    config.env !== undefined &&
    certificateRegion !== config.env.region
  ) {
    context.addIssue({
      code: 'custom',
      path: ['domain', 'certificateArn'],
      message: `names a certificate in ${certificateRegion}, but the API's regional domain needs one in ${config.env.region}: request or import it there, or leave the field out to have one issued`,
    });
  }
  if (config.redirectUri !== undefined && new URL(config.redirectUri).hostname !== domain.name) {
    context.addIssue({
      code: 'custom',
      path: ['redirectUri'],
      message: `must be on the domain ${domain.name} when "domain" is set: leave it out (it becomes https://${domain.name}/oauth/callback) or use that host`,
    });
  }
}

/** A deployment's validated configuration, with every default filled in. */
export type BrokerConfig = z.output<typeof brokerConfigSchema>;

/** What a deployer writes: every field with a default may be left out. */
export type BrokerConfigInput = z.input<typeof brokerConfigSchema>;

/** The private access choice, {@link BrokerConfig.privateAccess}. */
export type PrivateAccessConfig = NonNullable<BrokerConfig['privateAccess']>;

/** One entry of {@link BrokerConfig.callers}. */
export type CallerConfig = BrokerConfig['callers'][number];

/** One field of a configuration that failed validation. */
export interface ConfigurationProblem {
  /** Where the field is, such as `refresh.sweepSeconds` or `callers[0].principal`; empty for the whole. */
  readonly path: string;
  /** What is wrong with it and how to fix it. */
  readonly message: string;
}

/**
 * A configuration that cannot be used. Its message lists every bad field with its path and the fix, and
 * never repeats a value from the configuration.
 */
export class ConfigurationError extends BrokerError {
  readonly source: string;
  readonly problems: readonly ConfigurationProblem[];

  constructor(source: string, problems: readonly ConfigurationProblem[], options?: { cause?: unknown }) {
    const lines = problems.map(
      (problem) => `  - ${problem.path || '(the configuration)'}: ${problem.message}`,
    );
    super(
      `The broker configuration from ${source} is not valid; fix ${problems.length === 1 ? 'this field' : 'these fields'} (broker.example.json and the README's "Deploy to AWS" show every field):\n${lines.join('\n')}`,
      options,
    );
    this.source = source;
    this.problems = problems;
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, key) => {
    if (typeof key === 'number') return `${text}[${key}]`;
    return text === '' ? String(key) : `${text}.${String(key)}`;
  }, '');
}

function describeIssue(issue: z.core.$ZodIssue): ConfigurationProblem[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      path: formatPath([...issue.path, key]),
      message: 'is not a known field: check its spelling or remove it',
    }));
  }
  return [{ path: formatPath(issue.path), message: issue.message }];
}

/**
 * Validates a deployment's configuration and fills in its defaults.
 *
 * @param input - the parsed JSON (CDK context, a configuration file or `BROKER_CONFIG`)
 * @param source - where it came from, for the error message (`"cdk.json context"`, a file path, ...)
 * @throws ConfigurationError listing every bad field
 */
export function parseBrokerConfig(input: unknown, source: string): BrokerConfig {
  return parseBrokerConfigWith(input, source, () => []);
}

/**
 * Validates a configuration as {@link parseBrokerConfig} does, together with more checks of the raw input
 * (a deployment's `env`, the local run's `local` section), so that one error lists every problem at once.
 *
 * @throws ConfigurationError listing every bad field, the schema's and the extra checks' alike
 */
export function parseBrokerConfigWith(
  input: unknown,
  source: string,
  moreProblems: (input: unknown) => ConfigurationProblem[],
): BrokerConfig {
  const result = brokerConfigSchema.safeParse(input);
  const problems = [
    ...(result.success ? [] : result.error.issues.flatMap(describeIssue)),
    ...moreProblems(input),
  ];
  if (problems.length > 0) {
    throw new ConfigurationError(source, problems, result.success ? undefined : { cause: result.error });
  }
  return result.data as BrokerConfig;
}
