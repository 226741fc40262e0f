/**
 * The adapters remediation needs (capacity of the scaled resources, the metrics reader), built from
 * the platform and loaded the first time a run needs them: importing the app loads none of their
 * SDKs. Metrics endpoints come from the policy's playbooks (their `signal.region`), never from input.
 */
import type { ArmAdapterOptions } from '../azure/armKeys';
import type { Platform } from '../azure/platform';
import type { Playbook } from '../config/playbooks';
import type {
  CapacityCallOptions,
  CapacityPorts,
  CosmosThroughput,
  CosmosThroughputPort,
  CosmosThroughputRef,
  KubernetesScale,
  KubernetesScaleRef,
  KubernetesScalerPort,
  NamespaceCapacity,
  ReplicaRange,
  ReplicaScalerPort,
  ServiceBusCapacityPort,
} from '../ports/capacity';
import type { MetricsQuery, MetricsReader, MetricsReadResult } from '../ports/monitoring';
import { lazy } from './lazy';

/** The capacity ports and the metrics reader over the platform's credential and transport. */
export function remediationAdapters(
  platform: Platform,
  playbooks: readonly Playbook[],
): { capacity: CapacityPorts; metrics: MetricsReader } {
  const arm: ArmAdapterOptions = {
    ...(platform.httpClient ? { httpClient: platform.httpClient } : {}),
    // The SDK's poller ignores `Retry-After: 0`; the sandbox answers at once.
    ...(platform.kind === 'sandbox' ? { pollIntervalMs: 0 } : {}),
  };
  const cosmos = lazy<CosmosThroughputPort>(
    async () =>
      new (await import('../azure/cosmosThroughput.js')).CosmosThroughputAdapter(platform.credential, arm),
  );
  const serviceBus = lazy<ServiceBusCapacityPort>(
    async () =>
      new (await import('../azure/serviceBusCapacity.js')).ServiceBusCapacityAdapter(
        platform.credential,
        arm,
      ),
  );
  const replicas = lazy<ReplicaScalerPort>(
    async () =>
      new (await import('../azure/containerAppScale.js')).ContainerAppScaleAdapter(platform.credential, arm),
  );
  const kubernetes = lazy<KubernetesScalerPort>(
    async () => new (await import('../azure/aksScale.js')).AksScaleAdapter(platform.credential, arm),
  );
  const regions = [
    ...new Set(playbooks.flatMap((p) => (p.action === 'notify-only' ? [] : [p.signal.region]))),
  ].sort();
  const metrics = lazy<MetricsReader>(async () => {
    const mod = await import('../azure/metricsReader.js');
    return new mod.AzureMonitorMetricsReader(platform.credential, {
      endpoints: Object.fromEntries(regions.map((r) => [r, mod.metricsEndpointFor(r)])),
      ...(platform.httpClient ? { httpClient: platform.httpClient } : {}),
    });
  });
  return {
    capacity: {
      cosmos: {
        read: async (ref: CosmosThroughputRef, o?: CapacityCallOptions): Promise<CosmosThroughput> =>
          (await cosmos()).read(ref, o),
        setAutoscaleMax: async (ref, max, o) => (await cosmos()).setAutoscaleMax(ref, max, o),
        migrateToAutoscale: async (ref, o) => (await cosmos()).migrateToAutoscale(ref, o),
      },
      serviceBus: {
        read: async (id: string, o?: CapacityCallOptions): Promise<NamespaceCapacity> =>
          (await serviceBus()).read(id, o),
        setCapacity: async (id, capacity, o) => (await serviceBus()).setCapacity(id, capacity, o),
      },
      replicas: {
        read: async (id: string, o?: CapacityCallOptions): Promise<ReplicaRange> =>
          (await replicas()).read(id, o),
        setMaxReplicas: async (id, max, o) => (await replicas()).setMaxReplicas(id, max, o),
      },
      kubernetes: {
        read: async (ref: KubernetesScaleRef, o?: CapacityCallOptions): Promise<KubernetesScale> =>
          (await kubernetes()).read(ref, o),
        setScale: async (ref, value, o) => (await kubernetes()).setScale(ref, value, o),
      },
    },
    metrics: {
      readMetrics: async (query: MetricsQuery): Promise<MetricsReadResult> =>
        (await metrics()).readMetrics(query),
    },
  };
}
