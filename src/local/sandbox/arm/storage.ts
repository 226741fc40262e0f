/**
 * Storage accounts: the management operations on their keys (`Microsoft.Storage`) and the Blob
 * service's Shared Key authorization (`https://{account}.blob.core.windows.net`).
 *
 * Management, as azure-rest-api-specs storage `StorageAccounts_*` (test/fixtures/rest/storage):
 * - `GET .../storageAccounts/{account}`: the account (`primaryEndpoints`, `allowSharedKeyAccess`);
 * - `POST .../listKeys[?$expand=kerb]`: 200 `{ keys: [{ keyName: key1|key2, value, permissions,
 *   creationTime }] }`; `permissions` is `FULL` as the service and the Azure CLI show it (the
 *   published example writes `Full`);
 * - `POST .../regenerateKey` `{ keyName: key1 | key2 }`: synchronous, 200 with the same body as
 *   listKeys, the named key replaced. Another `keyName`: 400 (the code the sandbox uses,
 *   `InvalidValuesForRequestParameters`, was not seen in a recording).
 *
 * Data plane (Storage REST "Authorize with Shared Key"): `Authorization: SharedKey {account}:{sig}`,
 * `sig` = base64 HMAC-SHA256 (key base64-decoded) of
 * `VERB\nContent-Encoding\nContent-Language\nContent-Length\nContent-MD5\nContent-Type\nDate\n
 * If-Modified-Since\nIf-Match\nIf-None-Match\nIf-Unmodified-Since\nRange\n` + the `x-ms-*` headers
 * (lower-case names, sorted, `name:value\n`) + `/{account}{path}` + `\n{param}:{value}` per query
 * parameter (lower-case names, sorted). Either key is accepted. Emulated: `GET /?comp=list` (list
 * containers: none). Refusals as the service words them: 401 `NoAuthenticationInformation` without
 * credentials, 403 `AuthenticationFailed` with the MAC detail ("...is not the same as any computed
 * signature. Server used following string to sign: ..."), 403 `AuthenticationFailed` "Request date
 * header too old" beyond 15 minutes of the machine's time.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { azureError, type SandboxReply, type SandboxRequest } from '../http';
import type { ServiceEmulator } from '../router';
import { type ArmProvider, type ArmRequest, notEmulated } from './emulator';
import type { KeyRing, KeyRings } from './keyRing';
import { resourceIdOf } from './resourceId';

export const STORAGE_NAMESPACE = 'Microsoft.Storage';
export const BLOB_HOST_SUFFIX = '.blob.core.windows.net';
export const STORAGE_KEY_NAMES = ['key1', 'key2'] as const;
const STORAGE_KEY_BYTES = 64;
const CLOCK_SKEW_MS = 15 * 60 * 1000;
const X_MS_VERSION = '2025-11-05';

export interface StorageAccount {
  name: string;
  resourceGroup: string;
  location: string;
  id: string;
  keys: KeyRing;
  createdAt: string;
}

/** The Shared Key string-to-sign of a request (Blob, Queue and File services). */
export function sharedKeyStringToSign(
  account: string,
  method: string,
  url: URL,
  header: (name: string) => string | undefined,
  headerNames: string[],
): string {
  const h = (name: string) => {
    const value = header(name) ?? '';
    return name === 'content-length' && value === '0' ? '' : value;
  };
  const standard = [
    method.toUpperCase(),
    h('content-encoding'),
    h('content-language'),
    h('content-length'),
    h('content-md5'),
    h('content-type'),
    h('date'),
    h('if-modified-since'),
    h('if-match'),
    h('if-none-match'),
    h('if-unmodified-since'),
    h('range'),
  ].join('\n');
  const msHeaders = [...new Set(headerNames.map((n) => n.toLowerCase()).filter((n) => n.startsWith('x-ms-')))]
    .sort()
    .map((n) => `${n}:${(header(n) ?? '').replace(/\s+/g, ' ').trim()}\n`)
    .join('');
  const params = new Map<string, string[]>();
  for (const [name, value] of url.searchParams) {
    const key = name.toLowerCase();
    params.set(key, [...(params.get(key) ?? []), value]);
  }
  const query = [...params.keys()]
    .sort()
    .map((key) => `\n${key}:${params.get(key)!.sort().join(',')}`)
    .join('');
  return `${standard}\n${msHeaders}/${account}${url.pathname || '/'}${query}`;
}

export class StorageAccounts implements ArmProvider {
  readonly namespace = STORAGE_NAMESPACE;
  readonly types = ['storageAccounts'] as const;
  private readonly accounts = new Map<string, StorageAccount>();

  constructor(
    private readonly subscriptionId: string,
    private readonly rings: KeyRings,
    private readonly now: () => Date,
  ) {}

  add(spec: { name: string; resourceGroup: string; location: string }): StorageAccount {
    const id = resourceIdOf(this.subscriptionId, spec.resourceGroup, STORAGE_NAMESPACE, [
      { type: 'storageAccounts', name: spec.name },
    ]);
    const account: StorageAccount = {
      ...spec,
      id,
      keys: this.rings.create(id, 'storage', STORAGE_KEY_NAMES, STORAGE_KEY_BYTES),
      createdAt: this.now().toISOString(),
    };
    this.accounts.set(spec.name.toLowerCase(), account);
    return account;
  }

  account(name: string): StorageAccount | undefined {
    return this.accounts.get(name.toLowerCase());
  }

  all(): StorageAccount[] {
    return [...this.accounts.values()];
  }

  lookup(_type: string, name: string) {
    return this.account(name);
  }

  private keysBody(account: StorageAccount) {
    const regenerated = new Map(account.keys.regenerations().map((r) => [r.keyName, r.at]));
    return {
      keys: STORAGE_KEY_NAMES.map((keyName) => ({
        creationTime: regenerated.get(keyName) ?? account.createdAt,
        keyName,
        value: account.keys.value(keyName),
        permissions: 'FULL',
      })),
    };
  }

  handle(req: ArmRequest): SandboxReply {
    const account = this.account(req.path.chain[0]!.name)!;
    if (req.path.chain.length > 1)
      return notEmulated(req.method, req.url.pathname, 'Storage child resources');
    const action = req.path.action?.toLowerCase();
    if (action === undefined) {
      if (req.method !== 'GET') return notEmulated(req.method, req.url.pathname, 'account writes');
      return {
        status: 200,
        body: {
          id: account.id,
          name: account.name,
          type: `${STORAGE_NAMESPACE}/storageAccounts`,
          location: account.location,
          kind: 'StorageV2',
          sku: { name: 'Standard_LRS', tier: 'Standard' },
          tags: {},
          properties: {
            provisioningState: 'Succeeded',
            allowSharedKeyAccess: true,
            creationTime: account.createdAt,
            primaryEndpoints: { blob: `https://${account.name}${BLOB_HOST_SUFFIX}/` },
          },
        },
      };
    }
    if (action === 'listkeys' && req.method === 'POST') return { status: 200, body: this.keysBody(account) };
    if (action === 'regeneratekey' && req.method === 'POST') {
      const keyName = (req.body as { keyName?: unknown } | undefined)?.keyName;
      if (
        typeof keyName !== 'string' ||
        !(STORAGE_KEY_NAMES as readonly string[]).includes(keyName.toLowerCase())
      ) {
        return azureError(
          400,
          'InvalidValuesForRequestParameters',
          'Values for request parameters are invalid: keyName.',
        );
      }
      account.keys.regenerate(keyName.toLowerCase());
      return { status: 200, body: this.keysBody(account) };
    }
    return notEmulated(req.method, req.url.pathname, `action ${req.path.action}`);
  }
}

/** The Blob service of the scenario's accounts, for what a key test needs. */
export class BlobDataPlane implements ServiceEmulator {
  readonly name = 'storage-blob';

  constructor(private readonly accounts: StorageAccounts) {}

  matches(hostname: string): boolean {
    return hostname.endsWith(BLOB_HOST_SUFFIX);
  }

  resolves(hostname: string): boolean {
    return this.accounts.account(hostname.slice(0, -BLOB_HOST_SUFFIX.length)) !== undefined;
  }

  async handle(req: SandboxRequest): Promise<SandboxReply> {
    const account = this.accounts.account(req.url.hostname.slice(0, -BLOB_HOST_SUFFIX.length))!;
    const requestId = randomUUID();
    const xmlError = (status: number, code: string, message: string, detail?: string): SandboxReply => ({
      status,
      headers: { 'content-type': 'application/xml', 'x-ms-error-code': code, 'x-ms-request-id': requestId },
      body:
        `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}\nRequestId:${requestId}\nTime:${new Date().toISOString()}</Message>` +
        (detail === undefined
          ? ''
          : `<AuthenticationErrorDetail>${escapeXml(detail)}</AuthenticationErrorDetail>`) +
        '</Error>',
    });
    const authorization = req.headers.get('authorization');
    if (!authorization) {
      return xmlError(
        401,
        'NoAuthenticationInformation',
        'Server failed to authenticate the request. Please refer to the information in the www-authenticate header.',
      );
    }
    const failed =
      'Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.';
    const match = /^SharedKey ([^:\s]+):(\S+)$/.exec(authorization.trim());
    if (!match || match[1] !== account.name) {
      return xmlError(
        403,
        'AuthenticationFailed',
        failed,
        'The Authorization header is not in the SharedKey format of this account.',
      );
    }
    const date = req.headers.get('x-ms-date') ?? req.headers.get('date');
    const dateMs = date === undefined ? Number.NaN : Date.parse(date);
    if (Number.isNaN(dateMs) || Math.abs(Date.now() - dateMs) > CLOCK_SKEW_MS) {
      return xmlError(403, 'AuthenticationFailed', failed, `Request date header too old: '${date ?? ''}'`);
    }
    const names = [...req.headers].map(([name]) => name);
    const stringToSign = sharedKeyStringToSign(
      account.name,
      req.method,
      req.url,
      (n) => req.headers.get(n),
      names,
    );
    const given = match[2]!;
    const valid = account.keys
      .values()
      .some(
        ({ value }) =>
          createHmac('sha256', Buffer.from(value, 'base64')).update(stringToSign, 'utf8').digest('base64') ===
          given,
      );
    if (!valid) {
      return xmlError(
        403,
        'AuthenticationFailed',
        failed,
        `The MAC signature found in the HTTP request '${given}' is not the same as any computed signature. Server used following string to sign: '${stringToSign}'.`,
      );
    }
    if (req.method !== 'GET' || req.url.pathname !== '/' || req.url.searchParams.get('comp') !== 'list') {
      return notEmulated(
        req.method,
        `${req.url.pathname}${req.url.search}`,
        'Blob service: only list containers (GET /?comp=list)',
      );
    }
    const max = req.url.searchParams.get('maxresults');
    return {
      status: 200,
      headers: {
        'content-type': 'application/xml',
        'x-ms-request-id': requestId,
        'x-ms-version': X_MS_VERSION,
      },
      body:
        `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="https://${account.name}${BLOB_HOST_SUFFIX}/">` +
        (max === null ? '' : `<MaxResults>${escapeXml(max)}</MaxResults>`) +
        '<Containers /><NextMarker /></EnumerationResults>',
    };
  }
}

/** Escapes element text (quotes need no escaping there, and the service leaves them as they are). */
function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
