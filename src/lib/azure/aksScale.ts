import { ContainerServiceClient } from '@azure/arm-containerservice';
import type { TokenCredential } from '@azure/core-auth';
import { KUBERNETES_MAX_REPLICAS } from '../config/playbooks';
import { ConfigurationError, DependencyError, ValidationError } from '../core/errors';
import type {
  CapacityCallOptions,
  KubernetesScale,
  KubernetesScaleRef,
  KubernetesScalerPort,
} from '../ports/capacity';
import { AKS_AAD_SERVER_SCOPE, K8S_NAME, K8S_NAMESPACE } from './aksRoller';
import {
  type ArmAdapterOptions,
  armClientOptions,
  armError,
  ClientsBySubscription,
  parseArmId,
} from './armKeys';

const NAMESPACE = 'Microsoft.ContainerService';
/** KEDA's default `maxReplicaCount` when a ScaledObject sets none. */
const KEDA_DEFAULT_MAX = 100;

/**
 * `KubernetesScalerPort` over the AKS run-command API (`@azure/arm-containerservice`, as the
 * rotation's `AksDeploymentRoller`): AKS runs `kubectl` inside the cluster, so private clusters work
 * without network access to their API server.
 *
 * - Replicas: `kubectl get deployment/<d> -n <ns> -o json`; a change is `kubectl scale
 *   deployment/<d> -n <ns> --replicas=<n> && kubectl get ... -o json` (one command: the reading
 *   after the change comes back with it).
 * - KEDA: the ScaledObject owns the deployment's replicas (through its HPA; a `kubectl scale` would
 *   be undone), so its `spec.maxReplicaCount` is what changes: `kubectl patch scaledobject/<s> -n
 *   <ns> --type=merge -p '{"spec":{"maxReplicaCount":<n>}}' && kubectl get ... -o json`. A
 *   ScaledObject that scales another deployment than the playbook's is refused before anything changes.
 *
 * Names are DNS-1123 and values integers, checked before a command is built: nothing a shell could
 * read as more than a word. Permissions: `Microsoft.ContainerService/managedClusters/runCommand/action`
 * and `.../commandResults/read` on the cluster (and, on an Entra-enabled cluster with `aadClusterToken`,
 * Kubernetes RBAC: `get`, `patch` on the deployment's `scale` or on the ScaledObject). ARM calls: the
 * command's POST and its result's polls (one GET when it has ended by the first poll).
 */
export class AksScaleAdapter implements KubernetesScalerPort {
  private readonly clients: ClientsBySubscription<ContainerServiceClient>;

  constructor(
    private readonly credential: TokenCredential,
    private readonly options: ArmAdapterOptions & { aadClusterToken?: boolean } = {},
  ) {
    this.clients = new ClientsBySubscription(
      (sub) => new ContainerServiceClient(credential, sub, armClientOptions(options)),
    );
  }

  private target(ref: KubernetesScaleRef) {
    const problems: string[] = [];
    if (!K8S_NAMESPACE.test(ref.namespace))
      problems.push(`namespace '${ref.namespace}' is not a Kubernetes namespace name`);
    if (!K8S_NAME.test(ref.deployment))
      problems.push(`deployment '${ref.deployment}' is not a Kubernetes deployment name`);
    if (ref.scaledObject !== undefined && !K8S_NAME.test(ref.scaledObject))
      problems.push(`scaledObject '${ref.scaledObject}' is not a Kubernetes object name`);
    if (problems.length > 0)
      throw new ValidationError(`AKS scale target: ${problems.join('; ')}`, problems, {
        metadata: { target: ref.clusterId },
      });
    const id = parseArmId(ref.clusterId, NAMESPACE, [['managedclusters']]);
    const object = ref.scaledObject
      ? `scaledobject/${ref.scaledObject}`
      : (`deployment/${ref.deployment}` as string);
    return {
      id,
      cluster: id.names[0]!,
      object,
      get: `kubectl get ${object} -n ${ref.namespace} -o json`,
      what: ref.scaledObject
        ? `ScaledObject ${ref.namespace}/${ref.scaledObject} (deployment ${ref.deployment}) on AKS cluster ${id.names[0]}`
        : `deployment ${ref.namespace}/${ref.deployment} on AKS cluster ${id.names[0]}`,
    };
  }

  async read(ref: KubernetesScaleRef, options: CapacityCallOptions = {}): Promise<KubernetesScale> {
    const t = this.target(ref);
    const logs = await this.run(ref, t, t.get, `reading the scale of ${t.what}`, options);
    return this.parse(ref, t, logs);
  }

  async setScale(
    ref: KubernetesScaleRef,
    value: number,
    options: CapacityCallOptions = {},
  ): Promise<KubernetesScale> {
    const least = ref.scaledObject ? 1 : 0;
    if (!Number.isInteger(value) || value < least || value > KUBERNETES_MAX_REPLICAS)
      throw new ValidationError(
        `${ref.scaledObject ? 'max replica count' : 'replicas'} ${value}: a whole number from ${least} to ${KUBERNETES_MAX_REPLICAS}`,
        [`value: ${least} to ${KUBERNETES_MAX_REPLICAS}`],
      );
    // A ScaledObject scaling another deployment is refused by `read`, which a run does before it acts.
    const t = this.target(ref);
    const change = ref.scaledObject
      ? `kubectl patch ${t.object} -n ${ref.namespace} --type=merge -p '{"spec":{"maxReplicaCount":${value}}}'`
      : `kubectl scale ${t.object} -n ${ref.namespace} --replicas=${value}`;
    const doing = `setting the ${ref.scaledObject ? 'max replica count' : 'replicas'} of ${t.what} to ${value}`;
    const logs = await this.run(ref, t, `${change} && ${t.get}`, doing, options);
    return this.parse(ref, t, logs);
  }

  /** Runs a command and waits for its result; its output, or an error with kubectl's last line. */
  private async run(
    ref: KubernetesScaleRef,
    t: ReturnType<AksScaleAdapter['target']>,
    command: string,
    doing: string,
    options: CapacityCallOptions,
  ): Promise<string> {
    let result: Awaited<ReturnType<ContainerServiceClient['managedClusters']['beginRunCommandAndWait']>>;
    try {
      let clusterToken = '';
      if (this.options.aadClusterToken) {
        const token = await this.credential.getToken(AKS_AAD_SERVER_SCOPE, {
          abortSignal: options.abortSignal,
        });
        clusterToken = token?.token ?? '';
      }
      result = await this.clients
        .get(t.id.subscriptionId)
        .managedClusters.beginRunCommandAndWait(
          t.id.resourceGroup,
          t.cluster,
          { command, context: '', clusterToken },
          { abortSignal: options.abortSignal, updateIntervalInMs: this.options.pollIntervalMs ?? 2000 },
        );
    } catch (error) {
      throw armError(error, doing, ref.clusterId);
    }
    const logs = result.logs ?? '';
    if (result.provisioningState?.toLowerCase() === 'failed')
      throw new DependencyError(
        `${doing}: AKS could not run the command: ${result.reason ?? 'no reason given'}`,
        {
          retryable: true,
          metadata: { target: ref.clusterId },
        },
      );
    if (result.exitCode !== 0) {
      const last =
        logs
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '')
          .at(-1) ?? '';
      // kubectl's refusals (not found, forbidden, a webhook's denial) do not pass on a retry.
      throw new DependencyError(`${doing}: kubectl exited ${result.exitCode}: ${last}`, {
        retryable: false,
        metadata: { target: ref.clusterId },
      });
    }
    return logs;
  }

  /** The object `kubectl get -o json` printed (after a change's own line), as a reading. */
  private parse(
    ref: KubernetesScaleRef,
    t: ReturnType<AksScaleAdapter['target']>,
    logs: string,
  ): KubernetesScale {
    const start = logs.search(/^\{/m);
    let object: {
      kind?: string;
      metadata?: { generation?: number };
      spec?: {
        replicas?: number;
        minReplicaCount?: number;
        maxReplicaCount?: number;
        scaleTargetRef?: { name?: string; kind?: string };
      };
      status?: { observedGeneration?: number };
    };
    try {
      object = JSON.parse(start < 0 ? '' : logs.slice(start));
    } catch {
      throw new DependencyError(`reading ${t.what}: kubectl printed no object`, {
        retryable: true,
        metadata: { target: ref.clusterId },
      });
    }
    if (ref.scaledObject) {
      const scaleTarget = object.spec?.scaleTargetRef;
      if (
        scaleTarget?.name !== ref.deployment ||
        (scaleTarget.kind !== undefined && scaleTarget.kind !== 'Deployment')
      )
        throw new ConfigurationError(
          `${t.what}: the ScaledObject scales ${scaleTarget?.kind ?? 'Deployment'} ${scaleTarget?.name ?? '(none)'}, not deployment ${ref.deployment}`,
          [`scaledObject: scales ${scaleTarget?.name ?? 'nothing'}`],
          { metadata: { target: ref.clusterId } },
        );
      return {
        mode: 'kedaMax',
        value: object.spec?.maxReplicaCount ?? KEDA_DEFAULT_MAX,
        minimum: object.spec?.minReplicaCount ?? 0,
      };
    }
    const generation = object.metadata?.generation;
    const observed = object.status?.observedGeneration;
    return {
      mode: 'replicas',
      // Kubernetes' default when a deployment sets none.
      value: object.spec?.replicas ?? 1,
      minimum: 0,
      ...(generation !== undefined && (observed ?? 0) < generation
        ? { busy: `the deployment controller has not yet observed generation ${generation}` }
        : {}),
    };
  }
}
