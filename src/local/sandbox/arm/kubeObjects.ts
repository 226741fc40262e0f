/**
 * The Kubernetes objects the sandbox's AKS clusters hold, as `kubectl` shows and changes them through
 * the run-command API (`aks.ts`): Deployments (`apps/v1`) with their replicas, and the KEDA
 * ScaledObjects (`keda.sh/v1alpha1`) that scale them.
 *
 * What it follows:
 * - `kubectl get -o json` prints the object as the API server returns it, through Go's JSON encoder
 *   (map keys sorted) with a 4-space indent, and a final newline the command's log trims;
 * - a Deployment's `metadata.generation` moves on every change of its spec (replicas, the pod template
 *   a `rollout restart` annotates); the deployment controller then reports `status.observedGeneration`
 *   and the replica counts. The sandbox's controller catches up at once: right after a change, the
 *   status already shows every replica updated, ready and available (a real rollout takes time; the
 *   consumers' rolls, `consumers.ts`, model that part for `rollout status`). Zero counts are left out
 *   of the status, as the API's `omitempty` does;
 * - KEDA's defaults (`minReplicaCount` 0, `maxReplicaCount` 100: `apis/keda/v1alpha1` of kedacore/keda)
 *   apply when the spec leaves them out, and its validating webhook (`vscaledobject.kb.io`,
 *   `CheckReplicaCountBoundsAreValid`) refuses bounds where the HPA's minimum (the given
 *   `minReplicaCount` when above 0, else 1; 0 when not given) exceeds the maximum, with
 *   `MinReplicaCount=<min> must be less than MaxReplicaCount=<max>`. A negative `maxReplicaCount` is
 *   refused by that check; KEDA does not refuse a negative `minReplicaCount` (its HPA uses 1), nor does
 *   the sandbox;
 * - the sandbox does not run KEDA's HPA: the deployment's `spec.replicas` stays what was set, and the
 *   load generator (`alerting.ts`) reads a scaled deployment's replicas as its `maxReplicaCount` (scaled
 *   out under a backlog). A ScaledObject's `Ready` and `Active` conditions are always True, and its one
 *   `azure-servicebus` trigger is illustrative (queue named after the deployment).
 */
import { checkKeys, isObject, optNumber, optString, type Problems } from '../scenarioFields';

/** A DNS-1123 subdomain (Kubernetes object names). */
export const K8S_NAME = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;
/** Replicas a scenario may give a deployment or a ScaledObject. */
export const MAX_SCENARIO_REPLICAS = 1000;
/** Kubernetes' replica counts are int32. */
export const MAX_INT32 = 2_147_483_647;
/** KEDA's defaults when a ScaledObject leaves its bounds out. */
export const KEDA_DEFAULT_MIN = 0;
export const KEDA_DEFAULT_MAX = 100;

export interface ResolvedScaledObject {
  name: string;
  /** undefined: not in the spec (KEDA's default 0 applies). */
  minReplicaCount: number | undefined;
  /** undefined: not in the spec (KEDA's default 100 applies). */
  maxReplicaCount: number | undefined;
}

export interface ResolvedKubeDeployment {
  namespace: string;
  name: string;
  replicas: number;
  scaledObject: ResolvedScaledObject | undefined;
}

export interface KubeScaledObject extends ResolvedScaledObject {
  uid: string;
  generation: number;
  resourceVersion: number;
  createdAt: string;
}

export interface KubeDeployment {
  namespace: string;
  name: string;
  replicas: number;
  uid: string;
  generation: number;
  resourceVersion: number;
  /** The ReplicaSet revision (`deployment.kubernetes.io/revision`): a new pod template is a new one. */
  revision: number;
  /** The pod template's `kubectl.kubernetes.io/restartedAt`, set by `rollout restart`. */
  restartedAt: string | undefined;
  createdAt: string;
  scaledObject: KubeScaledObject | undefined;
}

/** The bounds KEDA applies: the spec's, or its defaults. */
export function effectiveBounds(so: ResolvedScaledObject): { min: number; max: number } {
  return {
    min: so.minReplicaCount ?? KEDA_DEFAULT_MIN,
    max: so.maxReplicaCount ?? KEDA_DEFAULT_MAX,
  };
}

/**
 * KEDA's `CheckReplicaCountBoundsAreValid`: the message its webhook denies with, or undefined when the
 * bounds are valid. The minimum it compares is the HPA's (`GetHPAMinReplicas`: the given value when
 * above 0, else 1) when the spec gives one, else 0.
 */
export function kedaBoundsProblem(so: ResolvedScaledObject): string | undefined {
  const min = so.minReplicaCount === undefined ? 0 : so.minReplicaCount > 0 ? so.minReplicaCount : 1;
  const max = so.maxReplicaCount ?? KEDA_DEFAULT_MAX;
  return min > max ? `MinReplicaCount=${min} must be less than MaxReplicaCount=${max}` : undefined;
}

/** Validates a scenario deployment's `scaledObject` (raw), pushing problems with their path. */
export function resolveScaledObject(
  raw: unknown,
  deployment: string | undefined,
  path: string,
  problems: Problems,
): ResolvedScaledObject | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) {
    problems.push(`${path}: must be a mapping { name?, minReplicaCount?, maxReplicaCount? }`);
    return undefined;
  }
  checkKeys(raw, ['name', 'minReplicaCount', 'maxReplicaCount'], path, problems);
  let name = deployment;
  const given = optString(raw, 'name', path, problems);
  if (given !== undefined && !K8S_NAME.test(given)) {
    problems.push(
      `${path}.name: '${given}' is not a valid name (a DNS subdomain: lower-case letters, digits, hyphens and periods)`,
    );
    name = undefined;
  } else if (given !== undefined) name = given;
  const bound = (key: string) =>
    optNumber(
      raw,
      key,
      path,
      problems,
      (n) => Number.isInteger(n) && n >= 0 && n <= MAX_SCENARIO_REPLICAS,
      `an integer from 0 to ${MAX_SCENARIO_REPLICAS}`,
    );
  const so: ResolvedScaledObject = {
    name: name ?? '',
    minReplicaCount: bound('minReplicaCount'),
    maxReplicaCount: bound('maxReplicaCount'),
  };
  const problem = kedaBoundsProblem(so);
  if (problem) {
    problems.push(`${path}: ${problem} (KEDA's admission webhook refuses it)`);
    return undefined;
  }
  return name === undefined ? undefined : so;
}

/** Go's `encoding/json` order for maps (kubectl prints unstructured objects): keys sorted. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isObject(value))
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys(value[k])]),
    );
  return value;
}

/** What `kubectl get -o json` prints (without the final newline). */
export function kubectlJson(object: unknown): string {
  return JSON.stringify(sortKeys(object), null, 4);
}

/** A Deployment as the API server returns it (`apps/v1`). */
export function deploymentObject(d: KubeDeployment, replicaSetHash: string): Record<string, unknown> {
  const labels = { app: d.name };
  const r = d.replicas;
  // The API leaves zero counts out of the status (omitempty).
  const replicaCounts =
    r === 0 ? {} : { availableReplicas: r, readyReplicas: r, replicas: r, updatedReplicas: r };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      annotations: { 'deployment.kubernetes.io/revision': String(d.revision) },
      creationTimestamp: d.createdAt,
      generation: d.generation,
      labels,
      name: d.name,
      namespace: d.namespace,
      resourceVersion: String(d.resourceVersion),
      uid: d.uid,
    },
    spec: {
      progressDeadlineSeconds: 600,
      replicas: d.replicas,
      revisionHistoryLimit: 10,
      selector: { matchLabels: labels },
      strategy: { rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' }, type: 'RollingUpdate' },
      template: {
        metadata: {
          ...(d.restartedAt ? { annotations: { 'kubectl.kubernetes.io/restartedAt': d.restartedAt } } : {}),
          creationTimestamp: null,
          labels,
        },
        spec: {
          containers: [
            {
              image: `contoso.azurecr.io/${d.name}:1.0.0`,
              imagePullPolicy: 'IfNotPresent',
              name: d.name,
              resources: {},
              terminationMessagePath: '/dev/termination-log',
              terminationMessagePolicy: 'File',
            },
          ],
          dnsPolicy: 'ClusterFirst',
          restartPolicy: 'Always',
          schedulerName: 'default-scheduler',
          securityContext: {},
          terminationGracePeriodSeconds: 30,
        },
      },
    },
    status: {
      ...replicaCounts,
      conditions: [
        {
          lastTransitionTime: d.createdAt,
          lastUpdateTime: d.createdAt,
          message: 'Deployment has minimum availability.',
          reason: 'MinimumReplicasAvailable',
          status: 'True',
          type: 'Available',
        },
        {
          lastTransitionTime: d.createdAt,
          lastUpdateTime: d.createdAt,
          message: `ReplicaSet "${d.name}-${replicaSetHash}" has successfully progressed.`,
          reason: 'NewReplicaSetAvailable',
          status: 'True',
          type: 'Progressing',
        },
      ],
      observedGeneration: d.generation,
    },
  };
}

/** A ScaledObject as the API server returns it (`keda.sh/v1alpha1`). */
export function scaledObjectObject(d: KubeDeployment, so: KubeScaledObject): Record<string, unknown> {
  const trigger = `s0-azure-servicebus-${d.name}`;
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: {
      creationTimestamp: so.createdAt,
      finalizers: ['finalizer.keda.sh'],
      generation: so.generation,
      labels: { 'scaledobject.keda.sh/name': so.name },
      name: so.name,
      namespace: d.namespace,
      resourceVersion: String(so.resourceVersion),
      uid: so.uid,
    },
    spec: {
      ...(so.maxReplicaCount === undefined ? {} : { maxReplicaCount: so.maxReplicaCount }),
      ...(so.minReplicaCount === undefined ? {} : { minReplicaCount: so.minReplicaCount }),
      scaleTargetRef: { name: d.name },
      triggers: [
        {
          authenticationRef: { name: `${so.name}-servicebus` },
          metadata: { messageCount: '5', queueName: d.name },
          type: 'azure-servicebus',
        },
      ],
    },
    status: {
      conditions: [
        {
          message: 'ScaledObject is defined correctly and is ready for scaling',
          reason: 'ScaledObjectReady',
          status: 'True',
          type: 'Ready',
        },
        {
          message: 'Scaling is performed because triggers are active',
          reason: 'ScalerActive',
          status: 'True',
          type: 'Active',
        },
        {
          message: 'No fallbacks are active on this scaled object',
          reason: 'NoFallbackFound',
          status: 'False',
          type: 'Fallback',
        },
        { status: 'Unknown', type: 'Paused' },
      ],
      externalMetricNames: [trigger],
      hpaName: `keda-hpa-${so.name}`,
      originalReplicaCount: d.replicas,
      scaleTargetGVKR: { group: 'apps', kind: 'Deployment', resource: 'deployments', version: 'v1' },
      scaleTargetKind: 'apps/v1.Deployment',
    },
  };
}

/**
 * Reads a JSON merge patch of a ScaledObject (`kubectl patch --type=merge -p`): the new bounds, or the
 * message to print. Only `spec.minReplicaCount` / `spec.maxReplicaCount` may be in it; a value that is
 * not an integer is the API server's schema error (`The ScaledObject "<name>" is invalid: ...`).
 */
export function scaledObjectFromPatch(
  so: KubeScaledObject,
  patch: unknown,
): { bounds: ResolvedScaledObject } | { error: string } {
  const notEmulated = (what: string) => ({
    error: `sandbox: a merge patch of a ScaledObject may set spec.minReplicaCount and spec.maxReplicaCount only (${what} is not emulated)`,
  });
  if (!isObject(patch)) return notEmulated('a patch that is not a JSON object');
  for (const key of Object.keys(patch)) if (key !== 'spec') return notEmulated(key);
  if (patch.spec === undefined) return { bounds: { ...so } };
  if (!isObject(patch.spec)) return notEmulated('spec other than an object');
  const next: ResolvedScaledObject = {
    name: so.name,
    minReplicaCount: so.minReplicaCount,
    maxReplicaCount: so.maxReplicaCount,
  };
  for (const [key, value] of Object.entries(patch.spec)) {
    if (key !== 'minReplicaCount' && key !== 'maxReplicaCount') return notEmulated(`spec.${key}`);
    if (value === null) return notEmulated(`removing spec.${key} (null)`);
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      // The CRD's schema (type: integer), as the API server words a type mismatch.
      const type = Array.isArray(value) ? 'array' : typeof value === 'object' ? 'object' : typeof value;
      return {
        error: `The ScaledObject "${so.name}" is invalid: spec.${key}: Invalid value: "${type}": spec.${key} in body must be of type integer: "${type}"`,
      };
    }
    if (Math.abs(value) > MAX_INT32) return notEmulated(`spec.${key} beyond int32`);
    next[key] = value;
  }
  return { bounds: next };
}

/**
 * The HorizontalPodAutoscaler KEDA makes for a ScaledObject (`keda-hpa-<name>`, `autoscaling/v2`):
 * it owns the deployment's replicas, between the ScaledObject's bounds.
 */
export function kedaHpaObject(d: KubeDeployment, so: KubeScaledObject): Record<string, unknown> {
  const { min, max } = effectiveBounds(so);
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: {
      creationTimestamp: so.createdAt,
      labels: {
        'app.kubernetes.io/managed-by': 'keda-operator',
        'app.kubernetes.io/name': `keda-hpa-${so.name}`,
        'scaledobject.keda.sh/name': so.name,
      },
      name: `keda-hpa-${so.name}`,
      namespace: d.namespace,
      ownerReferences: [{ apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledObject', name: so.name, uid: so.uid }],
    },
    spec: {
      maxReplicas: max,
      // The HPA's floor is at least 1: KEDA scales to zero itself.
      minReplicas: Math.max(1, min),
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: d.name },
    },
    status: { currentReplicas: d.replicas, desiredReplicas: d.replicas },
  };
}

/** A list as `kubectl get <type> -o json` prints it. */
export function kubectlList(items: unknown[]): Record<string, unknown> {
  return { apiVersion: 'v1', items, kind: 'List', metadata: { resourceVersion: '' } };
}
