/**
 * The Key Vault secrets data plane over the store: routes, api-version, the 401 challenge flow and
 * the published request/response shapes (azure-rest-api-specs keyvault data-plane secrets.json).
 */
import type { SandboxCredential } from '../credential';
import { bearerToken } from '../credential';
import { azureError, isPlainObject, parseJson, type SandboxReply, type SandboxRequest } from '../http';
import type { ServiceEmulator } from '../router';
import { KeyVaultFault, KeyVaultStore, managedSecretFault, type SecretAttributesInput } from './store';
import { THROTTLED_CODE, THROTTLED_MESSAGE, type VaultThrottle } from './throttle';

export const KEY_VAULT_HOST_SUFFIX = '.vault.azure.net';
export const KEY_VAULT_RESOURCE = 'https://vault.azure.net';
const DEFAULT_PAGE = 25;
const SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;
const API_VERSION = /^(7\.[0-9](-preview(\.\d+)?)?|20\d\d-\d\d-\d\d(-preview)?)$/;

/** One request as the Key Vault emulation saw it (for tests and inspection): never a body. */
export interface KeyVaultRequestRecord {
  method: string;
  path: string;
  authenticated: boolean;
  status: number;
  /**
   * Machine time (epoch ms) the request arrived: Key Vault's throttle counts real seconds, and so
   * do the sandbox's and the figures of `npm run bench` (the sandbox clock only moves when asked).
   */
  wallMs: number;
}

export class KeyVaultEmulator implements ServiceEmulator {
  readonly name = 'keyvault';
  private readonly log: KeyVaultRequestRecord[] = [];

  constructor(
    readonly store: KeyVaultStore,
    private readonly credential: SandboxCredential,
    private readonly tenantId: string,
    /** Key Vault's service limits; undefined: none (`keyVault.throttling: false`). */
    private readonly throttle?: VaultThrottle,
  ) {}

  matches(hostname: string): boolean {
    return hostname.endsWith(KEY_VAULT_HOST_SUFFIX);
  }

  /**
   * Only the scenario's vaults have a DNS name: any other `*.vault.azure.net` host fails to resolve,
   * as it does in Azure (the router throws the transport's ENOTFOUND error; nothing answers 404).
   */
  resolves(hostname: string): boolean {
    return this.store.vault(hostname.slice(0, -KEY_VAULT_HOST_SUFFIX.length)) !== undefined;
  }

  requests(): KeyVaultRequestRecord[] {
    return this.log.map((r) => ({ ...r }));
  }

  async handle(req: SandboxRequest): Promise<SandboxReply> {
    const wallMs = Date.now();
    const authorization = req.headers.get('authorization');
    const reply = this.route(req);
    this.log.push({
      method: req.method,
      path: req.url.pathname,
      authenticated: authorization !== undefined,
      status: reply.status,
      wallMs,
    });
    return reply;
  }

  private challenge(message: string): SandboxReply {
    return azureError(401, 'Unauthorized', message, {
      headers: {
        'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${this.tenantId}", resource="${KEY_VAULT_RESOURCE}"`,
      },
    });
  }

  private route(req: SandboxRequest): SandboxReply {
    const authorization = req.headers.get('authorization');
    if (!authorization) return this.challenge('AKV10000: Request is missing a Bearer or PoP token.');
    const token = bearerToken(authorization);
    const info = token ? this.credential.inspect(token) : undefined;
    if (!info)
      return this.challenge('AKV10032: Invalid issuer. The token was not issued by the sandbox credential.');
    if (info.audience !== KEY_VAULT_RESOURCE) {
      return this.challenge(
        `AKV10022: Invalid audience. Expected ${KEY_VAULT_RESOURCE}, found: ${info.audience}.`,
      );
    }
    if (info.expiresOnTimestamp <= Date.now()) return this.challenge('AKV10020: The token has expired.');

    // A transaction of this vault from here on (whatever its answer), unless the vault is over its limit.
    const vaultName = req.url.hostname.slice(0, -KEY_VAULT_HOST_SUFFIX.length);
    const decision = this.throttle?.take(vaultName);
    if (decision?.throttled) {
      const retryAfter = this.throttle!.limits.retryAfter
        ? { 'retry-after': String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))) }
        : undefined;
      return azureError(
        429,
        THROTTLED_CODE,
        THROTTLED_MESSAGE,
        retryAfter ? { headers: retryAfter } : undefined,
      );
    }

    const apiVersion = req.url.searchParams.get('api-version');
    if (!apiVersion) return azureError(400, 'BadParameter', 'The api-version query parameter is missing.');
    if (!API_VERSION.test(apiVersion)) {
      return azureError(
        400,
        'BadParameter',
        `The specified version (${apiVersion}) is not recognized. Consider using the latest supported version (2025-07-01).`,
      );
    }

    let segments: string[];
    try {
      segments = req.url.pathname.split('/').slice(1).map(decodeURIComponent);
    } catch {
      return azureError(400, 'BadParameter', 'The request URI is not valid.');
    }
    try {
      return this.dispatch(req, vaultName, segments, apiVersion);
    } catch (err) {
      if (err instanceof KeyVaultFault) {
        return azureError(
          err.status,
          err.code,
          err.message,
          err.innerCode ? { innererror: { code: err.innerCode } } : undefined,
        );
      }
      throw err;
    }
  }

  private dispatch(req: SandboxRequest, vault: string, segments: string[], apiVersion: string): SandboxReply {
    const [root, name, third, ...rest] = segments;
    const unsupported = () =>
      azureError(
        400,
        'BadParameter',
        `The sandbox does not emulate ${req.method} ${req.url.pathname} (secrets: set, get, list, list versions, update).`,
      );
    if (root !== 'secrets' || rest.length > 0) {
      return azureError(404, 'NotFound', `The requested resource ${req.url.pathname} was not found.`);
    }
    if (name === undefined || name === '') {
      if (req.method !== 'GET') return unsupported();
      const all = this.store.listSecrets(vault).map(({ key, secret, state }) => ({
        key,
        body: this.store.bundle(vault, secret, state, { withValue: false, versioned: false, item: true }),
      }));
      return this.page(req, vault, '/secrets', all, apiVersion);
    }
    if (!SECRET_NAME.test(name)) {
      return azureError(400, 'BadParameter', `The request URI contains an invalid name: ${name}`);
    }
    if (third === 'versions') {
      if (req.method !== 'GET') return unsupported();
      const all = this.store.listVersions(vault, name).map(({ key, secret, state }) => ({
        key,
        body: this.store.bundle(vault, secret, state, { withValue: false, item: true }),
      }));
      return this.page(req, vault, `/secrets/${name}/versions`, all, apiVersion);
    }
    const version = third === undefined || third === '' ? undefined : third;
    switch (req.method) {
      case 'GET': {
        const { secret, state } = this.store.readVersion(vault, name, version);
        return { status: 200, body: this.store.bundle(vault, secret, state, { withValue: true }) };
      }
      case 'PUT': {
        if (version !== undefined) return unsupported();
        if (this.store.isManaged(vault, name)) throw managedSecretFault('set');
        const body = this.body(req);
        if (typeof body.value !== 'string') {
          throw new KeyVaultFault(400, 'BadParameter', "Property 'value' is required and must be a string.");
        }
        const state = this.store.setSecret(vault, name, {
          value: body.value,
          contentType: optionalString(body, 'contentType'),
          tags: tagsOf(body),
          attributes: attributesIn(body),
        });
        const { secret } = this.store.getVersion(vault, name, state.version);
        return { status: 200, body: this.store.bundle(vault, secret, state, { withValue: true }) };
      }
      case 'PATCH': {
        // Refused for a certificate's secret before the body is even read (updateVersion checks too).
        if (this.store.isManaged(vault, name)) throw managedSecretFault('update');
        const body = this.body(req);
        const { secret, state } = this.store.updateVersion(vault, name, version, {
          contentType: optionalString(body, 'contentType'),
          tags: tagsOf(body),
          attributes: attributesIn(body),
        });
        return { status: 200, body: this.store.bundle(vault, secret, state, { withValue: false }) };
      }
      default:
        return unsupported();
    }
  }

  private body(req: SandboxRequest): Record<string, unknown> {
    const parsed = parseJson(req.bodyText);
    if (!parsed.ok) throw new KeyVaultFault(400, 'BadParameter', `Invalid request: ${parsed.reason}.`);
    if (!isPlainObject(parsed.value))
      throw new KeyVaultFault(400, 'BadParameter', 'The request body must be a JSON object.');
    return parsed.value;
  }

  /**
   * Pages a listing the way Key Vault does: `maxresults` (1..25) and an opaque `$skiptoken` in
   * `nextLink`. Like Key Vault's (a base64 JSON `{ NextMarker, TargetLocation }` whose marker is the
   * key of the next item), the token names where the next page starts, not how many items came before:
   * a version created between two pages does not shift or repeat the items of the next one.
   */
  private page(
    req: SandboxRequest,
    vault: string,
    path: string,
    items: Array<{ key: string; body: unknown }>,
    apiVersion: string,
  ): SandboxReply {
    const maxRaw = req.url.searchParams.get('maxresults');
    let max = DEFAULT_PAGE;
    if (maxRaw !== null) {
      max = Number(maxRaw);
      if (!Number.isInteger(max) || max < 1 || max > DEFAULT_PAGE) {
        return azureError(
          400,
          'BadParameter',
          `Invalid maxresults: ${maxRaw}. It must be an integer from 1 to ${DEFAULT_PAGE}.`,
        );
      }
    }
    let start = 0;
    const skip = req.url.searchParams.get('$skiptoken');
    if (skip !== null) {
      const marker = markerOf(skip);
      if (marker === undefined) return azureError(400, 'BadParameter', 'Invalid $skiptoken.');
      start = items.findIndex((item) => item.key >= marker);
      if (start === -1) start = items.length;
    }
    const value = items.slice(start, start + max).map((item) => item.body);
    let nextLink: string | null = null;
    const next = items[start + max];
    if (next !== undefined) {
      const token = Buffer.from(JSON.stringify({ NextMarker: next.key, TargetLocation: 0 }), 'utf8').toString(
        'base64url',
      );
      nextLink = `${KeyVaultStore.vaultUrl(vault)}:443${path}?api-version=${apiVersion}&$skiptoken=${token}&maxresults=${max}`;
    }
    return { status: 200, body: { value, nextLink } };
  }
}

/** The marker of a `$skiptoken` this emulation issued; undefined for anything else. */
function markerOf(token: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (isPlainObject(parsed) && typeof parsed.NextMarker === 'string' && parsed.NextMarker !== '')
      return parsed.NextMarker;
  } catch {
    // not a token of ours
  }
  return undefined;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string')
    throw new KeyVaultFault(400, 'BadParameter', `Property '${key}' must be a string.`);
  return value;
}

function tagsOf(body: Record<string, unknown>): Record<string, string> | undefined {
  const tags = body.tags;
  if (tags === undefined || tags === null) return undefined;
  if (!isPlainObject(tags))
    throw new KeyVaultFault(400, 'BadParameter', "Property 'tags' must be an object of strings.");
  return tags as Record<string, string>;
}

function attributesIn(body: Record<string, unknown>): SecretAttributesInput | undefined {
  const attrs = body.attributes;
  if (attrs === undefined || attrs === null) return undefined;
  if (!isPlainObject(attrs))
    throw new KeyVaultFault(400, 'BadParameter', "Property 'attributes' must be an object.");
  const out: SecretAttributesInput = {};
  if (attrs.enabled !== undefined && attrs.enabled !== null) {
    if (typeof attrs.enabled !== 'boolean')
      throw new KeyVaultFault(400, 'BadParameter', "Attribute 'enabled' must be a boolean.");
    out.enabled = attrs.enabled;
  }
  for (const key of ['nbf', 'exp'] as const) {
    const value = attrs[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new KeyVaultFault(
        400,
        'BadParameter',
        `Attribute '${key}' must be a number of seconds since 1970-01-01T00:00:00Z.`,
      );
    }
    out[key] = Math.floor(value);
  }
  if (out.nbf !== undefined && out.exp !== undefined && out.exp <= out.nbf) {
    throw new KeyVaultFault(400, 'BadParameter', "Attribute 'exp' must be later than 'nbf'.");
  }
  return out;
}
