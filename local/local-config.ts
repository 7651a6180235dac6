import { resolve } from 'node:path';
import { z } from 'zod';
import { type BrokerConfig, parseBrokerConfigWith } from '#shared/config/broker-config.ts';
import { readConfigurationJson } from '#shared/config/broker-config-file.ts';

/** The file `npm start` reads when no `--config` is given. */
export const DEFAULT_CONFIG_FILE = 'broker.local.json';

const LocalCredential = z.strictObject({
  accessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/, 'must be 16 to 128 upper-case letters and digits'),
  secretAccessKey: z.string().min(16, 'must be at least 16 characters'),
  principal: z.string().regex(/^arn:aws:iam::\d{12}:(role|user)\/.+$/, 'must be an IAM role or user ARN'),
});

/** The `local` section: everything only the local run needs. */
export const LocalSettings = z.strictObject({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(3000),
  region: z.string().default('us-east-1'),
  /** Where the embedded DynamoDB and the local key and secret live; `null` keeps everything in memory. */
  dataDir: z.string().nullable().default('.local/data'),
  credentials: z.array(LocalCredential).min(1, 'needs at least one local caller credential'),
  /** The Wise simulator; ignored when `wiseCredentials` points the broker at a real Wise sandbox. */
  simulator: z
    .strictObject({
      port: z.number().int().min(0).max(65535).default(4010),
      accessTokenSeconds: z.number().int().min(30).default(43199),
      invalidGrantStatus: z.union([z.literal(400), z.literal(401)]).default(400),
      rotateRefreshTokens: z.boolean().default(false),
      clientId: z.string().min(1).default('broker-local-client'),
      clientSecret: z.string().min(1).default('broker-local-secret'),
      /** Wise's documented defaults: 100 token calls a second and 1000 a minute per client. */
      rateLimit: z
        .strictObject({
          perSecond: z.number().int().min(1).default(100),
          perMinute: z.number().int().min(1).default(1000),
        })
        .prefault({}),
    })
    .prefault({}),
  /** Real Wise sandbox credentials: when set, the broker talks to `wise` URLs instead of the simulator. */
  wiseCredentials: z
    .strictObject({ clientId: z.string().min(1), clientSecret: z.string().min(1) })
    .optional(),
  /** Port of the local KMS, Secrets Manager and EventBridge endpoint; 0 picks a free one. */
  awsPort: z.number().int().min(0).max(65535).default(0),
});
export type LocalSettings = z.output<typeof LocalSettings>;

export interface LocalConfig {
  broker: BrokerConfig;
  local: LocalSettings;
  source: string;
}

/** Reads and validates a local configuration file: the CDK context schema plus its `local` section. */
export function loadLocalConfig(file: string): LocalConfig {
  const source = resolve(file);
  let local: LocalSettings | undefined;
  // The `local` section's problems are listed with the rest of the file's, in one error.
  const broker = parseBrokerConfigWith(readConfigurationJson(source), source, (raw) => {
    const section = LocalSettings.safeParse((raw as { local?: unknown } | null)?.local ?? {});
    if (section.success) {
      local = section.data;
      return [];
    }
    return section.error.issues.map((issue) => ({
      path: ['local', ...issue.path.map(String)].join('.'),
      message: issue.message,
    }));
  });
  return { broker, local: local as LocalSettings, source };
}
