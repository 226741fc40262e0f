/**
 * Built-in authentication ("Easy Auth") as the local host emulates it. In Azure, App Service
 * authentication with Microsoft Entra validates the caller's bearer token before the Functions host
 * sees the request, strips any `X-MS-CLIENT-PRINCIPAL*` header the client sent, injects its own
 * (`X-MS-CLIENT-PRINCIPAL`: Base64 JSON `{ auth_typ, claims: [{ typ, val }], name_typ, role_typ }`,
 * `-ID`, `-NAME`, `-IDP`), sets `WEBSITE_AUTH_ENABLED=True` for the app, and with
 * `requireAuthentication` + `Return401` answers 401 to a request without a valid token, except on
 * `globalValidation.excludedPaths`.
 *
 * Locally there is no Entra: the tokens are developer tokens minted by this host (`POST
 * /admin/token`) for a name (a user) or an app id (a service principal, e.g. a pipeline) and a set of
 * app roles, HMAC-SHA256 signed with a key only this host process holds, so a client can neither
 * forge a principal header nor make up a token. Requests without a token may act as a default
 * caller (the developer) when one is configured; without one they get the platform's 401.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Who a developer token (or the default caller) stands for. */
export interface DeveloperIdentity {
  /** A user's name (UPN-like, e.g. `developer@localhost`); absent for an app. */
  name?: string;
  /** A service principal's application (client) id: the caller is an app (a pipeline, Azure Monitor). */
  appId?: string;
  /** Entra object id; a stable one derived from the name or app id when absent. */
  objectId?: string;
  /** App roles (`Operations.Read`...). */
  roles: string[];
}

export interface BuiltInAuthOptions {
  /** Paths let through without a token (`globalValidation.excludedPaths`), compared case-insensitively. */
  excludedPaths: string[];
  /** The caller of a request that carries no token; absent: 401, as in Azure. */
  defaultCaller?: DeveloperIdentity;
  /** HMAC key of the developer tokens. Default: 32 random bytes, new for every host. */
  key?: Buffer;
  /** For expiry checks (tests). */
  now?: () => Date;
}

/** What the emulation decided for one request. */
export type Admission =
  | { ok: true; headers: IncomingHttpHeaders; caller?: DeveloperIdentity }
  | { ok: false; status: 401; headers: Record<string, string>; body: string };

const ISSUER = 'stampkeeper-local-host';
const HEADER = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
/** Bounds checked before any decoding or HMAC. */
const MAX_TOKEN_CHARS = 8 * 1024;
export const MAX_ROLES = 20;
const ROLE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$/;
/** Printable ASCII without spaces, as a UPN is. */
const NAME = /^[!-~]{1,256}$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const MAX_TOKEN_MINUTES = 24 * 60;
export const DEFAULT_TOKEN_MINUTES = 60;

/** The claim types App Service uses in the principal it injects (Entra ID provider). */
const CLAIM = {
  objectId: 'http://schemas.microsoft.com/identity/claims/objectidentifier',
  name: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
  role: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
} as const;

interface TokenPayload {
  iss: string;
  oid: string;
  name?: string;
  appid?: string;
  roles: string[];
  iat: number;
  exp: number;
}

/** The problems of an identity asked for (empty when valid), each naming the field. */
export function identityProblems(identity: DeveloperIdentity): string[] {
  const problems: string[] = [];
  if (!Array.isArray(identity.roles)) problems.push('roles: must be an array of app role names');
  else {
    if (identity.roles.length > MAX_ROLES) problems.push(`roles: at most ${MAX_ROLES}`);
    else if (identity.roles.some((r) => typeof r !== 'string' || !ROLE.test(r))) {
      problems.push('roles: each must be an app role name (letters, digits, dots, dashes, underscores)');
    }
  }
  if (identity.name !== undefined && (typeof identity.name !== 'string' || !NAME.test(identity.name))) {
    problems.push('name: 1-256 printable ASCII characters without spaces (a UPN, e.g. ops@contoso.com)');
  }
  if (identity.appId !== undefined && (typeof identity.appId !== 'string' || !GUID.test(identity.appId))) {
    problems.push('app: an application (client) id, a GUID');
  }
  if ((identity.name === undefined) === (identity.appId === undefined)) {
    problems.push('name or app: give exactly one (a user has a name, an app an app id)');
  }
  if (
    identity.objectId !== undefined &&
    (typeof identity.objectId !== 'string' || !GUID.test(identity.objectId))
  ) {
    problems.push('objectId: a GUID');
  }
  return problems;
}

/** The built-in authentication of one local host: mints and checks its developer tokens. */
export class BuiltInAuth {
  readonly #key: Buffer;
  readonly #excluded: Set<string>;
  readonly #defaultCaller: DeveloperIdentity | undefined;
  readonly #now: () => Date;

  constructor(options: BuiltInAuthOptions) {
    this.#key = options.key ?? randomBytes(32);
    this.#excluded = new Set(options.excludedPaths.map(normalizePath));
    if (options.defaultCaller) {
      const problems = identityProblems(options.defaultCaller);
      if (problems.length > 0) throw new Error(`Invalid default caller: ${problems.join('; ')}`);
    }
    this.#defaultCaller = options.defaultCaller;
    this.#now = options.now ?? (() => new Date());
  }

  /** The default caller, if requests without a token act as one. */
  get defaultCaller(): DeveloperIdentity | undefined {
    return this.#defaultCaller;
  }

  /** Whether the platform lets `path` through without a token. */
  isExcluded(path: string): boolean {
    return this.#excluded.has(normalizePath(path));
  }

  /**
   * A developer token for `identity`, valid `minutes` (1 to 24 hours). Throws on an invalid
   * identity (see `identityProblems`).
   */
  mint(identity: DeveloperIdentity, minutes = DEFAULT_TOKEN_MINUTES): { token: string; expiresOn: Date } {
    const problems = identityProblems(identity);
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_TOKEN_MINUTES) {
      problems.push(`minutes: a whole number from 1 to ${MAX_TOKEN_MINUTES}`);
    }
    if (problems.length > 0) throw new Error(problems.join('; '));
    const iat = Math.floor(this.#now().getTime() / 1000);
    const payload: TokenPayload = {
      iss: ISSUER,
      oid: identity.objectId ?? stableObjectId(identity),
      ...(identity.name === undefined ? {} : { name: identity.name }),
      ...(identity.appId === undefined ? {} : { appid: identity.appId }),
      roles: [...new Set(identity.roles)],
      iat,
      exp: iat + minutes * 60,
    };
    const body = `${HEADER}.${base64url(JSON.stringify(payload))}`;
    return { token: `${body}.${this.#sign(body)}`, expiresOn: new Date(payload.exp * 1000) };
  }

  /**
   * Decides one request to the app (an HTTP trigger or the runtime's webhook): strips the
   * principal headers a client sent, then sets the caller's from a valid bearer token, from the
   * default caller when there is no token, or answers 401. An excluded path is let through
   * without a caller when its token is absent or not valid.
   */
  admit(path: string, headers: IncomingHttpHeaders): Admission {
    const cleaned: IncomingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (!name.toLowerCase().startsWith('x-ms-client-principal')) cleaned[name] = value;
    }
    const excluded = this.isExcluded(path);
    const presented = bearerToken(headers.authorization);
    let caller: DeveloperIdentity | undefined;
    if (presented !== undefined) {
      caller = this.#verify(presented);
      if (!caller && !excluded) return unauthorized('invalid_token');
    } else if (!excluded) {
      caller = this.#defaultCaller;
      if (!caller) return unauthorized();
    }
    return { ok: true, headers: caller ? { ...cleaned, ...principalHeaders(caller) } : cleaned, caller };
  }

  #sign(body: string): string {
    return createHmac('sha256', this.#key).update(body).digest('base64url');
  }

  /** The identity of a token this host minted and that has not expired; undefined otherwise. */
  #verify(token: string): DeveloperIdentity | undefined {
    if (token.length > MAX_TOKEN_CHARS) return undefined;
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== HEADER) return undefined;
    const expected = Buffer.from(this.#sign(`${parts[0]}.${parts[1]}`));
    const given = Buffer.from(parts[2] as string);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    let payload: TokenPayload;
    try {
      payload = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8')) as TokenPayload;
    } catch {
      return undefined;
    }
    if (payload.iss !== ISSUER || typeof payload.exp !== 'number') return undefined;
    if (payload.exp * 1000 <= this.#now().getTime()) return undefined;
    return {
      ...(payload.name === undefined ? {} : { name: payload.name }),
      ...(payload.appid === undefined ? {} : { appId: payload.appid }),
      objectId: payload.oid,
      roles: payload.roles,
    };
  }
}

/**
 * The headers App Service injects for an Entra ID caller: the principal (claims of the access
 * token: object id, app roles, the name for a user, `appid` for an app), its id, its name (users
 * only: an app-only token carries no name claim) and the identity provider.
 */
export function principalHeaders(identity: DeveloperIdentity): Record<string, string> {
  const objectId = identity.objectId ?? stableObjectId(identity);
  const claims = [
    { typ: CLAIM.objectId, val: objectId },
    ...(identity.name === undefined ? [] : [{ typ: CLAIM.name, val: identity.name }]),
    ...(identity.appId === undefined ? [] : [{ typ: 'appid', val: identity.appId }]),
    ...identity.roles.map((role) => ({ typ: 'roles', val: role })),
  ];
  const principal = { auth_typ: 'aad', claims, name_typ: CLAIM.name, role_typ: CLAIM.role };
  return {
    'x-ms-client-principal': Buffer.from(JSON.stringify(principal)).toString('base64'),
    'x-ms-client-principal-id': objectId,
    ...(identity.name === undefined ? {} : { 'x-ms-client-principal-name': identity.name }),
    'x-ms-client-principal-idp': 'aad',
  };
}

/** A deterministic GUID-shaped object id for a name or app id, so an identity keeps its id across tokens. */
function stableObjectId(identity: DeveloperIdentity): string {
  const seed = identity.appId ? `app:${identity.appId}` : `user:${identity.name ?? ''}`;
  const hex = createHmac('sha256', 'stampkeeper-local-object-id').update(seed).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function bearerToken(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(value ?? '');
  return match?.[1];
}

function normalizePath(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return (trimmed === '' ? '/' : trimmed).toLowerCase();
}

function unauthorized(error?: string): Admission {
  return {
    ok: false,
    status: 401,
    // As the platform's Return401: a bearer challenge, no detail about the app.
    headers: {
      'www-authenticate': error ? `Bearer error="${error}"` : 'Bearer',
      'content-type': 'text/plain; charset=utf-8',
    },
    body: 'You do not have permission to view this directory or page.',
  };
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
