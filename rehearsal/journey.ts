import type { RecordedEvent } from '#local/aws/local-aws.ts';
import { authorizeElsewhere } from '#local/simulator/authorize-elsewhere.ts';
import { SignedTransport } from '../client/signed-transport.ts';
import { RehearsalError } from './errors.ts';

/** A caller of the broker's IAM routes: its access key and the principal it stands for. */
export interface JourneyCaller {
  accessKeyId: string;
  secretAccessKey: string;
  principal: string;
  /** A connection id the caller's `connections` patterns allow. */
  connectionId: (suffix: string) => string;
}

export interface JourneyOptions {
  apiUrl: string;
  region: string;
  /** May use connections and fetch the client-credentials token. */
  user: JourneyCaller;
  /** May administer connections. */
  admin: JourneyCaller;
  /** May import the connections `user` uses. */
  importer: JourneyCaller;
  /**
   * The Wise stand-in, with the client the broker is registered as and its redirect URI: what the partner's
   * old system connected its users with before the broker took them over by import.
   */
  simulator: { url: string; client: { id: string; secret: string }; redirectUri: string };
  /** A return URL the configuration allows; without one, the configuration must connect without confirmation. */
  returnUrl?: string;
  /** Every event the functions put on an event bus. */
  events: readonly RecordedEvent[];
  /** Delivers the schedule's event to its function, as the template's rule or schedule would. */
  runSchedule: () => Promise<unknown>;
  /**
   * Hears each secret the journey meets (access tokens, the registration code, the imported refresh
   * token), which no log may hold.
   */
  onSecret?: (secret: string) => void;
  /** Hears each step begin, before its first request. */
  onStep?: (name: string) => void;
  /** Waits, bounded, for the wall clock to reach `epochMs`. */
  waitUntil: (epochMs: number) => Promise<void>;
  /**
   * Where a browser's request to a URL the broker built lands (a start URL, the callback on the redirect
   * URI): the local API for a custom domain of the assembly; the URL itself when left out.
   */
  browserUrl?: (url: string) => string;
}

/** One step of the journey and how it went. */
export interface JourneyStep {
  name: string;
  ok: boolean;
  ms: number;
  detail?: string;
}

const REGISTRATION_CODE = 'rehearsal-registration-code-0123456789abcdef';

interface Answer {
  status: number;
  body: Record<string, unknown>;
  text: string;
}

interface VendedToken {
  accessToken: string;
  generation: number;
  validUntil: string;
}

/**
 * The broker's whole journey through the rehearsed functions, against the Wise simulator: a connect
 * session, its start URL, approval, callback and completion, vends, a scheduled sweep that refreshes, the vend of the new
 * generation, a `rejectedGeneration`, a registration-code connection, the client-credentials token, an
 * imported connection, the listing, a status, a delete, and a re-authorization event on the bus. Stops at
 * the first step that fails.
 */
export async function runJourney(options: JourneyOptions, steps: JourneyStep[]): Promise<void> {
  options.onSecret?.(REGISTRATION_CODE);
  const userApi = transport(options, options.user);
  const adminApi = transport(options, options.admin);
  const importerApi = transport(options, options.importer);
  const connected = options.user.connectionId('rehearsal-1');
  const second = options.user.connectionId('rehearsal-2');
  const registered = options.user.connectionId('rehearsal-3');
  const imported = options.user.connectionId('rehearsal-imported');
  let first: VendedToken | undefined;
  let swept: VendedToken | undefined;
  let rejected: VendedToken | undefined;

  const step = async (name: string, run: () => Promise<string | undefined>) => {
    const startedAt = performance.now();
    options.onStep?.(name);
    try {
      const detail = await run();
      steps.push({
        name,
        ok: true,
        ms: Math.round(performance.now() - startedAt),
        ...(detail ? { detail } : {}),
      });
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      steps.push({ name, ok: false, ms: Math.round(performance.now() - startedAt), detail });
      throw new RehearsalError(`Journey step "${name}" failed: ${detail}`, { cause: error });
    }
  };

  await step('an unsigned call to an IAM route is refused', async () => {
    const answer = await fetch(`${options.apiUrl}/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ connectionId: connected }),
    });
    expectStatus('POST /tokens unsigned', await read(answer), 403);
    return undefined;
  });

  const users = async () =>
    (await (await fetch(`${options.simulator.url}/__control/users`)).json()) as { id: number }[];
  /** What the user's browser does at Wise: approves the authorize URL's request as `userId`. */
  const approve = async (authorizeUrl: string, userId: number | undefined): Promise<string> => {
    if (!authorizeUrl.startsWith(options.simulator.url)) {
      throw new Error(
        `the start URL leads to ${authorizeUrl}, not to the Wise stand-in ${options.simulator.url}`,
      );
    }
    const query = new URL(authorizeUrl).searchParams;
    const answer = await fetch(`${options.simulator.url}/__control/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        clientId: query.get('client_id'),
        redirectUri: query.get('redirect_uri'),
        state: query.get('state'),
        userId,
        decision: 'approve',
        ...(query.has('code_challenge')
          ? {
              codeChallenge: query.get('code_challenge'),
              codeChallengeMethod: query.get('code_challenge_method'),
            }
          : {}),
      }),
    });
    const body = (await answer.json()) as { location?: string; message?: string };
    if (!answer.ok || !body.location)
      throw new Error(`the Wise stand-in refused the approval: ${body.message}`);
    return body.location;
  };
  /**
   * Connects `connectionId` as the user's browser and the partner's service do: a connect session, its
   * start URL (which sets the browser's binding cookie), the approval at Wise, the callback with the
   * cookie, and the completion code the return URL received, confirmed by the partner's service.
   */
  const connect = async (connectionId: string, userId: number | undefined): Promise<string> => {
    const session = await call(userApi, 'POST', '/connect-sessions', {
      connectionId,
      ...(options.returnUrl === undefined ? {} : { returnUrl: options.returnUrl }),
    });
    expectStatus('POST /connect-sessions', session, 201);
    const browserUrl = options.browserUrl ?? ((url: string) => url);
    const startUrl = String(session.body.startUrl ?? '');
    const start = await fetch(browserUrl(startUrl), { redirect: 'manual' });
    const cookie = start.headers.getSetCookie()[0]?.split(';')[0];
    const authorizeUrl = start.headers.get('location');
    if (start.status !== 303 || cookie === undefined || authorizeUrl === null) {
      throw new Error(`the start URL answered ${start.status} without a cookie and a redirect to Wise`);
    }
    const callbackUrl = await approve(authorizeUrl, userId);
    const where = `start URL on ${URL.canParse(startUrl) ? new URL(startUrl).origin : startUrl}, callback on ${new URL(callbackUrl).origin}`;
    const callback = await fetch(browserUrl(callbackUrl), { headers: { cookie }, redirect: 'manual' });
    if (options.returnUrl === undefined) {
      expectStatus('GET /oauth/callback', await read(callback), 200);
      return `connected at the callback (${where})`;
    }
    expectStatus('GET /oauth/callback', await read(callback), 303);
    const completion = new URL(callback.headers.get('location') ?? '', options.apiUrl).searchParams.get(
      'completion',
    );
    if (!completion) throw new Error('the callback sent the browser back without a completion code');
    options.onSecret?.(completion);
    const confirmed = await call(
      userApi,
      'POST',
      `/connections/${encodeURIComponent(connectionId)}/completion`,
      {
        completionCode: completion,
      },
    );
    expectStatus('POST /connections/{id}/completion', confirmed, 200);
    return `confirmed with the completion code (${where})`;
  };
  const revoke = async (userId: number | undefined) => {
    await fetch(`${options.simulator.url}/__control/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId }),
    });
  };

  let firstUser: number | undefined;
  await step('connect session, approval at Wise, callback and completion', async () => {
    firstUser = (await users())[0]?.id;
    return connect(connected, firstUser);
  });

  await step('vend', async () => {
    first = await vend(options, userApi, { connectionId: connected });
    await expectLiveAtWise(options, first.accessToken);
    return `generation ${first.generation}, valid until ${first.validUntil}`;
  });

  let secondUser: number | undefined;
  await step('a second connection, of another Wise user', async () => {
    const created = await fetch(`${options.simulator.url}/__control/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'rehearsal.second@example.com' }),
    });
    secondUser = ((await created.json()) as { id?: number }).id;
    await connect(second, secondUser);
    const token = await vend(options, userApi, { connectionId: second });
    return `generation ${token.generation}`;
  });

  await step('client-credentials token', async () => {
    const token = await vend(options, userApi, { kind: 'client' });
    return `generation ${token.generation}`;
  });

  let registeredGeneration = 0;
  await step('registration-code connection', async () => {
    const answer = await call(
      userApi,
      'POST',
      `/connections/${encodeURIComponent(registered)}/registration-code`,
      {
        email: 'rehearsal.user@example.com',
        registrationCode: REGISTRATION_CODE,
        signup: true,
      },
    );
    expectStatus('POST /connections/{id}/registration-code', answer, 201);
    const token = await vend(options, userApi, { connectionId: registered });
    registeredGeneration = token.generation;
    await expectLiveAtWise(options, token.accessToken);
    return `connected, generation ${token.generation}`;
  });

  await step('imported connection', async () => {
    // The partner's old system connected this user itself; the import hands its refresh token over.
    const old = await authorizeElsewhere(
      options.simulator.url,
      options.simulator.client,
      options.simulator.redirectUri,
      'rehearsal.imported@example.com',
    );
    options.onSecret?.(old.refreshToken);
    options.onSecret?.(old.accessToken);
    const answer = await call(importerApi, 'POST', `/connections/${encodeURIComponent(imported)}/import`, {
      refreshToken: old.refreshToken,
      userId: old.user.id,
    });
    expectStatus('POST /connections/{id}/import', answer, 201);
    if (answer.body.status !== 'active' || JSON.stringify(answer.body.warnings) !== '[]') {
      throw new Error(
        `the import answered status ${String(answer.body.status)} with warnings ${JSON.stringify(answer.body.warnings)}, not active without warnings`,
      );
    }
    // The import's refresh at Wise ends the access token the old system held.
    const oldAtWise = await fetch(`${options.simulator.url}/v1/me`, {
      headers: { authorization: `Bearer ${old.accessToken}` },
    });
    if (oldAtWise.status !== 401) {
      throw new Error(`Wise answers ${oldAtWise.status} to the old system's access token after the import`);
    }
    const token = await vend(options, userApi, { connectionId: imported });
    await expectLiveAtWise(options, token.accessToken);
    return `imported, generation ${token.generation}, valid until ${token.validUntil}`;
  });

  await step('listing, page by page', async () => {
    const ids: string[] = [];
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const query: Record<string, string> = {
        status: 'active',
        limit: '1',
        ...(nextToken ? { nextToken } : {}),
      };
      const answer = await call(adminApi, 'GET', '/connections', undefined, query);
      expectStatus('GET /connections', answer, 200);
      for (const entry of (answer.body.connections as { connectionId: string }[] | undefined) ?? []) {
        ids.push(entry.connectionId);
      }
      nextToken = typeof answer.body.nextToken === 'string' ? answer.body.nextToken : undefined;
      pages += 1;
    } while (nextToken && pages < 10);
    for (const id of [connected, second, registered, imported]) {
      if (!ids.includes(id))
        throw new Error(`GET /connections?status=active lists ${JSON.stringify(ids)}, not ${id}`);
    }
    if (pages < 2) throw new Error('the listing answered no nextToken for limit=1');
    return `${ids.length} active connections on ${pages} pages`;
  });

  await step('status', async () => {
    const answer = await call(adminApi, 'GET', `/connections/${encodeURIComponent(connected)}`);
    expectStatus('GET /connections/{id}', answer, 200);
    if (answer.body.status !== 'active')
      throw new Error(`status is ${String(answer.body.status)}, not active`);
    return undefined;
  });

  await step('scheduled sweep refreshes the due token', async () => {
    const promised = Date.parse(first?.validUntil ?? '');
    await options.waitUntil(promised + 1000);
    const summary = await options.runSchedule();
    return `sweep answered ${JSON.stringify(summary)}`;
  });

  await step('vend of the new generation', async () => {
    swept = await vend(options, userApi, { connectionId: connected });
    if (swept.generation <= (first?.generation ?? 0)) {
      throw new Error(
        `after the sweep the vend still answers generation ${swept.generation}: the sweep refreshed nothing`,
      );
    }
    await expectLiveAtWise(options, swept.accessToken);
    return `generation ${swept.generation}`;
  });

  await step('rejectedGeneration', async () => {
    // The broker checks a reported rejection with Wise first: end the token there, as Wise would.
    await fetch(`${options.simulator.url}/__control/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ accessToken: swept?.accessToken }),
    });
    rejected = await vend(options, userApi, {
      connectionId: connected,
      rejectedGeneration: swept?.generation,
    });
    if (rejected.generation <= (swept?.generation ?? 0)) {
      throw new Error(
        `rejectedGeneration ${swept?.generation} answered generation ${rejected.generation}, not a newer one`,
      );
    }
    await expectLiveAtWise(options, rejected.accessToken);
    return `generation ${swept?.generation} rejected, generation ${rejected.generation} vended`;
  });

  // Each record honours one reported rejection a minute: the vend's re-authorization is shown on the
  // second connection, whose rejection was never reported, and the sweep's on the first one.
  await step('re-authorization event from a vend', async () => {
    // The sweep may have refreshed it since: report the generation the broker vends now.
    const current = await vend(options, userApi, { connectionId: second });
    await revoke(secondUser);
    const answer = await call(userApi, 'POST', '/tokens', {
      connectionId: second,
      rejectedGeneration: current.generation,
    });
    expectStatus('POST /tokens after Wise revoked the grant', answer, 409);
    return `409 reauthorization_required; ${eventFor(options, second)}`;
  });

  await step('re-authorization event from the scheduled sweep', async () => {
    await revoke(firstUser);
    const status = await call(adminApi, 'GET', `/connections/${encodeURIComponent(connected)}`);
    expectStatus('GET /connections/{id}', status, 200);
    await options.waitUntil(Date.parse(String(status.body.nextRefreshAt ?? '')) + 1000);
    const summary = await options.runSchedule();
    const after = await call(adminApi, 'GET', `/connections/${encodeURIComponent(connected)}`);
    if (after.body.status !== 'needs_reauth') {
      throw new Error(
        `after the sweep met invalid_grant the connection is ${String(after.body.status)}, not needs_reauth`,
      );
    }
    return `sweep answered ${JSON.stringify(summary)}; ${eventFor(options, connected)}`;
  });

  await step('delete', async () => {
    const answer = await call(adminApi, 'DELETE', `/connections/${encodeURIComponent(registered)}`);
    expectStatus('DELETE /connections/{id}', answer, 204);
    const after = await call(adminApi, 'GET', `/connections/${encodeURIComponent(registered)}`);
    // A warm instance may serve its cached token for up to 30 s (README); a rejected one goes to the store.
    const vendAfter = await call(userApi, 'POST', '/tokens', {
      connectionId: registered,
      rejectedGeneration: registeredGeneration,
    });
    if (vendAfter.status === 200) throw new Error('the deleted connection still vends a token');
    return `status after delete: ${after.status} ${String(after.body.status ?? after.body.error ?? '')}; vend: ${vendAfter.status}`;
  });
}

/** The re-authorization event for a connection on the bus, or an error. */
function eventFor(options: JourneyOptions, connectionId: string): string {
  const event = options.events.find(
    (entry) =>
      entry.detailType === 'Connection Reauthorization Required' &&
      String(entry.detail ?? '').includes(JSON.stringify(connectionId)),
  );
  if (!event)
    throw new Error(`no "Connection Reauthorization Required" event for ${connectionId} reached the bus`);
  return `event on ${event.eventBusName}`;
}

function transport(options: JourneyOptions, caller: JourneyCaller): SignedTransport {
  return new SignedTransport({
    baseUrl: options.apiUrl,
    region: options.region,
    credentials: { accessKeyId: caller.accessKeyId, secretAccessKey: caller.secretAccessKey },
    fetch: globalThis.fetch,
    now: Date.now,
  });
}

async function call(
  api: SignedTransport,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  query?: Record<string, string>,
): Promise<Answer> {
  return read(
    await api.send({ method, path, ...(body === undefined ? {} : { body }), ...(query ? { query } : {}) }),
  );
}

async function vend(
  options: JourneyOptions,
  api: SignedTransport,
  body: Record<string, unknown>,
): Promise<VendedToken> {
  const answer = await call(api, 'POST', '/tokens', body);
  expectStatus(`POST /tokens ${JSON.stringify(body)}`, answer, 200);
  const token = answer.body as unknown as VendedToken;
  if (typeof token.accessToken !== 'string' || typeof token.generation !== 'number') {
    throw new Error(`POST /tokens answered 200 without a token: ${answer.text.slice(0, 200)}`);
  }
  options.onSecret?.(token.accessToken);
  return token;
}

/** The vended token is one Wise accepts now. */
async function expectLiveAtWise(options: JourneyOptions, accessToken: string): Promise<void> {
  const answer = await fetch(`${options.simulator.url}/v1/me`, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  if (answer.status !== 200) throw new Error(`Wise answers ${answer.status} to the vended access token`);
}

async function read(response: Response): Promise<Answer> {
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
  } catch {
    body = {};
  }
  return { status: response.status, body, text };
}

function expectStatus(what: string, answer: Answer, expected: number): void {
  if (answer.status !== expected) {
    throw new Error(`${what} answered ${answer.status}, expected ${expected}: ${answer.text.slice(0, 300)}`);
  }
}
