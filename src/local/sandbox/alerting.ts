/**
 * The scenario's `alerting` section: a load generator that drives the metrics capacity playbooks
 * watch (Cosmos DB `NormalizedRUConsumption` from a request rate against the provisioned
 * throughput, Service Bus `ActiveMessages` from an arrival rate against what the namespace's
 * messaging units drain), metric alert rules evaluated on the sandbox clock, and an action group
 * that posts their common-schema notifications (Fired, then Resolved) to the app's webhook, with
 * duplicates, as Azure Monitor would. See docs/sandbox.md, "Alerts and load".
 *
 * What it follows: the common alert schema's metric-alert payload (the published sample in
 * test/fixtures/events/monitor, `SingleResourceMultipleMetricCriteria`); metric alerts are stateful
 * (one Fired per episode, a Resolved once the condition has not been met for three consecutive
 * evaluations, an evaluation without data changes nothing); action groups wait 10 s and retry only
 * on 408 / 429 / 503 / 504 or no answer (docs/decisions/0003-alert-intake.md).
 */
import type { ArmEstate, ArmWorld } from './arm/world';
import type { SandboxClock, WorldTicker } from './clock';
import { seededUuid } from './ids';
import { aggregate, emptyAccumulator, type MetricsStore } from './monitor/metrics';
import { AGGREGATIONS, type Aggregation } from './monitor/scenario';
import { MINUTE_MS, parseScenarioInstant, resolveInstant, type ScenarioInstant } from './monitor/time';

const OPERATORS = ['GreaterThan', 'GreaterThanOrEqual', 'LessThan', 'LessThanOrEqual'] as const;
type Operator = (typeof OPERATORS)[number];
const SEVERITIES = ['Sev0', 'Sev1', 'Sev2', 'Sev3', 'Sev4'] as const;
/** Evaluation frequencies of metric alert rules (PT1M, PT5M, PT15M, PT30M, PT1H). */
const FREQUENCIES = [1, 5, 15, 30, 60];
/** Metric alert rules' window sizes, in minutes (PT1M to P1D). */
const WINDOWS = [1, 5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360, 720, 1440];
/** A fired metric alert resolves after this many consecutive evaluations without its condition. */
export const RESOLVE_AFTER_EVALUATIONS = 3;
const MAX_RULES = 100;
const MAX_LOADS = 100;
const MAX_POINTS = 1000;
/** The action group gives up on an attempt after 10 s. */
const ATTEMPT_TIMEOUT_MS = 10_000;
const RETRYABLE = new Set([408, 429, 503, 504]);
const MAX_DELIVERY_LOG = 10_000;

const COSMOS_NAMESPACE = 'Microsoft.DocumentDB/databaseAccounts';
const SERVICE_BUS_NAMESPACE = 'Microsoft.ServiceBus/namespaces';

// ---- the scenario -------------------------------------------------------------------------------

export interface AlertingScenario {
  actionGroup?: { name?: string; duplicateProbability?: number; maxAttempts?: number; seed?: number };
  load?: unknown[];
  rules?: unknown[];
}

interface Point {
  at: ScenarioInstant;
  value: number;
}

export type ResolvedLoad =
  | { kind: 'cosmos'; account: string; database: string; container: string; ruPerSecond: Point[] }
  | {
      kind: 'queue';
      namespace: string;
      queue: string;
      incomingPerMinute: Point[];
      /** What one messaging unit drains a minute (a cap on the consumers when both are given). */
      drainedPerMinutePerUnit: number | undefined;
      /** What one replica of the consumers drains a minute. */
      drainedPerMinutePerReplica: number | undefined;
      consumers: QueueConsumers | undefined;
      backlog: number;
    };

/** Who drains a queue: a Container App, or an AKS deployment (scaled by its KEDA ScaledObject, if any). */
export type QueueConsumers =
  | { kind: 'containerApp'; app: string }
  | { kind: 'aks'; cluster: string; namespace: string; deployment: string };

export interface ResolvedAlertRule {
  name: string;
  resourceId: string;
  metric: string;
  metricNamespace: string;
  dimensions: Record<string, string>;
  aggregation: Aggregation;
  operator: Operator;
  threshold: number;
  windowMinutes: number;
  frequencyMinutes: number;
  severity: (typeof SEVERITIES)[number];
  description: string;
  customProperties: Record<string, string> | null;
}

export interface ResolvedAlerting {
  actionGroup: { name: string; duplicateProbability: number; maxAttempts: number; seed: number };
  load: ResolvedLoad[];
  rules: ResolvedAlertRule[];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,259}$/;
const RESOURCE_ID = /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/([^/]+\/[^/]+)\/[^/]+$/i;

/** Validates the `alerting` section, every problem with its path. */
export function resolveAlertingScenario(raw: unknown, problems: string[]): ResolvedAlerting {
  const out: ResolvedAlerting = {
    actionGroup: { name: 'ag-stampkeeper', duplicateProbability: 0, maxAttempts: 3, seed: 1 },
    load: [],
    rules: [],
  };
  if (raw === undefined || raw === null) return out;
  if (!isObject(raw)) {
    problems.push('alerting: must be a mapping { actionGroup, load, rules }');
    return out;
  }
  unknownKeys(raw, ['actionGroup', 'load', 'rules'], 'alerting', problems);
  if (raw.actionGroup !== undefined) {
    const ag = raw.actionGroup;
    if (!isObject(ag)) problems.push('alerting.actionGroup: must be a mapping');
    else {
      unknownKeys(
        ag,
        ['name', 'duplicateProbability', 'maxAttempts', 'seed'],
        'alerting.actionGroup',
        problems,
      );
      if (ag.name !== undefined) out.actionGroup.name = name(ag.name, 'alerting.actionGroup.name', problems);
      const p = ag.duplicateProbability;
      if (p !== undefined) {
        if (typeof p !== 'number' || !(p >= 0 && p <= 1))
          problems.push('alerting.actionGroup.duplicateProbability: a number from 0 to 1');
        else out.actionGroup.duplicateProbability = p;
      }
      if (ag.maxAttempts !== undefined)
        out.actionGroup.maxAttempts = int(
          ag.maxAttempts,
          1,
          10,
          'alerting.actionGroup.maxAttempts',
          problems,
        );
      if (ag.seed !== undefined)
        out.actionGroup.seed = int(ag.seed, 0, 2 ** 31 - 1, 'alerting.actionGroup.seed', problems);
    }
  }
  const list = (key: 'load' | 'rules', max: number): unknown[] => {
    const v = raw[key];
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      problems.push(`alerting.${key}: must be a list`);
      return [];
    }
    if (v.length > max) {
      problems.push(`alerting.${key}: at most ${max} entries, got ${v.length}`);
      return [];
    }
    return v;
  };
  for (const [i, entry] of list('load', MAX_LOADS).entries()) {
    const load = resolveLoad(entry, `alerting.load[${i}]`, problems);
    if (load) out.load.push(load);
  }
  const names = new Set<string>();
  for (const [i, entry] of list('rules', MAX_RULES).entries()) {
    const rule = resolveRule(entry, `alerting.rules[${i}]`, problems);
    if (!rule) continue;
    if (names.has(rule.name.toLowerCase()))
      problems.push(`alerting.rules[${i}].name: duplicate rule '${rule.name}'`);
    names.add(rule.name.toLowerCase());
    out.rules.push(rule);
  }
  return out;
}

function resolveLoad(raw: unknown, path: string, problems: string[]): ResolvedLoad | undefined {
  if (!isObject(raw)) {
    problems.push(`${path}: must be a mapping with cosmos or queue`);
    return undefined;
  }
  if (isObject(raw.cosmos)) {
    unknownKeys(raw, ['cosmos', 'ruPerSecond'], path, problems);
    unknownKeys(raw.cosmos, ['account', 'database', 'container'], `${path}.cosmos`, problems);
    return {
      kind: 'cosmos',
      account: name(raw.cosmos.account, `${path}.cosmos.account`, problems),
      database: name(raw.cosmos.database, `${path}.cosmos.database`, problems),
      container: name(raw.cosmos.container, `${path}.cosmos.container`, problems),
      ruPerSecond: points(raw.ruPerSecond, `${path}.ruPerSecond`, problems),
    };
  }
  if (isObject(raw.queue)) {
    unknownKeys(
      raw,
      [
        'queue',
        'incomingPerMinute',
        'drainedPerMinutePerUnit',
        'drainedPerMinutePerReplica',
        'consumers',
        'backlog',
      ],
      path,
      problems,
    );
    unknownKeys(raw.queue, ['namespace', 'name'], `${path}.queue`, problems);
    const consumers =
      raw.consumers === undefined
        ? undefined
        : resolveConsumers(raw.consumers, `${path}.consumers`, problems);
    const rate = (key: 'drainedPerMinutePerUnit' | 'drainedPerMinutePerReplica') =>
      raw[key] === undefined ? undefined : int(raw[key], 1, 10_000_000, `${path}.${key}`, problems);
    const perUnit = rate('drainedPerMinutePerUnit');
    const perReplica = rate('drainedPerMinutePerReplica');
    if (raw.consumers === undefined) {
      // Without consumers, the messaging units drain the queue.
      if (raw.drainedPerMinutePerUnit === undefined)
        int(undefined, 1, 10_000_000, `${path}.drainedPerMinutePerUnit`, problems);
      if (raw.drainedPerMinutePerReplica !== undefined)
        problems.push(
          `${path}.drainedPerMinutePerReplica: needs consumers (a containerApp or an aks deployment)`,
        );
    } else if (raw.drainedPerMinutePerUnit === undefined && raw.drainedPerMinutePerReplica === undefined)
      problems.push(
        `${path}: with consumers, give drainedPerMinutePerReplica, drainedPerMinutePerUnit or both`,
      );
    return {
      kind: 'queue',
      namespace: name(raw.queue.namespace, `${path}.queue.namespace`, problems),
      queue: name(raw.queue.name, `${path}.queue.name`, problems),
      incomingPerMinute: points(raw.incomingPerMinute, `${path}.incomingPerMinute`, problems),
      drainedPerMinutePerUnit: perUnit,
      drainedPerMinutePerReplica: perReplica,
      consumers,
      backlog: raw.backlog === undefined ? 0 : int(raw.backlog, 0, 100_000_000, `${path}.backlog`, problems),
    };
  }
  problems.push(`${path}: needs cosmos { account, database, container } or queue { namespace, name }`);
  return undefined;
}

/** `consumers: { containerApp: <name> }` or `consumers: { aks: { cluster, namespace, deployment } }`. */
function resolveConsumers(raw: unknown, path: string, problems: string[]): QueueConsumers | undefined {
  const expected = `${path}: a mapping with containerApp: <name> or aks: { cluster, namespace, deployment }`;
  if (!isObject(raw)) {
    problems.push(expected);
    return undefined;
  }
  unknownKeys(raw, ['containerApp', 'aks'], path, problems);
  if (raw.containerApp !== undefined && raw.aks !== undefined) {
    problems.push(`${path}: either containerApp or aks, not both`);
    return undefined;
  }
  if (raw.containerApp !== undefined)
    return { kind: 'containerApp', app: name(raw.containerApp, `${path}.containerApp`, problems) };
  if (isObject(raw.aks)) {
    unknownKeys(raw.aks, ['cluster', 'namespace', 'deployment'], `${path}.aks`, problems);
    return {
      kind: 'aks',
      cluster: name(raw.aks.cluster, `${path}.aks.cluster`, problems),
      namespace: name(raw.aks.namespace, `${path}.aks.namespace`, problems),
      deployment: name(raw.aks.deployment, `${path}.aks.deployment`, problems),
    };
  }
  problems.push(expected);
  return undefined;
}

function resolveRule(raw: unknown, path: string, problems: string[]): ResolvedAlertRule | undefined {
  if (!isObject(raw)) {
    problems.push(`${path}: must be a mapping`);
    return undefined;
  }
  unknownKeys(
    raw,
    [
      'name',
      'resourceId',
      'metric',
      'dimensions',
      'aggregation',
      'operator',
      'threshold',
      'windowMinutes',
      'frequencyMinutes',
      'severity',
      'description',
      'customProperties',
    ],
    path,
    problems,
  );
  const resourceId = typeof raw.resourceId === 'string' ? raw.resourceId : '';
  const match = RESOURCE_ID.exec(resourceId);
  if (!match)
    problems.push(`${path}.resourceId: an ARM resource id (/subscriptions/.../providers/<ns>/<type>/<name>)`);
  const aggregation = (raw.aggregation ?? 'Average') as Aggregation;
  if (!AGGREGATIONS.includes(aggregation))
    problems.push(`${path}.aggregation: one of ${AGGREGATIONS.join(', ')}`);
  const operator = (raw.operator ?? 'GreaterThan') as Operator;
  if (!OPERATORS.includes(operator)) problems.push(`${path}.operator: one of ${OPERATORS.join(', ')}`);
  const severity = (raw.severity ?? 'Sev2') as ResolvedAlertRule['severity'];
  if (!SEVERITIES.includes(severity)) problems.push(`${path}.severity: one of ${SEVERITIES.join(', ')}`);
  if (typeof raw.threshold !== 'number' || !Number.isFinite(raw.threshold))
    problems.push(`${path}.threshold: a number`);
  const windowMinutes = raw.windowMinutes === undefined ? 5 : Number(raw.windowMinutes);
  if (!WINDOWS.includes(windowMinutes)) problems.push(`${path}.windowMinutes: one of ${WINDOWS.join(', ')}`);
  const frequencyMinutes = raw.frequencyMinutes === undefined ? 1 : Number(raw.frequencyMinutes);
  if (!FREQUENCIES.includes(frequencyMinutes))
    problems.push(`${path}.frequencyMinutes: one of ${FREQUENCIES.join(', ')}`);
  else if (WINDOWS.includes(windowMinutes) && frequencyMinutes > windowMinutes)
    problems.push(`${path}.frequencyMinutes: not longer than windowMinutes (as Azure requires)`);
  const dimensions = stringMap(raw.dimensions, `${path}.dimensions`, problems) ?? {};
  const customProperties = stringMap(raw.customProperties, `${path}.customProperties`, problems) ?? null;
  if (raw.description !== undefined && typeof raw.description !== 'string')
    problems.push(`${path}.description: a string`);
  return {
    name: name(raw.name, `${path}.name`, problems),
    resourceId,
    metric: name(raw.metric, `${path}.metric`, problems),
    metricNamespace: match?.[1] ?? '',
    dimensions,
    aggregation,
    operator,
    threshold: Number(raw.threshold),
    windowMinutes,
    frequencyMinutes,
    severity,
    description: typeof raw.description === 'string' ? raw.description : '',
    customProperties,
  };
}

function unknownKeys(
  obj: Record<string, unknown>,
  allowed: string[],
  path: string,
  problems: string[],
): void {
  for (const key of Object.keys(obj))
    if (!allowed.includes(key))
      problems.push(`${path}.${key}: unknown key (expected one of ${allowed.join(', ')})`);
}

function name(v: unknown, path: string, problems: string[]): string {
  if (typeof v !== 'string' || !NAME.test(v)) {
    problems.push(`${path}: a name (letters, digits, - _ .)`);
    return '';
  }
  return v;
}

function int(v: unknown, min: number, max: number, path: string, problems: string[]): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    problems.push(`${path}: an integer from ${min} to ${max}`);
    return min;
  }
  return v;
}

function stringMap(v: unknown, path: string, problems: string[]): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v) || Object.keys(v).length > 20 || Object.values(v).some((x) => typeof x !== 'string')) {
    problems.push(`${path}: a map of at most 20 names to string values`);
    return undefined;
  }
  return v as Record<string, string>;
}

/** Steps: each value holds from its instant to the next; nothing before the first (read as 0). */
function points(v: unknown, path: string, problems: string[]): Point[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_POINTS) {
    problems.push(`${path}: a list of 1 to ${MAX_POINTS} steps { at, value }`);
    return [];
  }
  const out: Point[] = [];
  for (const [i, p] of v.entries()) {
    const at = isObject(p) ? parseScenarioInstant(p.at) : undefined;
    const value = isObject(p) ? p.value : undefined;
    if (!at) problems.push(`${path}[${i}].at: ISO 8601 or relative to the clock start (+2h, +1d30m)`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
      problems.push(`${path}[${i}].value: a number >= 0`);
    if (at && typeof value === 'number') out.push({ at, value });
  }
  return out;
}

// ---- the world ------------------------------------------------------------------------------------

/** Where the action group posts (the app's `POST /api/alerts`). */
export interface AlertDeliveryTarget {
  post(body: string, signal: AbortSignal): Promise<{ status: number; body?: string }>;
}

/** One attempt of the action group to deliver a notification. */
export interface AlertDeliveryRecord {
  /** Sandbox time of the attempt. */
  at: string;
  rule: string;
  alertId: string;
  monitorCondition: 'Fired' | 'Resolved';
  attempt: number;
  /** A second delivery of a notification already delivered (at-least-once). */
  duplicate: boolean;
  /** The action group that sent it (`alerting.actionGroup.name`). */
  actionGroup: string;
  /** HTTP status; 0: no answer (or no target). */
  status: number;
  /** The app's answer (its JSON: status, playbook, runId), when it gave one. */
  answer?: unknown;
}

export interface AlertRuleView {
  name: string;
  state: 'ok' | 'fired';
  alertId: string | null;
  /** The value of the last evaluation (undefined: no data in the window). */
  lastValue: number | null;
  lastEvaluatedAt: string | null;
}

export interface SandboxAlerting {
  /** The rules with their state. */
  rules(): AlertRuleView[];
  /** Every delivery attempt of the action group, in order (most recent 10 000). */
  deliveries(): AlertDeliveryRecord[];
  /** Whether the scenario's load drives this metric of this resource (its source must stay the load's). */
  drives(resourceId: string, metric: string): boolean;
  /** Where notifications go from now on (the local host sets the app's webhook once it listens). */
  setTarget(target: AlertDeliveryTarget | undefined): void;
}

interface RuleState {
  rule: ResolvedAlertRule;
  state: 'ok' | 'fired';
  alertId: string | undefined;
  firedAt: number | undefined;
  notMet: number;
  episode: number;
  lastValue: number | undefined;
  lastEvaluatedAt: number | undefined;
}

interface QueueState {
  t: number;
  backlog: number;
  /** The drain per minute read at `t`: what drained the queue since (undefined: not read yet). */
  drain: number | undefined;
}

/**
 * Builds the load generator (metric sources on the monitor store) and the alert rules' ticker on
 * the clock. Throws a `RangeError` naming the path for a load on something the `arm` section does
 * not have.
 */
export function createAlerting(input: {
  spec: ResolvedAlerting;
  clock: SandboxClock;
  store: MetricsStore;
  arm: ArmWorld;
  seed: string;
  random: () => number;
  target?: AlertDeliveryTarget;
}): SandboxAlerting {
  const { spec, clock, store, arm } = input;
  let target = input.target;
  const clockStart = clock.now().getTime();
  const log: AlertDeliveryRecord[] = [];
  const estate = arm.describe();
  const valueAt = (steps: Point[], t: number): number => {
    let v = 0;
    for (const p of steps) {
      if (resolveInstant(p.at, clockStart) <= t) v = p.value;
      else break;
    }
    return v;
  };

  // Cosmos DB: NormalizedRUConsumption per DatabaseName / CollectionName, one source per account.
  const cosmosLoads = new Map<string, Array<Extract<ResolvedLoad, { kind: 'cosmos' }>>>();
  const queueLoads = new Map<
    string,
    Array<Extract<ResolvedLoad, { kind: 'queue' }> & { state: QueueState }>
  >();
  for (const [i, load] of spec.load.entries()) {
    if (load.kind === 'cosmos') {
      const account = estate.cosmosDbAccounts.find(
        (a) => a.name.toLowerCase() === load.account.toLowerCase(),
      );
      const offer = estate.cosmosThroughput.find(
        (o) =>
          o.account.toLowerCase() === load.account.toLowerCase() &&
          o.database.toLowerCase() === load.database.toLowerCase() &&
          (o.container === null || o.container.toLowerCase() === load.container.toLowerCase()),
      );
      if (!account || !offer)
        throw new RangeError(
          `alerting.load[${i}].cosmos: no container ${load.database}/${load.container} with throughput in arm.cosmosDbAccounts '${load.account}'`,
        );
      ensureMetric(
        store,
        COSMOS_NAMESPACE,
        'NormalizedRUConsumption',
        ['DatabaseName', 'CollectionName'],
        'Percent',
        'Maximum',
      );
      store.addResource(account.id, account.location);
      cosmosLoads.set(account.id, [...(cosmosLoads.get(account.id) ?? []), load]);
    } else {
      const ns = estate.serviceBusNamespaces.find(
        (n) => n.name.toLowerCase() === load.namespace.toLowerCase(),
      );
      if (!ns?.queues.some((q) => q.toLowerCase() === load.queue.toLowerCase()))
        throw new RangeError(
          `alerting.load[${i}].queue: no queue '${load.queue}' in arm.serviceBusNamespaces '${load.namespace}'`,
        );
      if (load.consumers && consumerReplicas(estate, load.consumers) === undefined) {
        const c = load.consumers;
        throw new RangeError(
          c.kind === 'containerApp'
            ? `alerting.load[${i}].consumers.containerApp: no container app '${c.app}' in arm.containerApps`
            : `alerting.load[${i}].consumers.aks: no deployment ${c.namespace}/${c.deployment} in arm.aksClusters '${c.cluster}'`,
        );
      }
      ensureMetric(store, SERVICE_BUS_NAMESPACE, 'ActiveMessages', ['EntityName'], 'Count', 'Average');
      store.addResource(ns.id, ns.location);
      queueLoads.set(ns.id, [
        ...(queueLoads.get(ns.id) ?? []),
        { ...load, state: { t: clockStart, backlog: load.backlog, drain: undefined } },
      ]);
    }
  }
  // What each load makes its metric read at an instant (against what is provisioned now).
  const outputs: Array<(at: Date) => Array<{ dimensions: Record<string, string>; value: number }>> = [];
  const driven = new Set<string>();
  for (const [accountId, loads] of cosmosLoads) {
    driven.add(`${accountId}|NormalizedRUConsumption`.toLowerCase());
    outputs.push((at) => {
      const offers = arm.throughput.all();
      return loads.map((load) => {
        const same = (o: (typeof offers)[number]) =>
          o.account.toLowerCase() === load.account.toLowerCase() &&
          o.database.toLowerCase() === load.database.toLowerCase();
        // A container without its own throughput shares its database's.
        const offer =
          offers.find((o) => same(o) && o.container?.toLowerCase() === load.container.toLowerCase()) ??
          offers.find((o) => same(o) && o.container === null);
        const provisioned = offer?.value ?? 0;
        const demand = valueAt(load.ruPerSecond, at.getTime());
        // The share of the provisioned RU/s used (one partition key range, uniform load), capped at 100.
        const value = provisioned > 0 ? Math.min(100, Math.round((demand / provisioned) * 100)) : 100;
        return { dimensions: { DatabaseName: load.database, CollectionName: load.container }, value };
      });
    });
    store.setSource(accountId, 'NormalizedRUConsumption', outputs.at(-1)!);
  }
  // What drains each queue now: read at every sample, so a change through ARM counts from the next minute.
  const capacities: Array<(at: number) => number[][]> = [];
  for (const [namespaceId, loads] of queueLoads) {
    driven.add(`${namespaceId}|ActiveMessages`.toLowerCase());
    const drains = () => {
      const now = arm.describe();
      const units =
        now.serviceBusNamespaces.find((n) => n.id.toLowerCase() === namespaceId.toLowerCase())?.sku
          .capacity ?? 1;
      return loads.map((load) =>
        drainPerMinute(load, units, load.consumers ? consumerReplicas(now, load.consumers) : undefined),
      );
    };
    capacities.push((at) => {
      const drained = drains();
      return loads.map((load, k) => [valueAt(load.incomingPerMinute, at), drained[k]!]);
    });
    outputs.push((at) => {
      const drained = drains();
      return loads.map((load, k) => {
        const t = at.getTime();
        if (t > load.state.t) {
          // Integrated since the last sample at the rates of then (a change of the units or replicas
          // since counts from now, not over the past): the clock stops at every minute and load step.
          const minutes = (t - load.state.t) / MINUTE_MS;
          const rate = valueAt(load.incomingPerMinute, load.state.t) - (load.state.drain ?? drained[k]!);
          load.state.backlog = Math.max(0, Math.round(load.state.backlog + rate * minutes));
          load.state.t = t;
        }
        load.state.drain = drained[k]!;
        return { dimensions: { EntityName: load.queue }, value: load.state.backlog };
      });
    });
    store.setSource(namespaceId, 'ActiveMessages', outputs.at(-1)!);
  }
  // What the metrics read, and what arrives in and drains each queue: a load step, a raise or a
  // scale-back changes it and wakes a quiet ticker while the backlog is still the same (an empty queue
  // whose arrivals step up reads 0 at the step's minute, yet will grow).
  const signature = (at: number) =>
    JSON.stringify([outputs.map((output) => output(new Date(at))), capacities.map((rates) => rates(at))]);
  const steps = spec.load
    .flatMap((load) => (load.kind === 'cosmos' ? load.ruPerSecond : load.incomingPerMinute))
    .map((p) => resolveInstant(p.at, clockStart))
    .sort((a, b) => a - b);

  const states: RuleState[] = spec.rules.map((rule) => ({
    rule,
    state: 'ok',
    alertId: undefined,
    firedAt: undefined,
    notMet: 0,
    episode: 0,
    lastValue: undefined,
    lastEvaluatedAt: undefined,
  }));
  for (const [i, s] of states.entries()) {
    const resource = store.resource(s.rule.resourceId);
    if (!resource)
      throw new RangeError(
        `alerting.rules[${i}].resourceId: ${s.rule.resourceId} has no metrics (add it under monitor.metrics.resources or give it a load)`,
      );
    if (!store.metricDefinition(resource.namespace, s.rule.metric))
      throw new RangeError(
        `alerting.rules[${i}].metric: ${s.rule.metric} is not a metric of ${resource.namespace}`,
      );
  }

  const evaluate = (s: RuleState, now: number): number | undefined => {
    const resource = store.resource(s.rule.resourceId)!;
    const definition = store.metricDefinition(resource.namespace, s.rule.metric)!;
    const end = Math.floor((now - store.ingestionDelayMs) / MINUTE_MS) * MINUTE_MS;
    const start = end - s.rule.windowMinutes * MINUTE_MS;
    const wanted = Object.entries(s.rule.dimensions).map(
      ([k, v]) => [k.toLowerCase(), v.toLowerCase()] as const,
    );
    const acc = emptyAccumulator();
    for (const series of store.sampledSeries(resource, definition)) {
      if (!wanted.every(([k, v]) => series.dimensions.get(k)?.toLowerCase() === v)) continue;
      for (let minute = start; minute < end; minute += MINUTE_MS) series.samplesAt(minute, acc);
    }
    return acc.count === 0 ? undefined : aggregate(acc, s.rule.aggregation);
  };

  const met = (rule: ResolvedAlertRule, v: number): boolean => {
    switch (rule.operator) {
      case 'GreaterThan':
        return v > rule.threshold;
      case 'GreaterThanOrEqual':
        return v >= rule.threshold;
      case 'LessThan':
        return v < rule.threshold;
      case 'LessThanOrEqual':
        return v <= rule.threshold;
    }
  };

  const record = (r: AlertDeliveryRecord) => {
    if (log.length >= MAX_DELIVERY_LOG) log.shift();
    log.push(r);
  };

  const deliver = async (s: RuleState, condition: 'Fired' | 'Resolved', value: number, now: number) => {
    const body = JSON.stringify(payload(s, condition, value, now, now - store.ingestionDelayMs));
    const send = async (duplicate: boolean) => {
      for (let attempt = 1; attempt <= spec.actionGroup.maxAttempts; attempt++) {
        let status = 0;
        let answer: unknown;
        if (target) {
          try {
            const response = await target.post(body, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS));
            status = response.status;
            answer = parseAnswer(response.body);
          } catch {
            status = 0;
          }
        }
        record({
          at: new Date(now).toISOString(),
          rule: s.rule.name,
          actionGroup: spec.actionGroup.name,
          alertId: s.alertId!,
          monitorCondition: condition,
          attempt,
          duplicate,
          status,
          ...(answer === undefined ? {} : { answer }),
        });
        if (!target || !(status === 0 || RETRYABLE.has(status))) return;
      }
    };
    await send(false);
    if (input.random() < spec.actionGroup.duplicateProbability) await send(true);
  };

  let nextMinute = Math.floor(clockStart / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
  const active = spec.rules.length > 0 || spec.load.length > 0;
  // Quiet: every rule is ok, watches only metrics the load drives, and has seen them steady for a
  // whole window (plus the ingestion delay). Nothing can fire until the load steps or someone changes
  // what is provisioned, so the clock need not stop every minute (a 45-day move stays cheap).
  const canBeQuiet = states.every((s) => driven.has(`${s.rule.resourceId}|${s.rule.metric}`.toLowerCase()));
  const settleMinutes =
    Math.max(0, ...spec.rules.map((r) => r.windowMinutes + r.frequencyMinutes)) +
    store.ingestionDelayMs / MINUTE_MS +
    1;
  let quiet = false;
  let lastSignature = '';
  let steadySince = clockStart;
  const ceilMinute = (t: number) => Math.ceil(t / MINUTE_MS) * MINUTE_MS;
  const ticker: WorldTicker = {
    nextDueAt() {
      if (!active) return undefined;
      if (!quiet) return nextMinute;
      const now = clock.now().getTime();
      if (signature(now) !== lastSignature) return Math.max(nextMinute, ceilMinute(now));
      const step = steps.find((t) => t > now);
      return step === undefined ? undefined : Math.max(nextMinute, ceilMinute(step));
    },
    async fireDue(now) {
      if (quiet) {
        quiet = false;
        nextMinute = Math.max(nextMinute, Math.floor(now / MINUTE_MS) * MINUTE_MS);
      }
      while (nextMinute <= now) {
        const minute = nextMinute;
        nextMinute += MINUTE_MS;
        // The load's value at this minute, before the rules look at the window that ends here.
        store.sampleSources();
        const current = signature(minute);
        if (current !== lastSignature) {
          lastSignature = current;
          steadySince = minute;
        }
        for (const s of states) {
          if ((minute / MINUTE_MS) % s.rule.frequencyMinutes !== 0) continue;
          const value = evaluate(s, minute);
          s.lastEvaluatedAt = minute;
          s.lastValue = value;
          if (value === undefined) continue;
          if (met(s.rule, value)) {
            s.notMet = 0;
            if (s.state === 'ok') {
              s.state = 'fired';
              s.episode += 1;
              s.firedAt = minute;
              s.alertId = `/subscriptions/${subscriptionOf(s.rule.resourceId)}/providers/Microsoft.AlertsManagement/alerts/${seededUuid(input.seed, 'alert', s.rule.name, s.episode)}`;
              await deliver(s, 'Fired', value, minute);
            }
          } else if (s.state === 'fired' && ++s.notMet >= RESOLVE_AFTER_EVALUATIONS) {
            s.state = 'ok';
            s.notMet = 0;
            await deliver(s, 'Resolved', value, minute);
          }
        }
        if (
          canBeQuiet &&
          states.every((s) => s.state === 'ok') &&
          minute - steadySince >= settleMinutes * MINUTE_MS
        ) {
          quiet = true;
          return;
        }
      }
    },
  };
  clock.addTicker(ticker);

  return {
    drives: (resourceId, metric) => driven.has(`${resourceId}|${metric}`.toLowerCase()),
    rules: () =>
      states.map((s) => ({
        name: s.rule.name,
        state: s.state,
        alertId: s.state === 'fired' ? (s.alertId ?? null) : null,
        lastValue: s.lastValue ?? null,
        lastEvaluatedAt: s.lastEvaluatedAt === undefined ? null : new Date(s.lastEvaluatedAt).toISOString(),
      })),
    deliveries: () => log.map((r) => ({ ...r })),
    setTarget(next) {
      target = next;
    },
  };
}

/**
 * The replicas draining a queue now: a Container App's `maxReplicas` (its queue scale rule has scaled
 * it out to its max under a backlog); an AKS deployment's ScaledObject's `maxReplicaCount` (KEDA has
 * scaled it out), or its `spec.replicas` without one. undefined: the estate has no such consumer.
 */
function consumerReplicas(estate: ArmEstate, consumers: QueueConsumers): number | undefined {
  if (consumers.kind === 'containerApp')
    return estate.containerApps.find((a) => a.name.toLowerCase() === consumers.app.toLowerCase())?.scale
      .maxReplicas;
  const deployment = estate.aksClusters
    .find((c) => c.name.toLowerCase() === consumers.cluster.toLowerCase())
    ?.deployments.find((d) => d.namespace === consumers.namespace && d.name === consumers.deployment);
  if (!deployment) return undefined;
  return deployment.scaledObject ? deployment.scaledObject.maxReplicaCount : deployment.replicas;
}

/**
 * Messages drained a minute: the consumers' replicas × `drainedPerMinutePerReplica`, capped by the
 * messaging units × `drainedPerMinutePerUnit` when that is given too (the namespace limits what its
 * consumers can receive); the units alone without consumers.
 */
function drainPerMinute(
  load: Extract<ResolvedLoad, { kind: 'queue' }>,
  units: number,
  replicas: number | undefined,
): number {
  const caps: number[] = [];
  if (load.drainedPerMinutePerUnit !== undefined) caps.push(load.drainedPerMinutePerUnit * units);
  if (load.drainedPerMinutePerReplica !== undefined && replicas !== undefined)
    caps.push(load.drainedPerMinutePerReplica * Math.max(0, replicas));
  return caps.length === 0 ? 0 : Math.min(...caps);
}

function ensureMetric(
  store: MetricsStore,
  namespace: string,
  metric: string,
  dimensions: string[],
  unit: 'Percent' | 'Count',
  aggregation: Aggregation,
): void {
  if (store.metricDefinition(namespace, metric)) return;
  store.defineMetric(namespace, {
    name: metric,
    displayName: metric,
    description: '',
    unit,
    aggregation,
    dimensions,
    fillGapWithZero: false,
  });
}

function subscriptionOf(resourceId: string): string {
  return resourceId.split('/')[2] ?? '';
}

/** A window size as the alert rule API writes it: PT5M, PT1H, P1D. */
function isoMinutes(minutes: number): string {
  if (minutes === 1440) return 'P1D';
  return minutes % 60 === 0 ? `PT${minutes / 60}H` : `PT${minutes}M`;
}

function parseAnswer(body: string | undefined): unknown {
  if (!body) return undefined;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

/** The common-schema notification of a static-threshold metric alert (the published sample's shape). */
function payload(
  s: RuleState,
  condition: 'Fired' | 'Resolved',
  value: number,
  now: number,
  windowEnd: number,
) {
  const { rule } = s;
  const resourceName = rule.resourceId.split('/').at(-1) ?? '';
  const resourceGroup = rule.resourceId.split('/')[4] ?? '';
  return {
    schemaId: 'azureMonitorCommonAlertSchema',
    data: {
      essentials: {
        alertId: s.alertId,
        alertRule: rule.name,
        severity: rule.severity,
        signalType: 'Metric',
        monitorCondition: condition,
        monitoringService: 'Platform',
        // Azure Monitor lower-cases the target ids.
        alertTargetIDs: [rule.resourceId.toLowerCase()],
        configurationItems: [resourceName.toLowerCase()],
        originAlertId: `${subscriptionOf(rule.resourceId)}_${resourceGroup}_microsoft.insights_metricAlerts_${rule.name}_${s.episode}`,
        firedDateTime: new Date(s.firedAt ?? now).toISOString(),
        ...(condition === 'Resolved' ? { resolvedDateTime: new Date(now).toISOString() } : {}),
        description: rule.description,
        essentialsVersion: '1.0',
        alertContextVersion: '1.0',
      },
      alertContext: {
        properties: null,
        conditionType: 'SingleResourceMultipleMetricCriteria',
        condition: {
          windowSize: isoMinutes(rule.windowMinutes),
          allOf: [
            {
              metricName: rule.metric,
              metricNamespace: rule.metricNamespace,
              operator: rule.operator,
              threshold: String(rule.threshold),
              timeAggregation: rule.aggregation,
              dimensions: Object.entries(rule.dimensions).map(([n, v]) => ({ name: n, value: v })),
              metricValue: value,
            },
          ],
          windowStartTime: new Date(windowEnd - rule.windowMinutes * MINUTE_MS).toISOString(),
          windowEndTime: new Date(windowEnd).toISOString(),
        },
      },
      customProperties: rule.customProperties,
    },
  };
}
