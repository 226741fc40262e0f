/**
 * Cosmos DB accounts: the management operations on their keys (`Microsoft.DocumentDB`) and the
 * data plane's master-key authorization (`https://{account}.documents.azure.com`).
 *
 * Management, as azure-rest-api-specs cosmos-db `DatabaseAccounts_*` (test/fixtures/rest/cosmosdb):
 * - `GET .../databaseAccounts/{account}`: the account (`documentEndpoint`, `provisioningState`);
 * - `POST .../listKeys`: 200 `{ primaryMasterKey, secondaryMasterKey, primaryReadonlyMasterKey,
 *   secondaryReadonlyMasterKey }`;
 * - `POST .../readonlykeys` (listReadOnlyKeys) and the older `GET .../readonlykeys`: 200
 *   `{ primaryReadonlyMasterKey, secondaryReadonlyMasterKey }`;
 * - `POST .../regenerateKey` `{ keyKind: primary | secondary | primaryReadonly | secondaryReadonly }`:
 *   a long-running operation, 202 with `Location` and `Azure-AsyncOperation` both naming
 *   `.../providers/Microsoft.DocumentDB/locations/{loc}/operationsStatus/{id}` (as the published
 *   example). The old key stops working when the operation is accepted: the sandbox never lets a
 *   key outlive its regeneration.
 *
 * Backup and restore (azure-rest-api-specs cosmos-db 2025-10-15, `CosmosDBDatabaseAccountGet.json`,
 * `CosmosDBRestorableDatabaseAccountList.json` / `Get.json` in test/fixtures/rest/cosmosdb):
 * - the account's `backupPolicy` (`Periodic` with `periodicModeProperties { backupIntervalInMinutes,
 *   backupRetentionIntervalInHours, backupStorageRedundancy }`, or `Continuous` with
 *   `continuousModeProperties { tier }`), `instanceId`, `createMode: Default`, `disableLocalAuth`;
 * - `GET /subscriptions/{sub}/providers/Microsoft.DocumentDB/restorableDatabaseAccounts` and
 *   `.../locations/{location}/restorableDatabaseAccounts[/{instanceId}]`: the continuous-backup
 *   accounts (a periodic account is not restorable this way), with `oldestRestorableTime` (the later
 *   of the creation and now minus the tier's 7 or 30 days, on the sandbox clock), `creationTime`,
 *   `apiType: Sql` and `restorableLocations`. Ids carry the location's display name with its space
 *   unencoded (`locations/West Europe/...`), as the published examples do. An unknown instance id: 404;
 * - `HEAD /providers/Microsoft.DocumentDB/databaseAccountNames/{name}` (checkNameExists): 200 when an
 *   account of the scenario has the name, 404 (no body) when it is free.
 *
 * Data plane (Cosmos DB REST "Access control"): `authorization` is the URL-encoded
 * `type=master&ver=1.0&sig={base64 HMAC-SHA256}` over
 * `{verb}\n{resourceType}\n{resourceLink}\n{x-ms-date}\n\n` (verb, type and date lower-cased), keyed
 * with the base64-decoded key; any of the account's four keys is accepted for reads. Emulated reads:
 * `GET /` (the database account) and `GET /dbs` (no databases). Refusals as the service words them:
 * 401 "Required Header authorization is missing...", 401 "The input authorization token can't
 * serve the request..." (with the payload the server signed), 403 "The authorization token is not
 * valid at the current time..." when `x-ms-date` is more than 15 minutes from the machine's time
 * (clients date requests by the machine's clock, and so does the sandbox).
 */
import { createHmac, randomUUID } from 'node:crypto';
import { azureError, type SandboxReply, type SandboxRequest } from '../http';
import { seededUuid } from '../ids';
import type { ServiceEmulator } from '../router';
import type { CosmosThroughputs } from './cosmosThroughput';
import { type ArmProvider, type ArmProviderPathRequest, type ArmRequest, notEmulated } from './emulator';
import type { KeyRing, KeyRings } from './keyRing';
import type { ArmOperations } from './operations';
import { displayLocation, normalizeLocation, resourceIdOf } from './resourceId';
import type { ResolvedBackupPolicy } from './scenario';

export const COSMOS_NAMESPACE = 'Microsoft.DocumentDB';
export const COSMOS_HOST_SUFFIX = '.documents.azure.com';
/** The listKeys property names, in the order the service lists them. */
export const COSMOS_KEY_NAMES = [
  'primaryMasterKey',
  'secondaryMasterKey',
  'primaryReadonlyMasterKey',
  'secondaryReadonlyMasterKey',
] as const;
/** `keyKind` of regenerateKey -> the key it replaces. */
const KEY_KINDS: Record<string, (typeof COSMOS_KEY_NAMES)[number]> = {
  primary: 'primaryMasterKey',
  secondary: 'secondaryMasterKey',
  primaryReadonly: 'primaryReadonlyMasterKey',
  secondaryReadonly: 'secondaryReadonlyMasterKey',
};
const COSMOS_KEY_BYTES = 64;
/** How far `x-ms-date` may be from the server's time. */
const CLOCK_SKEW_MS = 15 * 60 * 1000;
const GATEWAY = 'Microsoft.Azure.Documents.Common/2.14.0';

export interface CosmosAccount {
  name: string;
  resourceGroup: string;
  location: string;
  id: string;
  keys: KeyRing;
  backup: ResolvedBackupPolicy;
  /** The account's `instanceId` (from the seed), also its restorable account's name. */
  instanceId: string;
  createdAt: Date;
  disableLocalAuth: boolean;
}

/** What an account is created from (the scenario's account, its creation instant resolved). */
export interface CosmosAccountSpec {
  name: string;
  resourceGroup: string;
  location: string;
  backup?: ResolvedBackupPolicy;
  createdAt?: Date;
  disableLocalAuth?: boolean;
}

const DAY_MS = 86_400_000;
const TIER_DAYS = { Continuous7Days: 7, Continuous30Days: 30 } as const;
const PERIODIC_DEFAULT: ResolvedBackupPolicy = {
  type: 'Periodic',
  intervalMinutes: 240,
  retentionHours: 8,
  redundancy: 'Geo',
};
/** Seconds precision, as the service writes its times. */
const isoSeconds = (date: Date) => `${date.toISOString().slice(0, 19)}Z`;

/** The string a master-key signature covers (Cosmos DB REST "Access control on Cosmos DB resources"). */
export function cosmosPayload(
  verb: string,
  resourceType: string,
  resourceLink: string,
  date: string,
): string {
  return `${verb.toLowerCase()}\n${resourceType.toLowerCase()}\n${resourceLink}\n${date.toLowerCase()}\n\n`;
}

/** The `authorization` header value for a master key (URL-encoded, as the service expects it). */
export function cosmosMasterAuthorization(key: string, payload: string): string {
  const sig = createHmac('sha256', Buffer.from(key, 'base64')).update(payload, 'utf8').digest('base64');
  return encodeURIComponent(`type=master&ver=1.0&sig=${sig}`);
}

export class CosmosDbAccounts implements ArmProvider {
  readonly namespace = COSMOS_NAMESPACE;
  readonly types = ['databaseAccounts'] as const;
  private readonly accounts = new Map<string, CosmosAccount>();

  constructor(
    private readonly subscriptionId: string,
    private readonly rings: KeyRings,
    private readonly operations: ArmOperations,
    private readonly options: {
      seed?: string;
      now?: () => Date;
      /** SQL database and container throughput, below the accounts (`cosmosThroughput.ts`). */
      throughput?: CosmosThroughputs;
    } = {},
  ) {}

  add(spec: CosmosAccountSpec): CosmosAccount {
    const id = resourceIdOf(this.subscriptionId, spec.resourceGroup, COSMOS_NAMESPACE, [
      { type: 'databaseAccounts', name: spec.name },
    ]);
    const now = this.options.now?.() ?? new Date();
    const account: CosmosAccount = {
      name: spec.name,
      resourceGroup: spec.resourceGroup,
      location: spec.location,
      id,
      keys: this.rings.create(id, 'cosmosDb', COSMOS_KEY_NAMES, COSMOS_KEY_BYTES),
      backup: spec.backup ?? PERIODIC_DEFAULT,
      instanceId: seededUuid(this.options.seed ?? 'sandbox', 'cosmos-instance', spec.name.toLowerCase()),
      createdAt: spec.createdAt ?? new Date(now.getTime() - 365 * DAY_MS),
      disableLocalAuth: spec.disableLocalAuth ?? false,
    };
    this.accounts.set(spec.name.toLowerCase(), account);
    return account;
  }

  account(name: string): CosmosAccount | undefined {
    return this.accounts.get(name.toLowerCase());
  }

  all(): CosmosAccount[] {
    return [...this.accounts.values()];
  }

  lookup(_type: string, name: string) {
    return this.account(name);
  }

  handleProviderPath(req: ArmProviderPathRequest): SandboxReply {
    return cosmosProviderPath(this, () => this.options.now?.() ?? new Date(), req);
  }

  handle(req: ArmRequest): SandboxReply {
    const account = this.account(req.path.chain[0]!.name)!;
    if (req.path.chain.length > 1) {
      if (this.options.throughput) return this.options.throughput.handle(req, account);
      return notEmulated(req.method, req.url.pathname, 'Cosmos DB child resources');
    }
    const action = req.path.action?.toLowerCase();
    const keysOf = (names: readonly string[]) =>
      Object.fromEntries(names.map((name) => [name, account.keys.value(name)]));
    if (action === undefined) {
      if (req.method !== 'GET') return notEmulated(req.method, req.url.pathname, 'account writes');
      return { status: 200, body: this.describeForArm(account) };
    }
    if (action === 'listkeys' && req.method === 'POST')
      return { status: 200, body: keysOf(COSMOS_KEY_NAMES) };
    if (action === 'readonlykeys' && (req.method === 'POST' || req.method === 'GET')) {
      return { status: 200, body: keysOf(COSMOS_KEY_NAMES.slice(2)) };
    }
    if (action === 'regeneratekey' && req.method === 'POST') {
      const body = req.body as { keyKind?: unknown } | undefined;
      const kind = typeof body?.keyKind === 'string' ? KEY_KINDS[body.keyKind] : undefined;
      if (!kind) {
        return azureError(
          400,
          'BadRequest',
          `Invalid keyKind '${String(body?.keyKind)}'. Expected one of: ${Object.keys(KEY_KINDS).join(', ')}.`,
        );
      }
      account.keys.regenerate(kind);
      const op = this.operations.start({
        namespace: COSMOS_NAMESPACE,
        location: account.location,
        subscriptionId: this.subscriptionId,
        apiVersion: req.apiVersion,
      });
      return {
        status: 202,
        headers: { location: op.statusUrl, 'azure-asyncoperation': op.statusUrl, 'retry-after': '0' },
      };
    }
    return notEmulated(req.method, req.url.pathname, `action ${req.path.action}`);
  }

  private describeForArm(account: CosmosAccount) {
    return {
      id: account.id,
      name: account.name,
      location: account.location,
      type: `${COSMOS_NAMESPACE}/databaseAccounts`,
      kind: 'GlobalDocumentDB',
      tags: {},
      properties: {
        provisioningState: 'Succeeded',
        documentEndpoint: `https://${account.name}${COSMOS_HOST_SUFFIX}:443/`,
        databaseAccountOfferType: 'Standard',
        disableLocalAuth: account.disableLocalAuth,
        instanceId: account.instanceId,
        createMode: 'Default',
        backupPolicy:
          account.backup.type === 'Periodic'
            ? {
                type: 'Periodic',
                periodicModeProperties: {
                  backupIntervalInMinutes: account.backup.intervalMinutes,
                  backupRetentionIntervalInHours: account.backup.retentionHours,
                  backupStorageRedundancy: account.backup.redundancy,
                },
              }
            : { type: 'Continuous', continuousModeProperties: { tier: account.backup.tier } },
        consistencyPolicy: {
          defaultConsistencyLevel: 'Session',
          maxIntervalInSeconds: 5,
          maxStalenessPrefix: 100,
        },
        locations: [
          {
            locationName: account.location,
            provisioningState: 'Succeeded',
            failoverPriority: 0,
            documentEndpoint: `https://${account.name}-${account.location.toLowerCase()}${COSMOS_HOST_SUFFIX}:443/`,
          },
        ],
      },
    };
  }
}

/**
 * The provider paths of Microsoft.DocumentDB the sandbox answers: restorable accounts (subscription
 * and location scope) and the tenant-level name check.
 */
export function cosmosProviderPath(
  accounts: CosmosDbAccounts,
  now: () => Date,
  req: ArmProviderPathRequest,
): SandboxReply {
  const [first, second, third, fourth, ...rest] = req.path.segments;
  const lower = (v: string | undefined) => v?.toLowerCase();
  if (req.path.subscriptionId === undefined) {
    if (lower(first) === 'databaseaccountnames' && second !== undefined && third === undefined) {
      if (req.method !== 'HEAD')
        return notEmulated(req.method, req.url.pathname, 'only HEAD (checkNameExists)');
      return { status: accounts.account(second) ? 200 : 404 };
    }
    return notEmulated(
      req.method,
      req.url.pathname,
      'tenant-level Cosmos DB paths other than databaseAccountNames',
    );
  }
  if (req.method !== 'GET')
    return notEmulated(req.method, req.url.pathname, 'restorable accounts are read-only');
  const restorable = accounts.all().filter((a) => a.backup.type === 'Continuous');
  if (lower(first) === 'restorabledatabaseaccounts' && second === undefined) {
    return {
      status: 200,
      body: { value: restorable.map((a) => restorableAccount(a, req.subscriptionId!, now())) },
    };
  }
  if (
    lower(first) === 'locations' &&
    second !== undefined &&
    lower(third) === 'restorabledatabaseaccounts' &&
    rest.length === 0
  ) {
    const inLocation = restorable.filter((a) => normalizeLocation(a.location) === normalizeLocation(second));
    if (fourth === undefined) {
      return {
        status: 200,
        body: { value: inLocation.map((a) => restorableAccount(a, req.subscriptionId!, now())) },
      };
    }
    const account = inLocation.find((a) => a.instanceId === fourth.toLowerCase());
    if (!account) {
      // Not verified against Azure: the code and wording of this 404.
      return azureError(
        404,
        'NotFound',
        `Restorable database account with instance id '${fourth}' was not found in location '${second}'.`,
      );
    }
    return { status: 200, body: restorableAccount(account, req.subscriptionId!, now()) };
  }
  return notEmulated(
    req.method,
    req.url.pathname,
    'Cosmos DB provider paths other than restorable database accounts',
  );
}

/** A restorable database account, in the published example's shape (its id's location unencoded). */
function restorableAccount(account: CosmosAccount, subscriptionId: string, now: Date) {
  const tier = account.backup.type === 'Continuous' ? account.backup.tier : 'Continuous30Days';
  const window = new Date(now.getTime() - TIER_DAYS[tier] * DAY_MS);
  const oldest = window.getTime() > account.createdAt.getTime() ? window : account.createdAt;
  const location = displayLocation(account.location);
  return {
    id: `/subscriptions/${subscriptionId}/providers/${COSMOS_NAMESPACE}/locations/${location}/restorableDatabaseAccounts/${account.instanceId}`,
    name: account.instanceId,
    location,
    type: `${COSMOS_NAMESPACE}/locations/restorableDatabaseAccounts`,
    properties: {
      accountName: account.name,
      creationTime: isoSeconds(account.createdAt),
      oldestRestorableTime: isoSeconds(oldest),
      apiType: 'Sql',
      restorableLocations: [
        {
          locationName: location,
          regionalDatabaseAccountInstanceId: seededUuid(
            account.instanceId,
            'regional',
            normalizeLocation(account.location),
          ),
          creationTime: isoSeconds(account.createdAt),
        },
      ],
    },
  };
}

/** The data plane of the scenario's accounts (`https://{account}.documents.azure.com`). */
export class CosmosDbDataPlane implements ServiceEmulator {
  readonly name = 'cosmosdb';

  constructor(private readonly accounts: CosmosDbAccounts) {}

  matches(hostname: string): boolean {
    return hostname.endsWith(COSMOS_HOST_SUFFIX);
  }

  /** Only the scenario's accounts have a DNS name. */
  resolves(hostname: string): boolean {
    return this.accounts.account(hostname.slice(0, -COSMOS_HOST_SUFFIX.length)) !== undefined;
  }

  async handle(req: SandboxRequest): Promise<SandboxReply> {
    const account = this.accounts.account(req.url.hostname.slice(0, -COSMOS_HOST_SUFFIX.length))!;
    const path = req.url.pathname.replace(/\/+$/, '');
    let resourceType: string;
    if (path === '') resourceType = '';
    else if (path === '/dbs') resourceType = 'dbs';
    else return notEmulated(req.method, req.url.pathname, 'Cosmos DB data plane: only GET / and GET /dbs');
    if (req.method !== 'GET') return notEmulated(req.method, req.url.pathname, 'Cosmos DB data plane writes');

    const activityId = randomUUID();
    const refuse = (status: number, code: string, message: string): SandboxReply => ({
      status,
      headers: { 'x-ms-activity-id': activityId },
      body: { code, message: `${message}\r\nActivityId: ${activityId}, ${GATEWAY}` },
    });
    const authorization = req.headers.get('authorization');
    if (!authorization) {
      return refuse(
        401,
        'Unauthorized',
        'Required Header authorization is missing. Ensure a valid Authorization token is passed.',
      );
    }
    if (account.disableLocalAuth && /type(=|%3d)master/i.test(authorization)) {
      // The account's disableLocalAuth: keys are refused whatever they are (the service's words).
      return refuse(
        401,
        'Unauthorized',
        'Local Authorization is disabled. Use an AAD token to authorize all requests.',
      );
    }
    const date = req.headers.get('x-ms-date') ?? req.headers.get('date');
    const dateMs = date === undefined ? Number.NaN : Date.parse(date);
    if (date === undefined || Number.isNaN(dateMs)) {
      return refuse(
        401,
        'Unauthorized',
        'The input date header is invalid format. Please pass in RFC 1123 style date format.',
      );
    }
    const nowMs = Date.now();
    if (Math.abs(nowMs - dateMs) > CLOCK_SKEW_MS) {
      const utc = (ms: number) => new Date(ms).toUTCString();
      return refuse(
        403,
        'Forbidden',
        `The authorization token is not valid at the current time. Please create another token and retry (token start time: ${utc(dateMs)}, token expiry time: ${utc(dateMs + CLOCK_SKEW_MS)}, current server time: ${utc(nowMs)}).`,
      );
    }
    const payload = cosmosPayload(req.method, resourceType, '', date);
    let decoded: string;
    try {
      decoded = decodeURIComponent(authorization);
    } catch {
      decoded = authorization;
    }
    const parts = new Map(
      decoded.split('&').map((part) => {
        const eq = part.indexOf('=');
        return [part.slice(0, eq).toLowerCase(), part.slice(eq + 1)] as const;
      }),
    );
    const sig = parts.get('sig');
    const valid =
      parts.get('type') === 'master' &&
      parts.get('ver') === '1.0' &&
      sig !== undefined &&
      account.keys.values().some(({ value }) => {
        const expected = createHmac('sha256', Buffer.from(value, 'base64'))
          .update(payload, 'utf8')
          .digest('base64');
        return expected === sig;
      });
    if (!valid) {
      return refuse(
        401,
        'Unauthorized',
        `The input authorization token can't serve the request. The wrong key is being used or the expected payload is not built as per the protocol. For more info: https://aka.ms/cosmosdb-tsg-unauthorized. Server used the following payload to sign: '${payload}'`,
      );
    }
    const headers = {
      'x-ms-activity-id': activityId,
      'x-ms-request-charge': '1',
      'x-ms-gatewayversion': 'version=2.14.0',
    };
    if (resourceType === 'dbs') {
      return { status: 200, headers, body: { _rid: '', Databases: [], _count: 0 } };
    }
    const endpoint = `https://${account.name}${COSMOS_HOST_SUFFIX}:443/`;
    const regional = { name: account.location, databaseAccountEndpoint: endpoint };
    return {
      status: 200,
      headers,
      body: {
        _self: '',
        id: account.name,
        _rid: `${account.name}${COSMOS_HOST_SUFFIX}`,
        media: '//media/',
        addresses: '//addresses/',
        _dbs: '//dbs/',
        writableLocations: [regional],
        readableLocations: [regional],
        enableMultipleWriteLocations: false,
        userConsistencyPolicy: { defaultConsistencyLevel: 'Session' },
      },
    };
  }
}
