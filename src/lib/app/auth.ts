/**
 * Who is calling, and may they: the caller comes from the platform's built-in authentication
 * (App Service / Functions "Easy Auth", Microsoft Entra), which validates the token and injects the
 * `X-MS-CLIENT-PRINCIPAL*` headers. App roles (`Operations.Read`, `Operations.Execute`,
 * `Operations.Approve`) decide what a caller may do; the caller becomes the audit actor.
 *
 * Those headers are trustworthy only when built-in authentication is on: the platform then strips
 * any the client sent. Without it (`WEBSITE_AUTH_ENABLED` not set by the platform) a client could
 * forge them, so every authorized endpoint refuses to work. The local host emulates the platform:
 * it strips client-sent headers and builds them from a developer token.
 */
import { ForbiddenError, StampkeeperError } from '../core/errors';

/**
 * The app roles of stampkeeper's Entra app registration (`infra/entra/app-roles.json` declares
 * them; a test holds the two equal). `alertDelivery` is the role Azure Monitor's action groups hold
 * to call a secure webhook (the name Azure Monitor's documentation gives it): only they post alerts.
 */
export const ROLES = {
  read: 'Operations.Read',
  execute: 'Operations.Execute',
  approve: 'Operations.Approve',
  alertDelivery: 'ActionGroupsSecureWebhook',
} as const;
export type Role = (typeof ROLES)[keyof typeof ROLES];

/**
 * The application id of Azure Monitor's action groups ("AZNS AAD Webhook"), the same in every
 * tenant: a secure webhook calls with a token issued to it. Its audit actor is `system:azure-monitor`.
 */
export const ACTION_GROUP_APP_ID = '461e8683-5575-4561-ac7f-899cc907d62a';

export interface Caller {
  /** Stable identifier: the Entra object id (users, service principals), else the principal id header. */
  id: string;
  /** Human-readable name (UPN, app name) when the platform gives one. */
  name?: string;
  roles: string[];
  /**
   * The audit actor: `user:{name or id}`, `app:{application id}` for a service principal (a
   * pipeline), `system:azure-monitor` for an action group.
   */
  actor: string;
}

/** 401: no caller at all (no client principal). */
export class UnauthenticatedError extends StampkeeperError {
  override readonly status = 401;
  constructor(message: string) {
    super('Unauthenticated', message, { retryable: false });
  }
}

const ROLE_CLAIMS = new Set(['roles', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role']);
const OBJECT_ID_CLAIMS = ['http://schemas.microsoft.com/identity/claims/objectidentifier', 'oid'];
const APP_ID_CLAIMS = ['appid', 'azp'];
/** Cap on what is decoded: a real principal is a few KiB. */
const MAX_PRINCIPAL_CHARS = 32 * 1024;
const MAX_CLAIMS = 200;

interface Headers {
  get(name: string): string | null;
}

interface DecodedPrincipal {
  auth_typ?: unknown;
  claims?: unknown;
  name_typ?: unknown;
  role_typ?: unknown;
}

/**
 * The caller from the `X-MS-CLIENT-PRINCIPAL` header (Base64 JSON `{ auth_typ, claims: [{ typ,
 * val }], name_typ, role_typ }`, as App Service documents it), or `undefined` when absent or
 * malformed. Roles are the claims of type `role_typ` (or `roles`).
 */
export function parseClientPrincipal(headers: Headers): Caller | undefined {
  const raw = headers.get('x-ms-client-principal');
  if (!raw || raw.length > MAX_PRINCIPAL_CHARS) return undefined;
  let decoded: DecodedPrincipal;
  try {
    decoded = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as DecodedPrincipal;
  } catch {
    return undefined;
  }
  if (!decoded || typeof decoded !== 'object' || !Array.isArray(decoded.claims)) return undefined;
  const claims = (decoded.claims as unknown[])
    .slice(0, MAX_CLAIMS)
    .filter(
      (c): c is { typ: string; val: string } =>
        typeof c === 'object' &&
        c !== null &&
        typeof (c as { typ?: unknown }).typ === 'string' &&
        typeof (c as { val?: unknown }).val === 'string',
    );
  const roleType = typeof decoded.role_typ === 'string' ? decoded.role_typ : undefined;
  const nameType = typeof decoded.name_typ === 'string' ? decoded.name_typ : undefined;
  const first = (types: string[]) => claims.find((c) => types.includes(c.typ))?.val;
  const roles = [
    ...new Set(claims.filter((c) => c.typ === roleType || ROLE_CLAIMS.has(c.typ)).map((c) => c.val)),
  ];
  const objectId = first(OBJECT_ID_CLAIMS);
  const principalId = headers.get('x-ms-client-principal-id') ?? undefined;
  const id = (objectId ?? principalId ?? '').slice(0, 128);
  if (!id) return undefined;
  const name = (
    headers.get('x-ms-client-principal-name') ?? (nameType ? first([nameType]) : undefined)
  )?.slice(0, 256);
  const appId = first(APP_ID_CLAIMS);
  // A token without a user name, issued to an application (client credentials): a pipeline.
  const isApp = !name && appId !== undefined;
  const actor = !isApp
    ? `user:${name ?? id}`
    : appId.toLowerCase() === ACTION_GROUP_APP_ID
      ? 'system:azure-monitor'
      : `app:${appId}`;
  return { id, name, roles, actor };
}

/**
 * The caller of a request, if they hold `role`. Throws `ForbiddenError` (403) when built-in
 * authentication is off (the headers could be forged) or the role is missing, and
 * `UnauthenticatedError` (401) when there is no caller. Call it before any work.
 */
export function authorize(
  request: { headers: Headers },
  options: { authEnabled: boolean },
  role: Role,
): Caller {
  if (!options.authEnabled) {
    throw new ForbiddenError(
      'built-in authentication is not enabled on this app: callers cannot be identified, so this operation is refused',
    );
  }
  const caller = parseClientPrincipal(request.headers);
  if (!caller) throw new UnauthenticatedError('no authenticated caller: sign in with Microsoft Entra');
  if (!caller.roles.includes(role)) {
    throw new ForbiddenError(`the caller ${caller.actor} lacks the app role ${role}`, {
      metadata: { actor: caller.actor, role },
    });
  }
  return caller;
}
