import { ArnFormat, type Stack } from 'aws-cdk-lib';
import { AccountRootPrincipal, PolicyDocument, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { CipherKind } from '#shared/domain/records.ts';

/**
 * What encrypts under the token key, by kind: a record's data key is made with `kms:GenerateDataKey` (its
 * secrets are then sealed locally with it); anything else (the listing's cursor) is `kms:Encrypt`ed.
 */
export function tokenKeyEncryptActions(kinds: readonly CipherKind[]): string[] {
  return [
    ...(kinds.some((kind) => kind !== 'data_key') ? ['kms:Encrypt'] : []),
    ...(kinds.includes('data_key') ? ['kms:GenerateDataKey'] : []),
  ];
}

/** What decrypts under the token key. */
export const TOKEN_KEY_DECRYPT_ACTIONS = ['kms:Decrypt'] as const;

/**
 * What the account's IAM may do with the token key: manage it (describe, enable and disable, rotate, tag,
 * alias, change its policy, schedule its deletion), never use it. `kms:CreateGrant` is left out too: a
 * grant could hand `kms:Decrypt` to anyone.
 */
export const TOKEN_KEY_ADMINISTRATION_ACTIONS = [
  'kms:CancelKeyDeletion',
  'kms:CreateAlias',
  'kms:DeleteAlias',
  'kms:DescribeKey',
  'kms:DisableKey',
  'kms:DisableKeyRotation',
  'kms:EnableKey',
  'kms:EnableKeyRotation',
  'kms:GetKeyPolicy',
  'kms:GetKeyRotationStatus',
  'kms:ListGrants',
  'kms:ListKeyPolicies',
  'kms:ListKeyRotations',
  'kms:ListResourceTags',
  'kms:PutKeyPolicy',
  'kms:RetireGrant',
  'kms:RevokeGrant',
  'kms:RotateKeyOnDemand',
  'kms:ScheduleKeyDeletion',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:UpdateAlias',
  'kms:UpdateKeyDescription',
] as const;

/** One function that uses the token key: its role's name and the kinds of secret it encrypts and decrypts. */
export interface TokenKeyUser {
  /** The broker function, such as `tokens`; names the key policy's statements. */
  readonly functionName: string;
  readonly roleName: string;
  readonly encrypts: readonly CipherKind[];
  readonly decrypts: readonly CipherKind[];
}

/** The actions and conditions of one use of the token key, the same in the key policy and the role's policy. */
export interface TokenKeyUse {
  readonly direction: 'Encrypt' | 'Decrypt';
  readonly actions: string[];
  readonly conditions: { StringEquals: Record<string, string | string[]> };
}

/**
 * The uses of the token key one function needs: each direction only for its kinds of secret (the
 * encryption context's `kind`) and only for this deployment's records (its `deployment`).
 */
export function tokenKeyStatements(
  stage: string,
  use: Pick<TokenKeyUser, 'encrypts' | 'decrypts'>,
): TokenKeyUse[] {
  const context = (kinds: readonly CipherKind[]) => ({
    StringEquals: {
      'kms:EncryptionContext:deployment': stage,
      'kms:EncryptionContext:kind': kinds.length === 1 ? (kinds[0] as string) : [...kinds],
    },
  });
  const uses: TokenKeyUse[] = [];
  if (use.encrypts.length > 0) {
    uses.push({
      direction: 'Encrypt',
      actions: tokenKeyEncryptActions(use.encrypts),
      conditions: context(use.encrypts),
    });
  }
  if (use.decrypts.length > 0) {
    uses.push({
      direction: 'Decrypt',
      actions: [...TOKEN_KEY_DECRYPT_ACTIONS],
      conditions: context(use.decrypts),
    });
  }
  return uses;
}

/**
 * The token key's policy. Key administration goes to the account (its IAM decides who administers), use to
 * the broker's function roles only: each use statement names one role by `aws:PrincipalArn`, with the kinds
 * that function needs. The roles are named, not referenced, because they live in the stateless stack,
 * which depends on this one; a role that is deleted and created again under its name keeps its access,
 * and no other principal of the account gets any, whatever its IAM policies allow (`kms:Decrypt` on `*`
 * included). Whoever may call `kms:PutKeyPolicy` can still change this policy: CloudTrail records it.
 */
export function tokenKeyPolicy(scope: Stack, stage: string, users: readonly TokenKeyUser[]): PolicyDocument {
  const account = new AccountRootPrincipal();
  const roleArn = (roleName: string) =>
    scope.formatArn({
      service: 'iam',
      region: '',
      resource: 'role',
      resourceName: roleName,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  const statements = [
    new PolicyStatement({
      sid: 'KeyAdministration',
      principals: [account],
      actions: [...TOKEN_KEY_ADMINISTRATION_ACTIONS],
      resources: ['*'],
    }),
    ...users.flatMap((user) =>
      tokenKeyStatements(stage, user).map(
        (use) =>
          new PolicyStatement({
            sid: `${pascalCase(user.functionName)}${use.direction}s`,
            principals: [account],
            actions: use.actions,
            resources: ['*'],
            conditions: { ...use.conditions, ArnEquals: { 'aws:PrincipalArn': roleArn(user.roleName) } },
          }),
      ),
    ),
  ];
  return new PolicyDocument({ statements });
}

function pascalCase(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}
