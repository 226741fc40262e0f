import { ContainerServiceClient } from '@azure/arm-containerservice';
import type { TokenCredential } from '@azure/core-auth';
import { ValidationError } from '../core/errors';
import type {
  CallOptions,
  KubernetesClusterView,
  KubernetesInventory,
  KubernetesUpgradeProfile,
  KubernetesVersionView,
} from '../ports/inventory';
import {
  type ArmAdapterOptions,
  armClientOptions,
  armError,
  ClientsBySubscription,
  parseArmId,
} from './armKeys';

const NAMESPACE = 'Microsoft.ContainerService';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const REGION = /^[a-z][a-z0-9]{1,39}$/;

/** Compares dotted version numbers numerically (`1.9` < `1.10`). */
export function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * `KubernetesInventory` over `@azure/arm-containerservice`: the cluster
 * (`Microsoft.ContainerService/managedClusters/read`), its upgrade profile
 * (`Microsoft.ContainerService/managedClusters/upgradeProfiles/read`), both in Reader on the cluster,
 * and the versions AKS offers in a region (`Microsoft.ContainerService/locations/kubernetesVersions/read`,
 * at subscription scope). SDK errors become the project's (`fromAzureError`).
 */
export class AzureKubernetesInventory implements KubernetesInventory {
  private readonly clients: ClientsBySubscription<ContainerServiceClient>;

  constructor(credential: TokenCredential, options: ArmAdapterOptions = {}) {
    this.clients = new ClientsBySubscription(
      (sub) => new ContainerServiceClient(credential, sub, armClientOptions(options)),
    );
  }

  async getCluster(resourceId: string, options: CallOptions = {}): Promise<KubernetesClusterView> {
    const id = parseArmId(resourceId, NAMESPACE, [['managedclusters']]);
    try {
      const cluster = await this.clients
        .get(id.subscriptionId)
        .managedClusters.get(id.resourceGroup, id.names[0]!, { abortSignal: options.abortSignal });
      return {
        resourceId,
        name: cluster.name ?? id.names[0]!,
        location: cluster.location ?? '',
        version: cluster.currentKubernetesVersion ?? cluster.kubernetesVersion,
        nodePools: (cluster.agentPoolProfiles ?? []).map((p) => ({
          name: p.name,
          version: p.currentOrchestratorVersion ?? p.orchestratorVersion,
        })),
      };
    } catch (error) {
      throw armError(error, `reading AKS cluster ${id.names[0]}`, resourceId);
    }
  }

  async getUpgradeProfile(resourceId: string, options: CallOptions = {}): Promise<KubernetesUpgradeProfile> {
    const id = parseArmId(resourceId, NAMESPACE, [['managedclusters']]);
    try {
      const profile = await this.clients
        .get(id.subscriptionId)
        .managedClusters.getUpgradeProfile(id.resourceGroup, id.names[0]!, {
          abortSignal: options.abortSignal,
        });
      const upgrades = (list: Array<{ kubernetesVersion?: string; isPreview?: boolean }> | undefined) =>
        (list ?? [])
          .filter((u) => typeof u.kubernetesVersion === 'string')
          .map((u) => ({ version: u.kubernetesVersion!, isPreview: u.isPreview === true }))
          .sort((a, b) => compareVersions(a.version, b.version));
      return {
        controlPlane: {
          version: profile.controlPlaneProfile.kubernetesVersion,
          upgrades: upgrades(profile.controlPlaneProfile.upgrades),
        },
        nodePools: (profile.agentPoolProfiles ?? []).map((p) => ({
          name: p.name ?? '',
          version: p.kubernetesVersion,
          upgrades: upgrades(p.upgrades),
        })),
      };
    } catch (error) {
      throw armError(error, `reading the upgrade profile of AKS cluster ${id.names[0]}`, resourceId);
    }
  }

  async listVersions(
    subscriptionId: string,
    location: string,
    options: CallOptions = {},
  ): Promise<KubernetesVersionView[]> {
    const problems: string[] = [];
    if (!GUID.test(subscriptionId)) problems.push('subscriptionId: a subscription id (GUID)');
    if (!REGION.test(location)) problems.push('location: a region name such as westeurope');
    if (problems.length > 0)
      throw new ValidationError(`kubernetes versions: ${problems.join('; ')}`, problems);
    try {
      const result = await this.clients
        .get(subscriptionId)
        .managedClusters.listKubernetesVersions(location, { abortSignal: options.abortSignal });
      return (result.values ?? [])
        .filter((v) => typeof v.version === 'string')
        .map((v) => ({
          minor: v.version!,
          patches: Object.keys(v.patchVersions ?? {}).sort(compareVersions),
          isPreview: v.isPreview === true,
          isDefault: v.isDefault === true,
          supportPlans: (v.capabilities?.supportPlan ?? []).map(String),
        }))
        .sort((a, b) => compareVersions(a.minor, b.minor));
    } catch (error) {
      throw armError(error, `listing the Kubernetes versions AKS offers in ${location}`, location);
    }
  }
}
