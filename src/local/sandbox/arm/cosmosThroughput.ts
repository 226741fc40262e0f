/**
 * Cosmos DB provisioned throughput of SQL databases (shared) and containers (dedicated), the
 * management operations on it, and the service's rules about what a value may be. Served below the
 * account by `CosmosDbAccounts` (one ARM provider per namespace).
 *
 * Operations, as azure-rest-api-specs cosmos-db `SqlResources_*Throughput*` and the samples in
 * test/fixtures/rest/cosmosdb (`CosmosDBSqlContainerThroughputGet/Update`,
 * `CosmosDBSqlDatabaseThroughputGet/Update`, `CosmosDBSqlContainerMigrateToAutoscale`); the URL says
 * `containers` where the resource id says `sqlContainers`, as the spec's paths and ids do:
 * - `GET .../sqlDatabases/{db}[/containers/{c}]/throughputSettings/default`: 200 `{ id, name:
 *   "default", type, location, tags, properties: { resource: { throughput, autoscaleSettings?: {
 *   maxThroughput, targetMaxThroughput? }, minimumThroughput, offerReplacePending,
 *   instantMaximumThroughput, softAllowedMaximumThroughput, _rid, _ts, _etag } } }` with
 *   `throughput` a number and the four others strings, as published. For autoscale, `throughput` is
 *   the tenth of the max the system scales down to (the migrate sample: max 4000, throughput 400).
 * - `PUT` the same `{ properties: { resource: { throughput } | { autoscaleSettings: { maxThroughput } } } }`:
 *   202 with `Azure-AsyncOperation` and `Location` both naming the status resource (as Cosmos DB's
 *   long-running operations do); the SDK then reads the settings back. The service validates in the
 *   operation, not the request: a refused value is a `Failed` operation whose error is
 *   `BadRequest` with the service's message and an ActivityId (as ARM deployments report it:
 *   "Updating offer to manually provisioned throughput is not allowed. Please invoke migration API
 *   to migrate this offer.", "The offer should have valid throughput values between {min} and
 *   {max} inclusive in increments of 1000.").
 * - `POST .../throughputSettings/default/migrateToAutoscale`: 202, the same headers.
 *
 * The rules (learn.microsoft.com Cosmos DB "service quotas", "autoscale FAQ"):
 * - autoscale max RU/s go in steps of 1000; the least one may set is
 *   `MAX(1000, highest max RU/s ever provisioned / 10, storage in GB × 10)` for a container, and
 *   also `1000 + MAX(containers − 25, 0) × 1000` for a shared database, rounded up to 1000;
 * - manual RU/s go in steps of 100, least `MAX(400, highest RU/s ever / 100, storage in GB × 1)`
 *   (a shared database: also `400 + MAX(containers − 25, 0) × 100`);
 * - `instantMaximumThroughput` is physical partitions × 10,000 RU/s. A raise up to it applies at
 *   once; a raise past it is accepted and stays pending (`offerReplacePending: "true"`, the old
 *   value still in force, `targetMaxThroughput` the new one) for 4 hours of the sandbox clock (the
 *   service says 4-6 hours), then applies with the partitions split to fit it;
 * - `softAllowedMaximumThroughput` is 1,000,000 (a support ticket raises it);
 * - a migration to autoscale sets the max the FAQ estimates, with today's entry point:
 *   `MAX(1000, current manual RU/s, storage in GB × 10)`, rounded up to 1000.
 * A change while one is pending fails its operation (`BadRequest`; that wording is the sandbox's).
 */
import { randomUUID } from 'node:crypto';
import type { WorldTicker } from '../clock';
import { azureError, type SandboxReply } from '../http';
import { type ArmRequest, notEmulated } from './emulator';
import type { ArmOperations } from './operations';

export const COSMOS_SOFT_MAX = 1_000_000;
export const RU_PER_PARTITION = 10_000;
/** How long a raise past the instant limit stays pending on the sandbox clock. */
export const ASYNC_SCALE_MS = 4 * 3_600_000;
const GATEWAY = 'Microsoft.Azure.Documents.Common/2.14.0';

export interface ThroughputSpec {
  mode: 'autoscale' | 'manual';
  value: number;
  /** Highest value ever provisioned (default: `value`). */
  highest?: number;
  storageGB?: number;
  /** Physical partitions (default: what the highest value and the storage need). */
  partitions?: number;
}

export interface ThroughputOffer {
  account: { name: string; id: string; location: string };
  database: string;
  container: string | undefined;
  mode: 'autoscale' | 'manual';
  value: number;
  highest: number;
  storageGB: number;
  partitions: number;
  /** Containers sharing a database's throughput (for its minimum). */
  sharedBy: number;
  pending: { to: number; completesAt: number } | undefined;
  rid: string;
  ts: number;
  etag: number;
}

/** What the load generator and the inspection read of an offer. */
export interface ThroughputView {
  account: string;
  database: string;
  container: string | null;
  mode: 'autoscale' | 'manual';
  /** Autoscale max RU/s, or manual RU/s. */
  value: number;
  minimum: number;
  instantMaximum: number;
  partitions: number;
  pendingTo: number | null;
}

const up = (v: number, step: number) => Math.ceil(v / step) * step;

/** The least value the service takes now for an offer. */
export function minimumOf(
  o: Pick<ThroughputOffer, 'mode' | 'highest' | 'storageGB' | 'container' | 'sharedBy'>,
): number {
  const extra = o.container === undefined ? Math.max(o.sharedBy - 25, 0) : 0;
  if (o.mode === 'autoscale')
    return up(Math.max(1000, o.highest / 10, o.storageGB * 10, 1000 + extra * 1000), 1000);
  return up(Math.max(400, o.highest / 100, o.storageGB, 400 + extra * 100), 100);
}

function key(account: string, database: string, container: string | undefined): string {
  return `${account}/${database}/${container ?? ''}`.toLowerCase();
}

export class CosmosThroughputs implements WorldTicker {
  private readonly offers = new Map<string, ThroughputOffer>();
  /** Databases (and their containers) that exist, with or without throughput of their own. */
  private readonly databases = new Map<string, Set<string>>();
  private count = 0;

  constructor(
    private readonly now: () => number,
    private readonly operations: ArmOperations,
  ) {}

  addDatabase(
    account: { name: string; id: string; location: string },
    database: string,
    containers: string[],
  ): void {
    const set = this.databases.get(key(account.name, database, undefined)) ?? new Set<string>();
    for (const c of containers) set.add(c.toLowerCase());
    this.databases.set(key(account.name, database, undefined), set);
  }

  addOffer(
    account: { name: string; id: string; location: string },
    database: string,
    container: string | undefined,
    spec: ThroughputSpec,
  ): ThroughputOffer {
    const highest = Math.max(spec.highest ?? spec.value, spec.value);
    const storageGB = spec.storageGB ?? 1;
    const offer: ThroughputOffer = {
      account,
      database,
      container,
      mode: spec.mode,
      value: spec.value,
      highest,
      storageGB,
      partitions:
        spec.partitions ?? Math.max(1, Math.ceil(highest / RU_PER_PARTITION), Math.ceil(storageGB / 50)),
      sharedBy: 0,
      pending: undefined,
      rid: Buffer.from(`${account.name}/${database}/${container ?? ''}`)
        .toString('base64')
        .slice(0, 12),
      ts: Math.floor(this.now() / 1000),
      etag: 1,
    };
    this.offers.set(key(account.name, database, container), offer);
    return offer;
  }

  /** Counts the containers that share each database's throughput (those without their own). */
  finishSeeding(): void {
    for (const offer of this.offers.values()) {
      if (offer.container !== undefined) continue;
      const containers = this.databases.get(key(offer.account.name, offer.database, undefined)) ?? new Set();
      offer.sharedBy = [...containers].filter(
        (c) => !this.offers.has(key(offer.account.name, offer.database, c)),
      ).length;
    }
  }

  offer(account: string, database: string, container?: string): ThroughputOffer | undefined {
    return this.offers.get(key(account, database, container));
  }

  /** The throughput in force for a container: its own, else its database's shared one. */
  effective(account: string, database: string, container: string): ThroughputOffer | undefined {
    return this.offer(account, database, container) ?? this.offer(account, database);
  }

  view(o: ThroughputOffer): ThroughputView {
    return {
      account: o.account.name,
      database: o.database,
      container: o.container ?? null,
      mode: o.mode,
      value: o.value,
      minimum: minimumOf(o),
      instantMaximum: o.partitions * RU_PER_PARTITION,
      partitions: o.partitions,
      pendingTo: o.pending?.to ?? null,
    };
  }

  all(): ThroughputView[] {
    return [...this.offers.values()].map((o) => this.view(o));
  }

  // ---- the world ------------------------------------------------------------------------------

  nextDueAt(): number | undefined {
    let min: number | undefined;
    for (const o of this.offers.values())
      if (o.pending && (min === undefined || o.pending.completesAt < min)) min = o.pending.completesAt;
    return min;
  }

  async fireDue(now: number): Promise<void> {
    for (const o of this.offers.values()) {
      if (!o.pending || o.pending.completesAt > now) continue;
      o.value = o.pending.to;
      o.highest = Math.max(o.highest, o.value);
      o.partitions = Math.max(o.partitions, Math.ceil(o.value / RU_PER_PARTITION));
      o.pending = undefined;
      this.touch(o);
    }
  }

  // ---- ARM ----------------------------------------------------------------------------------

  /**
   * Handles `.../databaseAccounts/{a}/sqlDatabases/{db}[/containers/{c}]/throughputSettings/default[/{action}]`;
   * anything else below an account answers 501.
   */
  handle(req: ArmRequest, account: { name: string; id: string; location: string }): SandboxReply {
    const chain = req.path.chain.slice(1);
    const types = chain.map((c) => c.type.toLowerCase());
    const shape = types.join('/');
    const isDatabase = shape === 'sqldatabases/throughputsettings';
    const isContainer = shape === 'sqldatabases/containers/throughputsettings';
    if ((!isDatabase && !isContainer) || chain.at(-1)!.name.toLowerCase() !== 'default')
      return notEmulated(
        req.method,
        req.url.pathname,
        'Cosmos DB child resources other than SQL throughput settings',
      );
    const database = chain[0]!.name;
    const container = isContainer ? chain[1]!.name : undefined;
    const containers = this.databases.get(key(account.name, database, undefined));
    if (!containers || (container !== undefined && !containers.has(container.toLowerCase()))) {
      return azureError(
        404,
        'NotFound',
        `${container === undefined ? `Database '${database}'` : `Container '${container}' in database '${database}'`} of Cosmos DB account '${account.name}' does not exist.`,
      );
    }
    const offer = this.offer(account.name, database, container);
    if (!offer) {
      return azureError(
        404,
        'NotFound',
        `Throughput settings do not exist for ${container === undefined ? `database '${database}'` : `container '${container}'`}: it ${container === undefined ? 'has no shared throughput' : "shares its database's throughput"}.`,
      );
    }
    const action = req.path.action?.toLowerCase();
    if (action === undefined && req.method === 'GET') return { status: 200, body: this.body(offer) };
    if (action === undefined && req.method === 'PUT') return this.replace(req, offer);
    if (action === 'migratetoautoscale' && req.method === 'POST') return this.migrate(req, offer);
    return notEmulated(
      req.method,
      req.url.pathname,
      `throughput settings ${req.method} ${req.path.action ?? ''}`.trim(),
    );
  }

  private replace(req: ArmRequest, offer: ThroughputOffer): SandboxReply {
    const resource = (req.body as { properties?: { resource?: Record<string, unknown> } } | undefined)
      ?.properties?.resource;
    const throughput = resource?.throughput;
    const autoscale = resource?.autoscaleSettings as { maxThroughput?: unknown } | undefined;
    if (!resource || (throughput === undefined) === (autoscale === undefined)) {
      return azureError(
        400,
        'BadRequest',
        'Either throughput or autoscaleSettings is required, but not both.',
      );
    }
    const wanted = autoscale ? autoscale.maxThroughput : throughput;
    if (typeof wanted !== 'number' || !Number.isInteger(wanted))
      return azureError(400, 'BadRequest', 'The throughput value must be an integer.');
    const mode = autoscale ? 'autoscale' : 'manual';
    const refusal = this.refusal(offer, mode, wanted);
    if (refusal) return this.accepted(req, offer, { error: { code: 'BadRequest', message: refusal } });
    if (wanted > offer.partitions * RU_PER_PARTITION && wanted > offer.value) {
      offer.pending = { to: wanted, completesAt: this.now() + ASYNC_SCALE_MS };
    } else {
      offer.value = wanted;
      offer.highest = Math.max(offer.highest, wanted);
    }
    this.touch(offer);
    return this.accepted(req, offer, {});
  }

  private migrate(req: ArmRequest, offer: ThroughputOffer): SandboxReply {
    if (offer.pending)
      return this.accepted(req, offer, { error: { code: 'BadRequest', message: this.activity(PENDING) } });
    if (offer.mode === 'autoscale')
      return this.accepted(req, offer, {
        error: { code: 'BadRequest', message: this.activity('The offer is already in autoscale mode.') },
      });
    const max = up(Math.max(1000, offer.value, offer.storageGB * 10), 1000);
    offer.mode = 'autoscale';
    offer.value = max;
    offer.highest = max;
    this.touch(offer);
    return this.accepted(req, offer, {});
  }

  /** Why the service refuses `value` in `mode`, in its words, or undefined. */
  private refusal(offer: ThroughputOffer, mode: 'autoscale' | 'manual', value: number): string | undefined {
    if (offer.pending) return this.activity(PENDING);
    if (mode !== offer.mode) {
      return this.activity(
        mode === 'manual'
          ? 'Updating offer to manually provisioned throughput is not allowed. Please invoke migration API to migrate this offer.'
          : 'Updating offer to autoscale throughput is not allowed. Please invoke migration API to migrate this offer.',
      );
    }
    const step = mode === 'autoscale' ? 1000 : 100;
    const min = minimumOf(offer);
    if (value < min || value > COSMOS_SOFT_MAX || value % step !== 0)
      return this.activity(
        `The offer should have valid throughput values between ${min} and ${COSMOS_SOFT_MAX} inclusive in increments of ${step}.`,
      );
    return undefined;
  }

  private activity(message: string): string {
    return `${message}\r\nActivityId: ${randomUUID()}, ${GATEWAY}`;
  }

  private accepted(
    req: ArmRequest,
    offer: ThroughputOffer,
    outcome: { error?: { code: string; message: string } },
  ): SandboxReply {
    const op = this.operations.start({
      namespace: 'Microsoft.DocumentDB',
      location: offer.account.location,
      subscriptionId: req.subscriptionId,
      apiVersion: req.apiVersion,
      outcome,
    });
    return {
      status: 202,
      headers: { location: op.statusUrl, 'azure-asyncoperation': op.statusUrl, 'retry-after': '0' },
    };
  }

  private touch(offer: ThroughputOffer): void {
    offer.etag += 1;
    offer.ts = Math.floor(this.now() / 1000);
    this.count += 1;
  }

  private body(o: ThroughputOffer) {
    const path = o.container
      ? `sqlDatabases/${o.database}/sqlContainers/${o.container}/throughputSettings/default`
      : `sqlDatabases/${o.database}/throughputSettings/default`;
    return {
      id: `${o.account.id}/${path}`,
      name: 'default',
      type: `Microsoft.DocumentDB/databaseAccounts/${o.container ? 'sqlDatabases/sqlContainers' : 'sqlDatabases'}/throughputSettings`,
      location: o.account.location,
      tags: {},
      properties: {
        resource: {
          throughput: o.mode === 'autoscale' ? o.value / 10 : o.value,
          ...(o.mode === 'autoscale'
            ? {
                autoscaleSettings: {
                  maxThroughput: o.value,
                  ...(o.pending ? { targetMaxThroughput: o.pending.to } : {}),
                },
              }
            : {}),
          minimumThroughput: String(minimumOf(o)),
          offerReplacePending: o.pending ? 'true' : 'false',
          instantMaximumThroughput: String(o.partitions * RU_PER_PARTITION),
          softAllowedMaximumThroughput: String(COSMOS_SOFT_MAX),
          _rid: o.rid,
          _ts: o.ts,
          _etag: `"${String(o.etag).padStart(8, '0')}-0000-0000-0000-000000000000"`,
        },
      },
    };
  }
}

const PENDING =
  'An offer replace is pending for this resource: retry once it completes (offerReplacePending is true).';
