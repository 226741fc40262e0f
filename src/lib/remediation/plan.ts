/**
 * The guardrails of remediation, as pure functions: what one raise or one scale-back may change,
 * given what the service reports now, the playbook's bounds and the target's recent changes (its
 * ledger). No I/O and no clock: `now` is an argument, so every rule is unit- and property-tested.
 *
 * The rules, whatever the sequence of alerts:
 * - a value is never set above the playbook's ceiling, nor above what the service takes at once
 *   (Cosmos DB's instant-scale limit, unless the playbook allows the asynchronous scale), nor below
 *   the playbook's floor or the service's minimum;
 * - two changes of a target (raise or scale-back) are at least `cooldownMinutes` apart;
 * - at most `maxActionsPerDay` raises in any 24 hours;
 * - nothing is changed while the service is still applying an earlier change;
 * - a scale-back lowers only a value stampkeeper set (one a person changed is theirs).
 */
import {
  COSMOS_AUTOSCALE_INCREMENT,
  KUBERNETES_MAX_REPLICAS,
  type ScalingPlaybook,
  SERVICE_BUS_UNITS,
} from '../config/playbooks';
import type { CosmosThroughput, KubernetesScale, NamespaceCapacity, ReplicaRange } from '../ports/capacity';

const MINUTE_MS = 60_000;
export const DAY_MS = 24 * 60 * MINUTE_MS;

/** What the service reports about a target, in the terms the guardrails need. */
export interface Reading {
  /** The setting now: autoscale max RU/s (or manual RU/s), messaging units, max replicas. */
  value: number;
  unit: string;
  /** The least value the service takes (Cosmos DB `minimumThroughput`; min replicas; one step of units). */
  minimum: number;
  /** The most the service takes at once (instant-scale limit, soft maximum), when it says. */
  limit: number | undefined;
  /** Service Bus: the values the namespace takes (1, 2, 4, 8, 16 × partitions), ascending. */
  allowed?: number[];
  /** Why nothing may change now because an earlier change is still being applied. */
  busy?: string;
  /** Why this playbook cannot change the target at all (a person must act). */
  blocked?: string;
  /** Cosmos DB manual throughput that the playbook may migrate to autoscale. */
  migratable?: boolean;
  /** Cosmos DB: `manual` or `autoscale`. */
  mode?: 'autoscale' | 'manual';
}

export type Direction = 'raise' | 'lower';

/** One change stampkeeper made to a target (times as ISO text, as runs store them). */
export type LedgerEntry = {
  at: string;
  direction: Direction | 'migrate';
  from: number;
  to: number;
  runId: string;
};

/** A target's recent changes, oldest first: what the cooldown and the daily cap are counted on. */
export type Ledger = {
  changes: LedgerEntry[];
};

export const EMPTY_LEDGER: Ledger = { changes: [] };

/** Why nothing is changed. */
export type HoldCode =
  | 'blocked'
  | 'busy'
  | 'cooldown'
  | 'dailyCap'
  | 'atCeiling'
  | 'atFloor'
  | 'changedOutside'
  | 'resolved'
  | 'notLow';

export type Decision =
  | {
      act: true;
      direction: Direction;
      /** Cosmos DB: the change is the migration from manual throughput to autoscale. */
      migrate: boolean;
      from: number;
      /** The value to set (a migration's value is the service's choice: the manual value is shown). */
      to: number;
      unit: string;
      why: string;
      /** The raise goes past `approvalAbove`: a person approves first. */
      approval: boolean;
    }
  | { act: false; code: HoldCode; why: string; severity: 'info' | 'warning' };

function hold(code: HoldCode, why: string, severity: 'info' | 'warning' = 'info'): Decision {
  return { act: false, code, why, severity };
}

/** The reading of a Cosmos DB throughput for a playbook. */
export function cosmosReading(t: CosmosThroughput, playbook: ScalingPlaybook): Reading {
  const limits = [t.softMaximum, playbook.asyncScale ? undefined : t.instantMaximum].filter(
    (v): v is number => typeof v === 'number' && Number.isFinite(v),
  );
  const reading: Reading = {
    value: t.value,
    unit: t.mode === 'autoscale' ? 'RU/s (autoscale max)' : 'RU/s (manual)',
    minimum: t.minimum,
    limit: limits.length > 0 ? Math.min(...limits) : undefined,
    mode: t.mode,
  };
  if (t.pending)
    reading.busy = `a throughput change is still being applied by the service${t.pendingValue ? ` (to ${t.pendingValue} RU/s)` : ''}`;
  if (t.mode === 'manual') {
    if (playbook.migrateToAutoscale) reading.migratable = true;
    else
      reading.blocked =
        'the throughput is manual, and the playbook may not migrate it to autoscale (migrateToAutoscale: false)';
  }
  return reading;
}

/** The reading of a Service Bus namespace's messaging units. */
export function serviceBusReading(ns: NamespaceCapacity): Reading {
  const partitions = Math.max(1, ns.partitions);
  const allowed = SERVICE_BUS_UNITS.map((u) => u * partitions);
  const reading: Reading = {
    value: ns.capacity,
    unit: 'messaging units',
    minimum: allowed[0]!,
    limit: allowed.at(-1),
    allowed,
  };
  if (ns.sku !== 'Premium')
    reading.blocked = `the namespace is ${ns.sku}: messaging units exist on premium namespaces only`;
  else if (ns.provisioningState !== 'Succeeded')
    reading.busy = `the namespace is ${ns.provisioningState} (an earlier change is being applied)`;
  return reading;
}

/** The reading of a Container App's max replicas. */
export function replicaReading(range: ReplicaRange): Reading {
  const reading: Reading = {
    value: range.maxReplicas,
    unit: 'max replicas',
    minimum: Math.max(1, range.minReplicas),
    limit: undefined,
  };
  if (range.provisioningState !== 'Succeeded')
    reading.busy = `the container app is ${range.provisioningState} (an earlier change is being applied)`;
  return reading;
}

/**
 * The reading of an AKS deployment's replicas, or of its KEDA ScaledObject's max. Never below one:
 * scaling consumers to none is not a remediation (and KEDA refuses a max of 0 or below its min).
 */
export function kubernetesReading(scale: KubernetesScale): Reading {
  const reading: Reading = {
    value: scale.value,
    unit: scale.mode === 'kedaMax' ? 'max replicas (KEDA)' : 'replicas',
    minimum: Math.max(1, scale.minimum),
    limit: KUBERNETES_MAX_REPLICAS,
  };
  if (scale.busy) reading.busy = scale.busy;
  return reading;
}

/** The next value up, within the ceiling and the service's limit; undefined when there is none. */
export function nextUp(reading: Reading, playbook: ScalingPlaybook): number | undefined {
  const { value } = reading;
  const cap = Math.min(playbook.bounds.ceiling, reading.limit ?? Number.POSITIVE_INFINITY);
  let next: number | undefined;
  switch (playbook.action) {
    case 'cosmos-raise-autoscale-max': {
      const raw = Math.min(value + playbook.step, cap);
      next = Math.floor(raw / COSMOS_AUTOSCALE_INCREMENT) * COSMOS_AUTOSCALE_INCREMENT;
      break;
    }
    case 'servicebus-scale-messaging-units':
      next = (reading.allowed ?? []).find((u) => u > value && u <= cap);
      break;
    case 'scale-consumers':
      next = Math.min(value + playbook.step, cap);
      break;
  }
  return next !== undefined && next > value ? next : undefined;
}

/** The next value down, never below the floor nor the service's minimum; undefined when there is none. */
export function nextDown(reading: Reading, playbook: ScalingPlaybook): number | undefined {
  const { value } = reading;
  const floor = Math.max(playbook.bounds.floor, reading.minimum);
  let next: number | undefined;
  switch (playbook.action) {
    case 'cosmos-raise-autoscale-max': {
      const least = Math.ceil(floor / COSMOS_AUTOSCALE_INCREMENT) * COSMOS_AUTOSCALE_INCREMENT;
      next = Math.max(least, value - playbook.step);
      break;
    }
    case 'servicebus-scale-messaging-units':
      next = [...(reading.allowed ?? [])].reverse().find((u) => u < value && u >= floor);
      break;
    case 'scale-consumers':
      next = Math.max(floor, value - playbook.step);
      break;
  }
  return next !== undefined && next < value ? next : undefined;
}

/** The changes of the last 24 hours, and the last change whenever it was (for the cooldown). */
export function trimLedger(ledger: Ledger, now: Date): Ledger {
  const since = now.getTime() - DAY_MS;
  const last = ledger.changes.at(-1);
  const recent = ledger.changes.filter((c) => Date.parse(c.at) > since);
  return { changes: recent.length > 0 || !last ? recent : [last] };
}

/** The ledger with one more change, trimmed. */
export function withChange(ledger: Ledger, change: LedgerEntry, now: Date): Ledger {
  return trimLedger({ changes: [...ledger.changes, change] }, now);
}

function guard(playbook: ScalingPlaybook, ledger: Ledger, now: Date): Decision | undefined {
  const last = ledger.changes.at(-1);
  if (last) {
    const since = now.getTime() - Date.parse(last.at);
    const cooldown = playbook.cooldownMinutes * MINUTE_MS;
    if (since < cooldown) {
      return hold(
        'cooldown',
        `the last change (${last.direction} ${last.from} → ${last.to} at ${last.at}) is ${Math.floor(since / MINUTE_MS)} min old; the cooldown is ${playbook.cooldownMinutes} min`,
      );
    }
  }
  return undefined;
}

/** Raises in the 24 hours before `now`. */
export function raisesInDay(ledger: Ledger, now: Date): number {
  const since = now.getTime() - DAY_MS;
  return ledger.changes.filter((c) => c.direction !== 'lower' && Date.parse(c.at) > since).length;
}

/** What one raise may do now. */
export function planRaise(input: {
  reading: Reading;
  playbook: ScalingPlaybook;
  ledger: Ledger;
  now: Date;
  /** Why the raise is asked for (the alert, in a sentence). */
  because: string;
}): Decision {
  const { reading, playbook, ledger, now } = input;
  if (reading.blocked) return hold('blocked', reading.blocked, 'warning');
  if (reading.busy) return hold('busy', reading.busy);
  const guarded = guard(playbook, ledger, now);
  if (guarded) return guarded;
  const raises = raisesInDay(ledger, now);
  if (raises >= playbook.maxActionsPerDay) {
    return hold(
      'dailyCap',
      `${raises} raise(s) in the last 24 hours: the playbook allows ${playbook.maxActionsPerDay}; a person must look at it`,
      'warning',
    );
  }
  if (reading.migratable) {
    if (reading.value > playbook.bounds.ceiling) {
      return hold(
        'atCeiling',
        `the manual throughput (${reading.value} RU/s) is already above the ceiling (${playbook.bounds.ceiling})`,
        'warning',
      );
    }
    return {
      act: true,
      direction: 'raise',
      migrate: true,
      from: reading.value,
      to: reading.value,
      unit: reading.unit,
      why: `${input.because}; the throughput is manual: migrated to autoscale, whose max lets the container burst`,
      approval: playbook.approvalAbove !== undefined && reading.value > playbook.approvalAbove,
    };
  }
  const next = nextUp(reading, playbook);
  if (next === undefined) {
    const limited =
      reading.limit !== undefined &&
      reading.limit < playbook.bounds.ceiling &&
      reading.value >= reading.limit;
    return hold(
      'atCeiling',
      limited
        ? `${reading.value} ${reading.unit} is the most the service takes at once (${reading.limit}); going further ${
            playbook.action === 'cosmos-raise-autoscale-max'
              ? 'splits partitions and takes hours (asyncScale: false)'
              : 'is not possible'
          }`
        : `${reading.value} ${reading.unit} is at the playbook's ceiling (${playbook.bounds.ceiling}): raise the ceiling or act by hand`,
      'warning',
    );
  }
  return {
    act: true,
    direction: 'raise',
    migrate: false,
    from: reading.value,
    to: next,
    unit: reading.unit,
    why: input.because,
    approval: playbook.approvalAbove !== undefined && next > playbook.approvalAbove,
  };
}

/** What one scale-back may do now. */
export function planLower(input: {
  reading: Reading;
  playbook: ScalingPlaybook;
  ledger: Ledger;
  now: Date;
  because: string;
}): Decision {
  const { reading, playbook, ledger, now } = input;
  if (reading.blocked) return hold('blocked', reading.blocked);
  if (reading.busy) return hold('busy', reading.busy);
  const last = ledger.changes.at(-1);
  if (!last || last.to !== reading.value) {
    return hold(
      'changedOutside',
      last
        ? `the value is ${reading.value} ${reading.unit}, not the ${last.to} stampkeeper set: someone changed it, it is theirs`
        : 'stampkeeper never changed this target: nothing of its own to scale back',
    );
  }
  const guarded = guard(playbook, ledger, now);
  if (guarded) return guarded;
  const next = nextDown(reading, playbook);
  if (next === undefined)
    return hold(
      'atFloor',
      `${reading.value} ${reading.unit} is at the floor (${Math.max(playbook.bounds.floor, reading.minimum)})`,
    );
  return {
    act: true,
    direction: 'lower',
    migrate: false,
    from: reading.value,
    to: next,
    unit: reading.unit,
    why: input.because,
    approval: false,
  };
}
