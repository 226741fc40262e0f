/**
 * One scaler per playbook action, over the capacity ports: read what the service reports as a
 * `Reading` the guardrails understand, and apply one decided change. Names only: a scaler never
 * holds a credential.
 */
import type { ScalingPlaybook } from '../config/playbooks';
import type {
  CapacityCallOptions,
  CapacityPorts,
  CosmosThroughputRef,
  KubernetesScaleRef,
} from '../ports/capacity';
import { cosmosReading, kubernetesReading, type Reading, replicaReading, serviceBusReading } from './plan';

export interface Scaler {
  /** What is being changed, for people: `container orders in database orders of Cosmos DB account acct`. */
  readonly describe: string;
  read(options?: CapacityCallOptions): Promise<Reading>;
  /** Sets `to` (or migrates to autoscale); returns the reading after the change. */
  apply(change: { to: number; migrate: boolean }, options?: CapacityCallOptions): Promise<Reading>;
}

function lastSegment(id: string): string {
  return id.split('/').filter(Boolean).pop() ?? id;
}

/** The scaler of a playbook's target. */
export function scalerFor(playbook: ScalingPlaybook, ports: CapacityPorts): Scaler {
  const { target } = playbook;
  switch (target.kind) {
    case 'cosmosThroughput': {
      const ref: CosmosThroughputRef = {
        accountId: target.accountId,
        database: target.database,
        ...(target.container ? { container: target.container } : {}),
      };
      return {
        describe: `${target.container ? `container ${target.container} in database ${target.database}` : `database ${target.database} (shared throughput)`} of Cosmos DB account ${lastSegment(target.accountId)}`,
        read: async (options) => cosmosReading(await ports.cosmos.read(ref, options), playbook),
        apply: async (change, options) =>
          cosmosReading(
            change.migrate
              ? await ports.cosmos.migrateToAutoscale(ref, options)
              : await ports.cosmos.setAutoscaleMax(ref, change.to, options),
            playbook,
          ),
      };
    }
    case 'serviceBusNamespace':
      return {
        describe: `Service Bus namespace ${lastSegment(target.namespaceId)}`,
        read: async (options) => serviceBusReading(await ports.serviceBus.read(target.namespaceId, options)),
        apply: async (change, options) =>
          serviceBusReading(await ports.serviceBus.setCapacity(target.namespaceId, change.to, options)),
      };
    case 'containerApp':
      return {
        describe: `Container App ${lastSegment(target.containerAppId)}`,
        read: async (options) => replicaReading(await ports.replicas.read(target.containerAppId, options)),
        apply: async (change, options) =>
          replicaReading(await ports.replicas.setMaxReplicas(target.containerAppId, change.to, options)),
      };
    case 'aksDeployment': {
      const ref: KubernetesScaleRef = {
        clusterId: target.clusterId,
        namespace: target.namespace,
        deployment: target.deployment,
        ...(target.scaledObject ? { scaledObject: target.scaledObject } : {}),
      };
      const where = `deployment ${target.namespace}/${target.deployment} on AKS cluster ${lastSegment(target.clusterId)}`;
      return {
        describe: target.scaledObject ? `KEDA ScaledObject ${target.scaledObject} of ${where}` : where,
        read: async (options) => kubernetesReading(await ports.kubernetes.read(ref, options)),
        apply: async (change, options) =>
          kubernetesReading(await ports.kubernetes.setScale(ref, change.to, options)),
      };
    }
  }
}
