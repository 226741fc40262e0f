/**
 * The Resource Manager side of the sandbox, built from the scenario's `arm` and `consumers`
 * sections: the ARM front door with its providers, the data planes that test keys, and the keys
 * themselves. `createSandbox` registers `services` with the router and seeds Key Vault secrets that
 * name a `valueFrom` with `valueFor`.
 */
import type { SandboxClock } from '../clock';
import type { SandboxCredential } from '../credential';
import type { ServiceEmulator } from '../router';
import type { ResolvedScenario } from '../scenario';
import { COSMOS_HOST_SUFFIX, CosmosDbAccounts, CosmosDbDataPlane } from './cosmosDb';
import { ArmEmulator } from './emulator';
import { type KeyRegeneration, KeyRings } from './keyRing';
import { ArmOperations } from './operations';
import type { ResolvedValueFrom } from './scenario';
import { BLOB_HOST_SUFFIX, BlobDataPlane, StorageAccounts } from './storage';

export interface ArmWorld {
  readonly services: ServiceEmulator[];
  readonly rings: KeyRings;
  /** The seeded value of a Key Vault secret that names a `valueFrom` (a key, or a connection string holding it). */
  valueFor(from: ResolvedValueFrom): string;
  /** The estate without any key value. */
  describe(): ArmEstate;
}

export interface ArmEstate {
  cosmosDbAccounts: Array<{
    id: string;
    name: string;
    location: string;
    keyNames: string[];
    endpoint: string;
  }>;
  storageAccounts: Array<{
    id: string;
    name: string;
    location: string;
    keyNames: string[];
    blobEndpoint: string;
  }>;
  regenerations: KeyRegeneration[];
}

export function createArmWorld(input: {
  scenario: ResolvedScenario;
  clock: SandboxClock;
  credential: SandboxCredential;
}): ArmWorld {
  const { scenario, clock, credential } = input;
  const subscriptionId = scenario.azure.subscriptionId;
  const rings = new KeyRings(() => clock.now());
  const operations = new ArmOperations(clock, scenario.seed, scenario.arm.operations.pollsBeforeDone);

  const groups = new Set<string>([scenario.azure.resourceGroup]);
  for (const vault of scenario.keyVault.vaults) groups.add(vault.resourceGroup);
  const { arm } = scenario;
  for (const list of [
    arm.cosmosDbAccounts,
    arm.storageAccounts,
    arm.serviceBusNamespaces,
    arm.aksClusters,
    arm.containerApps,
    arm.webApps,
  ]) {
    for (const resource of list) groups.add(resource.resourceGroup);
  }
  const emulator = new ArmEmulator(credential, scenario.azure.tenantId, subscriptionId, groups, operations);

  const cosmos = new CosmosDbAccounts(subscriptionId, rings, operations);
  for (const account of arm.cosmosDbAccounts) cosmos.add(account);
  emulator.register(cosmos);
  const storage = new StorageAccounts(subscriptionId, rings, () => clock.now());
  for (const account of arm.storageAccounts) storage.add(account);
  emulator.register(storage);

  const valueFor = (from: ResolvedValueFrom): string => {
    const ring = rings.get(from.resourceId);
    if (!ring) throw new Error(`sandbox: no credential resource ${from.resourceId}`);
    const key = ring.value(from.key);
    if (from.format === 'key') return key;
    switch (ring.kind) {
      case 'cosmosDb': {
        const account = cosmos.all().find((a) => a.keys === ring)!;
        return `AccountEndpoint=https://${account.name}${COSMOS_HOST_SUFFIX}:443/;AccountKey=${key};`;
      }
      case 'storage': {
        const account = storage.all().find((a) => a.keys === ring)!;
        return `DefaultEndpointsProtocol=https;AccountName=${account.name};AccountKey=${key};EndpointSuffix=core.windows.net`;
      }
      default:
        throw new Error(`sandbox: no connection string format for ${ring.kind}`);
    }
  };

  return {
    services: [emulator, new CosmosDbDataPlane(cosmos), new BlobDataPlane(storage)],
    rings,
    valueFor,
    describe: () => ({
      cosmosDbAccounts: cosmos.all().map((a) => ({
        id: a.id,
        name: a.name,
        location: a.location,
        keyNames: a.keys.names.slice(),
        endpoint: `https://${a.name}${COSMOS_HOST_SUFFIX}:443/`,
      })),
      storageAccounts: storage.all().map((a) => ({
        id: a.id,
        name: a.name,
        location: a.location,
        keyNames: a.keys.names.slice(),
        blobEndpoint: `https://${a.name}${BLOB_HOST_SUFFIX}/`,
      })),
      regenerations: rings
        .all()
        .flatMap((ring) => ring.regenerations())
        .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0)),
    }),
  };
}
