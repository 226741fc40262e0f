/**
 * HTTP trigger routes as the Functions host builds them: `<routePrefix>/<route>`, where the route
 * defaults to the function name and may hold parameters `{name}`, optional ones `{name?}`, constrained
 * ones `{name:int}` and a trailing catch-all `{*rest}`. Literal segments match case-insensitively
 * (ASP.NET routing).
 */

export type Segment =
  | { kind: 'literal'; text: string }
  | { kind: 'param'; name: string; optional: boolean; catchAll: boolean; constraint?: string };

export interface RouteTemplate {
  template: string;
  segments: Segment[];
}

export interface HttpRoute {
  functionName: string;
  template: RouteTemplate;
  /** Upper-case methods; empty = any method. */
  methods: string[];
}

const PARAM = /^\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+(?:\([^)]*\))?))?(\?)?\}$/;

/** Parses `items/{id:int}/{rest?}`; throws a clear error on a malformed template. */
export function parseRouteTemplate(template: string): RouteTemplate {
  const trimmed = template.replace(/^\/+|\/+$/g, '');
  const segments: Segment[] = [];
  const parts = trimmed === '' ? [] : trimmed.split('/');
  parts.forEach((part, index) => {
    if (part === '') throw new Error(`Route "${template}" has an empty segment.`);
    if (!part.includes('{')) {
      if (part.includes('}')) throw new Error(`Route "${template}": unbalanced "}" in "${part}".`);
      segments.push({ kind: 'literal', text: part });
      return;
    }
    const match = PARAM.exec(part);
    if (!match) {
      throw new Error(
        `Route "${template}": segment "${part}" must be a whole parameter like {name} or {name?}.`,
      );
    }
    const [, star, name, constraint, question] = match;
    const catchAll = star === '*';
    if (catchAll && index !== parts.length - 1) {
      throw new Error(`Route "${template}": the catch-all {*${name}} must be the last segment.`);
    }
    segments.push({
      kind: 'param',
      name: name as string,
      optional: question === '?' || catchAll,
      catchAll,
      constraint,
    });
  });
  const names = segments.flatMap((s) => (s.kind === 'param' ? [s.name.toLowerCase()] : []));
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate) throw new Error(`Route "${template}": parameter "${duplicate}" appears twice.`);
  return { template, segments };
}

/** Matches a decoded path (without prefix) against a template; returns the params, or undefined. */
export function matchRoute(
  template: RouteTemplate,
  pathSegments: string[],
): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  const { segments } = template;
  let i = 0;
  for (let s = 0; s < segments.length; s++) {
    const segment = segments[s] as Segment;
    if (segment.kind === 'literal') {
      const part = pathSegments[i];
      if (part === undefined || part.toLowerCase() !== segment.text.toLowerCase()) return undefined;
      i++;
      continue;
    }
    if (segment.catchAll) {
      const rest = pathSegments.slice(i);
      if (rest.length > 0) params[segment.name] = rest.join('/');
      i = pathSegments.length;
      continue;
    }
    const part = pathSegments[i];
    if (part === undefined) {
      // Only trailing optional parameters may be left out.
      if (
        !segment.optional ||
        segments.slice(s + 1).some((rest) => rest.kind === 'literal' || !rest.optional)
      ) {
        return undefined;
      }
      continue;
    }
    if (!satisfies(segment.constraint, part)) return undefined;
    params[segment.name] = part;
    i++;
  }
  return i === pathSegments.length ? params : undefined;
}

function satisfies(constraint: string | undefined, value: string): boolean {
  if (!constraint) return true;
  switch (constraint.toLowerCase()) {
    case 'int':
    case 'long':
      return /^-?\d+$/.test(value);
    case 'bool':
      return /^(true|false)$/i.test(value);
    case 'guid':
      return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
    case 'alpha':
      return /^[a-z]+$/i.test(value);
    case 'double':
    case 'decimal':
    case 'float':
      return value.trim() !== '' && Number.isFinite(Number(value));
    default:
      // Constraints we do not evaluate locally accept every value (documented in docs/local-host.md).
      return true;
  }
}

/** Splits a URL path into decoded segments after removing the route prefix; undefined when outside it. */
export function pathAfterPrefix(pathname: string, routePrefix: string): string[] | undefined {
  const prefix = routePrefix.replace(/^\/+|\/+$/g, '');
  const parts = pathname
    .split('/')
    .filter((p) => p !== '')
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  if (prefix === '') return parts;
  const prefixParts = prefix.split('/');
  for (let i = 0; i < prefixParts.length; i++) {
    if ((parts[i] ?? '').toLowerCase() !== (prefixParts[i] as string).toLowerCase()) return undefined;
  }
  return parts.slice(prefixParts.length);
}

export type RouteResolution =
  | { kind: 'match'; route: HttpRoute; params: Record<string, string> }
  | { kind: 'methodNotAllowed'; allowed: string[] }
  | { kind: 'none' };

/**
 * Finds the route for a request. Routes with more literal segments win (as ASP.NET orders them), so
 * `items/special` beats `items/{id}`. A path that matches only with another method gives
 * `methodNotAllowed` with the allowed methods.
 */
export function resolveRoute(routes: HttpRoute[], method: string, pathSegments: string[]): RouteResolution {
  const ordered = [...routes].sort((a, b) => specificity(b.template) - specificity(a.template));
  const allowed = new Set<string>();
  for (const route of ordered) {
    const params = matchRoute(route.template, pathSegments);
    if (!params) continue;
    if (route.methods.length === 0 || route.methods.includes(method.toUpperCase())) {
      return { kind: 'match', route, params };
    }
    for (const m of route.methods) allowed.add(m);
  }
  return allowed.size > 0 ? { kind: 'methodNotAllowed', allowed: [...allowed] } : { kind: 'none' };
}

function specificity(template: RouteTemplate): number {
  return template.segments.reduce(
    (score, s) => score + (s.kind === 'literal' ? 100 : s.catchAll ? 0 : s.optional ? 1 : 10),
    0,
  );
}
