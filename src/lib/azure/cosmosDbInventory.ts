import { CosmosDBManagementClient } from '@azure/arm-cosmosdb';
import type { TokenCredential } from '@azure/core-auth';
import { NotFoundError, ValidationError } from '../core/errors';
import type {
  CallOptions,
  CosmosAccountView,
  CosmosBackupPolicy,
  CosmosDbInventory,
  RestorableAccountView,
} from '../ports/inventory';
import {
  type ArmAdapterOptions,
  armClientOptions,
  armError,
  ClientsBySubscription,
  parseArmId,
} from './armKeys';

const NAMESPACE = 'Microsoft.DocumentDB';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ACCOUNT_NAME = /^[a-z0-9][a-z0-9-]{1,42}[a-z0-9]$/;
const LOCATION = /^[A-Za-z0-9][A-Za-z0-9 ]{1,40}$/;

/**
 * `CosmosDbInventory` over `@azure/arm-cosmosdb`: the account (`Microsoft.DocumentDB/databaseAccounts/read`),
 * its restorable account (`Microsoft.DocumentDB/locations/restorableDatabaseAccounts/read`, at the
 * subscription's location scope) and the global name check (`Microsoft.DocumentDB/databaseAccountNames/read`,
 * a HEAD at tenant scope that any signed-in caller may make). Reader on the account covers the first.
 * SDK errors become the project's (`fromAzureError`): 404 `NotFoundError`, 401/403 `ForbiddenError`,
 * 429/5xx and network `TransientError`.
 */
export class AzureCosmosDbInventory implements CosmosDbInventory {
  private readonly clients: ClientsBySubscription<CosmosDBManagementClient>;

  constructor(credential: TokenCredential, options: ArmAdapterOptions = {}) {
    this.clients = new ClientsBySubscription(
      (sub) => new CosmosDBManagementClient(credential, sub, armClientOptions(options)),
    );
  }

  async getAccount(resourceId: string, options: CallOptions = {}): Promise<CosmosAccountView> {
    const id = parseArmId(resourceId, NAMESPACE, [['databaseaccounts']]);
    try {
      const account = await this.clients
        .get(id.subscriptionId)
        .databaseAccounts.get(id.resourceGroup, id.names[0]!, { abortSignal: options.abortSignal });
      return {
        resourceId,
        name: account.name ?? id.names[0]!,
        location: account.location ?? '',
        instanceId: account.instanceId,
        backup: backupOf(account.backupPolicy as unknown as Record<string, unknown> | undefined),
        disableLocalAuth: account.disableLocalAuth === true,
        locations: (account.locations ?? []).map((l) => l.locationName ?? '').filter((l) => l !== ''),
      };
    } catch (error) {
      throw armError(error, `reading Cosmos DB account ${id.names[0]}`, resourceId);
    }
  }

  async getRestorableAccount(
    subscriptionId: string,
    location: string,
    instanceId: string,
    options: CallOptions = {},
  ): Promise<RestorableAccountView | undefined> {
    const problems: string[] = [];
    if (!GUID.test(subscriptionId)) problems.push('subscriptionId: a subscription id (GUID)');
    if (!LOCATION.test(location)) problems.push('location: a region name or display name');
    if (!GUID.test(instanceId)) problems.push('instanceId: the account instance id (GUID)');
    if (problems.length > 0)
      throw new ValidationError(`restorable account: ${problems.join('; ')}`, problems);
    const target = `restorable account ${instanceId} in ${location}`;
    try {
      const found = await this.clients
        .get(subscriptionId)
        .restorableDatabaseAccounts.getByLocation(location, instanceId, { abortSignal: options.abortSignal });
      return {
        sourceId: found.id ?? '',
        instanceId: found.name ?? instanceId,
        accountName: found.accountName,
        location: found.location,
        apiType: found.apiType,
        creationTime: found.creationTime,
        oldestRestorableTime: found.oldestRestorableTime,
        deletionTime: found.deletionTime,
        restorableLocations: (found.restorableLocations ?? []).map((l) => ({
          location: l.locationName ?? '',
          ...(l.creationTime ? { creationTime: l.creationTime } : {}),
          ...(l.deletionTime ? { deletionTime: l.deletionTime } : {}),
        })),
      };
    } catch (error) {
      const mapped = armError(error, `reading ${target}`, target);
      if (mapped instanceof NotFoundError) return undefined;
      throw mapped;
    }
  }

  async accountNameExists(subscriptionId: string, name: string, options: CallOptions = {}): Promise<boolean> {
    if (!ACCOUNT_NAME.test(name))
      throw new ValidationError(`'${name}' is not a Cosmos DB account name`, [
        'name: 3-44 lower-case letters, digits and hyphens',
      ]);
    try {
      const result = await this.clients
        .get(subscriptionId)
        .databaseAccounts.checkNameExists(name, { abortSignal: options.abortSignal });
      return result.body === true;
    } catch (error) {
      throw armError(error, `checking whether Cosmos DB account name ${name} is taken`, name);
    }
  }
}

/** The backup policy as the port carries it; a policy this code does not know is `Unknown`, never guessed. */
function backupOf(policy: Record<string, unknown> | undefined): CosmosBackupPolicy {
  const type = policy?.type;
  if (type === 'Periodic') {
    const p = (policy?.periodicModeProperties ?? {}) as Record<string, unknown>;
    return {
      type: 'Periodic',
      intervalMinutes: typeof p.backupIntervalInMinutes === 'number' ? p.backupIntervalInMinutes : undefined,
      retentionHours:
        typeof p.backupRetentionIntervalInHours === 'number' ? p.backupRetentionIntervalInHours : undefined,
      redundancy: typeof p.backupStorageRedundancy === 'string' ? p.backupStorageRedundancy : undefined,
    };
  }
  if (type === 'Continuous') {
    const c = (policy?.continuousModeProperties ?? {}) as Record<string, unknown>;
    return { type: 'Continuous', tier: typeof c.tier === 'string' ? c.tier : undefined };
  }
  return { type: 'Unknown', reported: typeof type === 'string' ? type : undefined };
}
