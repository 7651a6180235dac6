import type { RefreshDemand } from '#shared/domain/refresh-rule.ts';
import type { RefreshDeps } from './refresh-record.ts';
import { currentToken } from './vend-token.ts';

/** The application's client-credentials token; times are epoch ms. */
export interface ClientAccessToken {
  accessToken: string;
  expiresAt: number;
  generation: number;
  /** Until when the broker promises not to replace it. */
  validUntil: number;
  scope?: string;
}

/**
 * The stored client-credentials token: minted under the lease when there is none yet, refreshed (minted
 * again) when it is due or expired, and shared by every instance, since a new one may end the old.
 * For the broker's own use (the registration-code signup); callers outside go through `POST /tokens`.
 * `demand.rejectedGeneration`: Wise refused that generation, so a newer one is minted (once a window,
 * like every reported rejection of the client token).
 *
 * @throws ProviderUnavailableError when Wise cannot mint one and no valid token is stored
 * @throws TokenDecryptionError when the stored token does not decrypt under its record's context
 */
export async function obtainClientAccessToken(
  runtime: RefreshDeps,
  demand: RefreshDemand = {},
): Promise<ClientAccessToken> {
  const token = await currentToken(runtime, { kind: 'client' }, demand);
  const result: ClientAccessToken = {
    accessToken: token.accessToken,
    expiresAt: token.expiresAt,
    generation: token.generation,
    validUntil: token.validUntil,
  };
  if (token.scope !== undefined) result.scope = token.scope;
  return result;
}
