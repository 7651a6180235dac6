import { createHash } from 'node:crypto';
import type { APIGatewayEventRequestContextIAMAuthorizer } from 'aws-lambda';
import type { LocalCredential } from './types.ts';

/** The `requestContext.authorizer.iam` block API Gateway fills in for a verified caller. */
export type IamIdentity = APIGatewayEventRequestContextIAMAuthorizer['iam'];

const ROLE = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:[^/]+\/)*([^/]+)$/;
const USER = /^arn:(aws[a-z-]*):iam::(\d{12}):user\/(?:[^/]+\/)*([^/]+)$/;
const ASSUMED_ROLE = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/([^/]+)$/;

/**
 * The identity AWS reports for a request signed with this credential. A role is only ever used through
 * an assumed-role session, so its `userArn` is `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION` (the
 * role's path dropped, as STS does); a user's is its own ARN.
 */
export function iamIdentity(credential: LocalCredential): IamIdentity {
  const { principal, accessKeyId } = credential;
  const role = ROLE.exec(principal);
  if (role) {
    const [, partition = 'aws', accountId = '', name = ''] = role;
    const session = credential.sessionName ?? 'local';
    const userId = `${uniqueId('AROA', principal)}:${session}`;
    const userArn = `arn:${partition}:sts::${accountId}:assumed-role/${name}/${session}`;
    return identity(accessKeyId, accountId, userId, userArn);
  }
  const assumed = ASSUMED_ROLE.exec(principal);
  if (assumed) {
    const [, partition = 'aws', accountId = '', name = '', session = ''] = assumed;
    const roleArn = `arn:${partition}:iam::${accountId}:role/${name}`;
    return identity(accessKeyId, accountId, `${uniqueId('AROA', roleArn)}:${session}`, principal);
  }
  const user = USER.exec(principal);
  if (user) {
    const [, , accountId = ''] = user;
    return identity(accessKeyId, accountId, uniqueId('AIDA', principal), principal);
  }
  throw new Error(
    `Local credential ${accessKeyId}: principal "${principal}" is not an IAM role, user or assumed-role ARN.`,
  );
}

function identity(accessKey: string, accountId: string, userId: string, userArn: string): IamIdentity {
  return {
    accessKey,
    accountId,
    callerId: userId,
    cognitoIdentity: null,
    // AWS sends null when the caller's account belongs to no organization.
    principalOrgId: null as unknown as string,
    userArn,
    userId,
  };
}

/** A stable stand-in for the unique id IAM gives a role (AROA…) or user (AIDA…): 21 characters. */
function uniqueId(prefix: string, arn: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const digest = createHash('sha256').update(arn).digest();
  let id = prefix;
  for (let index = 0; index < 17; index++) id += alphabet[(digest[index] ?? 0) % 32];
  return id;
}
