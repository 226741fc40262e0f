import { CosmosDBManagementClient, type ThroughputSettingsGetResults } from '@azure/arm-cosmosdb';
import type { TokenCredential } from '@azure/core-auth';
import { ValidationError } from '../core/errors';
import type {
  CapacityCallOptions,
  CosmosThroughput,
  CosmosThroughputPort,
  CosmosThroughputRef,
} from '../ports/capacity';
import {
  type ArmAdapterOptions,
  armClientOptions,
  armError,
  ClientsBySubscription,
  parseArmId,
} from './armKeys';

const NAMESPACE = 'Microsoft.DocumentDB';
const SHAPES = [['databaseaccounts']];
/** Cosmos DB names: 1-255 characters, none of `/ \ # ?` (the service's rule for ids). */
const NAME = /^[^/\\#?]{1,255}$/;

/**
 * The service's number fields: `throughput` is a number but `minimumThroughput`,
 * `instantMaximumThroughput`, `softAllowedMaximumThroughput` are strings (as the published samples
 * show them, test/fixtures/rest/cosmosdb/*Throughput*); `offerReplacePending` is `"true"` / `"false"`.
 */
function num(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** The port's reading of a throughput settings resource. */
export function throughputOf(settings: ThroughputSettingsGetResults, what: string): CosmosThroughput {
  const r = settings.resource;
  if (!r) throw new ValidationError(`${what}: the answer has no throughput settings`, ['resource: missing']);
  const max = num(r.autoscaleSettings?.maxThroughput);
  const manual = num(r.throughput);
  const mode = max !== undefined ? 'autoscale' : 'manual';
  const value = max ?? manual;
  if (value === undefined)
    throw new ValidationError(`${what}: the answer has neither a throughput nor an autoscale max`, [
      'resource.throughput / resource.autoscaleSettings.maxThroughput: missing',
    ]);
  return {
    mode,
    value,
    minimum: num(r.minimumThroughput) ?? 0,
    instantMaximum: num(r.instantMaximumThroughput),
    softMaximum: num(r.softAllowedMaximumThroughput),
    pending: String(r.offerReplacePending).toLowerCase() === 'true',
    pendingValue: num(r.autoscaleSettings?.targetMaxThroughput),
  };
}

/**
 * `CosmosThroughputPort` over `@azure/arm-cosmosdb`'s SQL resources: the throughput settings of a
 * container (`.../sqlDatabases/{db}/containers/{c}/throughputSettings/default`) or of a database's
 * shared throughput. Permissions (the narrowest, on the account; a custom role with exactly these:
 * docs/deploy.md, "An alert playbook"): `Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/throughputSettings/read`
 * and `/write` (containers), `.../sqlDatabases/throughputSettings/read` and `/write` (databases),
 * `.../throughputSettings/migrateToAutoscale/action` (migration), and
 * `Microsoft.DocumentDB/locations/operationsStatus/read` at the subscription to follow the
 * long-running operations (their status lives outside the account).
 *
 * ARM calls: a read is one GET; a write is the PUT (202), its status polls (one when the service is
 * quick) and the SDK's final GET of the settings; a migration the same with a POST.
 */
export class CosmosThroughputAdapter implements CosmosThroughputPort {
  private readonly clients: ClientsBySubscription<CosmosDBManagementClient>;

  constructor(
    credential: TokenCredential,
    private readonly options: ArmAdapterOptions = {},
  ) {
    this.clients = new ClientsBySubscription(
      (sub) => new CosmosDBManagementClient(credential, sub, armClientOptions(options)),
    );
  }

  private parse(ref: CosmosThroughputRef) {
    const id = parseArmId(ref.accountId, NAMESPACE, SHAPES);
    const problems: string[] = [];
    if (!NAME.test(ref.database)) problems.push(`database: '${ref.database}' is not a Cosmos DB name`);
    if (ref.container !== undefined && !NAME.test(ref.container))
      problems.push(`container: '${ref.container}' is not a Cosmos DB name`);
    if (problems.length > 0)
      throw new ValidationError(`throughput of ${ref.accountId}: ${problems.join('; ')}`, problems);
    const account = id.names[0]!;
    const what = ref.container
      ? `the throughput of container ${ref.container} in ${ref.database} of Cosmos DB account ${account}`
      : `the shared throughput of database ${ref.database} of Cosmos DB account ${account}`;
    return { client: this.clients.get(id.subscriptionId), rg: id.resourceGroup, account, what };
  }

  private lro(options: CapacityCallOptions) {
    return { abortSignal: options.abortSignal, updateIntervalInMs: this.options.pollIntervalMs ?? 2000 };
  }

  async read(ref: CosmosThroughputRef, options: CapacityCallOptions = {}): Promise<CosmosThroughput> {
    const { client, rg, account, what } = this.parse(ref);
    try {
      const settings = ref.container
        ? await client.sqlResources.getSqlContainerThroughput(rg, account, ref.database, ref.container, {
            abortSignal: options.abortSignal,
          })
        : await client.sqlResources.getSqlDatabaseThroughput(rg, account, ref.database, {
            abortSignal: options.abortSignal,
          });
      return throughputOf(settings, what);
    } catch (error) {
      throw armError(error, `reading ${what}`, ref.accountId);
    }
  }

  /**
   * PUT `{ properties: { resource: { autoscaleSettings: { maxThroughput } } } }`, followed to its end,
   * then the settings read back: the service may accept a raise past the instant limit and apply it
   * over hours (`pending`), so what it reports is what counts.
   */
  async setAutoscaleMax(
    ref: CosmosThroughputRef,
    maxThroughput: number,
    options: CapacityCallOptions = {},
  ): Promise<CosmosThroughput> {
    if (!Number.isInteger(maxThroughput) || maxThroughput < 1000 || maxThroughput % 1000 !== 0)
      throw new ValidationError(`autoscale max ${maxThroughput}: a multiple of 1000 RU/s from 1000`, [
        'maxThroughput: a multiple of 1000, at least 1000',
      ]);
    const { client, rg, account, what } = this.parse(ref);
    const body = { resource: { autoscaleSettings: { maxThroughput } } };
    try {
      if (ref.container)
        await client.sqlResources.updateSqlContainerThroughput(
          rg,
          account,
          ref.database,
          ref.container,
          body,
          this.lro(options),
        );
      else
        await client.sqlResources.updateSqlDatabaseThroughput(
          rg,
          account,
          ref.database,
          body,
          this.lro(options),
        );
    } catch (error) {
      throw armError(error, `setting the autoscale max of ${what} to ${maxThroughput} RU/s`, ref.accountId);
    }
    return this.read(ref, options);
  }

  /** POST `.../throughputSettings/default/migrateToAutoscale`, followed to its end, then the settings read back. */
  async migrateToAutoscale(
    ref: CosmosThroughputRef,
    options: CapacityCallOptions = {},
  ): Promise<CosmosThroughput> {
    const { client, rg, account, what } = this.parse(ref);
    try {
      if (ref.container)
        await client.sqlResources.migrateSqlContainerToAutoscale(
          rg,
          account,
          ref.database,
          ref.container,
          this.lro(options),
        );
      else
        await client.sqlResources.migrateSqlDatabaseToAutoscale(rg, account, ref.database, this.lro(options));
    } catch (error) {
      throw armError(error, `migrating ${what} to autoscale`, ref.accountId);
    }
    return this.read(ref, options);
  }
}
