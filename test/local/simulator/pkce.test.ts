import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningSimulator, startSimulator } from '#local/simulator/index.ts';
import { approve, CLIENT_ID, control, postToken, REDIRECT_URI } from './support.ts';

const VERIFIER = 'v'.repeat(43);
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');

let simulator: RunningSimulator | undefined;
afterEach(async () => {
  await simulator?.close();
  simulator = undefined;
});

/** Approves an authorization request that carried an S256 challenge; answers its code. */
async function approveWithChallenge(sim: RunningSimulator, challenge = CHALLENGE): Promise<string> {
  const users = await control<Array<{ id: number }>>(sim, 'users');
  const { body } = await control<{ location: string }>(sim, 'authorize', {
    clientId: CLIENT_ID,
    redirectUri: REDIRECT_URI,
    state: 'test-state',
    userId: users.body[0]?.id,
    decision: 'approve',
    codeChallenge: challenge,
    codeChallengeMethod: 'S256',
  });
  return new URL(body.location).searchParams.get('code') ?? '';
}

function exchange(sim: RunningSimulator, code: string, verifier?: string) {
  return postToken(sim, {
    grant_type: 'authorization_code',
    client_id: CLIENT_ID,
    code,
    redirect_uri: REDIRECT_URI,
    ...(verifier === undefined ? {} : { code_verifier: verifier }),
  });
}

describe('PKCE at the simulator', () => {
  it('redeems a code issued for a challenge only with its verifier', async () => {
    simulator = await startSimulator({ pkce: true });

    const right = await exchange(simulator, await approveWithChallenge(simulator), VERIFIER);
    const wrong = await exchange(simulator, await approveWithChallenge(simulator), 'w'.repeat(43));
    const missing = await exchange(simulator, await approveWithChallenge(simulator));

    expect(right.status).toBe(200);
    expect(wrong.body).toMatchObject({ error: 'invalid_grant' });
    expect(missing.body).toMatchObject({ error: 'invalid_grant' });
  });

  it('refuses a verifier for a code issued without a challenge (no downgrade)', async () => {
    simulator = await startSimulator({ pkce: true });
    const { code } = await approve(simulator);

    const answer = await exchange(simulator, code, VERIFIER);

    expect(answer.body).toMatchObject({ error: 'invalid_grant' });
  });

  it('ignores both parameters by default, as a server that does not know PKCE', async () => {
    simulator = await startSimulator();

    const answer = await exchange(simulator, await approveWithChallenge(simulator), 'w'.repeat(43));

    expect(answer.status).toBe(200);
  });
});
