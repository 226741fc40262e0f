/**
 * Simulated consumers of keys, and the record of their downtime.
 *
 * A consumer (an AKS deployment, a Container App, a web app, a pipeline behind a webhook, or a
 * process that reloads its secret by itself) reads one Key Vault secret whose value is a key of one
 * resource (a bare key or a connection string holding it). It reads the secret's **current version**
 * from the sandbox's Key Vault store when it starts, when it is rolled and, with `reloadMinutes`,
 * every so many minutes on its own (as the Key Vault CSI driver's rotation poll, or App Service Key
 * Vault references, do), and then holds that key.
 *
 * A roll takes `roll.seconds` of sandbox time. While it runs the consumer holds two keys: the old
 * instances' and the new instances' (a rolling restart keeps old pods serving until new ones are
 * ready). When it ends the consumer holds only the new key (`succeed`), or only the old one (`fail`:
 * the new instances never became ready); a `hang` never ends. A second roll during a roll replaces
 * the pending one (as `kubectl rollout restart` during a rollout does).
 *
 * Downtime is a measured fact: after every change (a roll starts or ends, a consumer reloads, a key
 * is regenerated) the sandbox checks, per consumer, whether it holds a key its resource no longer
 * accepts, and opens or closes an interval at that sandbox instant. `describeDowntime()` lists the
 * intervals and totals; nothing here ever shows a key value.
 */
import type { SandboxClock, WorldTicker } from '../clock';
import { seededUuid } from '../ids';
import type { KeyVaultStore } from '../keyvault/store';
import type { KeyRings } from './keyRing';
import type { ResolvedConsumer } from './scenario';

export type RollTrigger =
  | 'aksRunCommand'
  | 'containerAppRestart'
  /** A new Container Apps revision (a scale change): its replicas start anew. */
  | 'containerAppRevision'
  | 'webAppRestart'
  | 'webhook';

export interface RollRecord {
  id: string;
  trigger: RollTrigger;
  startedAt: string;
  /** When it ends (or ended); null for a roll that hangs. */
  endsAt: string | null;
  status: 'running' | 'succeeded' | 'failed' | 'superseded';
  /** The Key Vault version the new instances read; null when the secret could not be read. */
  version: string | null;
  reason: string | undefined;
}

interface Held {
  version: string;
  key: string;
}

interface RollState {
  record: RollRecord;
  startedMs: number;
  endsMs: number | undefined;
  incoming: Held | { error: string };
  /** Called once when the roll ends (webhook callbacks). */
  onEnd: Array<(record: RollRecord) => Promise<void> | void>;
}

interface ConsumerState {
  spec: ResolvedConsumer;
  held: Held[];
  roll: RollState | undefined;
  rolls: RollRecord[];
  /** Last reload tick processed (epoch ms). */
  reloadCheckedMs: number;
  reloads: Array<{ at: string; from: string; to: string }>;
  open: { fromMs: number; versions: string[] } | undefined;
  intervals: Array<{ fromMs: number; toMs: number; versions: string[] }>;
}

export interface DowntimeInterval {
  from: string;
  /** null while the interval is still open. */
  to: string | null;
  durationMs: number;
  /** The Key Vault versions held whose key the resource refused. */
  versions: string[];
}

export interface ConsumerDowntime {
  name: string;
  kind: ResolvedConsumer['kind'];
  credential: ResolvedConsumer['credential'];
  /** Every interval with a dead key, the open one (if any) last. */
  intervals: DowntimeInterval[];
  /**
   * The interval still open now (`to: null`), or null. Its duration is only what elapsed so far:
   * one opened at this very instant (by the last step of a run) measures 0 ms yet is downtime.
   */
  open: DowntimeInterval | null;
  totalMs: number;
}

export interface DowntimeReport {
  now: string;
  totalMs: number;
  /** How many consumers hold a dead key now (their interval is open). */
  open: number;
  /** Every interval of every consumer, closed or open: zero downtime is 0 here, not just totalMs 0. */
  intervals: number;
  consumers: ConsumerDowntime[];
}

/** What a consumer holds, as inspection shows it: versions and whether the resource accepts them. */
export interface ConsumerView {
  name: string;
  kind: ResolvedConsumer['kind'];
  target: ResolvedConsumer['target'];
  credential: ResolvedConsumer['credential'];
  reloadMinutes: number | null;
  healthUrl: string | null;
  holds: Array<{ version: string; accepted: boolean }>;
  rolling: boolean;
  rolls: RollRecord[];
  reloads: Array<{ at: string; from: string; to: string }>;
}

/** The key inside a secret value: the `AccountKey=` / `SharedAccessKey=` part of a connection string, or the value. */
export function keyOfSecretValue(value: string): string {
  const match = /(?:^|;)\s*(?:AccountKey|SharedAccessKey)=([^;]+)/i.exec(value);
  return match?.[1]?.trim() ?? value.trim();
}

const MINUTE_MS = 60_000;

/** The keys a consumer holds: its serving instances', plus the new instances' while a roll runs. */
function holding(consumer: ConsumerState): Held[] {
  const roll = consumer.roll;
  return roll && !('error' in roll.incoming) ? [...consumer.held, roll.incoming] : consumer.held;
}

export class ConsumerWorld implements WorldTicker {
  private readonly consumers = new Map<string, ConsumerState>();
  private readonly startMs: number;
  private rollCount = 0;

  constructor(
    specs: ResolvedConsumer[],
    private readonly clock: SandboxClock,
    private readonly vault: KeyVaultStore,
    private readonly rings: KeyRings,
    private readonly seed: string,
  ) {
    this.startMs = clock.now().getTime();
    for (const spec of specs) {
      const read = this.read(spec);
      this.consumers.set(spec.name, {
        spec,
        held: 'error' in read ? [] : [read],
        roll: undefined,
        rolls: [],
        reloadCheckedMs: this.startMs,
        reloads: [],
        open: undefined,
        intervals: [],
      });
    }
    rings.onRegenerate(() => this.recompute());
    this.recompute();
  }

  /** Reads the consumer's secret as its instances would: the current version, refused when disabled or missing. */
  private read(spec: ResolvedConsumer): Held | { error: string } {
    try {
      const { state } = this.vault.readVersion(spec.credential.vault, spec.credential.secret, undefined);
      return { version: state.version, key: keyOfSecretValue(state.value) };
    } catch (err) {
      return {
        error: `cannot read secret ${spec.credential.secret} in ${spec.credential.vault}: ${(err as Error).message}`,
      };
    }
  }

  get(name: string): ResolvedConsumer | undefined {
    return this.consumers.get(name)?.spec;
  }

  /** The consumers whose target matches (an AKS deployment, a container app, a web app, a webhook URL). */
  find(predicate: (spec: ResolvedConsumer) => boolean): ResolvedConsumer[] {
    return [...this.consumers.values()].map((c) => c.spec).filter(predicate);
  }

  /**
   * Starts a roll of `name` now: its new instances read the secret's current version. Returns the
   * roll's record (its id derives from the scenario's seed and the order rolls were started in).
   */
  startRoll(
    name: string,
    trigger: RollTrigger,
    onEnd?: (record: RollRecord) => Promise<void> | void,
  ): RollRecord {
    const consumer = this.consumers.get(name);
    if (!consumer) throw new Error(`sandbox: no consumer ${name}`);
    const nowMs = this.clock.now().getTime();
    if (consumer.roll) {
      consumer.roll.record.status = 'superseded';
      consumer.roll.record.reason = 'a newer roll replaced it before it ended';
      consumer.roll = undefined;
    }
    const incoming = this.read(consumer.spec);
    const { seconds, outcome } = consumer.spec.roll;
    const endsMs = outcome === 'hang' ? undefined : nowMs + seconds * 1000;
    const record: RollRecord = {
      id: seededUuid(this.seed, 'consumer-roll', this.rollCount++),
      trigger,
      startedAt: new Date(nowMs).toISOString(),
      endsAt: endsMs === undefined ? null : new Date(endsMs).toISOString(),
      status: 'running',
      version: 'error' in incoming ? null : incoming.version,
      reason: undefined,
    };
    consumer.rolls.push(record);
    consumer.roll = { record, startedMs: nowMs, endsMs, incoming, onEnd: onEnd ? [onEnd] : [] };
    this.recompute();
    return record;
  }

  /** Adds a callback to a running roll (the webhook's callback URL). */
  onRollEnd(name: string, rollId: string, onEnd: (record: RollRecord) => Promise<void> | void): void {
    const roll = this.consumers.get(name)?.roll;
    if (roll && roll.record.id === rollId) roll.onEnd.push(onEnd);
  }

  /** A roll of `name` by id (running, ended or superseded), or undefined. */
  roll(name: string, rollId: string): RollRecord | undefined {
    return this.consumers.get(name)?.rolls.find((r) => r.id === rollId);
  }

  /** The latest roll of `name` (running, ended or superseded), if any. */
  lastRoll(name: string): RollRecord | undefined {
    return this.consumers.get(name)?.rolls.at(-1);
  }

  /** The roll of `name` that is running now, if any. */
  runningRoll(name: string): RollRecord | undefined {
    return this.consumers.get(name)?.roll?.record;
  }

  /** Whether every key `name` holds is accepted by its resource, and which versions it holds. */
  health(name: string): { healthy: boolean; versions: string[]; rolling: boolean } | undefined {
    const consumer = this.consumers.get(name);
    if (!consumer) return undefined;
    const ring = this.rings.get(consumer.spec.credential.resourceId);
    const held = holding(consumer);
    const healthy = held.length > 0 && held.every((h) => ring?.accepts(h.key) === true);
    return {
      healthy,
      versions: [...new Set(held.map((h) => h.version))],
      rolling: consumer.roll !== undefined,
    };
  }

  // --- the world: rolls end and consumers reload on the sandbox clock ---

  private nextReloadMs(consumer: ConsumerState): number | undefined {
    const minutes = consumer.spec.reloadMinutes;
    if (minutes === undefined) return undefined;
    // Only a consumer whose secret changed since it last read it has something to reload.
    let current: string | undefined;
    try {
      current = this.vault.getVersion(
        consumer.spec.credential.vault,
        consumer.spec.credential.secret,
        undefined,
      ).state.version;
    } catch {
      return undefined;
    }
    if (consumer.held.length === 1 && consumer.held[0]!.version === current) return undefined;
    const interval = minutes * MINUTE_MS;
    const after = Math.max(consumer.reloadCheckedMs, this.clock.now().getTime() - 1);
    return this.startMs + (Math.floor((after - this.startMs) / interval) + 1) * interval;
  }

  nextDueAt(): number | undefined {
    let min: number | undefined;
    for (const consumer of this.consumers.values()) {
      for (const at of [consumer.roll?.endsMs, this.nextReloadMs(consumer)]) {
        if (at !== undefined && (min === undefined || at < min)) min = at;
      }
    }
    return min;
  }

  async fireDue(now: number): Promise<void> {
    const ended: Array<{ roll: RollState }> = [];
    for (const consumer of this.consumers.values()) {
      const roll = consumer.roll;
      if (roll?.endsMs !== undefined && roll.endsMs <= now) {
        consumer.roll = undefined;
        const failure =
          'error' in roll.incoming
            ? roll.incoming.error
            : consumer.spec.roll.outcome === 'fail'
              ? consumer.spec.roll.failReason || 'the new instances did not become ready'
              : undefined;
        if (failure === undefined && !('error' in roll.incoming)) consumer.held = [roll.incoming];
        roll.record.status = failure === undefined ? 'succeeded' : 'failed';
        roll.record.reason = failure;
        ended.push({ roll });
      }
      const reloadAt = this.nextReloadMs(consumer);
      if (reloadAt !== undefined && reloadAt <= now && !consumer.roll) {
        consumer.reloadCheckedMs = reloadAt;
        const read = this.read(consumer.spec);
        if (
          !('error' in read) &&
          !(consumer.held.length === 1 && consumer.held[0]!.version === read.version)
        ) {
          consumer.reloads.push({
            at: new Date(reloadAt).toISOString(),
            from: consumer.held.map((h) => h.version).join(','),
            to: read.version,
          });
          consumer.held = [read];
        }
      } else if (reloadAt !== undefined && reloadAt <= now) {
        // A consumer being rolled gets its new key from the roll; the tick is spent.
        consumer.reloadCheckedMs = reloadAt;
      }
    }
    this.recompute();
    for (const { roll } of ended) for (const callback of roll.onEnd) await callback(roll.record);
  }

  /** Opens or closes each consumer's downtime interval at the current sandbox instant. */
  recompute(): void {
    const nowMs = this.clock.now().getTime();
    for (const consumer of this.consumers.values()) {
      const ring = this.rings.get(consumer.spec.credential.resourceId);
      const dead = holding(consumer)
        .filter((h) => ring?.accepts(h.key) !== true)
        .map((h) => h.version);
      const uniqueDead = [...new Set(dead)];
      if (uniqueDead.length > 0 && !consumer.open) consumer.open = { fromMs: nowMs, versions: uniqueDead };
      else if (uniqueDead.length > 0 && consumer.open) {
        consumer.open.versions = [...new Set([...consumer.open.versions, ...uniqueDead])];
      } else if (uniqueDead.length === 0 && consumer.open) {
        consumer.intervals.push({
          fromMs: consumer.open.fromMs,
          toMs: nowMs,
          versions: consumer.open.versions,
        });
        consumer.open = undefined;
      }
    }
  }

  describeDowntime(): DowntimeReport {
    const nowMs = this.clock.now().getTime();
    const consumers = [...this.consumers.values()].map((c) => {
      const intervals: DowntimeInterval[] = c.intervals.map((i) => ({
        from: new Date(i.fromMs).toISOString(),
        to: new Date(i.toMs).toISOString(),
        durationMs: i.toMs - i.fromMs,
        versions: i.versions.slice(),
      }));
      const open: DowntimeInterval | null = c.open
        ? {
            from: new Date(c.open.fromMs).toISOString(),
            to: null,
            durationMs: nowMs - c.open.fromMs,
            versions: c.open.versions.slice(),
          }
        : null;
      if (open) intervals.push(open);
      return {
        name: c.spec.name,
        kind: c.spec.kind,
        credential: { ...c.spec.credential },
        intervals,
        open: open ? { ...open, versions: open.versions.slice() } : null,
        totalMs: intervals.reduce((sum, i) => sum + i.durationMs, 0),
      };
    });
    return {
      now: new Date(nowMs).toISOString(),
      totalMs: consumers.reduce((sum, c) => sum + c.totalMs, 0),
      open: consumers.filter((c) => c.open !== null).length,
      intervals: consumers.reduce((sum, c) => sum + c.intervals.length, 0),
      consumers,
    };
  }

  describe(): ConsumerView[] {
    return [...this.consumers.values()].map((c) => {
      const ring = this.rings.get(c.spec.credential.resourceId);
      const held = holding(c);
      return {
        name: c.spec.name,
        kind: c.spec.kind,
        target: structuredClone(c.spec.target),
        credential: { ...c.spec.credential },
        reloadMinutes: c.spec.reloadMinutes ?? null,
        healthUrl: c.spec.healthUrl ?? null,
        holds: held.map((h) => ({ version: h.version, accepted: ring?.accepts(h.key) === true })),
        rolling: c.roll !== undefined,
        rolls: c.rolls.map((r) => ({ ...r })),
        reloads: c.reloads.map((r) => ({ ...r })),
      };
    });
  }
}
