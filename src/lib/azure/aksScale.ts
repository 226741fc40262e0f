import { ContainerServiceClient } from '@azure/arm-containerservice';
import type { TokenCredential } from '@azure/core-auth';
import { KUBERNETES_MAX_REPLICAS } from '../config/playbooks';
import { ConfigurationError, DependencyError, ValidationError } from '../core/errors';
import { redactText } from '../core/redact';
import type {
  CapacityCallOptions,
  KubernetesScale,
  KubernetesScaleRef,
  KubernetesScalerPort,
} from '../ports/capacity';
import {
  ClusterTokens,
  isPermanentKubectlFailure,
  K8S_NAME,
  K8S_NAMESPACE,
  kubectlObjects,
  lastKubectlLine,
} from './aksRunCommand';
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
 * - Replicas: `kubectl get deployment/<d> -n <ns> -o json && kubectl get hpa -n <ns> -o json` (a
 *   deployment an autoscaler scales is refused: it would undo the change); a change is `kubectl scale
 *   deployment/<d> -n <ns> --replicas=<n> && kubectl get ... -o json` (one command: the reading after
 *   the change comes back with it).
 * - KEDA: the ScaledObject owns the deployment's replicas (through its HPA; a `kubectl scale` would
 *   be undone), so its `spec.maxReplicaCount` is what changes: `kubectl patch scaledobject/<s> -n
 *   <ns> --type=merge -p '{"spec":{"maxReplicaCount":<n>}}' && kubectl get ... -o json`. A read
 *   refuses a ScaledObject that scales another deployment than the playbook's (a run reads before it
 *   changes anything).
 *
 * Names are DNS-1123 and values integers, checked before a command is built: nothing a shell could
 * read as more than a word. An Entra-enabled cluster gets the app's token for the AKS AAD server as
 * `clusterToken` once it asks for it (`ClusterTokens`). Permissions:
 * `Microsoft.ContainerService/managedClusters/runCommand/action` and `.../commandResults/read` on the
 * cluster; on an Entra-enabled cluster, Kubernetes RBAC for the app's identity: `get` on
 * `deployments` and `list` on `horizontalpodautoscalers` with `patch` on `deployments/scale`, or
 * `get` and `patch` on `scaledobjects.keda.sh`. ARM calls: the command's POST and its result's polls
 * (one GET when it has ended by the first poll); the first command to an Entra-enabled cluster is
 * sent twice (without, then with the token).
 */
export class AksScaleAdapter implements KubernetesScalerPort {
  private readonly clients: ClientsBySubscription<ContainerServiceClient>;

  private readonly tokens: ClusterTokens;

  constructor(
    credential: TokenCredential,
    private readonly options: ArmAdapterOptions & {
      /** Send the Entra cluster token with every command (default: only to a cluster that asks for it). */
      aadClusterToken?: boolean;
    } = {},
  ) {
    this.clients = new ClientsBySubscription(
      (sub) => new ContainerServiceClient(credential, sub, armClientOptions(options)),
    );
    this.tokens = new ClusterTokens(credential, options.aadClusterToken === true);
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
      ? // Fully qualified: another API group's short name `scaledobject` cannot be meant.
        `scaledobjects.keda.sh/${ref.scaledObject}`
      : `deployments.apps/${ref.deployment}`;
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

  /**
   * The replicas or the ScaledObject's bounds. Replicas: the namespace's HorizontalPodAutoscalers
   * are read with the deployment, and one scaling it (KEDA's `keda-hpa-*` among them) is refused:
   * its next sync would undo a `kubectl scale`.
   */
  async read(ref: KubernetesScaleRef, options: CapacityCallOptions = {}): Promise<KubernetesScale> {
    const t = this.target(ref);
    const command = ref.scaledObject ? t.get : `${t.get} && kubectl get hpa -n ${ref.namespace} -o json`;
    const logs = await this.run(ref, t, command, `reading the scale of ${t.what}`, options, false);
    const reading = this.parse(ref, t, logs);
    if (!ref.scaledObject) {
      const list = kubectlObjects(logs)[1] as
        | {
            items?: Array<{
              metadata?: { name?: string };
              spec?: { scaleTargetRef?: { kind?: string; name?: string } };
            }>;
          }
        | undefined;
      if (!list || !Array.isArray(list.items))
        throw new DependencyError(`reading the autoscalers of ${t.what}: kubectl printed no list`, {
          retryable: true,
          metadata: { target: ref.clusterId },
        });
      const owner = list.items.find(
        (h) => h.spec?.scaleTargetRef?.kind === 'Deployment' && h.spec.scaleTargetRef.name === ref.deployment,
      );
      if (owner)
        throw new ConfigurationError(
          `${t.what} is scaled by the HorizontalPodAutoscaler ${owner.metadata?.name ?? '(unnamed)'}, which would undo a change of its replicas: name its KEDA ScaledObject (scaledObject) in the playbook's target, or scale the autoscaler`,
          [`target: deployment ${ref.deployment} has an autoscaler`],
          { metadata: { target: ref.clusterId } },
        );
    }
    return reading;
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
    const logs = await this.run(ref, t, `${change} && ${t.get}`, doing, options, true);
    return this.parse(ref, t, logs);
  }

  /**
   * Runs a command and waits for its result; its output, or an error with kubectl's last line.
   * kubectl's refusals (not found, forbidden, a webhook's denial) are not retried; anything else is
   * (the API server unreachable or throttled). A change whose own line (`scaled`, `patched`) was
   * printed before a failure is retried whatever came after: the run re-reads before it acts, finds
   * the value set, and records the change instead of losing it.
   */
  private async run(
    ref: KubernetesScaleRef,
    t: ReturnType<AksScaleAdapter['target']>,
    command: string,
    doing: string,
    options: CapacityCallOptions,
    changes: boolean,
  ): Promise<string> {
    let result: Awaited<ReturnType<ContainerServiceClient['managedClusters']['beginRunCommandAndWait']>>;
    try {
      result = await this.tokens.send(ref.clusterId, options.abortSignal, (clusterToken) =>
        this.clients
          .get(t.id.subscriptionId)
          .managedClusters.beginRunCommandAndWait(
            t.id.resourceGroup,
            t.cluster,
            { command, context: '', clusterToken },
            { abortSignal: options.abortSignal, updateIntervalInMs: this.options.pollIntervalMs ?? 2000 },
          ),
      );
    } catch (error) {
      throw armError(error, doing, ref.clusterId);
    }
    const logs = result.logs ?? '';
    const state = result.provisioningState?.toLowerCase();
    if (state !== 'succeeded' || typeof result.exitCode !== 'number')
      // AKS could not run it (or did not finish it): nothing says kubectl refused anything.
      throw new DependencyError(
        `${doing}: AKS could not run the command (${result.provisioningState ?? 'no state'}): ${redactText(result.reason ?? 'no reason given')}`,
        { retryable: true, metadata: { target: ref.clusterId } },
      );
    if (result.exitCode !== 0) {
      const changed = changes && /^\S+\/\S+ (scaled|patched)/m.test(logs);
      throw new DependencyError(`${doing}: kubectl exited ${result.exitCode}: ${lastKubectlLine(logs)}`, {
        retryable: changed || !isPermanentKubectlFailure(logs),
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
    const object = kubectlObjects(logs)[0] as
      | {
          metadata?: { generation?: number };
          spec?: {
            replicas?: number;
            minReplicaCount?: number;
            maxReplicaCount?: number;
            scaleTargetRef?: { name?: string; kind?: string };
          };
          status?: { observedGeneration?: number };
        }
      | undefined;
    if (!object)
      throw new DependencyError(`reading ${t.what}: kubectl printed no object`, {
        retryable: true,
        metadata: { target: ref.clusterId },
      });
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
