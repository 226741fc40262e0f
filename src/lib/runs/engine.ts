/**
 * The run engine: starts runs and advances them one step per work message. It owns the
 * discipline of DESIGN.md's step machine: a lease taken by an ETag-conditional write before a
 * step runs, the result recorded by another conditional write (which also releases the lease),
 * then the next message enqueued (delayed for waits and backoffs). A crash anywhere in between is
 * recovered by `resumeStalledRuns`, and because every message carries the run's ticket, a
 * duplicate or late message never runs a step twice.
 */
import {
  ConflictError,
  isRetryable,
  isStampkeeperError,
  TransientError,
  ValidationError,
} from '../core/errors';
import { newId, stableHash } from '../core/ids';
import { type Logger, silentLogger } from '../core/logging';
import { redact, redactText } from '../core/redact';
import type { Clock } from '../ports/clock';
import type { CallOptions, RunStore, WorkMessage, WorkQueue } from '../ports/runs';
import type { AuditLog, AuditOutcome } from '../ports/state';
import {
  type AdvanceCheck,
  applyError,
  applyResult,
  beginStep,
  cancelTransition,
  checkAdvance,
  DEFAULT_RETRY,
  isStalled,
  type RetryPolicy,
  resumeTransition,
  type StepResult,
  type Transition,
} from './rules';
import { ACTIVE_STATES, isTerminal, type JsonObject, type Run, type RunError } from './types';

export { parseWorkMessage } from './messages';
export type { StepResult } from './rules';

export interface StepContext {
  /** Name of the step being run. */
  step: string;
  /** 1 for the first execution of this step (waits do not count). */
  attempt: number;
  dryRun: boolean;
  input: JsonObject;
  /** Outputs of the steps before this one, by step name. */
  outputs: Record<string, unknown>;
  now: Date;
  clock: Clock;
  logger: Logger;
  /** Aborts when the lease runs out: past that point another worker may take the step over. */
  abortSignal: AbortSignal;
}

/**
 * One step. It must be safe to run again (check the remote state, then act): a crash after it
 * acted but before its result was recorded runs it again. Throw a retryable error to try again
 * later; return `fail` to stop the run.
 */
export type StepHandler = (run: Readonly<Run>, ctx: StepContext) => Promise<StepResult>;

export interface StepDefinition {
  name: string;
  run: StepHandler;
}

export interface RunKindDefinition {
  kind: string;
  steps: StepDefinition[];
  retry?: Partial<RetryPolicy>;
}

export interface RunEngineOptions {
  /** How long a worker holds a run while executing a step. Must exceed the function timeout. */
  leaseMs?: number;
  /** How overdue a run's next message may be before the resume timer re-enqueues it. */
  stallThresholdMs?: number;
  /** Default actor of runs started without one. */
  actor?: string;
}

export interface RunEngineDeps {
  runs: RunStore;
  queue: WorkQueue;
  audit: AuditLog;
  clock: Clock;
  logger?: Logger;
  kinds: RunKindDefinition[];
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
}

export type AdvanceStatus = 'advanced' | 'notFound' | Exclude<AdvanceCheck, 'ok'>;

export interface AdvanceOutcome {
  status: AdvanceStatus;
  run?: Run;
  /** The step that was executed ('advanced' only). */
  step?: string;
}

/** What `executeStep` did: the recorded run and the message it still owes. */
export interface ExecutedStep {
  outcome: AdvanceOutcome;
  next?: WorkMessage & { delayMs: number };
}

export const DEFAULT_LEASE_MS = 10 * 60_000;
export const DEFAULT_STALL_THRESHOLD_MS = 5 * 60_000;
const MAX_TARGET_CHARS = 1024;
/** Bounds what one step may keep as output, so a run entity stays far below the Table limits. */
export const MAX_STEP_OUTPUT_CHARS = 8 * 1024;
export const MAX_INPUT_CHARS = 16 * 1024;
const STEP_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

export class RunEngine {
  private readonly kinds = new Map<string, RunKindDefinition & { policy: RetryPolicy }>();
  private readonly logger: Logger;
  private readonly leaseMs: number;
  private readonly stallThresholdMs: number;
  private readonly defaultActor: string;

  constructor(private readonly deps: RunEngineDeps) {
    this.logger = deps.logger ?? silentLogger;
    this.leaseMs = deps.options?.leaseMs ?? DEFAULT_LEASE_MS;
    this.stallThresholdMs = deps.options?.stallThresholdMs ?? DEFAULT_STALL_THRESHOLD_MS;
    this.defaultActor = deps.options?.actor ?? 'system:runs';
    for (const kind of deps.kinds) this.register(kind);
  }

  /** Adds a run kind; throws `ValidationError` for a duplicate kind, no step or a bad step name. */
  register(definition: RunKindDefinition): void {
    const problems: string[] = [];
    if (!STEP_NAME.test(definition.kind)) problems.push(`kind '${definition.kind}' must match ${STEP_NAME}`);
    if (this.kinds.has(definition.kind)) problems.push(`kind '${definition.kind}' is registered already`);
    if (definition.steps.length === 0) problems.push('a run kind needs at least one step');
    const names = new Set<string>();
    for (const step of definition.steps) {
      if (!STEP_NAME.test(step.name)) problems.push(`step '${step.name}' must match ${STEP_NAME}`);
      if (names.has(step.name)) problems.push(`step '${step.name}' appears twice`);
      names.add(step.name);
    }
    const policy = { ...DEFAULT_RETRY, ...definition.retry };
    if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1)
      problems.push('retry.maxAttempts must be >= 1');
    if (problems.length > 0) throw new ValidationError(`Invalid run kind '${definition.kind}'`, problems);
    this.kinds.set(definition.kind, { ...definition, policy });
  }

  /**
   * Creates a run and enqueues its first work message. With an `idempotencyKey`, a second call
   * returns the existing run (`created: false`) and enqueues nothing (the resume timer covers a
   * first call that died before enqueueing). Bad input throws `ValidationError` and writes nothing.
   */
  async startRun(
    kind: string,
    request: StartRunRequest,
    options: CallOptions = {},
  ): Promise<{ run: Run; created: boolean }> {
    const definition = this.kinds.get(kind);
    const input = validateStart(kind, definition !== undefined, request);
    const now = this.deps.clock.now();
    const id =
      request.idempotencyKey !== undefined ? `r-${stableHash('run', kind, request.idempotencyKey)}` : newId();
    const fresh = {
      id,
      kind,
      target: request.target,
      state: 'pending' as const,
      steps: (definition?.steps ?? []).map((s) => ({
        name: s.name,
        status: 'pending' as const,
        attempts: 0,
      })),
      currentStep: 0,
      input,
      dryRun: request.dryRun ?? false,
      correlationId: request.correlationId,
      actor: request.actor ?? this.defaultActor,
      idempotencyKey: request.idempotencyKey,
      createdOn: now,
      updatedOn: now,
      dueOn: now,
      ticket: 0,
    };
    let run: Run;
    try {
      run = await this.deps.runs.create(fresh, options);
    } catch (error) {
      if (!(error instanceof ConflictError) || request.idempotencyKey === undefined) throw error;
      const existing = await this.deps.runs.get(id, options);
      if (!existing) throw error;
      return { run: existing, created: false };
    }
    await this.deps.queue.send({ runId: run.id, step: run.steps[0]?.name, ticket: run.ticket }, options);
    await this.auditChange(run, 'start', 'planned', undefined, { state: run.state });
    this.logger.info('run started', { operation: `run.${kind}`, runId: run.id, target: run.target });
    return { run, created: true };
  }

  /**
   * Handles one work message: takes the run's lease, runs its current step, records the result,
   * enqueues the next message and releases the lease. Returns without doing anything when the run
   * is leased by someone else ('busy'), the message is stale, the run is over, or not yet due (then
   * the message is sent again for the remaining delay). Throws `ConflictError` when the lease was
   * lost before the result could be recorded (the step will run again elsewhere), and Storage
   * errors as `TransientError`: the queue trigger should rethrow retryable errors.
   */
  async advanceRun(
    runId: string,
    options: { owner: string; ticket?: number } & CallOptions,
  ): Promise<AdvanceOutcome> {
    const executed = await this.executeStep(runId, options);
    if (executed.next) {
      const { delayMs, ...message } = executed.next;
      await this.deps.queue.send(message, { visibilityDelayMs: delayMs, abortSignal: options.abortSignal });
    }
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
    const run = await this.deps.runs.get(runId, options);
    if (!run) return { outcome: { status: 'notFound' } };
    const definition = this.kinds.get(run.kind);
    if (!definition) {
      // Retryable: the message goes back and, after the host's max dequeue count, to the poison
      // queue where operators see it; another instance of a rolling deployment may know the kind.
      throw new TransientError(`Run ${run.id} is of kind '${run.kind}', which this instance does not know`, {
        metadata: { runId: run.id, kind: run.kind },
      });
    }
    const now = this.deps.clock.now();
    const check = checkAdvance(run, { ticket: options.ticket }, options.owner, now);
    if (check === 'notDue') {
      // Storage queues delay at most 7 days: a longer wait is reached in several hops.
      const delayMs = (run.dueOn?.getTime() ?? now.getTime()) - now.getTime();
      return { outcome: { status: 'notDue', run }, next: { runId: run.id, ticket: run.ticket, delayMs } };
    }
    if (check !== 'ok') return { outcome: { status: check, run } };

    // Checked before taking the lease, so a run this deployment cannot execute is left untouched
    // (during a rolling deployment another instance may know the kind's current steps).
    const handler = definition.steps[run.currentStep];
    if (!handler || handler.name !== run.steps[run.currentStep]?.name) {
      throw new TransientError(
        `Run ${run.id} does not match the steps of kind '${run.kind}' on this instance: step ${run.currentStep} is '${run.steps[run.currentStep]?.name}', the kind defines '${handler?.name ?? 'nothing'}'`,
        { metadata: { runId: run.id, kind: run.kind } },
      );
    }

    let leased: Run;
    try {
      leased = await this.deps.runs.update(beginStep(run, options.owner, now, this.leaseMs), options);
    } catch (error) {
      if (error instanceof ConflictError) return { outcome: { status: 'busy', run } };
      throw error;
    }
    const index = leased.currentStep;
    const stepState = leased.steps[index]!;
    const log = this.logger.child({
      operation: `run.${run.kind}.${handler.name}`,
      runId: run.id,
      target: run.target,
    });

    const stepSignal = AbortSignal.timeout(this.leaseMs);
    const abortSignal = options.abortSignal ? AbortSignal.any([options.abortSignal, stepSignal]) : stepSignal;
    let transition: Transition;
    let outcome: AuditOutcome;
    let reason: string | undefined;
    try {
      const result = normaliseResult(
        await handler.run(leased, {
          step: handler.name,
          attempt: stepState.attempts,
          dryRun: leased.dryRun,
          input: leased.input,
          outputs: outputsBefore(leased),
          now,
          clock: this.deps.clock,
          logger: log,
          abortSignal,
        }),
      );
      const recordedOn = this.deps.clock.now();
      transition = applyResult(leased, result, recordedOn);
      outcome = AUDIT_OUTCOME[result.status];
      if (result.status === 'fail') reason = `${result.error.code}: ${result.error.message}`;
      if (result.status === 'wait') reason = `waiting ${result.delayMs} ms`;
    } catch (error) {
      const runError = toRunError(error);
      transition = applyError(leased, runError, isRetryable(error), definition.policy, this.deps.clock.now());
      outcome = 'failed';
      reason = `${runError.code}: ${runError.message}${transition.next ? ' (will retry)' : ''}`;
      log.warn('step threw', { error: runError, retrying: transition.next !== undefined });
    }

    let recorded: Run;
    try {
      recorded = await this.deps.runs.update(transition.run, options);
    } catch (error) {
      if (error instanceof ConflictError) {
        log.warn('lease lost before the step result was recorded; the step will run again');
      }
      throw error;
    }
    await this.auditChange(recorded, handler.name, outcome, reason, {
      state: run.state,
      stepStatus: run.steps[index]?.status,
    });
    return {
      outcome: { status: 'advanced', run: recorded, step: handler.name },
      next: transition.next && {
        runId: recorded.id,
        step: recorded.steps[recorded.currentStep]?.name,
        ticket: recorded.ticket,
        delayMs: transition.next.delayMs,
      },
    };
  }

  /**
   * Re-enqueues active runs whose lease expired or whose next message is overdue by more than the
   * stall threshold (a worker died, or died between recording a step and enqueueing the next
   * message). Each run is bumped to a new ticket first, so a late original message is dropped.
   * Meant for a timer; safe to run on several instances at once (conditional writes).
   */
  async resumeStalledRuns(
    request: { now?: Date; limit?: number } = {},
    options: CallOptions = {},
  ): Promise<{ resumed: string[]; failed: string[] }> {
    const now = request.now ?? this.deps.clock.now();
    const active = await this.deps.runs.list(
      {
        states: [...ACTIVE_STATES],
        maybeStalled: { now, thresholdMs: this.stallThresholdMs },
        limit: request.limit ?? 500,
      },
      options,
    );
    const resumed: string[] = [];
    const failed: string[] = [];
    for (const run of active) {
      if (!isStalled(run, now, this.stallThresholdMs)) continue;
      // A kind this instance cannot run is left to an instance that can (never re-enqueued in a loop).
      if (!this.kinds.has(run.kind)) {
        this.logger.warn('stalled run of a kind unknown to this instance left alone', {
          runId: run.id,
          kind: run.kind,
        });
        continue;
      }
      const policy = this.kinds.get(run.kind)?.policy ?? DEFAULT_RETRY;
      const transition = resumeTransition(run, policy, now);
      let recorded: Run;
      try {
        recorded = await this.deps.runs.update(transition.run, options);
      } catch (error) {
        if (error instanceof ConflictError) continue; // It moved meanwhile: not stalled after all.
        throw error;
      }
      const stepName = recorded.steps[recorded.currentStep]?.name;
      if (transition.next) {
        await this.deps.queue.send({ runId: recorded.id, step: stepName, ticket: recorded.ticket }, options);
        resumed.push(recorded.id);
      } else {
        failed.push(recorded.id);
      }
      await this.auditChange(
        recorded,
        'resume',
        transition.next ? 'planned' : 'failed',
        run.lease ? `lease of ${run.lease.owner} expired` : 'no progress past the stall threshold',
        { state: run.state },
      );
      this.logger.warn('stalled run picked up', {
        operation: `run.${run.kind}`,
        runId: run.id,
        target: run.target,
      });
    }
    return { resumed, failed };
  }

  /**
   * Cancels an active run: no further step runs (a worker mid-step loses its recording write and
   * its step is not retried). `NotFoundError`-free: answers `undefined` when the run does not exist;
   * a run already over is returned unchanged. Throws `ConflictError` when the run changed meanwhile.
   */
  async cancelRun(
    runId: string,
    request: { reason: string; actor?: string },
    options: CallOptions = {},
  ): Promise<Run | undefined> {
    const run = await this.deps.runs.get(runId, options);
    if (!run || isTerminal(run.state)) return run;
    const recorded = await this.deps.runs.update(
      cancelTransition(run, request.reason, this.deps.clock.now()),
      options,
    );
    await this.auditChange(
      recorded,
      'cancel',
      'succeeded',
      request.reason,
      { state: run.state },
      request.actor,
    );
    return recorded;
  }

  /** Reads a run (for status endpoints and tests); `undefined` when it does not exist. */
  getRun(runId: string, options: CallOptions = {}): Promise<Run | undefined> {
    return this.deps.runs.get(runId, options);
  }

  /** Audit failures are logged, not thrown: the run's state is already recorded and must move on. */
  private async auditChange(
    run: Run,
    label: string,
    outcome: AuditOutcome,
    reason: string | undefined,
    before: Record<string, unknown>,
    actor?: string,
  ): Promise<void> {
    const step = run.steps[Math.min(run.currentStep, run.steps.length - 1)];
    try {
      await this.deps.audit.append({
        id: `run:${run.id}:${run.ticket}:${label}`,
        time: run.updatedOn,
        actor: actor ?? run.actor,
        action: `run.${run.kind}.${label}`,
        target: run.target,
        before,
        after: { state: run.state, step: step?.name, stepStatus: step?.status, dryRun: run.dryRun },
        outcome,
        correlationId: run.correlationId,
        runId: run.id,
        reason,
      });
    } catch (error) {
      this.logger.error('audit append failed', {
        operation: `run.${run.kind}.${label}`,
        runId: run.id,
        target: run.target,
        error: toRunError(error),
      });
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
    if (step.output !== undefined) outputs[step.name] = step.output;
  }
  return outputs;
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
