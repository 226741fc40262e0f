/**
 * The Resource Manager side of the sandbox, built from the scenario's `arm` and `consumers`
 * sections: the ARM front door with its providers, the data planes that test keys, the keys
 * themselves, and the simulated consumers. `createSandbox` registers `services` with the router,
 * seeds Key Vault secrets that name a `valueFrom` with `valueFor`, then calls `start` once the vault
 * is seeded (consumers read their secrets then) and the router exists (webhook callbacks use it).
 */
import type { HttpClient } from '@azure/core-rest-pipeline';
import type { SandboxClock } from '../clock';
import type { SandboxCredential } from '../credential';
import type { KeyVaultStore } from '../keyvault/store';
import type { ServiceEmulator } from '../router';
import type { ResolvedScenario } from '../scenario';
import { AKS_NAMESPACE, AksClusters } from './aks';
import { ConsumerEndpoints, type WebhookCallbackRecord } from './consumerEndpoints';
import { type ConsumerView, ConsumerWorld, type DowntimeReport } from './consumers';
import { ContainerApps } from './containerApps';
import { COSMOS_HOST_SUFFIX, CosmosDbAccounts, CosmosDbDataPlane } from './cosmosDb';
import { CosmosThroughputs, type ThroughputView } from './cosmosThroughput';
import { ArmEmulator } from './emulator';
import { type KeyRegeneration, KeyRings } from './keyRing';
import { effectiveBounds } from './kubeObjects';
import { ArmOperations } from './operations';
import { QuotaProvider } from './quota';
import { resourceIdOf } from './resourceId';
import type { ResolvedValueFrom } from './scenario';
import { SERVICE_BUS_HOST_SUFFIX, ServiceBusDataPlane, ServiceBusNamespaces } from './serviceBus';
import { BLOB_HOST_SUFFIX, BlobDataPlane, StorageAccounts } from './storage';
import { WebApps } from './webApps';

export interface ArmWorld {
  readonly services: ServiceEmulator[];
  readonly rings: KeyRings;
  /** The seeded value of a Key Vault secret that names a `valueFrom` (a key, or a connection string holding it). */
  valueFor(from: ResolvedValueFrom): string;
  /** The estate without any key value. */
  describe(): ArmEstate;
  /** Builds the consumers (they read their secrets now) and starts their world on the clock. */
  start(httpClient: () => HttpClient): void;
  /** Downtime per consumer: every interval with a dead key, and totals. */
  downtime(): DowntimeReport;
  /** The consumers: what they hold (versions, never values), their rolls and reloads. */
  consumers(): ConsumerView[];
  /** Callbacks the sandbox sent for webhook consumers. */
  webhookCallbacks(): WebhookCallbackRecord[];
  /** Cosmos DB SQL throughput: what is provisioned now (the load generator reads it). */
  readonly throughput: CosmosThroughputs;
}

export interface ArmEstate {
  cosmosDbAccounts: Array<{
    id: string;
    name: string;
    location: string;
    keyNames: string[];
    endpoint: string;
    backup: string;
    disableLocalAuth: boolean;
  }>;
  storageAccounts: Array<{
    id: string;
    name: string;
    location: string;
    keyNames: string[];
    blobEndpoint: string;
  }>;
  serviceBusNamespaces: Array<{
    id: string;
    name: string;
    location: string;
    endpoint: string;
    queues: string[];
    topics: string[];
    sku: { tier: string; capacity: number; partitions: number };
    authorizationRules: Array<{
      id: string;
      name: string;
      rights: string[];
      entity: string | undefined;
      keyNames: string[];
    }>;
  }>;
  aksClusters: Array<{
    id: string;
    name: string;
    location: string;
    /**
     * The scenario's deployments and those its consumers name: replicas and the KEDA ScaledObject's
     * bounds (KEDA's defaults where its spec leaves them out), as they are now.
     */
    deployments: Array<{
      namespace: string;
      name: string;
      replicas: number;
      scaledObject: { name: string; minReplicaCount: number; maxReplicaCount: number } | null;
    }>;
    kubernetesVersion: string;
    nodeVersion: string;
  }>;
  containerApps: Array<{
    id: string;
    name: string;
    location: string;
    revision: string;
    scale: { minReplicas: number; maxReplicas: number };
  }>;
  webApps: Array<{ id: string; name: string; location: string; kind: string }>;
  /** Quota usages and limits (`Microsoft.Quota`), per provider and location. */
  quotas: Array<{
    provider: string;
    location: string;
    name: string;
    usage: number;
    limit: number;
    adjustable: boolean;
  }>;
  regenerations: KeyRegeneration[];
  /** Cosmos DB SQL databases' and containers' provisioned throughput. */
  cosmosThroughput: ThroughputView[];
}

export function createArmWorld(input: {
  scenario: ResolvedScenario;
  clock: SandboxClock;
  credential: SandboxCredential;
  vault: KeyVaultStore;
}): ArmWorld {
  const { scenario, clock, credential } = input;
  let world: ConsumerWorld | undefined;
  const consumerWorld = (): ConsumerWorld => {
    if (!world) throw new Error('sandbox: the consumers are not started yet');
    return world;
  };
  let client: (() => HttpClient) | undefined;
  const subscriptionId = scenario.azure.subscriptionId;
  const rings = new KeyRings(() => clock.now(), scenario.arm.operations.keyPropagationSeconds * 1000);
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

  const throughput = new CosmosThroughputs(() => clock.now().getTime(), operations);
  const cosmos = new CosmosDbAccounts(subscriptionId, rings, operations, {
    seed: scenario.seed,
    now: () => clock.now(),
    throughput,
  });
  const started = clock.now().getTime();
  for (const spec of arm.cosmosDbAccounts) {
    const account = cosmos.add({ ...spec, createdAt: new Date(started + spec.createdInDays * 86_400_000) });
    for (const db of spec.databases) {
      throughput.addDatabase(
        account,
        db.name,
        db.containers.map((c) => c.name),
      );
      const shared = db.containers.filter((c) => !c.throughput).reduce((sum, c) => sum + c.storageGB, 0);
      if (db.throughput)
        throughput.addOffer(account, db.name, undefined, { ...db.throughput, storageGB: shared });
      for (const c of db.containers)
        if (c.throughput)
          throughput.addOffer(account, db.name, c.name, { ...c.throughput, storageGB: c.storageGB });
    }
  }
  throughput.finishSeeding();
  clock.addTicker(throughput);
  emulator.register(cosmos);
  const storage = new StorageAccounts(subscriptionId, rings, () => clock.now());
  for (const account of arm.storageAccounts) storage.add(account);
  emulator.register(storage);
  const serviceBus = new ServiceBusNamespaces(subscriptionId, rings, () => clock.now().getTime());
  for (const ns of arm.serviceBusNamespaces) serviceBus.add(ns);
  emulator.register(serviceBus);
  const aks = new AksClusters(subscriptionId, clock, scenario.seed, consumerWorld, arm.kubernetesVersions);
  for (const cluster of arm.aksClusters) {
    const clusterId = resourceIdOf(subscriptionId, cluster.resourceGroup, AKS_NAMESPACE, [
      { type: 'managedClusters', name: cluster.name },
    ]);
    // A deployment known only as a rotation consumer runs one replica, without a ScaledObject.
    const consumed = scenario.consumers.flatMap((c) =>
      c.target.kind === 'aksDeployment' && c.target.clusterId === clusterId
        ? [{ namespace: c.target.namespace, name: c.target.deployment }]
        : [],
    );
    aks.add({ ...cluster, deployments: [...cluster.deployments, ...consumed] });
  }
  emulator.register(aks);
  const containerApps = new ContainerApps(
    subscriptionId,
    scenario.seed,
    () => clock.now(),
    consumerWorld,
    operations,
  );
  for (const app of arm.containerApps) containerApps.add(app);
  emulator.register(containerApps);
  const webApps = new WebApps(subscriptionId, consumerWorld);
  for (const site of arm.webApps) webApps.add(site);
  emulator.register(webApps);
  const quotas = new QuotaProvider(subscriptionId, arm.quotas);
  emulator.register(quotas);
  const hosts = new Set<string>();
  for (const consumer of scenario.consumers) {
    for (const url of [
      consumer.healthUrl,
      consumer.target.kind === 'webhook' ? consumer.target.url : undefined,
    ]) {
      if (url !== undefined) hosts.add(new URL(url).hostname.toLowerCase());
    }
  }
  const endpoints = new ConsumerEndpoints(consumerWorld, hosts, () => {
    if (!client) throw new Error('sandbox: the consumers are not started yet');
    return client();
  });

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
      case 'serviceBusRule': {
        for (const ns of serviceBus.all()) {
          const rule = ns.rules.find((r) => r.keys === ring);
          if (rule) return serviceBus.connectionString(ns, rule, key);
        }
        throw new Error(`sandbox: no Service Bus rule ${from.resourceId}`);
      }
      default:
        throw new Error(`sandbox: no connection string format for ${ring.kind}`);
    }
  };

  return {
    services: [
      emulator,
      new CosmosDbDataPlane(cosmos),
      new BlobDataPlane(storage),
      new ServiceBusDataPlane(serviceBus),
      endpoints,
    ],
    rings,
    valueFor,
    describe: () => ({
      cosmosDbAccounts: cosmos.all().map((a) => ({
        id: a.id,
        name: a.name,
        location: a.location,
        keyNames: a.keys.names.slice(),
        endpoint: `https://${a.name}${COSMOS_HOST_SUFFIX}:443/`,
        backup:
          a.backup.type === 'Periodic'
            ? `Periodic (every ${a.backup.intervalMinutes} min, kept ${a.backup.retentionHours} h, ${a.backup.redundancy})`
            : `Continuous (${a.backup.tier})`,
        disableLocalAuth: a.disableLocalAuth,
      })),
      storageAccounts: storage.all().map((a) => ({
        id: a.id,
        name: a.name,
        location: a.location,
        keyNames: a.keys.names.slice(),
        blobEndpoint: `https://${a.name}${BLOB_HOST_SUFFIX}/`,
      })),
      serviceBusNamespaces: serviceBus.all().map((ns) => ({
        id: ns.id,
        name: ns.name,
        location: ns.location,
        endpoint: `https://${ns.name}${SERVICE_BUS_HOST_SUFFIX}/`,
        queues: ns.queues.slice(),
        topics: ns.topics.slice(),
        sku: { tier: ns.sku.tier, capacity: ns.sku.capacity, partitions: ns.sku.partitions },
        authorizationRules: ns.rules.map((r) => ({
          id: r.id,
          name: r.name,
          rights: r.rights.slice(),
          entity: r.entity ? `${r.entity.type}/${r.entity.name}` : undefined,
          keyNames: r.keys.names.slice(),
        })),
      })),
      aksClusters: aks.all().map((c) => ({
        id: c.id,
        name: c.name,
        location: c.location,
        kubernetesVersion: c.kubernetesVersion,
        nodeVersion: c.nodeVersion,
        deployments: [...c.deployments.values()]
          .map((d) => ({
            namespace: d.namespace,
            name: d.name,
            replicas: d.replicas,
            scaledObject: d.scaledObject
              ? {
                  name: d.scaledObject.name,
                  minReplicaCount: effectiveBounds(d.scaledObject).min,
                  maxReplicaCount: effectiveBounds(d.scaledObject).max,
                }
              : null,
          }))
          .sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1)),
      })),
      containerApps: containerApps.all().map((a) => ({
        id: a.id,
        name: a.name,
        location: a.location,
        revision: a.revision,
        scale: { ...a.scale },
      })),
      webApps: webApps.all().map((w) => ({ id: w.id, name: w.name, location: w.location, kind: w.kind })),
      cosmosThroughput: throughput.all(),
      quotas: quotas.all().map((q) => ({
        provider: q.provider,
        location: q.location,
        name: q.name,
        usage: q.usage,
        limit: q.limit,
        adjustable: q.adjustable,
      })),
      regenerations: rings
        .all()
        .flatMap((ring) => ring.regenerations())
        .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0)),
    }),
    start(httpClient) {
      if (world) throw new Error('sandbox: the consumers are already started');
      client = httpClient;
      world = new ConsumerWorld(scenario.consumers, clock, input.vault, rings, scenario.seed);
      clock.addTicker(world);
      clock.addTicker(aks);
    },
    downtime: () => consumerWorld().describeDowntime(),
    consumers: () => consumerWorld().describe(),
    webhookCallbacks: () => endpoints.callbackRecords(),
    throughput,
  };
}
