import type { GatewayRoute } from './types.ts';

type Segment = { literal: string } | { parameter: string };

interface CompiledRoute {
  route: GatewayRoute;
  segments: Segment[];
  /** `POST /tokens`: the route key API Gateway reports. */
  routeKey: string;
}

/** What a request's method and path lead to. */
export type RouteLookup =
  | { kind: 'found'; route: GatewayRoute; routeKey: string; pathParameters: Record<string, string> }
  | { kind: 'method_not_allowed'; allowed: string[] }
  | { kind: 'not_found' };

const PARAMETER = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

/** The gateway's routes, matched the way HTTP API matches them: literal segments before parameters. */
export class RouteTable {
  readonly #routes: CompiledRoute[];

  constructor(routes: readonly GatewayRoute[]) {
    this.#routes = routes.map(compile);
    const keys = new Set<string>();
    for (const compiled of this.#routes) {
      const shape = `${compiled.route.method} ${compiled.segments.map(shapeOf).join('/')}`;
      if (keys.has(shape)) throw new Error(`Route "${compiled.routeKey}" is defined twice.`);
      keys.add(shape);
    }
  }

  /**
   * Finds the route for a method and the path's segments, already percent-decoded (split before
   * decoding, so an encoded `/` stays inside its segment).
   */
  lookup(method: string, segments: readonly string[]): RouteLookup {
    const matches = this.#routes
      .filter((compiled) => matchesPath(compiled.segments, segments))
      .sort((a, b) => specificity(b.segments) - specificity(a.segments));
    if (matches.length === 0) return { kind: 'not_found' };
    const best = matches.filter((compiled) => compiled.route.method === method)[0];
    if (!best) {
      return { kind: 'method_not_allowed', allowed: [...new Set(matches.map((m) => m.route.method))].sort() };
    }
    const pathParameters: Record<string, string> = {};
    best.segments.forEach((segment, index) => {
      if ('parameter' in segment) pathParameters[segment.parameter] = segments[index] ?? '';
    });
    return { kind: 'found', route: best.route, routeKey: best.routeKey, pathParameters };
  }
}

function compile(route: GatewayRoute): CompiledRoute {
  if (!route.path.startsWith('/')) throw new Error(`Route path "${route.path}" must start with "/".`);
  const segments = route.path
    .slice(1)
    .split('/')
    .map((part): Segment => {
      const parameter = PARAMETER.exec(part)?.[1];
      if (parameter !== undefined) return { parameter };
      if (part.includes('{') || part.includes('}')) {
        throw new Error(`Route path "${route.path}" has a malformed parameter "${part}".`);
      }
      return { literal: part };
    });
  return { route, segments, routeKey: `${route.method} ${route.path}` };
}

function matchesPath(template: readonly Segment[], segments: readonly string[]): boolean {
  if (template.length !== segments.length) return false;
  return template.every((segment, index) => {
    const actual = segments[index] ?? '';
    return 'literal' in segment ? segment.literal === actual : actual.length > 0;
  });
}

/** Literal segments weigh more the earlier they come, so `/a/b` beats `/a/{x}` beats `/{x}/b`. */
function specificity(segments: readonly Segment[]): number {
  return segments.reduce(
    (score, segment, index) => ('literal' in segment ? score + 2 ** (32 - index) : score),
    0,
  );
}

function shapeOf(segment: Segment): string {
  return 'literal' in segment ? segment.literal : '{}';
}
