/** Hand-written fakes of the inventory and report ports, for unit tests of the checks. */
import { NotFoundError, TransientError } from '../../../src/lib/core/errors';
import type {
  CosmosAccountView,
  CosmosDbInventory,
  KubernetesClusterView,
  KubernetesInventory,
  KubernetesUpgradeProfile,
  KubernetesVersionView,
  QuotaReader,
  QuotaScope,
  QuotaView,
  RestorableAccountView,
} from '../../../src/lib/ports/inventory';
import type { CheckReport, ReportStore, ReportSummary } from '../../../src/lib/ports/reports';

export class FakeCosmos implements CosmosDbInventory {
  readonly accounts = new Map<string, CosmosAccountView | Error>();
  readonly restorable = new Map<string, RestorableAccountView>();
  readonly takenNames = new Set<string>();
  readonly calls: string[] = [];
  async getAccount(resourceId: string): Promise<CosmosAccountView> {
    this.calls.push(`get ${resourceId}`);
    const found = this.accounts.get(resourceId);
    if (found instanceof Error) throw found;
    if (!found) throw new NotFoundError(`reading Cosmos DB account: not found`);
    return found;
  }
  async getRestorableAccount(_sub: string, location: string, instanceId: string) {
    this.calls.push(`restorable ${location} ${instanceId}`);
    return this.restorable.get(instanceId);
  }
  async accountNameExists(_sub: string, name: string): Promise<boolean> {
    this.calls.push(`name ${name}`);
    return this.takenNames.has(name);
  }
}

export class FakeKubernetes implements KubernetesInventory {
  readonly clusters = new Map<
    string,
    { cluster: KubernetesClusterView; profile: KubernetesUpgradeProfile } | Error
  >();
  versions: KubernetesVersionView[] = [];
  versionCalls = 0;
  async getCluster(resourceId: string): Promise<KubernetesClusterView> {
    const found = this.clusters.get(resourceId);
    if (found instanceof Error) throw found;
    if (!found) throw new NotFoundError('not found');
    return found.cluster;
  }
  async getUpgradeProfile(resourceId: string): Promise<KubernetesUpgradeProfile> {
    const found = this.clusters.get(resourceId);
    if (found instanceof Error) throw found;
    if (!found) throw new NotFoundError('not found');
    return found.profile;
  }
  async listVersions(): Promise<KubernetesVersionView[]> {
    this.versionCalls++;
    return this.versions;
  }
}

export class FakeQuotas implements QuotaReader {
  readonly scopes = new Map<string, QuotaView[] | Error>();
  async listQuotas(scope: QuotaScope): Promise<QuotaView[]> {
    const found = this.scopes.get(`${scope.provider}/${scope.location}`);
    if (found instanceof Error) throw found;
    return found ?? [];
  }
}

export class MemoryReports implements ReportStore {
  readonly saved: CheckReport[] = [];
  failNext: Error | undefined;
  async save(report: CheckReport): Promise<void> {
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = undefined;
      throw e;
    }
    this.saved.push(structuredClone(report));
  }
  async latest(check: string) {
    return this.saved.filter((r) => r.check === check).at(-1);
  }
  async get(check: string, id: string) {
    return this.saved.find((r) => r.check === check && r.id === id);
  }
  async list(check: string, o: { limit: number }): Promise<ReportSummary[]> {
    return this.saved
      .filter((r) => r.check === check)
      .reverse()
      .slice(0, o.limit)
      .map(({ findings: _f, omittedFindings: _o, ...summary }) => summary);
  }
}

export const transient = () => new TransientError('reading: failed with 503');
