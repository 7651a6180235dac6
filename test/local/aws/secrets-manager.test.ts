import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestLocalAws, testLocalAws } from '../../support/aws.ts';

const CLIENT_SECRET_NAME = 'wise-broker/test/client';
const CLIENT_SECRET_VALUE = JSON.stringify({ clientId: 'partner-id', clientSecret: 'not-a-real-secret' });

let secretCount = 0;

function uniqueName(): string {
  return `wise-broker/test/secret-${++secretCount}`;
}

describe('local Secrets Manager', () => {
  let aws: TestLocalAws;

  beforeAll(async () => {
    aws = await testLocalAws({ secrets: { [CLIENT_SECRET_NAME]: CLIENT_SECRET_VALUE } });
  });

  afterAll(() => aws.close());

  it('answers a configured secret by name with its current version', async () => {
    const secret = await aws.secrets.send(new GetSecretValueCommand({ SecretId: CLIENT_SECRET_NAME }));

    expect(secret).toMatchObject({
      Name: CLIENT_SECRET_NAME,
      SecretString: CLIENT_SECRET_VALUE,
      VersionStages: ['AWSCURRENT'],
    });
    expect(secret.ARN).toMatch(
      /^arn:aws:secretsmanager:us-east-1:000000000000:secret:wise-broker\/test\/client-[A-Za-z0-9]{6}$/,
    );
    expect(secret.VersionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(secret.CreatedDate).toBeInstanceOf(Date);
  });

  it('answers the same secret by its ARN and by the AWSCURRENT stage', async () => {
    const byName = await aws.secrets.send(new GetSecretValueCommand({ SecretId: CLIENT_SECRET_NAME }));

    const byArn = await aws.secrets.send(
      new GetSecretValueCommand({ SecretId: byName.ARN, VersionStage: 'AWSCURRENT' }),
    );

    expect(byArn.SecretString).toBe(CLIENT_SECRET_VALUE);
    expect(byArn.VersionId).toBe(byName.VersionId);
  });

  it('makes a put value current and keeps the former one as AWSPREVIOUS', async () => {
    const name = uniqueName();
    const created = await aws.secrets.send(new CreateSecretCommand({ Name: name, SecretString: 'first' }));

    const put = await aws.secrets.send(new PutSecretValueCommand({ SecretId: name, SecretString: 'second' }));
    const current = await aws.secrets.send(new GetSecretValueCommand({ SecretId: name }));
    const previous = await aws.secrets.send(
      new GetSecretValueCommand({ SecretId: name, VersionStage: 'AWSPREVIOUS' }),
    );

    expect(put).toMatchObject({ ARN: created.ARN, Name: name, VersionStages: ['AWSCURRENT'] });
    expect(current).toMatchObject({ SecretString: 'second', VersionId: put.VersionId });
    expect(previous).toMatchObject({ SecretString: 'first', VersionId: created.VersionId });
  });

  it('answers a retried put with the same ClientRequestToken without making another version', async () => {
    const name = uniqueName();
    await aws.secrets.send(new CreateSecretCommand({ Name: name, SecretString: 'first' }));
    const token = randomUUID();
    const put = () =>
      aws.secrets.send(
        new PutSecretValueCommand({ SecretId: name, SecretString: 'second', ClientRequestToken: token }),
      );

    await put();
    await put();
    const described = await aws.secrets.send(new DescribeSecretCommand({ SecretId: name }));

    expect(Object.keys(described.VersionIdsToStages ?? {})).toHaveLength(2);
    expect(described.VersionIdsToStages?.[token]).toEqual(['AWSCURRENT']);
  });

  it('refuses another value under a ClientRequestToken already used with ResourceExistsException', async () => {
    const name = uniqueName();
    const token = randomUUID();
    await aws.secrets.send(
      new CreateSecretCommand({ Name: name, SecretString: 'first', ClientRequestToken: token }),
    );

    const put = aws.secrets.send(
      new PutSecretValueCommand({ SecretId: name, SecretString: 'other', ClientRequestToken: token }),
    );

    await expect(put).rejects.toBeInstanceOf(ResourceExistsException);
  });

  it('describes a secret with its versions and their stages, never its value', async () => {
    const name = uniqueName();
    const created = await aws.secrets.send(
      new CreateSecretCommand({ Name: name, SecretString: 'first', Description: 'Wise client credentials' }),
    );
    const put = await aws.secrets.send(new PutSecretValueCommand({ SecretId: name, SecretString: 'second' }));

    const described = await aws.secrets.send(new DescribeSecretCommand({ SecretId: created.ARN }));

    expect(described).toMatchObject({ ARN: created.ARN, Name: name, Description: 'Wise client credentials' });
    expect(described.VersionIdsToStages).toEqual({
      [created.VersionId ?? '']: ['AWSPREVIOUS'],
      [put.VersionId ?? '']: ['AWSCURRENT'],
    });
    expect(described.CreatedDate).toBeInstanceOf(Date);
    expect(JSON.stringify(described)).not.toContain('second');
  });

  it('refuses to create a secret whose name exists with ResourceExistsException', async () => {
    const create = aws.secrets.send(new CreateSecretCommand({ Name: CLIENT_SECRET_NAME, SecretString: 'x' }));

    await expect(create).rejects.toBeInstanceOf(ResourceExistsException);
  });

  it('answers ResourceNotFoundException for a secret created without a value', async () => {
    const name = uniqueName();
    await aws.secrets.send(new CreateSecretCommand({ Name: name }));

    const get = aws.secrets.send(new GetSecretValueCommand({ SecretId: name }));

    await expect(get).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it('answers get, put and describe of an unknown secret with ResourceNotFoundException', async () => {
    const secretId = 'wise-broker/test/no-such-secret';

    const get = aws.secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
    const put = aws.secrets.send(new PutSecretValueCommand({ SecretId: secretId, SecretString: 'x' }));
    const describeSecret = aws.secrets.send(new DescribeSecretCommand({ SecretId: secretId }));

    await expect(get).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(put).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(describeSecret).rejects.toBeInstanceOf(ResourceNotFoundException);
  });
});

describe('local Secrets Manager across restarts', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'local-secrets-'));
  });

  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  it('keeps secrets in the data folder and gives a changed configured value a new version', async () => {
    const first = await testLocalAws({ dataDir, secrets: { [CLIENT_SECRET_NAME]: 'first' } });
    const before = await first.secrets.send(new GetSecretValueCommand({ SecretId: CLIENT_SECRET_NAME }));
    await first.close();

    const second = await testLocalAws({ dataDir, secrets: { [CLIENT_SECRET_NAME]: 'second' } });
    try {
      const current = await second.secrets.send(new GetSecretValueCommand({ SecretId: CLIENT_SECRET_NAME }));
      const previous = await second.secrets.send(
        new GetSecretValueCommand({ SecretId: CLIENT_SECRET_NAME, VersionStage: 'AWSPREVIOUS' }),
      );

      expect(current.ARN).toBe(before.ARN);
      expect(current.SecretString).toBe('second');
      expect(previous.VersionId).toBe(before.VersionId);
    } finally {
      await second.close();
    }
  });
});
