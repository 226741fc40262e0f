/**
 * The adapters the maintenance checks and the gates read through (Cosmos DB, AKS and quota
 * inventories, Monitor metrics and Log Analytics), built from the platform and loaded the first time
 * a check or a gate needs them: importing the app loads none of their SDKs.
 */
import type { ArmAdapterOptions } from '../azure/armKeys';
import type { Platform } from '../azure/platform';
import type { Policy } from '../config/policy';
import type {
  CallOptions,
  CosmosDbInventory,
  KubernetesInventory,
  QuotaReader,
  QuotaScope,
} from '../ports/inventory';
import type { LogsQuery, LogsReader, MetricsQuery, MetricsReader } from '../ports/monitoring';
import { lazy } from './lazy';

export interface InspectionAdapters {
  cosmos: CosmosDbInventory;
  kubernetes: KubernetesInventory;
  quotas: QuotaReader;
  logs: LogsReader;
  metrics: MetricsReader;
}

/** The regions whose metrics endpoints the gates read: those of the targets of gates with a metric condition. */
export function metricRegions(policy: Policy): string[] {
  const regions = new Set<string>();
  for (const gate of policy.gates) {
    if (!gate.conditions.some((c) => c.type === 'metric')) continue;
    for (const target of gate.targets) if (target.region) regions.add(target.region);
  }
  return [...regions].sort();
}

/** The inventories and Monitor readers over the platform's credential and transport, each loaded on first use. */
export function inspectionAdapters(platform: Platform, policy: Policy): InspectionAdapters {
  const arm: ArmAdapterOptions = platform.httpClient ? { httpClient: platform.httpClient } : {};
  const cosmos = lazy(
    async () =>
      new (await import('../azure/cosmosDbInventory.js')).AzureCosmosDbInventory(platform.credential, arm),
  );
  const kubernetes = lazy(
    async () =>
      new (await import('../azure/aksInventory.js')).AzureKubernetesInventory(platform.credential, arm),
  );
  const quotas = lazy(
    async () => new (await import('../azure/quotaReader.js')).AzureQuotaReader(platform.credential, arm),
  );
  const logs = lazy(
    async () =>
      new (await import('../azure/logsReader.js')).LogAnalyticsLogsReader(platform.credential, {
        ...(platform.httpClient ? { httpClient: platform.httpClient } : {}),
      }),
  );
  const metrics = lazy(async () => {
    const module = await import('../azure/metricsReader.js');
    const endpoints = Object.fromEntries(metricRegions(policy).map((r) => [r, module.metricsEndpointFor(r)]));
    return new module.AzureMonitorMetricsReader(platform.credential, {
      endpoints,
      ...(platform.httpClient ? { httpClient: platform.httpClient } : {}),
    });
  });
  return {
    cosmos: {
      getAccount: async (id: string, o?: CallOptions) => (await cosmos()).getAccount(id, o),
      getRestorableAccount: async (sub: string, location: string, instance: string, o?: CallOptions) =>
        (await cosmos()).getRestorableAccount(sub, location, instance, o),
      accountNameExists: async (sub: string, name: string, o?: CallOptions) =>
        (await cosmos()).accountNameExists(sub, name, o),
    },
    kubernetes: {
      getCluster: async (id: string, o?: CallOptions) => (await kubernetes()).getCluster(id, o),
      getUpgradeProfile: async (id: string, o?: CallOptions) => (await kubernetes()).getUpgradeProfile(id, o),
      listVersions: async (sub: string, location: string, o?: CallOptions) =>
        (await kubernetes()).listVersions(sub, location, o),
    },
    quotas: {
      listQuotas: async (scope: QuotaScope, o?: CallOptions) => (await quotas()).listQuotas(scope, o),
    },
    logs: { query: async (q: LogsQuery) => (await logs()).query(q) },
    metrics: { readMetrics: async (q: MetricsQuery) => (await metrics()).readMetrics(q) },
  };
}
