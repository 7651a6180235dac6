import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  AwsServiceError,
  epochSeconds,
  isJsonObject,
  type JsonObject,
  type LocalService,
  type LocalServiceOptions,
  type Operation,
  optionalBlob,
  optionalString,
  optionalStringList,
  requiredString,
  validationError,
} from './json-protocol.ts';
import { readStateFile, writeStateFile } from './state-file.ts';

const CURRENT = 'AWSCURRENT';
const PREVIOUS = 'AWSPREVIOUS';
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const SUFFIX_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

const SecretValueFields = {
  secretString: z.string().optional(),
  secretBinary: z.base64().optional(),
};

const SecretsStateFile = z.object({
  secrets: z.array(
    z.object({
      arn: z.string(),
      name: z.string().regex(SECRET_NAME),
      description: z.string().optional(),
      kmsKeyId: z.string().optional(),
      tags: z.array(z.object({ Key: z.string(), Value: z.string() })).optional(),
      createdDate: z.iso.datetime(),
      lastChangedDate: z.iso.datetime(),
      versions: z.array(
        z.object({
          versionId: z.string(),
          ...SecretValueFields,
          stages: z.array(z.string()),
          createdDate: z.iso.datetime(),
        }),
      ),
    }),
  ),
});

type StoredSecrets = z.infer<typeof SecretsStateFile>;
type Secret = StoredSecrets['secrets'][number];
type SecretVersion = Secret['versions'][number];
type SecretValue = Pick<SecretVersion, 'secretString' | 'secretBinary'>;

/**
 * A local stand-in for AWS Secrets Manager: `CreateSecret`, `GetSecretValue`, `PutSecretValue` and
 * `DescribeSecret` (target prefix `secretsmanager`), with version ids and the AWSCURRENT and
 * AWSPREVIOUS staging labels moving as in AWS. Values are kept in plain form, never encrypted.
 */
export class LocalSecretsManager implements LocalService {
  readonly targetPrefix = 'secretsmanager';
  readonly operations: ReadonlyMap<string, Operation>;
  readonly #arnPrefix: string;
  readonly #stateFile: string | undefined;
  readonly #secrets: Secret[];

  constructor(options: LocalServiceOptions) {
    this.#arnPrefix = `arn:aws:secretsmanager:${options.region}:${options.accountId}:secret:`;
    this.#stateFile = options.stateFile;
    this.#secrets =
      this.#stateFile === undefined ? [] : (readStateFile(this.#stateFile, SecretsStateFile)?.secrets ?? []);
    this.operations = new Map<string, Operation>([
      ['CreateSecret', (input) => this.#createSecret(input)],
      ['GetSecretValue', (input) => this.#getSecretValue(input)],
      ['PutSecretValue', (input) => this.#putSecretValue(input)],
      ['DescribeSecret', (input) => this.#describeSecret(input)],
    ]);
  }

  /** Creates the secret, or gives it a new current version when its current value differs. */
  ensureSecret(name: string, secretString: string): void {
    const secret = this.#secrets.find((candidate) => candidate.name === name);
    if (secret === undefined) {
      this.#createSecret({ Name: name, SecretString: secretString });
    } else if (findVersionByStage(secret, CURRENT)?.secretString !== secretString) {
      this.#putSecretValue({ SecretId: name, SecretString: secretString });
    }
  }

  #createSecret(input: JsonObject): JsonObject {
    const name = requiredString(input, 'Name', { min: 1, max: 512 });
    if (!SECRET_NAME.test(name)) {
      throw validationError('Name', 'contain only letters, digits and the characters /_+=.@-');
    }
    const value = readSecretValue(input);
    const versionId = optionalString(input, 'ClientRequestToken', { min: 32, max: 64 }) ?? randomUUID();
    const description = optionalString(input, 'Description', { max: 2048 });
    const kmsKeyId = optionalString(input, 'KmsKeyId', { max: 2048 });
    const tags = readTags(input);
    if (this.#secrets.some((secret) => secret.name === name)) {
      throw new AwsServiceError(
        'ResourceExistsException',
        `The operation failed because the secret ${name} already exists.`,
      );
    }
    const now = new Date().toISOString();
    const secret: Secret = {
      arn: `${this.#arnPrefix}${name}-${randomSuffix()}`,
      name,
      ...(description === undefined ? {} : { description }),
      ...(kmsKeyId === undefined ? {} : { kmsKeyId }),
      ...(tags === undefined ? {} : { tags }),
      createdDate: now,
      lastChangedDate: now,
      versions: value === undefined ? [] : [{ versionId, ...value, stages: [CURRENT], createdDate: now }],
    };
    this.#secrets.push(secret);
    this.#save();
    return { ARN: secret.arn, Name: secret.name, ...(value === undefined ? {} : { VersionId: versionId }) };
  }

  #getSecretValue(input: JsonObject): JsonObject {
    const secret = this.#find(requiredString(input, 'SecretId', { min: 1, max: 2048 }));
    const versionId = optionalString(input, 'VersionId', { min: 32, max: 64 });
    const stage = optionalString(input, 'VersionStage', { min: 1, max: 256 });
    const version =
      versionId === undefined
        ? findVersionByStage(secret, stage ?? CURRENT)
        : secret.versions.find(
            (candidate) =>
              candidate.versionId === versionId && (stage === undefined || candidate.stages.includes(stage)),
          );
    if (version === undefined) {
      const wanted =
        versionId === undefined ? `staging label: ${stage ?? CURRENT}` : `VersionId: ${versionId}`;
      throw new AwsServiceError(
        'ResourceNotFoundException',
        `Secrets Manager can't find the specified secret value for ${wanted}`,
      );
    }
    return {
      ARN: secret.arn,
      Name: secret.name,
      VersionId: version.versionId,
      ...valueFields(version),
      VersionStages: version.stages,
      CreatedDate: epochSeconds(new Date(version.createdDate)),
    };
  }

  #putSecretValue(input: JsonObject): JsonObject {
    const secret = this.#find(requiredString(input, 'SecretId', { min: 1, max: 2048 }));
    const versionId = optionalString(input, 'ClientRequestToken', { min: 32, max: 64 }) ?? randomUUID();
    const value = readSecretValue(input);
    const stages = optionalStringList(input, 'VersionStages', { min: 1, max: 20 }) ?? [CURRENT];
    if (value === undefined) {
      throw new AwsServiceError(
        'InvalidParameterException',
        'Give the new value as SecretString or SecretBinary.',
      );
    }
    const existing = secret.versions.find((candidate) => candidate.versionId === versionId);
    if (existing !== undefined) {
      // A retried request with the same token is answered again; another value under it is refused.
      if (existing.secretString !== value.secretString || existing.secretBinary !== value.secretBinary) {
        throw new AwsServiceError(
          'ResourceExistsException',
          `A version with ClientRequestToken ${versionId} already exists with another value; versions cannot be changed, send a new token.`,
        );
      }
      return { ARN: secret.arn, Name: secret.name, VersionId: versionId, VersionStages: existing.stages };
    }
    const now = new Date().toISOString();
    const version: SecretVersion = { versionId, ...value, stages: [], createdDate: now };
    secret.versions.push(version);
    for (const stage of new Set(stages)) moveStage(secret, stage, version);
    // Versions left without a label are deprecated; AWS removes them in time, this removes them at once.
    secret.versions = secret.versions.filter((candidate) => candidate.stages.length > 0);
    secret.lastChangedDate = now;
    this.#save();
    return { ARN: secret.arn, Name: secret.name, VersionId: versionId, VersionStages: version.stages };
  }

  #describeSecret(input: JsonObject): JsonObject {
    const secret = this.#find(requiredString(input, 'SecretId', { min: 1, max: 2048 }));
    return {
      ARN: secret.arn,
      Name: secret.name,
      ...(secret.description === undefined ? {} : { Description: secret.description }),
      ...(secret.kmsKeyId === undefined ? {} : { KmsKeyId: secret.kmsKeyId }),
      ...(secret.tags === undefined ? {} : { Tags: secret.tags }),
      RotationEnabled: false,
      CreatedDate: epochSeconds(new Date(secret.createdDate)),
      LastChangedDate: epochSeconds(new Date(secret.lastChangedDate)),
      VersionIdsToStages: Object.fromEntries(
        secret.versions.map((version) => [version.versionId, version.stages]),
      ),
    };
  }

  /** By name, by full ARN, or by the ARN without its random suffix, as AWS accepts. */
  #find(secretId: string): Secret {
    const secret = this.#secrets.find(
      (candidate) =>
        candidate.name === secretId ||
        candidate.arn === secretId ||
        `${this.#arnPrefix}${candidate.name}` === secretId,
    );
    if (secret === undefined) {
      throw new AwsServiceError(
        'ResourceNotFoundException',
        "Secrets Manager can't find the specified secret.",
      );
    }
    return secret;
  }

  #save(): void {
    if (this.#stateFile !== undefined) writeStateFile(this.#stateFile, { secrets: this.#secrets });
  }
}

function readSecretValue(input: JsonObject): SecretValue | undefined {
  const secretString = optionalString(input, 'SecretString', { max: 65536 });
  const secretBinary = optionalBlob(input, 'SecretBinary', { max: 65536 });
  if (secretString !== undefined && secretBinary !== undefined) {
    throw new AwsServiceError(
      'InvalidParameterException',
      'Give either SecretString or SecretBinary, not both: a secret version holds one value.',
    );
  }
  if (secretString !== undefined) return { secretString };
  if (secretBinary !== undefined) return { secretBinary: secretBinary.toString('base64') };
  return undefined;
}

function valueFields(version: SecretVersion): JsonObject {
  return version.secretString === undefined
    ? { SecretBinary: version.secretBinary }
    : { SecretString: version.secretString };
}

function readTags(input: JsonObject): Secret['tags'] {
  const tags = input.Tags;
  if (tags === undefined || tags === null) return undefined;
  const valid =
    Array.isArray(tags) &&
    tags.every((tag) => isJsonObject(tag) && typeof tag.Key === 'string' && typeof tag.Value === 'string');
  if (!valid) throw validationError('Tags', 'be a list of {Key, Value} string pairs');
  return tags as { Key: string; Value: string }[];
}

function findVersionByStage(secret: Secret, stage: string): SecretVersion | undefined {
  return secret.versions.find((version) => version.stages.includes(stage));
}

/** Puts `stage` on `target` alone; the version that loses AWSCURRENT becomes AWSPREVIOUS. */
function moveStage(secret: Secret, stage: string, target: SecretVersion): void {
  const holder = findVersionByStage(secret, stage);
  if (holder === target) return;
  if (holder !== undefined) holder.stages = holder.stages.filter((label) => label !== stage);
  target.stages.push(stage);
  if (stage === CURRENT && holder !== undefined) {
    const previous = findVersionByStage(secret, PREVIOUS);
    if (previous !== undefined) previous.stages = previous.stages.filter((label) => label !== PREVIOUS);
    holder.stages.push(PREVIOUS);
  }
}

function randomSuffix(): string {
  return Array.from(randomBytes(6), (byte) => SUFFIX_ALPHABET[byte % SUFFIX_ALPHABET.length]).join('');
}
