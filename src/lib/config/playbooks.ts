/**
 * The `playbooks` section of the policy: what stampkeeper does when an Azure Monitor alert matches
 * (docs/policy.md, "Playbooks"). The schema (`policy/stampkeeper.policy.schema.json`) checks the
 * shapes; this module fills in the defaults and checks what the schema cannot express (unique names
 * and targets, bounds in order and on each service's steps, channels that exist).
 */

/** What a playbook does. */
export const PLAYBOOK_ACTIONS = [
  'cosmos-raise-autoscale-max',
  'servicebus-scale-messaging-units',
  'scale-consumers',
  'notify-only',
] as const;
export type PlaybookAction = (typeof PLAYBOOK_ACTIONS)[number];

/** The actions that change a resource (every one but `notify-only`). */
export type ScalingAction = Exclude<PlaybookAction, 'notify-only'>;

/** Which alerts a playbook takes: every criterion given must hold (at least one is given). */
export interface PlaybookMatch {
  /** The alert rule's name, compared case-insensitively. */
  alertRule?: string;
  /** The type of the alert's first target (`Microsoft.DocumentDB/databaseAccounts`), case-insensitive. */
  resourceType?: string;
  /** A metric one of the alert's conditions names, case-insensitive. */
  metric?: string;
  /** A key of the alert's custom properties, and its value when given (exact). */
  customProperty?: { name: string; value?: string };
}

/** The metric a playbook reads to verify a change and to decide when to scale back. */
export interface PlaybookSignal {
  /** ARM id of the resource whose metric it is. */
  resourceId: string;
  /** The region whose metrics endpoint serves it (from the policy, never from an alert). */
  region: string;
  metric: string;
  aggregation: 'Average' | 'Maximum' | 'Minimum' | 'Total' | 'Count';
  /** Dimension values of the series to read (`{ DatabaseName: orders, CollectionName: orders }`). */
  dimensions: Record<string, string>;
  /** The change worked once a minute's value is below this. */
  recoveredBelow: number;
  /** How long after the change the run waits for recovery before it says it did not. */
  verifyMinutes: number;
  /**
   * The metric alert rule the deployment creates on this signal (infra/modules/playbookAlert.bicep).
   * `normalizePlaybook` always sets it; absent (a playbook built in code): `playbookAlertRule` gives the defaults.
   */
  alert?: PlaybookAlertRule;
}

/** A playbook's metric alert rule: fires when the signal is greater than `threshold` over the window. */
export interface PlaybookAlertRule {
  threshold: number;
  windowMinutes: number;
  frequencyMinutes: number;
  /** 0 (critical) to 4. */
  severity: number;
}

export interface PlaybookScaleBack {
  /** The metric must stay below this ... */
  below: number;
  /** ... for this many minutes (every minute with data) before one step down. */
  forMinutes: number;
}

/** What a scaling playbook changes, per action. */
export type PlaybookTarget =
  | {
      kind: 'cosmosThroughput';
      accountId: string;
      database: string;
      /** Absent: the database's shared throughput. */
      container?: string;
    }
  | { kind: 'serviceBusNamespace'; namespaceId: string }
  | { kind: 'containerApp'; containerAppId: string }
  | {
      kind: 'aksDeployment';
      clusterId: string;
      namespace: string;
      deployment: string;
      /** The KEDA ScaledObject scaling the deployment: its `maxReplicaCount` is changed. Absent: the deployment's `replicas`. */
      scaledObject?: string;
    };

interface PlaybookBase {
  name: string;
  match: PlaybookMatch;
  /** Channel names; absent in the file means `notifications.defaults`. */
  notify?: string[];
}

export interface NotifyOnlyPlaybook extends PlaybookBase {
  action: 'notify-only';
}

export interface ScalingPlaybook extends PlaybookBase {
  action: ScalingAction;
  target: PlaybookTarget;
  /**
   * The range stampkeeper keeps the setting in: autoscale max RU/s, messaging units, or max
   * replicas. Never raised above `ceiling`; never lowered below `floor` (nor below what the service
   * allows).
   */
  bounds: { floor: number; ceiling: number };
  /** How much one raise or one scale-back changes (RU/s, replicas); messaging units step to the next allowed value. */
  step: number;
  /** Least time between two changes of the target (either direction). */
  cooldownMinutes: number;
  /** Most raises in any 24 hours. */
  maxActionsPerDay: number;
  /** A raise to more than this waits for a person's approval (`Operations.Approve`). */
  approvalAbove?: number;
  /** Plan, audit and notify; change nothing. */
  dryRun: boolean;
  /** Cosmos DB: a manual-throughput resource may be migrated to autoscale first. */
  migrateToAutoscale: boolean;
  /**
   * Cosmos DB: a raise past the instant-scale limit (physical partitions × 10,000 RU/s) is accepted
   * by the service and completes asynchronously (4-6 hours). Off: raises stop at that limit.
   */
  asyncScale: boolean;
  signal: PlaybookSignal;
  /** Absent: stampkeeper never lowers what it raised (people do). */
  scaleBack?: PlaybookScaleBack;
}

export type Playbook = NotifyOnlyPlaybook | ScalingPlaybook;

/** Cosmos DB autoscale max RU/s move in steps of 1000 (the service's increment). */
export const COSMOS_AUTOSCALE_INCREMENT = 1000;
/** The default per-container / per-database maximum (a support ticket raises it). */
export const COSMOS_MAX_THROUGHPUT = 1_000_000;
/** Premium messaging units per partition. */
export const SERVICE_BUS_UNITS = [1, 2, 4, 8, 16] as const;
/** Container Apps' ceiling on `maxReplicas`. */
export const CONTAINER_APP_MAX_REPLICAS = 1000;
/** The most replicas stampkeeper sets on an AKS deployment or a ScaledObject's max (as Container Apps'). */
export const KUBERNETES_MAX_REPLICAS = 1000;

const DEFAULTS = {
  cooldownMinutes: 30,
  maxActionsPerDay: 6,
  verifyMinutes: 30,
} as const;

type Raw = Record<string, unknown>;

function asRecord(value: unknown): Raw | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Raw) : undefined;
}

/** A validated `playbooks` entry with its defaults filled in. */
export function normalizePlaybook(raw: Raw): Playbook {
  const base = {
    name: raw.name as string,
    match: { ...(raw.match as PlaybookMatch) },
    ...(Array.isArray(raw.notify) ? { notify: [...(raw.notify as string[])] } : {}),
  };
  if (raw.action === 'notify-only') return { ...base, action: 'notify-only' };
  const action = raw.action as ScalingAction;
  const t = raw.target as Raw;
  const target: PlaybookTarget =
    action === 'cosmos-raise-autoscale-max'
      ? {
          kind: 'cosmosThroughput',
          accountId: t.accountId as string,
          database: t.database as string,
          ...(typeof t.container === 'string' ? { container: t.container } : {}),
        }
      : action === 'servicebus-scale-messaging-units'
        ? { kind: 'serviceBusNamespace', namespaceId: t.namespaceId as string }
        : consumersTarget(t);
  const s = raw.signal as Raw;
  const bounds = raw.bounds as { floor: number; ceiling: number };
  return {
    ...base,
    action,
    target,
    bounds: { floor: bounds.floor, ceiling: bounds.ceiling },
    step:
      (raw.step as number | undefined) ??
      (action === 'cosmos-raise-autoscale-max' ? COSMOS_AUTOSCALE_INCREMENT : 1),
    cooldownMinutes: (raw.cooldownMinutes as number | undefined) ?? DEFAULTS.cooldownMinutes,
    maxActionsPerDay: (raw.maxActionsPerDay as number | undefined) ?? DEFAULTS.maxActionsPerDay,
    ...(typeof raw.approvalAbove === 'number' ? { approvalAbove: raw.approvalAbove } : {}),
    dryRun: raw.dryRun === true,
    migrateToAutoscale: raw.migrateToAutoscale === true,
    asyncScale: raw.asyncScale === true,
    signal: {
      resourceId: (s.resourceId as string | undefined) ?? defaultSignalResource(target)!,
      region: s.region as string,
      metric: s.metric as string,
      aggregation: (s.aggregation as PlaybookSignal['aggregation'] | undefined) ?? 'Maximum',
      dimensions: { ...((s.dimensions as Record<string, string> | undefined) ?? {}) },
      recoveredBelow: s.recoveredBelow as number,
      verifyMinutes: (s.verifyMinutes as number | undefined) ?? DEFAULTS.verifyMinutes,
      alert: normalizeAlert(asRecord(s.alert) ?? {}, s.recoveredBelow as number),
    },
    ...(asRecord(raw.scaleBack)
      ? {
          scaleBack: {
            below: (raw.scaleBack as Raw).below as number,
            forMinutes: (raw.scaleBack as Raw).forMinutes as number,
          },
        }
      : {}),
  };
}

/** A `scale-consumers` target: a Container App, or an AKS deployment (and its ScaledObject). */
function consumersTarget(t: Raw): PlaybookTarget {
  if (typeof t.containerAppId === 'string') return { kind: 'containerApp', containerAppId: t.containerAppId };
  return {
    kind: 'aksDeployment',
    clusterId: t.clusterId as string,
    namespace: t.namespace as string,
    deployment: t.deployment as string,
    ...(typeof t.scaledObject === 'string' ? { scaledObject: t.scaledObject } : {}),
  };
}

/** The alert rule of a signal: its own, or the defaults. */
export function playbookAlertRule(signal: PlaybookSignal): PlaybookAlertRule {
  return signal.alert ?? normalizeAlert({}, signal.recoveredBelow);
}

/** The alert rule's defaults: above what counts as recovered, over 5 minutes, evaluated each minute, severity 2. */
function normalizeAlert(raw: Raw, recoveredBelow: number): PlaybookAlertRule {
  return {
    threshold: (raw.threshold as number | undefined) ?? recoveredBelow,
    windowMinutes: (raw.windowMinutes as number | undefined) ?? 5,
    frequencyMinutes: (raw.frequencyMinutes as number | undefined) ?? 1,
    severity: (raw.severity as number | undefined) ?? 2,
  };
}

/** Where a target's own metrics live: the Cosmos DB account, the namespace; a Container App has none we read. */
function defaultSignalResource(target: PlaybookTarget): string | undefined {
  switch (target.kind) {
    case 'cosmosThroughput':
      return target.accountId;
    case 'serviceBusNamespace':
      return target.namespaceId;
    case 'containerApp':
    case 'aksDeployment':
      return undefined;
  }
}

/**
 * The run target of a scaling playbook: the ARM id of what it changes, lower-cased (ARM ids are
 * case-insensitive). Cosmos DB throughput is named by its container (`.../sqlDatabases/{db}/
 * sqlContainers/{c}`, as the throughput settings' own id says) or database; an AKS deployment by its
 * cluster's id followed by `/namespaces/{ns}/deployments/{name}`. One run per target at a time; two
 * playbooks may not share one.
 */
export function playbookTarget(target: PlaybookTarget): string {
  switch (target.kind) {
    case 'cosmosThroughput':
      return `${target.accountId}/sqlDatabases/${target.database}${
        target.container ? `/sqlContainers/${target.container}` : ''
      }`.toLowerCase();
    case 'serviceBusNamespace':
      return target.namespaceId.toLowerCase();
    case 'containerApp':
      return target.containerAppId.toLowerCase();
    case 'aksDeployment':
      // Not an ARM id: the cluster's, then the deployment's path. Keyed by the deployment even when
      // its ScaledObject is what changes: two playbooks scaling one deployment would fight.
      return `${target.clusterId}/namespaces/${target.namespace}/deployments/${target.deployment}`.toLowerCase();
  }
}

/** The first playbook whose every criterion holds for an alert (policy order), or undefined. */
export function findPlaybook(
  playbooks: readonly Playbook[],
  alert: {
    alertRule: string;
    targetResourceIds: string[];
    conditions: Array<{ metricName?: string }>;
    customProperties: Record<string, string>;
  },
): Playbook | undefined {
  const type = resourceTypeOf(alert.targetResourceIds[0]);
  return playbooks.find(({ match }) => {
    if (match.alertRule !== undefined && match.alertRule.toLowerCase() !== alert.alertRule.toLowerCase())
      return false;
    if (match.resourceType !== undefined && match.resourceType.toLowerCase() !== type) return false;
    if (
      match.metric !== undefined &&
      !alert.conditions.some((c) => c.metricName?.toLowerCase() === match.metric!.toLowerCase())
    )
      return false;
    if (match.customProperty !== undefined) {
      const value = alert.customProperties[match.customProperty.name];
      if (value === undefined) return false;
      if (match.customProperty.value !== undefined && value !== match.customProperty.value) return false;
    }
    return true;
  });
}

/**
 * `microsoft.documentdb/databaseaccounts` for `/subscriptions/.../providers/Microsoft.DocumentDB/
 * databaseAccounts/acct` (lower case; nested types joined: `microsoft.servicebus/namespaces/queues`).
 */
export function resourceTypeOf(resourceId: string | undefined): string | undefined {
  if (!resourceId) return undefined;
  const parts = resourceId.split('/').filter(Boolean);
  const at = parts.findIndex((p) => p.toLowerCase() === 'providers');
  if (at < 0 || at + 2 >= parts.length) return undefined;
  const types = parts.slice(at + 2).filter((_, i) => i % 2 === 0);
  return `${parts[at + 1]}/${types.join('/')}`.toLowerCase();
}

type PathSegment = string | number;

/**
 * Checks of `playbooks` the schema cannot express, each with its path. Defensive: the data may also
 * have failed the schema.
 */
export function playbookProblems(
  raw: unknown,
  channelNames: ReadonlySet<string>,
): Array<{ path: PathSegment[]; message: string }> {
  const out: Array<{ path: PathSegment[]; message: string }> = [];
  if (!Array.isArray(raw)) return out;
  const names = new Map<string, number>();
  const targets = new Map<string, number>();
  raw.forEach((item, i) => {
    const p = asRecord(item);
    if (!p) return;
    const at = (...rest: PathSegment[]): PathSegment[] => ['playbooks', i, ...rest];
    if (typeof p.name === 'string') {
      const first = names.get(p.name);
      if (first === undefined) names.set(p.name, i);
      else
        out.push({ path: at('name'), message: `duplicate playbook name "${p.name}" (playbooks[${first}])` });
    }
    if (Array.isArray(p.notify)) {
      p.notify.forEach((name, j) => {
        if (typeof name === 'string' && !channelNames.has(name))
          out.push({
            path: at('notify', j),
            message: `unknown channel "${name}" (defined: ${[...channelNames].join(', ') || 'none'})`,
          });
      });
    }
    if (p.action === 'notify-only' || typeof p.action !== 'string') return;
    const target = asRecord(p.target);
    const bounds = asRecord(p.bounds);
    const floor = typeof bounds?.floor === 'number' ? bounds.floor : undefined;
    const ceiling = typeof bounds?.ceiling === 'number' ? bounds.ceiling : undefined;
    if (floor !== undefined && ceiling !== undefined && floor > ceiling)
      out.push({ path: at('bounds'), message: `floor (${floor}) is above ceiling (${ceiling})` });
    if (typeof p.approvalAbove === 'number' && floor !== undefined && ceiling !== undefined) {
      if (p.approvalAbove < floor || p.approvalAbove >= ceiling)
        out.push({
          path: at('approvalAbove'),
          message: `must be from floor (${floor}) to below ceiling (${ceiling}): a raise to more than it waits for approval`,
        });
    }
    const signal = asRecord(p.signal);
    const scaleBack = asRecord(p.scaleBack);
    if (
      typeof scaleBack?.below === 'number' &&
      typeof signal?.recoveredBelow === 'number' &&
      scaleBack.below > signal.recoveredBelow
    )
      out.push({
        path: at('scaleBack', 'below'),
        message: `must not be above signal.recoveredBelow (${signal.recoveredBelow}): a value counted as recovered would then scale back and raise again`,
      });
    const alert = asRecord(signal?.alert);
    if (
      typeof alert?.threshold === 'number' &&
      typeof signal?.recoveredBelow === 'number' &&
      alert.threshold < signal.recoveredBelow
    )
      out.push({
        path: at('signal', 'alert', 'threshold'),
        message: `must not be below signal.recoveredBelow (${signal.recoveredBelow}): the rule would fire on a value the verify counts as recovered`,
      });
    if (
      typeof alert?.frequencyMinutes === 'number' &&
      alert.frequencyMinutes > ((alert.windowMinutes as number | undefined) ?? 5)
    )
      out.push({
        path: at('signal', 'alert', 'frequencyMinutes'),
        message: `must not be above the window (${(alert.windowMinutes as number | undefined) ?? 5} minutes): Azure Monitor refuses such a rule`,
      });
    if (p.action === 'cosmos-raise-autoscale-max') {
      for (const [key, value] of [
        ['floor', floor],
        ['ceiling', ceiling],
      ] as const) {
        if (value !== undefined && value % COSMOS_AUTOSCALE_INCREMENT !== 0)
          out.push({
            path: at('bounds', key),
            message: `autoscale max RU/s go in steps of ${COSMOS_AUTOSCALE_INCREMENT}: ${value} is not one`,
          });
      }
      if (typeof p.step === 'number' && p.step % COSMOS_AUTOSCALE_INCREMENT !== 0)
        out.push({ path: at('step'), message: `must be a multiple of ${COSMOS_AUTOSCALE_INCREMENT} RU/s` });
    }
    if (p.action === 'servicebus-scale-messaging-units' && p.step !== undefined)
      out.push({
        path: at('step'),
        message:
          'does not apply: messaging units move to the next allowed value (1, 2, 4, 8, 16 per partition)',
      });
    if (p.action === 'scale-consumers' && !signal?.resourceId)
      out.push({
        path: at('signal', 'resourceId'),
        message:
          'is required for scale-consumers: the resource whose metric (queue depth...) the consumers drain',
      });
    const key = target ? targetKeyOf(p.action, target) : undefined;
    if (key) {
      const first = targets.get(key);
      if (first === undefined) targets.set(key, i);
      else
        out.push({
          path: at('target'),
          message: `changes the same resource as playbooks[${first}]: one playbook per resource (two would undo each other)`,
        });
    }
  });
  return out;
}

/** The run target of a raw (possibly invalid) playbook's target, or undefined when it is malformed. */
function targetKeyOf(action: string, t: Raw): string | undefined {
  const s = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  switch (action) {
    case 'cosmos-raise-autoscale-max': {
      const accountId = s(t.accountId);
      const database = s(t.database);
      const container = s(t.container);
      if (!accountId || !database) return undefined;
      return playbookTarget({
        kind: 'cosmosThroughput',
        accountId,
        database,
        ...(container ? { container } : {}),
      });
    }
    case 'servicebus-scale-messaging-units': {
      const namespaceId = s(t.namespaceId);
      return namespaceId ? playbookTarget({ kind: 'serviceBusNamespace', namespaceId }) : undefined;
    }
    case 'scale-consumers': {
      const containerAppId = s(t.containerAppId);
      if (containerAppId) return playbookTarget({ kind: 'containerApp', containerAppId });
      const [clusterId, namespace, deployment] = [s(t.clusterId), s(t.namespace), s(t.deployment)];
      if (!clusterId || !namespace || !deployment) return undefined;
      return playbookTarget({ kind: 'aksDeployment', clusterId, namespace, deployment });
    }
    default:
      return undefined;
  }
}
