import { HttpMethod } from 'aws-cdk-lib/aws-apigatewayv2';

/** The broker's functions, by the folder of their handler under `functions/`. */
export type FunctionName =
  | 'connect-sessions'
  | 'oauth-callback'
  | 'registration'
  | 'tokens'
  | 'connections'
  | 'import'
  | 'refresh';

/**
 * Who may call a route: `public` needs no signature (Wise sends the user's browser there); the others need
 * SigV4 and the calling role's managed policy of that name.
 */
export type RouteAccess = 'public' | 'vend' | 'connect' | 'admin' | 'import';

export interface BrokerRoute {
  readonly method: HttpMethod;
  /** The route's path; `{id}` is a path parameter. */
  readonly path: string;
  readonly handler: Exclude<FunctionName, 'refresh'>;
  readonly access: RouteAccess;
}

/** Every route of the broker's HTTP API (DESIGN.md, HTTP contract). */
export const BROKER_ROUTES: readonly BrokerRoute[] = [
  { method: HttpMethod.POST, path: '/connect-sessions', handler: 'connect-sessions', access: 'connect' },
  { method: HttpMethod.GET, path: '/oauth/start', handler: 'oauth-callback', access: 'public' },
  { method: HttpMethod.GET, path: '/oauth/callback', handler: 'oauth-callback', access: 'public' },
  {
    method: HttpMethod.POST,
    path: '/connections/{id}/registration-code',
    handler: 'registration',
    access: 'connect',
  },
  {
    method: HttpMethod.POST,
    path: '/connections/{id}/completion',
    handler: 'connect-sessions',
    access: 'connect',
  },
  { method: HttpMethod.POST, path: '/tokens', handler: 'tokens', access: 'vend' },
  { method: HttpMethod.GET, path: '/connections', handler: 'connections', access: 'admin' },
  { method: HttpMethod.GET, path: '/connections/{id}', handler: 'connections', access: 'admin' },
  { method: HttpMethod.DELETE, path: '/connections/{id}', handler: 'connections', access: 'admin' },
  { method: HttpMethod.POST, path: '/connections/{id}/import', handler: 'import', access: 'import' },
];

/** The path of `execute-api:Invoke` for a route: each path parameter becomes `*`. */
export function invokePath(route: BrokerRoute): string {
  return `${route.method}${route.path.replace(/\{[^}]+\}/g, '*')}`;
}
