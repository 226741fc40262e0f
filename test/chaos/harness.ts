/**
 * The chaos harness of the run engine: the real engine on Azurite, several workers playing the
 * Functions queue trigger through the real `handleWorkMessage` (what `runWorker` runs), several
 * resume timers calling the real `resumeStalledRuns` (what `resumeRuns` runs), and faults injected
 * everywhere a process or a network can fail:
 *
 * - crashes at every boundary: any store, queue or audit call of an invocation may never return
 *   (before or after it reached Azurite) or fail transiently (before, or after: the answer lost),
 *   and a step may die before or after its effect; a dead invocation stops renewing its message,
 *   which shows again after the visibility timeout (as after a process death);
 * - duplicate, stale and ticketless messages, and deletes that are lost (redeliveries);
 * - clock moves (jumps past leases, waits and grace periods);
 * - a rolling deploy that changes the steps of one kind and removes another;
 * - cancels at any moment, mid-step included.
 *
 * Then a calm phase lets everything finish, and the invariants are checked: every run ended, no
 * effect happened twice, no recorded change went backwards, and every change's audit record is in
 * the audit table. Used by `test/chaos/chaos.test.ts` (fixed seed, bounded) and `bench/chaos.ts`.
 */
import diagnostics from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import type { QueueClient } from '@azure/storage-queue';
import { TransientError } from '../../src/lib/core/errors';
import { newId } from '../../src/lib/core/ids';
import { silentLogger } from '../../src/lib/core/logging';
import { createNotifier } from '../../src/lib/notify/notifier';
import type { Clock } from '../../src/lib/ports/clock';
import type { Notification, NotificationChannel } from '../../src/lib/ports/notifier';
import type { RunStore } from '../../src/lib/ports/runs';
import {
  handleWorkMessage,
  isTerminal,
  type Run,
  RunEngine,
  type RunKindDefinition,
  type StepContext,
  type StepResult,
} from '../../src/lib/runs';
import { createStateStores, type StateStores } from '../../src/lib/state';
import { createQueueClient } from '../../src/lib/state/tables';
import { decode } from '../../src/lib/state/workQueue';

export interface ChaosOptions {
  connectionString: string;
  seed: number;
  /** Runs of the main kind (each started twice at once: its target admits one run). */
  runs: number;
  /** Runs of a kind the deploy removes. */
  legacyRuns: number;
  workers: number;
  sweepers: number;
  /** Wall time of the phase with faults. */
  chaosMs: number;
  /** Wall time the calm phase may take at most for every run to end. */
  calmMs: number;
  /** Probability of a fault per store / queue / audit call during the chaos phase. */
  faultRate: number;
  /** Wall time over which the starts are spread (default: 60% of the chaos phase). */
  startSpreadMs?: number;
  /** No faults and no injections at all (a baseline of the same workload). */
  quiet?: boolean;
  /** Table prefix (unique per call when omitted). */
  prefix?: string;
  log?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  workers: number;
  runs: number;
  wallMs: number;
  outcomes: Record<string, number>;
  /** Runs ended per second, from the first start to the last run's end (wall time). */
  runsPerSecond: number;
  /** Step results recorded (a recording write). */
  stepsRecorded: number;
  /** Step results recorded per second, over the same time as `runsPerSecond`. */
  stepsPerSecond: number;
  tableOps: number;
  tableOpsPerStep: number;
  queueOps: number;
  injected: Record<string, number>;
  deliveries: number;
  poisoned: number;
  /** Runs moved onto the steps of the new version by the deploy. */
  migrations: number;
  /** Runs an instance left for another one (kind or version unknown to it). */
  deferrals: number;
  invariants: {
    unfinished: string[];
    doubleEffects: string[];
    concurrentSteps: string[];
    backwards: string[];
    auditMissing: string[];
    duplicateRuns: string[];
  };
}

/** mulberry32: a small seeded generator, so a seed replays the same fault decisions. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const never = () => new Promise<never>(() => undefined);

/**
 * The harness clock: it flows with wall time and jumps when told; a jump announces itself to the
 * engine (`onAfterMove`) in the same tick, as the sandbox clock does, so that steps past their
 * abort time stop before anyone can see their lease expired.
 */
export class ChaosClock implements Clock {
  private offset = 0;
  private readonly wallStart = Date.now();
  private readonly hooks: Array<() => Promise<void>> = [];
  constructor(private readonly start: Date) {}
  now(): Date {
    return new Date(this.start.getTime() + (Date.now() - this.wallStart) + this.offset);
  }
  onAfterMove(hook: () => Promise<void>): void {
    this.hooks.push(hook);
  }
  advance(ms: number): Promise<unknown> {
    this.offset += ms;
    return Promise.all(this.hooks.map((hook) => hook()));
  }
}

type Fault = 'none' | 'crash-before' | 'crash-after' | 'error-before' | 'error-after';

/** One invocation: its faults, and whether it died (then it stops renewing its message). */
class Invocation {
  dead = false;
  /** The steps in flight in this invocation: a death takes them with it. */
  readonly steps = new Set<string>();
  readonly died: Promise<void>;
  private markDead!: () => void;
  constructor(readonly chaos: Chaos) {
    this.died = new Promise((resolve) => {
      this.markDead = resolve;
    });
  }
  die(): Promise<never> {
    if (!this.dead) {
      this.dead = true;
      this.chaos.count('death');
      for (const key of this.steps) this.chaos.inFlight.delete(key);
      this.markDead();
    }
    return never();
  }
  fault(): Fault {
    if (!this.chaos.faulty) return 'none';
    const r = this.chaos.rng();
    const p = this.chaos.options.faultRate;
    if (r < p * 0.2) return 'crash-before';
    if (r < p * 0.4) return 'crash-after';
    if (r < p * 0.8) return 'error-before';
    if (r < p) return 'error-after';
    return 'none';
  }
  /** `target` with every method of it subject to this invocation's faults. */
  wrap<T extends object>(target: T, name: string): T {
    return new Proxy(target, {
      get: (obj, prop, receiver) => {
        const value = Reflect.get(obj, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (this.dead) return never();
          const fault = this.fault();
          if (fault !== 'none') this.chaos.count(`${fault}`);
          if (fault === 'crash-before') return this.die();
          if (fault === 'error-before') throw new TransientError(`chaos: ${name}.${String(prop)} failed`);
          const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(obj, args);
          if (fault === 'crash-after') return this.die();
          if (fault === 'error-after') throw new TransientError(`chaos: ${name}.${String(prop)} answer lost`);
          return result;
        };
      },
    });
  }
}

/** A channel that is down now and then. */
class FlakyChannel implements NotificationChannel {
  readonly name = 'ops';
  readonly kind = 'chaos';
  readonly sent: Notification[] = [];
  constructor(private readonly chaos: Chaos) {}
  async send(notification: Notification): Promise<void> {
    if (this.chaos.faulty && this.chaos.rng() < 0.2) throw new TransientError('chaos: channel down');
    this.sent.push(notification);
  }
}

/** Everything the harness shares: options, the generator, the counters, the world. */
class Chaos {
  readonly rng: () => number;
  faulty = true;
  readonly injected: Record<string, number> = {};
  /** Effects applied, per token (a step of a run): more than one is a violation. */
  readonly effects = new Map<string, number>();
  readonly inFlight = new Set<string>();
  readonly concurrent: string[] = [];
  constructor(readonly options: ChaosOptions) {
    this.rng = random(options.seed);
  }
  count(what: string): void {
    this.injected[what] = (this.injected[what] ?? 0) + 1;
  }
}

/**
 * A step that acts on the world once: check, then act (as every step must). It may die before or
 * after the effect, fail transiently, or wait once. Two executions of one step at the same time
 * (a lease violated) are caught by the `inFlight` set; an effect applied twice by `effects`.
 */
function step(
  chaos: Chaos,
  token: string,
  inv: Invocation | undefined,
  options: { waitOnce?: boolean } = {},
) {
  return async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    const key = `${run.id}:${token}`;
    if (options.waitOnce && (run.steps[run.currentStep]?.waits ?? 0) === 0) {
      return { status: 'wait', delayMs: 1_500 };
    }
    if (chaos.inFlight.has(key)) chaos.concurrent.push(key);
    chaos.inFlight.add(key);
    inv?.steps.add(key);
    try {
      if (chaos.faulty && chaos.rng() < 0.05) throw new TransientError(`chaos: ${token} hit a throttle`);
      if (inv && chaos.faulty && chaos.rng() < 0.01) await inv.die();
      if (!chaos.effects.has(key)) {
        await sleep(Math.floor(chaos.rng() * 20));
        // A dead process acts no more; a step past its abort time must not act either.
        if (inv?.dead) await never();
        if (ctx.abortSignal.aborted) throw ctx.abortSignal.reason;
        chaos.effects.set(key, (chaos.effects.get(key) ?? 0) + 1);
      }
      if (inv && chaos.faulty && chaos.rng() < 0.01) await inv.die();
      return { status: 'done', output: { token } };
    } finally {
      chaos.inFlight.delete(key);
      inv?.steps.delete(key);
    }
  };
}

/** The kinds of the two deployments, as one invocation runs them. */
function kinds(chaos: Chaos, inv: Invocation | undefined, version: 1 | 2): RunKindDefinition[] {
  const s = (name: string, token = name, waitOnce = false) => ({
    name,
    run: step(chaos, token, inv, { waitOnce }),
  });
  const undo = (name: string, token = name) => ({
    ...s(name, token),
    compensate: step(chaos, `undo-${token}`, inv),
  });
  const common = {
    kind: 'chaos',
    target: { exclusive: true },
    retry: { maxAttempts: 6, baseDelayMs: 200, maxDelayMs: 1_000 },
    deadlineMs: 10 * 60_000,
  };
  const main: RunKindDefinition =
    version === 1
      ? { ...common, version: 1, steps: [undo('a'), s('b', 'b', true), undo('c'), s('d')] }
      : {
          ...common,
          version: 2,
          steps: [undo('a'), s('b', 'b', true), undo('c2', 'c'), s('d'), s('e')],
          migrate: ({ step: name }) =>
            name === 'c' ? 'c2' : ['a', 'b', 'd'].includes(name) ? name : undefined,
        };
  const legacy: RunKindDefinition = { kind: 'legacy', steps: [s('x'), s('y', 'y', true)] };
  return version === 1 ? [main, legacy] : [main];
}

interface Written {
  run: Run;
}

/**
 * Watches every successful write to the runs table (beneath the faults): nothing may go backwards,
 * and every audit record written in an outbox must end up in the audit table.
 */
class Monitor {
  readonly versions = new Map<string, Written>();
  readonly backwards: string[] = [];
  readonly auditIds = new Map<string, Set<string>>();
  stepsRecorded = 0;
  migrations = 0;
  deferrals = 0;
  /** When (wall ms) the last run ended. */
  lastEndAt = 0;

  store(inner: RunStore): RunStore {
    const store = Object.create(inner) as RunStore;
    const remember = (run: Run) => {
      this.versions.set(run.etag, { run });
      const ids = this.auditIds.get(run.id) ?? new Set<string>();
      for (const entry of run.outbox) if (entry.type === 'audit') ids.add(entry.id);
      this.auditIds.set(run.id, ids);
    };
    store.create = async (run, options) => {
      const created = await inner.create(run, options);
      remember(created);
      return created;
    };
    store.createForTarget = async (run, lockKey, lock, options) => {
      const created = await inner.createForTarget(run, lockKey, lock, options);
      remember(created);
      return created;
    };
    store.update = async (run, options) => {
      const before = this.versions.get(run.etag)?.run;
      const written = await inner.update(run, options);
      if (before) this.compare(before, written);
      remember(written);
      return written;
    };
    return store;
  }

  private compare(before: Run, after: Run): void {
    const problem = (what: string) => this.backwards.push(`${after.id}: ${what}`);
    if (after.ticket < before.ticket) problem(`ticket ${before.ticket} -> ${after.ticket}`);
    if (isTerminal(before.state) && after.state !== before.state)
      problem(`${before.state} -> ${after.state}`);
    if (after.kindVersion < before.kindVersion)
      problem(`version ${before.kindVersion} -> ${after.kindVersion}`);
    if (before.state === 'cancelling' && ['pending', 'waiting', 'awaiting-approval'].includes(after.state))
      problem(`cancelling -> ${after.state}`);
    if (after.kindVersion === before.kindVersion && after.currentStep < before.currentStep)
      problem(`step ${before.currentStep} -> ${after.currentStep}`);
    for (const old of before.steps) {
      const now = after.steps.find((s) => s.name === old.name);
      if (!now) {
        if (after.kindVersion === before.kindVersion) problem(`step ${old.name} vanished`);
        continue;
      }
      if (old.status === 'done' && now.status !== 'done') problem(`step ${old.name} done -> ${now.status}`);
      if (now.attempts < old.attempts && !(old.status === 'running' && now.status === 'running'))
        problem(`step ${old.name} attempts ${old.attempts} -> ${now.attempts}`);
    }
    if (before.lease && !after.lease && after.ticket > before.ticket) this.stepsRecorded++;
    if (after.kindVersion > before.kindVersion) this.migrations++;
    if (isTerminal(after.state) && !isTerminal(before.state)) this.lastEndAt = Date.now();
    if (after.deferredSince && !before.deferredSince) this.deferrals++;
  }
}

/** Counts the HTTP requests this process sends to the Table and Queue endpoints. */
function countRequests(connectionString: string) {
  const port = (name: string) =>
    new RegExp(`${name}Endpoint=https?://[^:/;]+:(\\d+)`).exec(connectionString)?.[1];
  const tablePort = port('Table');
  const queuePort = port('Queue');
  const counts = { table: 0, queue: 0 };
  const listener = (message: unknown) => {
    const request = (message as { request?: ClientRequest }).request;
    const host = String(request?.getHeader('host') ?? '');
    if (tablePort && host.endsWith(`:${tablePort}`)) counts.table++;
    else if (queuePort && host.endsWith(`:${queuePort}`)) counts.queue++;
  };
  diagnostics.subscribe('http.client.request.start', listener);
  return { counts, stop: () => diagnostics.unsubscribe('http.client.request.start', listener) };
}

/** Runs the harness once and returns what it saw. Never throws for a violated invariant: it reports it. */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const chaos = new Chaos(options);
  if (options.quiet) chaos.faulty = false;
  const clock = new ChaosClock(new Date('2026-11-27T10:00:00Z'));
  const prefix = options.prefix ?? `chaos${newId().replace(/-/g, '').slice(0, 8)}`;
  const stores: StateStores = createStateStores({
    connectionString: options.connectionString,
    tablePrefix: prefix,
    workQueueName: `${prefix}-work`,
    clock,
  });
  await stores.ensure();
  const queue: QueueClient = createQueueClient(options.connectionString, stores.names.workQueue);
  const monitor = new Monitor();
  const runsStore = monitor.store(stores.runs);
  const channel = new FlakyChannel(chaos);
  let deployment: 'v1' | 'rolling' | 'v2' = 'v1';
  // Audit outages: for a while every append fails (the audit table is throttled or down).
  let auditDownUntil = 0;
  const audit = Object.create(stores.audit) as typeof stores.audit;
  audit.append = async (record, opts) => {
    if (Date.now() < auditDownUntil) throw new TransientError('chaos: audit table unavailable (503)');
    return stores.audit.append(record, opts);
  };
  const engineOptions = {
    leaseMs: 3_000,
    stallThresholdMs: 1_500,
    maxQueueDelayMs: 500,
    deployGraceMs: 3_000,
    cancelPollMs: 100,
    watchPollMs: 50,
  };
  /** The engine of one invocation: this deployment's kinds, the invocation's faults. */
  const engineFor = (inv: Invocation | undefined) => {
    const version = deployment === 'v1' ? 1 : deployment === 'v2' ? 2 : chaos.rng() < 0.5 ? 1 : 2;
    const wrap = <T extends object>(target: T, name: string) => (inv ? inv.wrap(target, name) : target);
    return new RunEngine({
      runs: wrap(runsStore, 'runs'),
      queue: wrap(stores.workQueue, 'queue'),
      audit: wrap(audit, 'audit'),
      clock,
      logger: silentLogger,
      kinds: kinds(chaos, inv, version),
      notify: {
        notifier: createNotifier([{ channel, minSeverity: 'info' }], silentLogger),
        idempotency: stores.idempotency,
        defaultChannels: ['ops'],
        idempotencyTtlMs: 86_400_000,
        claimLeaseMs: 10_000,
      },
      options: engineOptions,
    });
  };
  const requests = countRequests(options.connectionString);
  const started = Date.now();
  let stopping = false;
  let deliveries = 0;
  let poisoned = 0;
  const recent: Array<{ runId: string; ticket?: number }> = [];

  // --- the queue trigger: receive, invoke, renew while alive, delete / release / poison
  const VISIBILITY_S = 2;
  const invoke = async (item: {
    messageId: string;
    popReceipt: string;
    dequeueCount: number;
    messageText: string;
  }) => {
    deliveries++;
    const inv = new Invocation(chaos);
    let receipt = item.popReceipt;
    // The host keeps the message invisible while the invocation lives; a dead one stops renewing.
    let renewal: Promise<unknown> = Promise.resolve();
    const renewer = setInterval(() => {
      if (inv.dead) return;
      renewal = renewal.then(async () => {
        try {
          const renewed = await queue.updateMessage(item.messageId, receipt, undefined, VISIBILITY_S);
          receipt = renewed.popReceipt ?? receipt;
        } catch {
          // Lost: the message shows again, as it would in the host.
        }
      });
    }, 800);
    const body = decode(item.messageText);
    if (body) recent.push({ runId: body.runId, ticket: body.ticket });
    if (recent.length > 200) recent.shift();
    let outcome: 'ok' | 'error' | 'dead';
    try {
      const work = handleWorkMessage(
        engineFor(inv),
        body ?? item.messageText,
        { messageId: item.messageId, invocationId: newId() },
        silentLogger,
      );
      outcome = await Promise.race([work.then(() => 'ok' as const), inv.died.then(() => 'dead' as const)]);
    } catch {
      outcome = 'error';
    }
    clearInterval(renewer);
    await renewal;
    if (outcome === 'dead') return; // the message shows again after its visibility timeout
    try {
      if (outcome === 'ok') {
        // A lost delete: the message is delivered again (a duplicate with the same id).
        if (chaos.faulty && chaos.rng() < 0.03) {
          chaos.count('lost-delete');
          await queue.updateMessage(item.messageId, receipt, undefined, 0);
        } else await queue.deleteMessage(item.messageId, receipt);
      } else if (item.dequeueCount >= 5) {
        poisoned++;
        await queue.deleteMessage(item.messageId, receipt);
      } else {
        await queue.updateMessage(item.messageId, receipt, undefined, 0);
      }
    } catch {
      // The receipt changed (the message showed again meanwhile): the other delivery settles it.
    }
  };
  const worker = async () => {
    while (!stopping) {
      let items: Awaited<ReturnType<QueueClient['receiveMessages']>>['receivedMessageItems'] = [];
      try {
        items = (await queue.receiveMessages({ numberOfMessages: 4, visibilityTimeout: VISIBILITY_S }))
          .receivedMessageItems;
      } catch {
        await sleep(50);
        continue;
      }
      if (items.length === 0) {
        await sleep(50);
        continue;
      }
      await Promise.all(items.map(invoke));
    }
  };
  const sweeper = async () => {
    while (!stopping) {
      const inv = new Invocation(chaos);
      await Promise.race([
        engineFor(inv)
          .resumeStalledRuns({ budget: 50 })
          .catch(() => undefined),
        inv.died,
      ]);
      await sleep(300);
    }
  };
  // --- the faults that come from outside the invocations
  // One injection every 150 ms, in a fixed rotation (so every kind of fault happens in any run of
  // a few seconds), on runs picked by the generator among the messages delivered lately.
  const rotation = ['duplicate', 'clock-move', 'stale', 'ticketless', 'duplicate', 'audit-outage'];
  rotation.push('ticketless', 'duplicate', 'stale', 'clock-move', 'duplicate', 'cancel');
  const injector = async () => {
    const admin = () => engineFor(undefined);
    for (let i = 0; !stopping && chaos.faulty; i++) {
      await sleep(150);
      const kind = rotation[i % rotation.length]!;
      const pick = recent[Math.floor(chaos.rng() * recent.length)];
      if (!pick && kind !== 'clock-move' && kind !== 'audit-outage') continue;
      try {
        chaos.count(kind);
        if (kind === 'duplicate') {
          await stores.workQueue.send({
            runId: pick!.runId,
            ...(pick!.ticket !== undefined ? { ticket: pick!.ticket } : {}),
          });
        } else if (kind === 'stale') {
          await stores.workQueue.send({ runId: pick!.runId, ticket: Math.max(0, (pick!.ticket ?? 1) - 1) });
        } else if (kind === 'ticketless') {
          await stores.workQueue.send({ runId: pick!.runId });
        } else if (kind === 'clock-move') {
          void clock.advance(500 + Math.floor(chaos.rng() * 4_000));
        } else if (kind === 'audit-outage') {
          auditDownUntil = Date.now() + 300 + Math.floor(chaos.rng() * 700);
        } else if (kind === 'cancel') {
          await admin().cancelRun(pick!.runId, { reason: 'chaos cancel', actor: 'user:chaos' });
        }
      } catch {
        // An injection that fails (a cancel lost to a race) is still an injection tried.
      }
    }
  };

  // --- start the runs: each target twice at once (one run per target), with retries on failure
  const starts: Promise<unknown>[] = [];
  const startOne = async (kind: string, target: string) => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const inv = new Invocation(chaos);
      const result = await Promise.race([
        engineFor(inv)
          .startRun(kind, { target, correlationId: newId(), actor: 'system:chaos' })
          .catch(() => undefined),
        inv.died.then(() => undefined),
      ]);
      if (result) return result;
      await sleep(100);
    }
    return undefined;
  };
  const loops = [
    ...Array.from({ length: options.workers }, worker),
    ...Array.from({ length: options.sweepers }, sweeper),
    injector(),
  ];
  // The deploy rolls out a third of the way into the chaos phase, over a tenth of it, so that it
  // finds runs in flight (starts are spread over the first 60% by default).
  const deploy = (async () => {
    await sleep(options.chaosMs * 0.3);
    deployment = 'rolling';
    log('chaos: rolling deploy');
    await sleep(options.chaosMs * 0.1);
    deployment = 'v2';
    log('chaos: deployed');
  })();
  const spread = options.startSpreadMs ?? options.chaosMs * 0.6;
  const spacing = spread / Math.max(1, options.runs + options.legacyRuns);
  for (let i = 0; i < options.legacyRuns; i++) starts.push(startOne('legacy', `legacy/l${i}`));
  for (let i = 0; i < options.runs; i++) {
    starts.push(startOne('chaos', `targets/t${i}`), startOne('chaos', `TARGETS/T${i}`));
    await sleep(spacing);
  }
  await Promise.all(starts);
  log(`chaos: started ${options.runs} + ${options.legacyRuns} runs in ${Date.now() - started} ms`);
  await deploy;
  await sleep(Math.max(0, options.chaosMs - (Date.now() - started)));

  // --- calm: no more faults; the clock moves on so that leases, waits and graces run out
  chaos.faulty = false;
  log('chaos: calm phase');
  const calmEnd = Date.now() + options.calmMs;
  let all: Run[] = [];
  while (Date.now() < calmEnd) {
    await sleep(500);
    await clock.advance(2_000);
    all = await stores.runs.list({ limit: 10_000 });
    const index = await stores.runs.listActive({ limit: 1000 });
    if (all.every((r) => isTerminal(r.state)) && index.entries.length === 0) break;
  }
  stopping = true;
  await Promise.all(loops);
  const wallMs = Date.now() - started;
  requests.stop();

  // --- invariants
  all = await stores.runs.list({ limit: 10_000 });
  const unfinished = all.filter((r) => !isTerminal(r.state)).map((r) => `${r.id} ${r.state}`);
  const doubleEffects = [...chaos.effects.entries()].filter(([, n]) => n > 1).map(([k, n]) => `${k} x${n}`);
  // One active run per exclusive target: two runs of one target must not have been active at once.
  const byTarget = new Map<string, Run[]>();
  for (const run of all.filter((r) => r.kind === 'chaos')) {
    const target = run.target.toLowerCase();
    byTarget.set(target, [...(byTarget.get(target) ?? []), run]);
  }
  const duplicateRuns: string[] = [];
  for (const [target, runs] of byTarget) {
    const sorted = runs.sort((a, b) => a.createdOn.getTime() - b.createdOn.getTime());
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.createdOn.getTime() < sorted[i - 1]!.updatedOn.getTime()) {
        duplicateRuns.push(`${target}: ${sorted[i - 1]!.id} and ${sorted[i]!.id} overlap`);
      }
    }
  }
  const auditMissing: string[] = [];
  const since = new Date('2026-11-26T00:00:00Z');
  const until = new Date(clock.now().getTime() + 86_400_000);
  for (const run of all) {
    const records = await stores.audit.query({ since, until, target: run.target, limit: 1000 });
    const have = new Set(records.map((r) => r.id));
    for (const id of monitor.auditIds.get(run.id) ?? []) if (!have.has(id)) auditMissing.push(id);
    if (!records.some((r) => r.action.endsWith('.start'))) auditMissing.push(`${run.id}: no start record`);
  }
  const outcomes: Record<string, number> = {};
  for (const run of all) {
    const key = run.state === 'failed' ? `failed:${run.error?.code}` : run.state;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
  }
  const ended = all.length - unfinished.length;
  const busySeconds = Math.max(1, (monitor.lastEndAt || Date.now()) - started) / 1000;
  const report: ChaosReport = {
    seed: options.seed,
    workers: options.workers,
    runs: all.length,
    wallMs,
    outcomes,
    runsPerSecond: ended / busySeconds,
    stepsPerSecond: monitor.stepsRecorded / busySeconds,
    stepsRecorded: monitor.stepsRecorded,
    tableOps: requests.counts.table,
    tableOpsPerStep: monitor.stepsRecorded > 0 ? requests.counts.table / monitor.stepsRecorded : 0,
    queueOps: requests.counts.queue,
    injected: chaos.injected,
    deliveries,
    poisoned,
    migrations: monitor.migrations,
    deferrals: monitor.deferrals,
    invariants: {
      unfinished,
      doubleEffects,
      concurrentSteps: chaos.concurrent,
      backwards: monitor.backwards,
      auditMissing,
      duplicateRuns,
    },
  };
  log(`chaos: ${JSON.stringify(report)}`);
  return report;
}
