/**
 * Reads of the platform the maintenance checks inspect, as ports: Cosmos DB accounts (backup policy,
 * restore readiness, key authentication), AKS clusters (versions, upgrades, what AKS supports) and
 * quotas (usage against limit). Every read names what it reads; a resource that does not exist is a
 * `NotFoundError`, never an empty answer, so that a check cannot mistake missing data for a healthy one.
 */

export interface CallOptions {
  abortSignal?: AbortSignal;
}

/** A Cosmos DB account's backup policy, as its `backupPolicy` says it. */
export type CosmosBackupPolicy =
  | {
      type: 'Periodic';
      /** Minutes between two backups. */
      intervalMinutes: number | undefined;
      /** Hours each backup is kept. */
      retentionHours: number | undefined;
      /** `Geo`, `Local` or `Zone`. */
      redundancy: string | undefined;
    }
  | {
      type: 'Continuous';
      /** `Continuous7Days` or `Continuous30Days`. */
      tier: string | undefined;
    }
  /** The account answered no backup policy, or one this code does not know. */
  | { type: 'Unknown'; reported: string | undefined };

export interface CosmosAccountView {
  resourceId: string;
  name: string;
  /** As the account answers it (a display name, `West Europe`, or a name, `westeurope`). */
  location: string;
  /** The account's instance id: its restorable account's name (continuous backup). */
  instanceId: string | undefined;
  backup: CosmosBackupPolicy;
  /** `disableLocalAuth`: true when the data plane refuses keys (Entra ID only). */
  disableLocalAuth: boolean;
  /** The regions the account is in (display names). */
  locations: string[];
}

/** A continuous-backup account as Cosmos DB can restore it (`restorableDatabaseAccounts`). */
export interface RestorableAccountView {
  /** The ARM id a restore request names as its `restoreSource`. */
  sourceId: string;
  instanceId: string;
  accountName: string | undefined;
  location: string | undefined;
  apiType: string | undefined;
  creationTime: Date | undefined;
  /** The earliest instant a point-in-time restore may ask for. */
  oldestRestorableTime: Date | undefined;
  deletionTime: Date | undefined;
  restorableLocations: Array<{ location: string; creationTime?: Date; deletionTime?: Date }>;
}

export interface CosmosDbInventory {
  /** The account (`NotFoundError` when it does not exist; `ForbiddenError` without read access). */
  getAccount(resourceId: string, options?: CallOptions): Promise<CosmosAccountView>;
  /**
   * The restorable account of an instance in a location (in the account's subscription), or
   * `undefined` when Cosmos DB has none (a periodic-backup account, or an id it does not know).
   */
  getRestorableAccount(
    subscriptionId: string,
    location: string,
    instanceId: string,
    options?: CallOptions,
  ): Promise<RestorableAccountView | undefined>;
  /** Whether a Cosmos DB account name is taken (account names are global). */
  accountNameExists(subscriptionId: string, name: string, options?: CallOptions): Promise<boolean>;
}

export interface KubernetesClusterView {
  resourceId: string;
  name: string;
  location: string;
  /** The control plane's running version (`currentKubernetesVersion`, else `kubernetesVersion`). */
  version: string | undefined;
  nodePools: Array<{ name: string; version: string | undefined }>;
}

export interface KubernetesUpgrade {
  version: string;
  isPreview: boolean;
}

export interface KubernetesUpgradeProfile {
  controlPlane: { version: string; upgrades: KubernetesUpgrade[] };
  nodePools: Array<{ name: string; version: string; upgrades: KubernetesUpgrade[] }>;
}

/** A minor version AKS offers in a region. */
export interface KubernetesVersionView {
  /** `1.33` */
  minor: string;
  /** Its patch versions, ascending. */
  patches: string[];
  isPreview: boolean;
  isDefault: boolean;
  /** `KubernetesOfficial` (community support) and / or `AKSLongTermSupport`. */
  supportPlans: string[];
}

export interface KubernetesInventory {
  getCluster(resourceId: string, options?: CallOptions): Promise<KubernetesClusterView>;
  getUpgradeProfile(resourceId: string, options?: CallOptions): Promise<KubernetesUpgradeProfile>;
  /** The versions AKS offers in a region (of the subscription given). */
  listVersions(
    subscriptionId: string,
    location: string,
    options?: CallOptions,
  ): Promise<KubernetesVersionView[]>;
}

/** A quota scope: a resource provider's quotas in one region of one subscription. */
export interface QuotaScope {
  subscriptionId: string;
  /** `Microsoft.Compute`, `Microsoft.Network`... */
  provider: string;
  location: string;
}

export interface QuotaView {
  /** The quota's resource name (`standardDSv3Family`, `cores`). */
  name: string;
  displayName: string | undefined;
  /** Current usage; undefined when the service answered none. */
  usage: number | undefined;
  /** Current limit; undefined when the service answered none. */
  limit: number | undefined;
  unit: string | undefined;
  /** `isQuotaApplicable`: an increase can be requested through the Quota API (else: a support request). */
  adjustable: boolean | undefined;
}

export interface QuotaReader {
  /** Usage and limit of every quota of a scope (joined by name; either side may be missing). */
  listQuotas(scope: QuotaScope, options?: CallOptions): Promise<QuotaView[]>;
}
