/**
 * Capacity of the resources remediation playbooks scale, as ports: Cosmos DB provisioned
 * throughput, Service Bus premium messaging units, Container Apps replicas, AKS deployments' replicas
 * (or their KEDA ScaledObject's max). Each read says what the
 * service allows now (its minimum, its instant limit, a change still being applied), so that a
 * decision never rests on a guess; each write returns what the service then reports.
 */

export interface CapacityCallOptions {
  abortSignal?: AbortSignal;
}

/** The throughput of a Cosmos DB SQL database (shared) or container (dedicated). */
export interface CosmosThroughputRef {
  /** ARM id of the database account. */
  accountId: string;
  database: string;
  /** Absent: the database's shared throughput. */
  container?: string;
}

export interface CosmosThroughput {
  mode: 'autoscale' | 'manual';
  /** Autoscale: the max RU/s (the system scales between a tenth of it and it); manual: the RU/s. */
  value: number;
  /** The least value the service accepts now (`minimumThroughput`). */
  minimum: number;
  /**
   * The highest value reachable at once, without splitting physical partitions
   * (`instantMaximumThroughput`: physical partitions × 10,000 RU/s). Above it the service accepts a
   * raise and completes it asynchronously (hours). Undefined when the service does not say.
   */
  instantMaximum: number | undefined;
  /** The most the service accepts without a support request (`softAllowedMaximumThroughput`). */
  softMaximum: number | undefined;
  /** A change is still being applied (`offerReplacePending`): no new one now. */
  pending: boolean;
  /** Autoscale, while pending: the max RU/s being moved to (`autoscaleSettings.targetMaxThroughput`). */
  pendingValue: number | undefined;
}

export interface CosmosThroughputPort {
  read(ref: CosmosThroughputRef, options?: CapacityCallOptions): Promise<CosmosThroughput>;
  /** Sets the autoscale max RU/s (a long-running operation, followed to its end); returns the new reading. */
  setAutoscaleMax(
    ref: CosmosThroughputRef,
    maxThroughput: number,
    options?: CapacityCallOptions,
  ): Promise<CosmosThroughput>;
  /** Moves manual throughput to autoscale (the service picks the starting max); returns the new reading. */
  migrateToAutoscale(ref: CosmosThroughputRef, options?: CapacityCallOptions): Promise<CosmosThroughput>;
}

export interface NamespaceCapacity {
  sku: 'Basic' | 'Standard' | 'Premium';
  /** Premium: messaging units; other tiers have none (0). */
  capacity: number;
  /** Premium messaging partitions (1 when not partitioned). */
  partitions: number;
  /** `Succeeded` once a change is applied; `Updating` while it is. */
  provisioningState: string;
}

export interface ServiceBusCapacityPort {
  read(namespaceId: string, options?: CapacityCallOptions): Promise<NamespaceCapacity>;
  /** Sets the messaging units (the change then completes in the service: `provisioningState`). */
  setCapacity(
    namespaceId: string,
    capacity: number,
    options?: CapacityCallOptions,
  ): Promise<NamespaceCapacity>;
}

export interface ReplicaRange {
  minReplicas: number;
  maxReplicas: number;
  /** `Succeeded` once a change is applied; `InProgress` while it is. */
  provisioningState: string;
  /** The revision serving (a scale change creates a new one). */
  latestRevision: string | undefined;
}

export interface ReplicaScalerPort {
  read(appId: string, options?: CapacityCallOptions): Promise<ReplicaRange>;
  /** Sets the max replicas (a long-running operation, followed to its end); returns the new reading. */
  setMaxReplicas(appId: string, maxReplicas: number, options?: CapacityCallOptions): Promise<ReplicaRange>;
}

/** An AKS deployment's scale: its own replicas, or the KEDA ScaledObject that scales it. */
export interface KubernetesScaleRef {
  /** ARM id of the AKS cluster. */
  clusterId: string;
  namespace: string;
  deployment: string;
  /** The ScaledObject whose `maxReplicaCount` is read and set; absent: the deployment's `replicas`. */
  scaledObject?: string;
}

export interface KubernetesScale {
  /** `replicas`: the deployment's `spec.replicas`; `kedaMax`: the ScaledObject's `spec.maxReplicaCount`. */
  mode: 'replicas' | 'kedaMax';
  value: number;
  /** The least value that makes sense: the ScaledObject's `minReplicaCount` (KEDA refuses a max below it), else 0. */
  minimum: number;
  /** Why a change now would race an earlier one (the deployment controller has not yet observed it). */
  busy?: string;
}

export interface KubernetesScalerPort {
  read(ref: KubernetesScaleRef, options?: CapacityCallOptions): Promise<KubernetesScale>;
  /** Sets the replicas or the ScaledObject's max; returns the reading after the change. */
  setScale(ref: KubernetesScaleRef, value: number, options?: CapacityCallOptions): Promise<KubernetesScale>;
}

/** Everything the playbooks scale. */
export interface CapacityPorts {
  cosmos: CosmosThroughputPort;
  serviceBus: ServiceBusCapacityPort;
  replicas: ReplicaScalerPort;
  kubernetes: KubernetesScalerPort;
}
