/**
 * The run engine: starts runs and advances them one step per work message. It owns the
 * discipline of the step machine (decision 0002):
 *
 * - a lease taken by an ETag-conditional write before a step runs, owned by the work message and
 *   its ticket (a redelivery of the same message takes its own lease back);
 * - the step's abort signal follows the injected clock and fires before the lease expires;
 * - the result recorded by another conditional write, which also releases the lease and carries
 *   the change's audit records and notifications in the run's outbox (flushed right after, and
 *   by whoever writes next);
 * - then the next message, delayed for waits and backoffs (physical delays capped, then checked
 *   again against `dueOn` by the injected clock).
 *
 * A crash anywhere in between is recovered by `resumeStalledRuns`, which reads only the index of
 * active runs, re-sends a stalled run's message under the SAME ticket (so a message still waiting
 * in a backlog stays valid), and backs off while a resumed run makes no progress. Because every
 * message carries the run's ticket, a duplicate or late message never runs a step twice.
 */
import {
  ConfigurationError,
  ConflictError,
  isRetryable,
  isStampkeeperError,
  NotFoundError,
  ValidationError,
} from '../core/errors';
import { newId, stableHash } from '../core/ids';
import { type Logger, silentLogger } from '../core/logging';
import { redact, redactText } from '../core/redact';
import type { Clock } from '../ports/clock';
import type { ActiveRunEntry, CallOptions, RunStore, WorkMessage, WorkQueue } from '../ports/runs';
import type { AuditLog, AuditOutcome } from '../ports/state';
import {
  channelsOf,
  DEFAULT_DEADLINE_MS,
  type RegisteredKind,
  type RunKindDefinition,
  type StepHandler,
  validateKind,
} from './kinds';
import { auditEntry, flushedHere, flushOutbox, noticeEntry, type RunNotifyDeps, unflushed } from './outbox';
import {
  type AdvanceCheck,
  applyError,
  applyResult,
  approveTransition,
  beginStep,
  cancelTransition,
  checkAdvance,
  DEFAULT_RETRY,
  failTransition,
  isCompensating,
  isStalled,
  migrateRun,
  parkForApproval,
  rejectTransition,
  requestCancel,
  resumeTransition,
  type StepResult,
  type Transition,
} from './rules';
import { isTerminal, type JsonObject, type OutboxEntry, type Run, type RunError } from './types';
import { StepAbortedError, StepWatch } from './watch';

export type { RunKindDefinition, StepContext, StepDefinition, StepHandler } from './kinds';
export { parseWorkMessage } from './messages';
export type { RunNotifyDeps } from './outbox';
export type { StepResult } from './rules';
export { StepAbortedError } from './watch';

export interface RunEngineOptions {
  /** How long a worker holds a run while executing a step. Must exceed the function timeout. */
  leaseMs?: number;
  /**
   * host.json's `functionTimeout`: when given, the lease must outlast it by `MIN_LEASE_MARGIN_MS`
   * (checked here, at start-up) and the step's abort signal fires before it.
   */
  functionTimeoutMs?: number;
  /** How overdue a run's next message may be before the resume timer re-sends it. */
  stallThresholdMs?: number;
  /** Default actor of runs started without one. */
  actor?: string;
  /**
   * Longest physical queue delay (Storage allows 7 days). A message that shows before its run is
   * due by the injected clock is sent again for the rest: on a clock that is not the wall clock
   * (the sandbox's), a small cap makes a move of that clock take effect within the cap.
   */
  maxQueueDelayMs?: number;
  /** Active runs the resume timer looks at per tick (the next tick continues after them). */
  sweepBudget?: number;
  /**
   * How long a run whose kind or version this instance does not know is left for another instance
   * (a rolling deploy) before it fails.
   */
  deployGraceMs?: number;
  /** How often (wall ms) a worker reads the run while a step is in flight, to see a cancel. */
  cancelPollMs?: number;
  /** How often (wall ms) a worker looks at the clock while a step is in flight. */
  watchPollMs?: number;
}

export interface RunEngineDeps {
  runs: RunStore;
  queue: WorkQueue;
  audit: AuditLog;
  clock: Clock;
  logger?: Logger;
  kinds: RunKindDefinition[];
  /** Notifications of runs that fail or await an approval; none are sent without it. */
  notify?: RunNotifyDeps;
  options?: RunEngineOptions;
}

export interface StartRunRequest {
  target: string;
  input?: JsonObject;
  dryRun?: boolean;
  correlationId: string;
  actor?: string;
  /** The same key for the same kind always yields the same run. */
  idempotencyKey?: string;
  /**
   * For a kind with an exclusive target that has an active run: return that run (default), or
   * refuse with a 409 `ConflictError` naming it.
   */
  ifActive?: 'return' | 'refuse';
}

export type AdvanceStatus = 'advanced' | 'notFound' | 'deferred' | Exclude<AdvanceCheck, 'ok'>;

export interface AdvanceOutcome {
  status: AdvanceStatus;
  run?: Run;
  /** The step that was executed ('advanced' by a step only). */
  step?: string;
  /** What was decided without running a step: `migrated`, `parked`, `expired`, `deadline`, `cancelled`, `unmappable`. */
  decision?: string;
}

/** What `executeStep` did: the recorded run and the message it still owes. */
export interface ExecutedStep {
  outcome: AdvanceOutcome;
  next?: WorkMessage & { delayMs: number };
}

export interface SweepResult {
  /** Index entries looked at in this tick. */
  visited: number;
  /** Runs whose message was re-sent. */
  resumed: string[];
  /** Runs failed by the sweep (a step abandoned on its last attempt). */
  failed: string[];
  /** Finished runs whose outbox was flushed and which left the index. */
  finished: string[];
  /** Runs whose visit failed (the others were still visited). */
  errors: string[];
  /** Whether the index goes on past this tick's budget (the next tick continues there). */
  more: boolean;
}

export const DEFAULT_LEASE_MS = 10 * 60_000;
export const DEFAULT_STALL_THRESHOLD_MS = 5 * 60_000;
/** Storage queues hide a message for at most 7 days. */
export const MAX_QUEUE_DELAY_MS = 7 * 86_400_000;
export const DEFAULT_SWEEP_BUDGET = 1000;
export const MAX_SWEEP_BUDGET = 10_000;
export const DEFAULT_DEPLOY_GRACE_MS = 30 * 60_000;
/** The lease must outlast `functionTimeout` by at least this (time to record after an abort). */
export const MIN_LEASE_MARGIN_MS = 60_000;
const MAX_TARGET_CHARS = 1024;
/** Bounds what one step may keep as output, so a run entity stays far below the Table limits. */
export const MAX_STEP_OUTPUT_CHARS = 8 * 1024;
export const MAX_INPUT_CHARS = 16 * 1024;
const MAX_COMMENT_CHARS = 1000;
/** How often a deferred run (unknown kind or version) is looked at again. */
const DEFER_POLL_MS = 60_000;
/** Attempts at taking the lease when the run changed between the read and the write. */
const LEASE_ROUNDS = 3;
/** Attempts at recording a result (re-read after a conflict while the lease is ours; transient errors). */
const RECORD_ROUNDS = 5;
const SWEEP_PARALLEL = 8;
/** Outbox entries carried from change to change while flushing fails, at most (then writes wait). */
const MAX_CARRIED_OUTBOX_CHARS = 24 * 1024;

/**
 * Checks that a lease outlasts the function timeout, as start-up must: a lease that expires while
 * the invocation may still run lets a second worker take a step that is still acting. Throws
 * `ConfigurationError` naming both values.
 */
export function checkLeaseCoversTimeout(leaseMs: number, functionTimeoutMs: number): void {
  if (!Number.isFinite(leaseMs) || !Number.isFinite(functionTimeoutMs) || functionTimeoutMs <= 0) {
    throw new ConfigurationError('Run lease and functionTimeout must be finite, positive durations');
  }
  if (leaseMs < functionTimeoutMs + MIN_LEASE_MARGIN_MS) {
    throw new ConfigurationError(
      `The run lease (${leaseMs} ms) must exceed host.json functionTimeout (${functionTimeoutMs} ms) by at least ${MIN_LEASE_MARGIN_MS} ms`,
    );
  }
}

/**
 * When a step's abort signal fires, after the step began: before the lease expires with a margin
 * (a tenth of the lease, 1 s to 60 s), and before the runtime's `functionTimeout` with time left
 * to record the result (a tenth of it, at most 30 s).
 */
export function abortAfterMs(leaseMs: number, functionTimeoutMs?: number): number {
  const margin = Math.max(1_000, Math.min(MIN_LEASE_MARGIN_MS, leaseMs / 10));
  const byLease = leaseMs - margin;
  if (functionTimeoutMs === undefined) return byLease;
  return Math.min(byLease, functionTimeoutMs - Math.min(30_000, functionTimeoutMs / 10));
}

type StepOutcome =
  | { type: 'result'; result: StepResult }
  | { type: 'error'; error: RunError; retryable: boolean; cancelled: boolean };

/**
 * Results of steps whose recording write failed transiently, kept for the life of the process:
 * a redelivery of the same message (same lease owner) records the result instead of running the
 * step again. Across processes, the step runs again (check, then act), with `attempt` > 1.
 */
const pendingResults = new Map<string, { ticket: number; step: number; outcome: StepOutcome }>();
const MAX_PENDING = 10_000;

/** For tests: forget results pending in this process. */
export function clearPendingResults(): void {
  pendingResults.clear();
}

/** The lock key (and partition) of an exclusive target: targets compare case-insensitively. */
function targetLockKey(def: RunKindDefinition, kind: string, target: string): string {
  return `t-${stableHash('target', def.target?.scope ?? kind, target.trim().toLowerCase())}`;
}

/** Signals that `prepare` lost a race and the run must be read again. */
const RETRY = Symbol('retry');

export class RunEngine {
  private readonly kinds = new Map<string, RegisteredKind>();
  private readonly logger: Logger;
  private readonly leaseMs: number;
  private readonly abortAfterMs: number;
  private readonly stallThresholdMs: number;
  private readonly defaultActor: string;
  private readonly maxQueueDelayMs: number;
  private readonly sweepBudget: number;
  private readonly deployGraceMs: number;
  private readonly cancelPollMs: number;
  private readonly watchPollMs: number;

  constructor(private readonly deps: RunEngineDeps) {
    const o = deps.options ?? {};
    this.logger = deps.logger ?? silentLogger;
    this.leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
    this.stallThresholdMs = o.stallThresholdMs ?? DEFAULT_STALL_THRESHOLD_MS;
    this.defaultActor = o.actor ?? 'system:runs';
    this.maxQueueDelayMs = o.maxQueueDelayMs ?? MAX_QUEUE_DELAY_MS;
    this.sweepBudget = o.sweepBudget ?? DEFAULT_SWEEP_BUDGET;
    this.deployGraceMs = o.deployGraceMs ?? DEFAULT_DEPLOY_GRACE_MS;
    this.cancelPollMs = o.cancelPollMs ?? 5_000;
    this.watchPollMs = o.watchPollMs ?? 1_000;
    const problems: string[] = [];
    const positive = (name: string, value: number, max = Number.MAX_SAFE_INTEGER) => {
      if (!Number.isFinite(value) || value <= 0 || value > max)
        problems.push(`${name} must be a positive number`);
    };
    positive('leaseMs', this.leaseMs);
    positive('stallThresholdMs', this.stallThresholdMs);
    positive('maxQueueDelayMs', this.maxQueueDelayMs, MAX_QUEUE_DELAY_MS);
    positive('deployGraceMs', this.deployGraceMs);
    positive('cancelPollMs', this.cancelPollMs);
    positive('watchPollMs', this.watchPollMs);
    if (!Number.isInteger(this.sweepBudget) || this.sweepBudget < 1 || this.sweepBudget > MAX_SWEEP_BUDGET)
      problems.push(`sweepBudget must be an integer from 1 to ${MAX_SWEEP_BUDGET}`);
    if (problems.length > 0) throw new ConfigurationError('Invalid run engine options', problems);
    if (o.functionTimeoutMs !== undefined) checkLeaseCoversTimeout(this.leaseMs, o.functionTimeoutMs);
    this.abortAfterMs = abortAfterMs(this.leaseMs, o.functionTimeoutMs);
    if (this.abortAfterMs <= 0) {
      throw new ConfigurationError('Invalid run engine options', [
        'leaseMs (and functionTimeoutMs) leave a step no time before its abort: use at least 2000 ms',
      ]);
    }
    for (const kind of deps.kinds) this.register(kind);
  }

  /** Adds a run kind; throws `ValidationError` for a duplicate kind, no step or a bad step name. */
  register(definition: RunKindDefinition): void {
    const kind = validateKind(definition, new Set(this.kinds.keys()));
    this.kinds.set(kind.kind, kind);
  }

  /**
   * Creates a run and enqueues its first work message. With an `idempotencyKey`, a second call
   * returns the existing run (`created: false`). For a kind with an exclusive target, a start for
   * a target that has an active run returns that run (`created: false`) or refuses (409, naming it);
   * two concurrent starts create exactly one run. The run, its index entry and its start record are
   * written before the first message: when that send fails, the run is still started (the resume
   * timer sends it), so a caller never retries into a second run. Bad input throws
   * `ValidationError` and writes nothing.
   */
  async startRun(
    kind: string,
    request: StartRunRequest,
    options: CallOptions = {},
  ): Promise<{ run: Run; created: boolean }> {
    const definition = this.kinds.get(kind);
    const input = validateStart(kind, definition !== undefined, request);
    const def = definition!;
    const now = this.deps.clock.now();
    const key = request.idempotencyKey;
    const lockKey = def.target?.exclusive ? targetLockKey(def, kind, request.target) : undefined;
    const id = lockKey
      ? `${lockKey}.${key !== undefined ? `k${stableHash('run', kind, key)}` : newId()}`
      : key !== undefined
        ? `r-${stableHash('run', kind, key)}`
        : newId();
    const fresh: Omit<Run, 'etag'> = {
      id,
      kind,
      kindVersion: def.version,
      target: request.target,
      state: 'pending',
      steps: def.steps.map((s) => ({ name: s.name, status: 'pending', attempts: 0 })),
      currentStep: 0,
      input,
      dryRun: request.dryRun ?? false,
      correlationId: request.correlationId,
      actor: request.actor ?? this.defaultActor,
      createdOn: now,
      updatedOn: now,
      dueOn: now,
      deadline: new Date(now.getTime() + def.deadlineMs),
      ticket: 0,
      resumes: 0,
      outbox: [],
    };
    if (key !== undefined) fresh.idempotencyKey = key;
    fresh.outbox = [auditEntry(fresh, 'start', 'planned', { before: { state: 'none' } })];

    if (key !== undefined) {
      const existing = await this.deps.runs.get(id, options);
      if (existing) return { run: existing, created: false };
    }
    let run: Run | undefined;
    let indexed = false;
    const index = async () => {
      if (indexed) return;
      // Before the run exists: a run is never active without its index entry.
      await this.deps.runs.addActive({ runId: id, kind, addedOn: now }, options);
      indexed = true;
    };
    const unindex = () =>
      indexed ? this.deps.runs.removeActive(id, options).catch(() => undefined) : undefined;
    // A create whose answer was lost is tried again with the same id: a conflict then is our own
    // run (same correlation id and start time), so a retry inside this call never makes a second one.
    const ours = (existing: Run | undefined) =>
      existing !== undefined &&
      existing.correlationId === fresh.correlationId &&
      existing.createdOn.getTime() === fresh.createdOn.getTime();
    let uncertain = false;
    if (lockKey) {
      for (let round = 1; !run; round++) {
        const lock = await this.deps.runs.getTargetLock(lockKey, options);
        if (lock && lock.runId === id) {
          const mine = await this.deps.runs.get(id, options);
          if (mine && ours(mine)) {
            run = mine;
            break;
          }
        }
        if (lock && lock.runId !== id) {
          const holder = await this.deps.runs.get(lock.runId, options);
          if (holder && !isTerminal(holder.state)) {
            await unindex();
            if (request.ifActive === 'refuse') {
              throw new ConflictError(
                `Target '${request.target}' has an active ${holder.kind} run ${holder.id}: one run per target at a time`,
                { retryable: false, metadata: { runId: holder.id, state: holder.state } },
              );
            }
            return { run: holder, created: false };
          }
        }
        await index();
        try {
          run = await this.deps.runs.createForTarget(fresh, lockKey, lock, options);
        } catch (error) {
          const retry = error instanceof ConflictError || (isRetryable(error) && round < 3);
          if (!retry) throw error;
          if (key !== undefined && error instanceof ConflictError) {
            const existing = await this.deps.runs.get(id, options);
            if (existing) return { run: existing, created: false };
          }
          if (round >= 5) throw error;
          if (!(error instanceof ConflictError)) await sleep(100 * round);
        }
      }
    } else {
      await index();
      for (let round = 1; !run; round++) {
        try {
          run = await this.deps.runs.create(fresh, options);
        } catch (error) {
          if (error instanceof ConflictError) {
            const existing = await this.deps.runs.get(id, options);
            if (existing && key !== undefined) return { run: existing, created: false };
            if (existing && uncertain && ours(existing)) {
              run = existing;
              break;
            }
            throw error;
          }
          if (!isRetryable(error) || round >= 3) throw error;
          uncertain = true;
          await sleep(100 * round);
        }
      }
    }
    await this.settle(run, options);
    try {
      await this.sendWithRetries(this.message(run, 0), options);
    } catch (error) {
      this.logger.warn('first work message not sent; the resume timer sends it', {
        operation: `run.${kind}`,
        runId: run.id,
        error: toRunError(error),
      });
    }
    this.logger.info('run started', { operation: `run.${kind}`, runId: run.id, target: run.target });
    return { run, created: true };
  }

  /**
   * The runs of an exclusive target of `kind`, newest first (its whole history until retention
   * removes finished runs). Throws `ValidationError` for a kind without an exclusive target.
   */
  async runsForTarget(
    kind: string,
    target: string,
    query: { limit?: number } = {},
    options: CallOptions = {},
  ): Promise<Run[]> {
    const def = this.kinds.get(kind);
    if (!def?.target?.exclusive) {
      throw new ValidationError(`kind '${kind}' has no exclusive target`, [
        'kind: not registered with an exclusive target',
      ]);
    }
    return this.deps.runs.listForTarget(
      targetLockKey(def, kind, target),
      { limit: query.limit ?? 50 },
      options,
    );
  }

  /**
   * Handles one work message: takes the run's lease, runs its current step, records the result,
   * enqueues the next message and releases the lease. Returns without doing anything when the run
   * is leased by someone else ('busy'), the message is stale, the run is over, or not yet due (then
   * the message is sent again for the remaining delay). `owner` identifies the message and its
   * ticket (`{messageId}:{ticket}`): a redelivery takes its own lease back. Throws `ConflictError`
   * when the lease was lost before the result could be recorded (the step will run again
   * elsewhere), and Storage errors as `TransientError`: the queue trigger rethrows retryable errors.
   */
  async advanceRun(
    runId: string,
    options: { owner: string; ticket?: number } & CallOptions,
  ): Promise<AdvanceOutcome> {
    const executed = await this.executeStep(runId, options);
    if (executed.next) await this.send(executed.next, options);
    return executed.outcome;
  }

  /**
   * The first half of `advanceRun`: everything up to and including the recording write, without
   * enqueueing the next message. Exposed so that a crash between the two can be exercised.
   */
  async executeStep(
    runId: string,
    options: { owner: string; ticket?: number } & CallOptions,
  ): Promise<ExecutedStep> {
    if (typeof options.owner !== 'string' || options.owner === '') {
      throw new ValidationError('advanceRun needs an owner', ['owner must be a non-empty string']);
    }
    const owner = options.owner;
    const pendingKey = `${runId}|${owner}`;
    let leased: Run | undefined;
    let definition: RegisteredKind | undefined;
    let handler: StepHandler | undefined;
    let saved: StepOutcome | undefined;
    for (let round = 1; !leased; round++) {
      const run = await this.deps.runs.get(runId, options);
      if (!run) return { outcome: { status: 'notFound' } };
      const now = this.deps.clock.now();
      const check = checkAdvance(run, { ticket: options.ticket }, owner, now);
      if (check === 'notDue') {
        const delayMs = (run.dueOn?.getTime() ?? now.getTime()) - now.getTime();
        return { outcome: { status: 'notDue', run }, next: this.message(run, delayMs) };
      }
      if (check !== 'ok') return { outcome: { status: check, run } };

      const pending = pendingResults.get(pendingKey);
      if (
        pending &&
        run.lease?.owner === owner &&
        run.ticket === pending.ticket &&
        run.currentStep === pending.step &&
        run.steps[run.currentStep]?.status === 'running'
      ) {
        // This message's earlier delivery ran the step; only its record is missing.
        leased = run;
        saved = pending.outcome;
        definition = this.kinds.get(run.kind);
        break;
      }
      pendingResults.delete(pendingKey);

      const prepared = await this.prepare(run, now, options);
      if (prepared === RETRY) {
        if (round >= LEASE_ROUNDS) return { outcome: { status: 'busy', run } };
        continue;
      }
      if ('outcome' in prepared) return prepared;
      definition = prepared.definition;
      handler = prepared.handler;
      try {
        const carried = await this.carry(prepared.run, [], options);
        leased = await this.deps.runs.update(
          { ...beginStep(prepared.run, owner, now, this.leaseMs), outbox: carried },
          options,
        );
      } catch (error) {
        // Someone wrote the run between our read and our write: read it again and decide again.
        if (!(error instanceof ConflictError)) throw error;
        if (round >= LEASE_ROUNDS) return { outcome: { status: 'busy', run } };
      }
    }

    const index = leased.currentStep;
    const stepState = leased.steps[index]!;
    const log = this.logger.child({
      operation: `run.${leased.kind}.${stepState.name}`,
      runId: leased.id,
      target: leased.target,
    });
    let outcome: StepOutcome;
    if (saved) {
      outcome = saved;
    } else {
      outcome = await this.runHandler(leased, handler!, stepState.name, log, options);
    }

    // Record the result. A conflict while the lease is still ours is a cancel request written
    // meanwhile: read the run again and record on top of it. Anything else means the lease is lost.
    let base = leased;
    let recorded: Run | undefined;
    let next: Transition['next'];
    for (let round = 1; !recorded; round++) {
      const { transition, entries } = this.resultTransition(base, outcome, definition, stepState.name);
      try {
        const outbox = await this.carry(base, entries, options);
        recorded = await this.deps.runs.update({ ...transition.run, outbox }, options);
        next = transition.next;
        pendingResults.delete(pendingKey);
      } catch (error) {
        if (error instanceof ConflictError) {
          const fresh = await this.deps.runs.get(runId, options);
          const stillOurs =
            fresh !== undefined &&
            fresh.lease?.owner === owner &&
            fresh.ticket === leased.ticket &&
            fresh.currentStep === index &&
            fresh.steps[index]?.status === 'running';
          if (stillOurs && round < RECORD_ROUNDS) {
            base = fresh;
            continue;
          }
          log.warn('lease lost before the step result was recorded; the step will run again');
          throw error;
        }
        if (isRetryable(error) && round < 3) {
          await sleep(100 * round);
          continue;
        }
        if (isRetryable(error)) {
          if (pendingResults.size >= MAX_PENDING) {
            const oldest = pendingResults.keys().next().value;
            if (oldest !== undefined) pendingResults.delete(oldest);
          }
          pendingResults.set(pendingKey, { ticket: leased.ticket, step: index, outcome });
        }
        throw error;
      }
    }
    await this.settle(recorded, options);
    return {
      outcome: { status: 'advanced', run: recorded, step: stepState.name },
      next: next && this.message(recorded, next.delayMs),
    };
  }

  /**
   * Re-sends the message of active runs whose lease expired or whose next message is overdue by
   * more than the stall threshold (doubled per resume without progress), flushes outboxes left
   * behind, and takes finished runs out of the index of active runs. Reads only that index, from
   * where the last tick stopped, at most `budget` entries (continuation tokens followed); a run
   * whose visit fails is counted in `errors` and the others are still visited. Meant for a timer;
   * safe to run on several instances at once (conditional writes).
   */
  async resumeStalledRuns(
    request: { now?: Date; budget?: number } = {},
    options: CallOptions = {},
  ): Promise<SweepResult> {
    const budget = request.budget ?? this.sweepBudget;
    if (!Number.isInteger(budget) || budget < 1 || budget > MAX_SWEEP_BUDGET) {
      throw new ValidationError('Invalid sweep budget', [
        `budget must be an integer from 1 to ${MAX_SWEEP_BUDGET}`,
      ]);
    }
    const result: SweepResult = {
      visited: 0,
      resumed: [],
      failed: [],
      finished: [],
      errors: [],
      more: false,
    };
    const cursor = await this.deps.runs.getSweepCursor(options);
    const page = await this.deps.runs.listActive({ after: cursor, limit: budget }, options);
    for (let first = 0; first < page.entries.length; first += SWEEP_PARALLEL) {
      const batch = page.entries.slice(first, first + SWEEP_PARALLEL);
      await Promise.all(
        batch.map(async (entry) => {
          result.visited++;
          try {
            await this.visit(entry, request.now, result, options);
          } catch (error) {
            result.errors.push(entry.runId);
            this.logger.warn('resume sweep could not handle a run; the others go on', {
              runId: entry.runId,
              error: toRunError(error),
            });
          }
        }),
      );
    }
    result.more = !page.end;
    const last = page.entries[page.entries.length - 1];
    await this.deps.runs.setSweepCursor(page.end ? undefined : last?.runId, options);
    return result;
  }

  /**
   * Cancels an active run. With a step in flight (a live lease), the cancel is a request: the step's
   * abort signal fires, its result is recorded, then the run is cancelled. Otherwise the run is
   * cancelled at once. Either way no step is left `running`, the compensations the kind declares
   * for the steps that had started run next (state `cancelling`), and the audit says what had
   * happened before. Answers `undefined` when the run does not exist; a run already over (or
   * already cancelling) is returned unchanged.
   */
  async cancelRun(
    runId: string,
    request: { reason: string; actor?: string },
    options: CallOptions = {},
  ): Promise<Run | undefined> {
    const reason = String(request.reason ?? '').slice(0, MAX_COMMENT_CHARS);
    if (reason.trim() === '') throw new ValidationError('Invalid cancel', ['reason is required']);
    const actor = request.actor ?? this.defaultActor;
    for (let round = 1; ; round++) {
      const run = await this.deps.runs.get(runId, options);
      if (!run || isTerminal(run.state) || run.state === 'cancelling' || run.cancelRequest) return run;
      const now = this.deps.clock.now();
      try {
        if (run.lease && run.lease.expiresOn.getTime() > now.getTime()) {
          const after = requestCancel(run, { actor, reason }, now);
          const { recorded } = await this.commit(
            run,
            { run: after },
            [
              auditEntry(after, 'cancel-request', 'planned', {
                actor,
                reason,
                before: whatHappened(run),
              }),
            ],
            options,
          );
          return recorded;
        }
        const { recorded, next } = await this.commit(
          run,
          this.cancelled(run, reason, now),
          [],
          options,
          (after) => [
            auditEntry(after, 'cancel', 'succeeded', {
              actor,
              reason,
              before: whatHappened(run),
              extra: compensations(after),
            }),
          ],
        );
        if (next) await this.send(next, options);
        return recorded;
      } catch (error) {
        if (!(error instanceof ConflictError) || round >= 3) throw error;
      }
    }
  }

  /**
   * Approves the step a run awaits: the step runs next. The approver (`actor`, from the authorized
   * endpoint) is recorded on the step and in the audit. `NotFoundError` when the run does not exist;
   * a 409 `ConflictError` when it is not awaiting an approval or the approval expired.
   */
  async approveRun(
    runId: string,
    decision: { actor: string; comment?: string },
    options: CallOptions = {},
  ): Promise<Run> {
    return this.decide(runId, decision, 'approve', options);
  }

  /** Rejects the step a run awaits: the run is cancelled (with compensations). As `approveRun` otherwise. */
  async rejectRun(
    runId: string,
    decision: { actor: string; comment?: string },
    options: CallOptions = {},
  ): Promise<Run> {
    return this.decide(runId, decision, 'reject', options);
  }

  /** Reads a run (for status endpoints and tests); `undefined` when it does not exist. */
  getRun(runId: string, options: CallOptions = {}): Promise<Run | undefined> {
    return this.deps.runs.get(runId, options);
  }

  // ---------------------------------------------------------------------------------------------

  private async decide(
    runId: string,
    decision: { actor: string; comment?: string },
    verb: 'approve' | 'reject',
    options: CallOptions,
  ): Promise<Run> {
    const problems: string[] = [];
    if (typeof decision.actor !== 'string' || decision.actor.trim() === '')
      problems.push('actor is required');
    if (
      decision.comment !== undefined &&
      (typeof decision.comment !== 'string' || decision.comment.length > MAX_COMMENT_CHARS)
    )
      problems.push(`comment must be text of at most ${MAX_COMMENT_CHARS} characters`);
    if (problems.length > 0) throw new ValidationError(`Invalid ${verb}`, problems);
    const comment = decision.comment ? redactText(decision.comment) : undefined;
    for (let round = 1; ; round++) {
      const run = await this.deps.runs.get(runId, options);
      if (!run) throw new NotFoundError(`Run ${runId} does not exist`);
      const now = this.deps.clock.now();
      const step = run.steps[run.currentStep];
      if (run.state !== 'awaiting-approval' || !step?.approval) {
        throw new ConflictError(`Run ${run.id} is ${run.state}, not awaiting an approval`, {
          retryable: false,
          metadata: { runId: run.id, state: run.state },
        });
      }
      if (step.approval.expiresOn.getTime() <= now.getTime()) {
        throw new ConflictError(
          `The approval of run ${run.id} expired at ${step.approval.expiresOn.toISOString()}`,
          { retryable: false, metadata: { runId: run.id } },
        );
      }
      const who = { actor: decision.actor, ...(comment ? { comment } : {}) };
      try {
        const definition = this.kinds.get(run.kind);
        const transition =
          verb === 'approve'
            ? approveTransition(run, who, now)
            : this.withDeadline(
                rejectTransition(run, who, now, compensable(definition, run.kindVersion)),
                definition,
                now,
              );
        const { recorded, next } = await this.commit(run, transition, [], options, (after) => [
          auditEntry(after, verb, verb === 'approve' ? 'succeeded' : 'rejected', {
            actor: decision.actor,
            reason: `${verb === 'approve' ? 'approved' : 'rejected'} step ${step.name}${comment ? `: ${comment}` : ''}`,
            before: whatHappened(run),
            extra: { approvedStep: step.name, ...(verb === 'reject' ? compensations(after) : {}) },
          }),
        ]);
        if (next) await this.send(next, options);
        return recorded;
      } catch (error) {
        if (!(error instanceof ConflictError) || round >= 3) throw error;
      }
    }
  }

  /**
   * Everything decided before a step runs: kind and version (deferred, migrated or failed),
   * deadline, pending cancel, approval (expired, or needed). Returns the handler to run, a
   * decision already recorded, or `RETRY` when a write lost a race.
   */
  private async prepare(
    run: Run,
    now: Date,
    options: CallOptions,
  ): Promise<{ run: Run; definition: RegisteredKind; handler: StepHandler } | ExecutedStep | typeof RETRY> {
    const definition = this.kinds.get(run.kind);
    try {
      if (!definition || run.kindVersion > definition.version) {
        return await this.defer(run, definition, now, options);
      }
      let current = run;
      const resolved = this.resolveSteps(run, definition);
      if ('problem' in resolved) {
        return await this.decision(
          run,
          failTransition(run, { code: 'StepsChanged', message: resolved.problem }, now),
          'deploy',
          'unmappable',
          definition,
          options,
        );
      }
      if (resolved.migrateTo !== undefined) {
        const migrated = migrateRun(
          run,
          definition.steps.map((s) => s.name),
          definition.version,
          resolved.migrateTo,
          now,
        );
        const { recorded } = await this.commit(
          run,
          { run: migrated },
          [
            auditEntry(migrated, 'migrate', 'succeeded', {
              id: `run:${run.id}:${run.ticket}:migrate${run.kindVersion}-${definition.version}`,
              reason: `steps of version ${run.kindVersion} mapped onto version ${definition.version}: resumes at ${resolved.migrateTo}`,
              before: { kindVersion: run.kindVersion, step: run.steps[run.currentStep]?.name },
            }),
          ],
          options,
        );
        current = recorded;
      }
      if (current.deadline && now.getTime() >= current.deadline.getTime()) {
        const error = {
          code: 'DeadlineExceeded',
          message: `the run did not finish by its deadline ${current.deadline.toISOString()}`,
        };
        return await this.decision(
          current,
          failTransition(current, error, now),
          'deadline',
          'deadline',
          definition,
          options,
        );
      }
      if (current.cancelRequest && !isCompensating(current)) {
        // A cancel asked for while a worker held the lease, which then died: apply it now.
        const request = current.cancelRequest;
        const outcome = await this.commit(
          current,
          this.cancelled(current, request.reason, now),
          [],
          options,
          (after) => [
            auditEntry(after, 'cancel', 'succeeded', {
              actor: request.actor,
              reason: request.reason,
              before: whatHappened(current),
              extra: compensations(after),
            }),
          ],
        );
        return {
          outcome: { status: 'advanced', run: outcome.recorded, decision: 'cancelled' },
          next: outcome.next,
        };
      }
      const step = current.steps[current.currentStep]!;
      const stepDef = definition.steps.find((s) => s.name === step.name);
      if (current.state === 'awaiting-approval' && step.approval && step.approval.decision === undefined) {
        // Due: the approval expired (the message for its expiry, or a resume).
        if (step.approval.expiresOn.getTime() > now.getTime()) {
          return {
            outcome: { status: 'notDue', run: current },
            next: this.message(current, step.approval.expiresOn.getTime() - now.getTime()),
          };
        }
        const reason = `no approval for step ${step.name} by ${step.approval.expiresOn.toISOString()}`;
        if (stepDef?.approval?.onExpiry === 'cancel') {
          const outcome = await this.commit(
            current,
            this.cancelled(current, reason, now),
            [],
            options,
            (after) => [
              auditEntry(after, 'approval-expired', 'failed', {
                reason,
                actor: 'system:runs',
                extra: compensations(after),
              }),
            ],
          );
          return {
            outcome: { status: 'advanced', run: outcome.recorded, decision: 'expired' },
            next: outcome.next,
          };
        }
        return await this.decision(
          current,
          failTransition(current, { code: 'ApprovalExpired', message: reason }, now),
          'approval-expired',
          'expired',
          definition,
          options,
        );
      }
      if (
        stepDef?.approval &&
        (stepDef.approval.when?.(current) ?? true) &&
        step.compensates === undefined &&
        step.approval?.decision !== 'approved'
      ) {
        const transition = parkForApproval(current, now, stepDef.approval.expiresAfterMs);
        const outcome = await this.commit(current, transition, [], options, (after) => {
          const entries: OutboxEntry[] = [
            auditEntry(after, 'approval', 'planned', {
              reason: `step ${step.name} awaits an approval until ${after.steps[after.currentStep]?.approval?.expiresOn.toISOString()}`,
            }),
          ];
          const channels = channelsOf(definition, after, this.deps.notify?.defaultChannels ?? []);
          if (channels.length > 0) entries.push(noticeEntry(after, 'awaiting-approval', channels));
          return entries;
        });
        return {
          outcome: { status: 'advanced', run: outcome.recorded, decision: 'parked' },
          next: outcome.next,
        };
      }
      const handler =
        step.compensates !== undefined
          ? compensationOf(definition, current.kindVersion, step.compensates)
          : stepDef?.run;
      if (!handler) {
        const problem = `kind '${run.kind}' version ${definition.version} has no ${step.compensates !== undefined ? `compensation for step '${step.compensates}'` : `step '${step.name}'`}`;
        return await this.decision(
          current,
          failTransition(current, { code: 'StepsChanged', message: problem }, now),
          'deploy',
          'unmappable',
          definition,
          options,
        );
      }
      return { run: current, definition, handler };
    } catch (error) {
      if (error instanceof ConflictError) return RETRY;
      throw error;
    }
  }

  /** Whether the run's steps are the kind's, need migrating (to which step), or cannot be run. */
  private resolveSteps(run: Run, definition: RegisteredKind): { migrateTo?: string } | { problem: string } {
    const names = definition.steps.map((s) => s.name);
    const forward = run.steps.filter((s) => s.compensates === undefined).map((s) => s.name);
    const step = run.steps[run.currentStep]!;
    if (run.kindVersion === definition.version) {
      if (forward.length === names.length && forward.every((name, i) => name === names[i])) return {};
      return {
        problem: `the steps of kind '${run.kind}' changed without a new version: the run has ${forward.join(', ')}, this deployment ${names.join(', ')}`,
      };
    }
    if (step.compensates !== undefined) {
      // A cancelled run is not migrated: its compensations find their step by name, or by the
      // kind's mapping of the old name.
      return compensationOf(definition, run.kindVersion, step.compensates)
        ? {}
        : {
            problem: `version ${definition.version} of kind '${run.kind}' cannot undo step '${step.compensates}'`,
          };
    }
    const mapped = definition.migrate?.({ version: run.kindVersion, step: step.name });
    if (mapped === undefined || !names.includes(mapped)) {
      return {
        problem: `step '${step.name}' of version ${run.kindVersion} of kind '${run.kind}' has no place in version ${definition.version}`,
      };
    }
    return { migrateTo: mapped };
  }

  /**
   * A run this instance cannot run (unknown kind, newer version): another instance of a rolling
   * deploy may know it, so it is left alone and looked at again, but only for `deployGraceMs` from
   * the first time: then it fails, with a notification. Nothing stays pending forever.
   */
  private async defer(
    run: Run,
    definition: RegisteredKind | undefined,
    now: Date,
    options: CallOptions,
  ): Promise<ExecutedStep> {
    const problem = definition
      ? `run ${run.id} follows version ${run.kindVersion} of kind '${run.kind}'; this deployment knows version ${definition.version}`
      : `run ${run.id} is of kind '${run.kind}', which this deployment does not know`;
    const since = run.deferredSince;
    if (since && now.getTime() - since.getTime() >= this.deployGraceMs) {
      const error = {
        code: definition ? 'KindVersionUnknown' : 'KindUnknown',
        message: `${problem} (since ${since.toISOString()})`,
      };
      return this.decision(run, failTransition(run, error, now), 'deploy', 'unmappable', definition, options);
    }
    let current = run;
    if (!since) {
      const after: Run = { ...run, deferredSince: now, outbox: [] };
      current = (
        await this.commit(
          run,
          { run: after },
          [auditEntry(after, 'defer', 'planned', { reason: `${problem}: left for another instance` })],
          options,
        )
      ).recorded;
    }
    const left = this.deployGraceMs - (now.getTime() - (current.deferredSince ?? now).getTime());
    return {
      outcome: { status: 'deferred', run: current },
      next: this.message(current, Math.max(1_000, Math.min(DEFER_POLL_MS, left))),
    };
  }

  /** Records a decision that fails the run (audit + notification). */
  private async decision(
    run: Run,
    transition: Transition,
    label: string,
    decision: string,
    definition: RegisteredKind | undefined,
    options: CallOptions,
  ): Promise<ExecutedStep> {
    const outcome = await this.commit(run, transition, [], options, (after) =>
      this.withNotice(
        after,
        [
          auditEntry(after, label, 'failed', {
            reason: after.error ? `${after.error.code}: ${after.error.message}` : undefined,
          }),
        ],
        definition,
      ),
    );
    return { outcome: { status: 'advanced', run: outcome.recorded, decision }, next: outcome.next };
  }

  /** Runs the step's handler under a clock-driven abort signal; never throws. */
  private async runHandler(
    leased: Run,
    handler: StepHandler,
    name: string,
    log: Logger,
    options: CallOptions,
  ): Promise<StepOutcome> {
    const startedOn = this.deps.clock.now();
    const step = leased.steps[leased.currentStep]!;
    const watch = new StepWatch({
      clock: this.deps.clock,
      abortAt: new Date(startedOn.getTime() + this.abortAfterMs),
      wallMs: this.abortAfterMs,
      pollMs: this.watchPollMs,
      parent: options.abortSignal,
      cancelPollMs: this.cancelPollMs,
      // A compensation is the cancel: there is nothing more to observe.
      cancelRequested:
        step.compensates === undefined
          ? async () => (await this.deps.runs.get(leased.id))?.cancelRequest !== undefined
          : undefined,
    });
    try {
      const running = handler(leased, {
        step: name,
        attempt: step.attempts,
        dryRun: leased.dryRun,
        input: leased.input,
        outputs: outputsBefore(leased),
        now: startedOn,
        clock: this.deps.clock,
        logger: log,
        abortSignal: watch.signal,
        ...(step.compensates !== undefined ? { compensating: step.compensates } : {}),
        ...(step.approval ? { approval: step.approval } : {}),
      });
      watch.track(running);
      return { type: 'result', result: normaliseResult(await running) };
    } catch (error) {
      const reason = watch.signal.aborted ? (watch.signal.reason as unknown) : undefined;
      const cancelled =
        (reason instanceof StepAbortedError && reason.abortCause === 'cancel') ||
        (error instanceof StepAbortedError && error.abortCause === 'cancel');
      const runError = toRunError(cancelled ? new StepAbortedError('cancel') : error);
      const retryable = !cancelled && (isRetryable(error) || reason instanceof StepAbortedError);
      log.warn('step threw', { error: runError, retrying: retryable });
      return { type: 'error', error: runError, retryable, cancelled };
    } finally {
      watch.stop();
    }
  }

  /** The recording write of a step's outcome on `base` (the leased run, or it re-read). */
  private resultTransition(
    base: Run,
    outcome: StepOutcome,
    definition: RegisteredKind | undefined,
    stepName: string,
  ): { transition: Transition; entries: OutboxEntry[] } {
    const now = this.deps.clock.now();
    const policy = definition?.policy ?? DEFAULT_RETRY;
    let transition: Transition;
    let auditOutcome: AuditOutcome;
    let reason: string | undefined;
    const before = { state: base.state, stepStatus: base.steps[base.currentStep]?.status };
    if (outcome.type === 'result') {
      const result = outcome.result;
      transition = applyResult(base, result, now);
      auditOutcome = AUDIT_OUTCOME[result.status];
      if (result.status === 'fail') reason = `${result.error.code}: ${result.error.message}`;
      if (result.status === 'wait') reason = `waiting ${result.delayMs} ms`;
    } else if (outcome.cancelled && base.cancelRequest) {
      // The step stopped because of the cancel: what it did is unknown, its compensation runs.
      transition = { run: base };
      auditOutcome = 'failed';
      reason = `${outcome.error.code}: ${outcome.error.message}`;
    } else {
      // (A cancel seen by the step but not yet in `base`: the write conflicts and the re-read has it.)
      transition = applyError(base, outcome.error, outcome.retryable || outcome.cancelled, policy, now);
      auditOutcome = 'failed';
      reason = `${outcome.error.code}: ${outcome.error.message}${transition.next ? ' (will retry)' : ''}`;
    }
    const entries: OutboxEntry[] = [];
    const stepRecord = (run: Run) =>
      auditEntry(run, stepName, auditOutcome, {
        reason,
        before,
      });
    // A compensation is the cancel at work: a cancel request has nothing more to do there.
    const request = isCompensating(base) ? undefined : base.cancelRequest;
    if (request && !isTerminal(transition.run.state) && transition.run.state !== 'cancelling') {
      const stepped = transition.run;
      const cancelled = this.cancelled(stepped, request.reason, now);
      entries.push(stepRecord(stepped));
      entries.push(
        auditEntry(cancelled.run, 'cancel', 'succeeded', {
          actor: request.actor,
          reason: request.reason,
          before: whatHappened(stepped, stepName),
          extra: compensations(cancelled.run),
        }),
      );
      transition = cancelled;
    } else {
      entries.push(stepRecord(transition.run));
      if (request && isTerminal(transition.run.state)) {
        entries.push(
          auditEntry(transition.run, 'cancel', 'skipped', {
            actor: request.actor,
            reason: `the run ${transition.run.state} before the cancel took effect (${request.reason})`,
          }),
        );
      }
    }
    return { transition, entries: this.withNotice(transition.run, entries, definition) };
  }

  /** The cancel of `run` (no step in flight), with the compensation deadline. */
  private cancelled(run: Run, reason: string, now: Date): Transition {
    const definition = this.kinds.get(run.kind);
    return this.withDeadline(
      cancelTransition(run, reason, now, compensable(definition, run.kindVersion)),
      definition,
      now,
    );
  }

  /** Compensations get the kind's whole deadline again: undoing must not be cut short by the original one. */
  private withDeadline(
    transition: Transition,
    definition: RegisteredKind | undefined,
    now: Date,
  ): Transition {
    if (transition.run.state !== 'cancelling') return transition;
    const deadlineMs = definition?.deadlineMs ?? DEFAULT_DEADLINE_MS;
    return { ...transition, run: { ...transition.run, deadline: new Date(now.getTime() + deadlineMs) } };
  }

  /** Adds the notification a failed run owes its channels. */
  private withNotice(
    run: Run,
    entries: OutboxEntry[],
    definition: RegisteredKind | undefined,
  ): OutboxEntry[] {
    if (run.state !== 'failed') return entries;
    const channels = channelsOf(definition, run, this.deps.notify?.defaultChannels ?? []);
    return channels.length > 0 ? [...entries, noticeEntry(run, 'failed', channels)] : entries;
  }

  /**
   * Writes a change of `run` with its outbox entries (built from the changed run when `build` is
   * given), after flushing what `run` still held; then flushes the new entries (best effort) and
   * takes a finished run out of the index. Throws `ConflictError` when the run changed meanwhile.
   */
  private async commit(
    run: Run,
    transition: Transition,
    entries: OutboxEntry[],
    options: CallOptions,
    build?: (after: Run) => OutboxEntry[],
  ): Promise<{ recorded: Run; next?: WorkMessage & { delayMs: number } }> {
    const outbox = await this.carry(run, [...entries, ...(build ? build(transition.run) : [])], options);
    const recorded = await this.deps.runs.update({ ...transition.run, outbox, etag: run.etag }, options);
    await this.settle(recorded, options);
    return { recorded, next: transition.next && this.message(recorded, transition.next.delayMs) };
  }

  /**
   * The outbox of the write that replaces `run`: its own `entries`, after what `run` still held and
   * could not flush now (the audit or a channel is down). Entries are never dropped: they are
   * carried into the next change until a flush succeeds; when too many piled up, the write waits
   * (throws the flush error) rather than lose one.
   */
  private async carry(run: Run, entries: OutboxEntry[], options: CallOptions): Promise<OutboxEntry[]> {
    if (run.outbox.length === 0 || flushedHere(run)) return entries;
    try {
      await flushOutbox(run, this.deps, options);
      return entries;
    } catch (error) {
      const carried = [...unflushed(run), ...entries];
      if (JSON.stringify(carried).length > MAX_CARRIED_OUTBOX_CHARS) throw error;
      this.logger.warn('outbox not flushed; carried into the next change', {
        operation: `run.${run.kind}`,
        runId: run.id,
        error: toRunError(error),
      });
      return carried;
    }
  }

  /** After a write: flush its outbox (best effort), and take a finished run out of the index. */
  private async settle(run: Run, options: CallOptions): Promise<void> {
    try {
      await flushOutbox(run, this.deps, options);
    } catch (error) {
      this.logger.warn('outbox not flushed yet; the next change or the resume timer flushes it', {
        operation: `run.${run.kind}`,
        runId: run.id,
        error: toRunError(error),
      });
      return;
    }
    if (isTerminal(run.state)) {
      await this.deps.runs.removeActive(run.id, options).catch((error: unknown) =>
        this.logger.warn('finished run left in the active index; the resume timer removes it', {
          runId: run.id,
          error: toRunError(error),
        }),
      );
    }
  }

  /** One index entry of the sweep. */
  private async visit(
    entry: ActiveRunEntry,
    at: Date | undefined,
    result: SweepResult,
    options: CallOptions,
  ): Promise<void> {
    const run = await this.deps.runs.get(entry.runId, options);
    const now = at ?? this.deps.clock.now();
    if (!run) {
      // Indexed, never created (a start that died between the two), or purged: drop the entry
      // once it is clearly not a start in progress.
      if (now.getTime() - entry.addedOn.getTime() > this.stallThresholdMs) {
        await this.deps.runs.removeActive(entry.runId, { ...options, etag: entry.etag });
      }
      return;
    }
    if (isTerminal(run.state)) {
      await flushOutbox(run, this.deps, options);
      await this.deps.runs.removeActive(run.id, { ...options, etag: entry.etag });
      result.finished.push(run.id);
      return;
    }
    if (!isStalled(run, now, this.stallThresholdMs)) {
      // An outbox left behind by a run that is not moving (its flush failed): flush it and clear it.
      const idle = !run.lease && now.getTime() - run.updatedOn.getTime() > this.stallThresholdMs;
      if (idle && run.outbox.length > 0) {
        await flushOutbox(run, this.deps, options);
        await this.deps.runs.update({ ...run, outbox: [] }, options).catch((error: unknown) => {
          if (!(error instanceof ConflictError)) throw error;
        });
      }
      return;
    }
    const definition = this.kinds.get(run.kind);
    const transition = resumeTransition(run, definition?.policy ?? DEFAULT_RETRY, now);
    const why = run.lease ? `lease of ${run.lease.owner} expired` : 'no progress past the stall threshold';
    let committed: { recorded: Run; next?: WorkMessage & { delayMs: number } };
    try {
      committed = await this.commit(run, transition, [], options, (after) =>
        transition.next
          ? [
              auditEntry(after, 'resume', 'planned', {
                id: `run:${after.id}:${after.ticket}:resume${after.resumes}`,
                reason: `${why}; message re-sent (resume ${after.resumes})`,
                before: { state: run.state },
                actor: 'system:timer',
              }),
            ]
          : this.withNotice(
              after,
              [
                auditEntry(after, 'resume', 'failed', {
                  reason: why,
                  before: { state: run.state },
                  actor: 'system:timer',
                }),
              ],
              definition,
            ),
      );
    } catch (error) {
      if (error instanceof ConflictError) return; // It moved meanwhile: not stalled after all.
      throw error;
    }
    if (committed.next) {
      await this.send(committed.next, options);
      result.resumed.push(run.id);
    } else {
      result.failed.push(run.id);
    }
    this.logger.warn('stalled run picked up', {
      operation: `run.${run.kind}`,
      runId: run.id,
      target: run.target,
    });
  }

  /** The message that advances `run`, delayed by at most the physical cap. */
  private message(run: Run, delayMs: number): WorkMessage & { delayMs: number } {
    return {
      runId: run.id,
      step: run.steps[run.currentStep]?.name,
      ticket: run.ticket,
      delayMs: Math.max(0, Math.min(Math.round(delayMs), this.maxQueueDelayMs)),
    };
  }

  private async send(next: WorkMessage & { delayMs: number }, options: CallOptions): Promise<void> {
    const { delayMs, ...message } = next;
    await this.deps.queue.send(message, { visibilityDelayMs: delayMs, abortSignal: options.abortSignal });
  }

  private async sendWithRetries(
    next: WorkMessage & { delayMs: number },
    options: CallOptions,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.send(next, options);
        return;
      } catch (error) {
        if (!isRetryable(error) || attempt >= 3) throw error;
        await sleep(100 * attempt);
      }
    }
  }
}

/** Builds an engine (composition helper). */
export function createRunEngine(deps: RunEngineDeps): RunEngine {
  return new RunEngine(deps);
}

const AUDIT_OUTCOME: Record<StepResult['status'], AuditOutcome> = {
  done: 'succeeded',
  skip: 'skipped',
  wait: 'planned',
  fail: 'failed',
};

/** The compensation of `step` (a step name of version `version`) in the current version of the kind. */
function compensationOf(definition: RegisteredKind, version: number, step: string): StepHandler | undefined {
  const direct = definition.steps.find((s) => s.name === step)?.compensate;
  if (direct || version === definition.version) return direct;
  const mapped = definition.migrate?.({ version, step });
  return definition.steps.find((s) => s.name === mapped)?.compensate;
}

function compensable(definition: RegisteredKind | undefined, version: number): (step: string) => boolean {
  return (name) => definition !== undefined && compensationOf(definition, version, name) !== undefined;
}

/** What had happened in a run, for the audit record of its cancel. */
function whatHappened(run: Run, inFlight?: string): Record<string, unknown> {
  const forward = run.steps.filter((s) => s.compensates === undefined);
  return {
    state: run.state,
    done: forward.filter((s) => s.status === 'done').map((s) => s.name),
    skipped: forward.filter((s) => s.status === 'skipped').map((s) => s.name),
    started: forward.filter((s) => s.status !== 'done' && s.startedOn !== undefined).map((s) => s.name),
    ...(inFlight ? { inFlight } : {}),
  };
}

function compensations(run: Run): Record<string, unknown> {
  return { compensations: run.steps.filter((s) => s.compensates !== undefined).map((s) => s.name) };
}

function normaliseResult(result: StepResult): StepResult {
  switch (result?.status) {
    case 'done':
      return result.output === undefined ? result : { status: 'done', output: boundOutput(result.output) };
    case 'wait':
      if (!Number.isFinite(result.delayMs) || result.delayMs < 0) {
        return { status: 'fail', error: { code: 'InvalidStepResult', message: 'wait needs a delayMs >= 0' } };
      }
      return result.output === undefined ? result : { ...result, output: boundOutput(result.output) };
    case 'skip':
      return result;
    case 'fail':
      return { status: 'fail', error: cleanError(result.error) };
    default:
      return {
        status: 'fail',
        error: { code: 'InvalidStepResult', message: 'step returned no valid result' },
      };
  }
}

/** Second line of defence on outputs: redacted, and cut (with a marker) when too big. */
function boundOutput(output: unknown): unknown {
  const safe = redact(output);
  const json = JSON.stringify(safe) ?? 'null';
  if (json.length <= MAX_STEP_OUTPUT_CHARS) return JSON.parse(json);
  return { _truncated: true, originalLength: json.length };
}

function cleanError(error: RunError | undefined): RunError {
  return {
    code: String(error?.code ?? 'StepFailed').slice(0, 100),
    message: redactText(String(error?.message ?? 'step failed')).slice(0, 1000),
  };
}

function toRunError(error: unknown): RunError {
  if (isStampkeeperError(error)) return cleanError({ code: error.code, message: error.message });
  if (error instanceof Error) return cleanError({ code: 'Unexpected', message: error.message });
  return cleanError({ code: 'Unexpected', message: String(error) });
}

function outputsBefore(run: Run): Record<string, unknown> {
  const outputs: Record<string, unknown> = {};
  for (const step of run.steps.slice(0, run.currentStep)) {
    if (step.output !== undefined && step.compensates === undefined) outputs[step.name] = step.output;
  }
  return outputs;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function validateStart(kind: string, known: boolean, request: StartRunRequest): JsonObject {
  const problems: string[] = [];
  if (!known) problems.push(`kind '${kind}' is not registered`);
  if (typeof request.target !== 'string' || request.target.trim() === '') problems.push('target is required');
  else if (request.target.length > MAX_TARGET_CHARS)
    problems.push(`target must be at most ${MAX_TARGET_CHARS} characters`);
  if (typeof request.correlationId !== 'string' || request.correlationId.trim() === '') {
    problems.push('correlationId is required');
  }
  if (
    request.idempotencyKey !== undefined &&
    (typeof request.idempotencyKey !== 'string' || request.idempotencyKey === '')
  ) {
    problems.push('idempotencyKey must be a non-empty string when given');
  }
  if (request.ifActive !== undefined && request.ifActive !== 'return' && request.ifActive !== 'refuse') {
    problems.push("ifActive must be 'return' or 'refuse'");
  }
  const input = request.input ?? {};
  let safe: JsonObject = {};
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    problems.push('input must be a JSON object');
  } else {
    try {
      const json = JSON.stringify(redact(input));
      if (json.length > MAX_INPUT_CHARS)
        problems.push(`input must serialise to at most ${MAX_INPUT_CHARS} characters`);
      else safe = JSON.parse(json) as JsonObject;
    } catch {
      problems.push('input must be serialisable as JSON');
    }
  }
  if (problems.length > 0) throw new ValidationError('Invalid run request', problems);
  return safe;
}
