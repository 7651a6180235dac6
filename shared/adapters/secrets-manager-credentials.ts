import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { BrokerError, DependencyUnavailableError } from '#shared/domain/errors.ts';
import { once } from '#shared/once.ts';
import type { WiseCredentials, WiseCredentialsProvider } from '#shared/ports/wise-oauth.ts';
import * as z from '#shared/validation.ts';
import { reportUnavailable } from './aws-unavailable.ts';

/** The Wise credentials could not be read, or the secret does not hold them in the expected shape. */
export class CredentialsUnavailableError extends BrokerError {
  readonly secretId: string;
  /** The missing or malformed field, e.g. `clientSecret` or `mtls.privateKey`, when that is the problem. */
  readonly field: string | undefined;

  constructor(message: string, options: { secretId: string; field?: string; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.secretId = options.secretId;
    this.field = options.field;
  }
}

/** The secret's JSON: what `WiseCredentials` needs; other keys are ignored. Built on first read. */
const secretShape = once(() => {
  const nonEmpty = z.string().check(z.minLength(1));
  return z.object({
    clientId: nonEmpty,
    clientSecret: nonEmpty,
    previousClientSecret: z.optional(nonEmpty),
    mtls: z.optional(
      z.object({
        certificate: nonEmpty,
        privateKey: nonEmpty,
        ca: z.optional(nonEmpty),
      }),
    ),
  });
});

/** What {@link SecretsManagerCredentials} is built from. */
export interface SecretsManagerCredentialsOptions {
  /** A client built by the composition root (credentials, region or local endpoint already set). */
  client: SecretsManagerClient;
  /** The secret's name or ARN. */
  secretId: string;
  /** How long a read secret is reused before Secrets Manager is asked again; 300 unless given. */
  maxAgeSeconds?: number;
}

/**
 * The Wise client credentials from a Secrets Manager secret holding
 * `{ clientId, clientSecret, previousClientSecret?, mtls?: { certificate, privateKey, ca? } }`, cached in
 * memory for `maxAgeSeconds` so a rotated secret is picked up without a deploy.
 */
export class SecretsManagerCredentials implements WiseCredentialsProvider {
  readonly #provider: SecretsProvider;
  readonly #secretId: string;
  readonly #maxAgeSeconds: number;

  constructor(options: SecretsManagerCredentialsOptions) {
    reportUnavailable(options.client, 'Secrets Manager');
    this.#provider = new SecretsProvider({ awsSdkV3Client: options.client });
    this.#secretId = options.secretId;
    this.#maxAgeSeconds = options.maxAgeSeconds ?? 300;
  }

  /** The cached credentials, or freshly read ones when the cache expired or `forceFresh` is set. */
  async get(options?: { forceFresh?: boolean }): Promise<WiseCredentials> {
    const secretId = this.#secretId;
    let raw: unknown;
    try {
      raw = await this.#provider.get(secretId, {
        maxAge: this.#maxAgeSeconds,
        forceFetch: options?.forceFresh ?? false,
      });
    } catch (error) {
      // Secrets Manager throttling or down is worth a retry shortly; a missing secret or a denied read is not.
      // Powertools wraps the client's error in its own, as the cause.
      const cause = error instanceof Error ? error.cause : undefined;
      if (cause instanceof DependencyUnavailableError) throw cause;
      throw new CredentialsUnavailableError(
        `The Wise client credentials could not be read from secret "${secretId}"; check that it exists and that this function may read it.`,
        { secretId, cause: error },
      );
    }
    const text = raw instanceof Uint8Array ? new TextDecoder().decode(raw) : raw;
    if (typeof text !== 'string') {
      throw new CredentialsUnavailableError(
        `Secret "${secretId}" has no value; store the Wise credentials in it.`,
        {
          secretId,
        },
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      // The parser's message quotes the input, which is the secret: leave it out, cause included.
      throw new CredentialsUnavailableError(
        `Secret "${secretId}" does not hold JSON; store {"clientId": "...", "clientSecret": "..."} in it.`,
        { secretId },
      );
    }
    const parsed = secretShape().safeParse(json);
    if (!parsed.success) throw invalidSecret(secretId, json, parsed.error.issues[0]);
    return toCredentials(parsed.data);
  }
}

function toCredentials(secret: z.infer<ReturnType<typeof secretShape>>): WiseCredentials {
  const credentials: WiseCredentials = { clientId: secret.clientId, clientSecret: secret.clientSecret };
  if (secret.previousClientSecret !== undefined)
    credentials.previousClientSecret = secret.previousClientSecret;
  if (secret.mtls) {
    credentials.mtls = { certificate: secret.mtls.certificate, privateKey: secret.mtls.privateKey };
    if (secret.mtls.ca !== undefined) credentials.mtls.ca = secret.mtls.ca;
  }
  return credentials;
}

/** Names the first wrong field of the secret, never its value. */
function invalidSecret(
  secretId: string,
  json: unknown,
  issue: z.core.$ZodIssue | undefined,
): CredentialsUnavailableError {
  const path = issue?.path.map(String) ?? [];
  if (path.length === 0) {
    return new CredentialsUnavailableError(
      `Secret "${secretId}" must hold a JSON object with "clientId" and "clientSecret".`,
      { secretId },
    );
  }
  const field = path.join('.');
  let value: unknown = json;
  for (const step of path) value = (value as Record<string, unknown> | undefined)?.[step];
  const expected =
    issue?.code === 'invalid_type' && issue.expected === 'object' ? 'an object' : 'a non-empty string';
  const message =
    value === undefined
      ? `Secret "${secretId}" has no "${field}"; add it to the secret.`
      : `Secret "${secretId}" has an invalid "${field}": it must be ${expected}.`;
  return new CredentialsUnavailableError(message, { secretId, field });
}
