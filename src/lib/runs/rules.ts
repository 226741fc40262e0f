/**
 * Pure rules of the step machine: whether a message may advance a run, and how a step's result,
 * a resume, a cancel, an approval or a deploy changes the run. No I/O, no clock: `now` is an
 * argument, so every rule is unit-testable. Every transition leaves the outbox empty: the engine
 * adds the audit records and notifications of the change before it writes it.
 */
import { ValidationError } from '../core/errors';
import type { WorkMessage } from '../ports/runs';
import { isTerminal, type Run, type RunError, type RunState, type RunStep } from './types';

export type StepResult =
  | { status: 'done'; output?: unknown }
  | { status: 'wait'; delayMs: number; output?: unknown }
  | { status: 'skip' }
  | { status: 'fail'; error: RunError };

export interface RetryPolicy {
  /** Executions of one step (crashes and retryable errors included) before the run fails. */
  maxAttempts: number;
  /** First backoff after a retryable error; doubles per attempt. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 10_000, maxDelayMs: 300_000 };

/** What to do after recording: send the next message with this delay, or nothing (run is over). */
export interface Transition {
  run: Run;
  next?: { delayMs: number };
}

export type AdvanceCheck = 'ok' | 'terminal' | 'stale' | 'busy' | 'notDue';

/** Tolerance for a message arriving slightly before `dueOn` (queue visibility has 1 s granularity). */
export const DUE_TOLERANCE_MS = 1_000;
/** The resume timer's backoff doubles per resume without progress, up to 2^6 thresholds. */
const MAX_RESUME_DOUBLINGS = 6;

/** Whether a work message may advance `run` now. */
export function checkAdvance(
  run: Run,
  message: Pick<WorkMessage, 'ticket'>,
  owner: string,
  now: Date,
): AdvanceCheck {
  if (isTerminal(run.state) || run.currentStep >= run.steps.length) return 'terminal';
  if (message.ticket !== undefined && message.ticket !== run.ticket) return 'stale';
  if (run.lease && run.lease.owner !== owner && run.lease.expiresOn.getTime() > now.getTime()) return 'busy';
  if (run.dueOn && run.dueOn.getTime() - now.getTime() > DUE_TOLERANCE_MS) return 'notDue';
  return 'ok';
}

/** Whether the current step is a compensation (the run was cancelled and undoes what it did). */
export function isCompensating(run: Run): boolean {
  return run.steps[run.currentStep]?.compensates !== undefined;
}

/** The state of a run between steps: `cancelling` while compensating, else pending or waiting. */
function idleState(run: Run, waiting: boolean): RunState {
  if (isCompensating(run)) return 'cancelling';
  return waiting ? 'waiting' : 'pending';
}

/** `now + delayMs`, but never past the run's deadline (a wait cannot outlive the run). */
export function dueWithin(run: Run, now: Date, delayMs: number): Date {
  const due = now.getTime() + Math.max(0, Math.round(delayMs));
  return new Date(run.deadline ? Math.min(due, run.deadline.getTime()) : due);
}

function base(run: Run, now: Date, bump: boolean): Run {
  return {
    ...run,
    lease: undefined,
    updatedOn: now,
    ticket: bump ? run.ticket + 1 : run.ticket,
    resumes: 0,
    resumedOn: undefined,
    deferredSince: undefined,
    outbox: [],
  };
}

/** The run as it is while `owner` executes its current step: leased, running, one more attempt. */
export function beginStep(run: Run, owner: string, now: Date, leaseMs: number): Run {
  const index = run.currentStep;
  const step = run.steps[index];
  if (!step) throw new ValidationError(`Run ${run.id} has no step at index ${index}`);
  const steps = run.steps.slice();
  steps[index] = {
    ...step,
    status: 'running',
    attempts: step.attempts + 1,
    startedOn: step.startedOn ?? now,
  };
  return {
    ...base(run, now, false),
    steps,
    state: 'running',
    lease: { owner, expiresOn: new Date(now.getTime() + leaseMs) },
  };
}

/** Records a step's result on a run begun with `beginStep`. The lease is released in the same write. */
export function applyResult(run: Run, result: StepResult, now: Date): Transition {
  const index = run.currentStep;
  const step = currentStepOf(run);
  const next = base(run, now, true);
  switch (result.status) {
    case 'done':
    case 'skip': {
      const finished: RunStep = {
        ...step,
        status: result.status === 'done' ? 'done' : 'skipped',
        endedOn: now,
        error: undefined,
      };
      if (result.status === 'done' && result.output !== undefined) finished.output = result.output;
      const steps = replaceStep(run.steps, index, finished);
      const nextIndex = index + 1;
      if (nextIndex >= steps.length) {
        // The last compensation ends a cancelled run; the last step of the procedure succeeds it.
        const state: RunState = step.compensates !== undefined ? 'cancelled' : 'succeeded';
        return { run: { ...next, steps, currentStep: nextIndex, state, dueOn: undefined } };
      }
      const moved: Run = { ...next, steps, currentStep: nextIndex, dueOn: now };
      return { run: { ...moved, state: idleState(moved, false) }, next: { delayMs: 0 } };
    }
    case 'wait': {
      // A wait is the step polling, not failing: it does not use up the attempt budget, but it
      // counts toward the run's deadline, so a step that keeps waiting ends when the run's time is up.
      const waiting: RunStep = {
        ...step,
        status: 'running',
        attempts: Math.max(0, step.attempts - 1),
        waits: (step.waits ?? 0) + 1,
      };
      if (result.output !== undefined) waiting.output = result.output;
      const steps = replaceStep(run.steps, index, waiting);
      const dueOn = dueWithin(run, now, result.delayMs);
      return {
        run: { ...next, steps, state: idleState(run, true), dueOn },
        next: { delayMs: dueOn.getTime() - now.getTime() },
      };
    }
    case 'fail':
      return failCurrentStep(next, result.error, now);
  }
}

/**
 * Records a thrown error: a retryable one is tried again after a backoff until the step has used
 * `maxAttempts`; a non-retryable one (or the last attempt) fails the run.
 */
export function applyError(
  run: Run,
  error: RunError,
  retryable: boolean,
  policy: RetryPolicy,
  now: Date,
): Transition {
  const index = run.currentStep;
  const step = currentStepOf(run);
  const next = base(run, now, true);
  if (!retryable || step.attempts >= policy.maxAttempts) {
    const reason = retryable
      ? { ...error, message: `${error.message} (gave up after ${plural(step.attempts, 'attempt')})` }
      : error;
    return failCurrentStep(next, reason, now);
  }
  const dueOn = dueWithin(run, now, retryDelayMs(step.attempts, policy));
  const steps = replaceStep(run.steps, index, { ...step, status: 'pending', error });
  return {
    run: { ...next, steps, state: idleState(run, true), dueOn },
    next: { delayMs: dueOn.getTime() - now.getTime() },
  };
}

/** Exponential backoff: base, 2×base, 4×base... capped. `attempt` counts from 1. */
export function retryDelayMs(
  attempt: number,
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
): number {
  const exponent = Math.max(0, attempt - 1);
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(exponent, 30));
}

/**
 * Whether the resume timer should pick `run` up: it is active and either its lease expired (the
 * worker died mid-step) or, with no live lease, its next message is overdue by more than
 * `thresholdMs`, doubled for every resume that made no progress since (a message waiting its turn
 * in a backlog is not lost: re-sending it once is enough, re-sending it every tick only grows the
 * queue).
 */
export function isStalled(run: Run, now: Date, thresholdMs: number): boolean {
  if (isTerminal(run.state)) return false;
  if (run.lease) return run.lease.expiresOn.getTime() <= now.getTime();
  const expected = Math.max((run.dueOn ?? run.updatedOn).getTime(), run.resumedOn?.getTime() ?? 0);
  const patience = thresholdMs * 2 ** Math.min(run.resumes, MAX_RESUME_DOUBLINGS);
  return now.getTime() - expected > patience;
}

/**
 * The run as the resume timer leaves it: lease dropped, due now, the SAME ticket (a message still
 * queued behind a backlog stays valid: whichever copy arrives first advances the run, the other is
 * then stale). A step that crashed its worker on its last allowed attempt fails the run instead.
 */
export function resumeTransition(run: Run, policy: RetryPolicy, now: Date): Transition {
  const step = run.steps[run.currentStep];
  if (run.lease && step && step.status === 'running' && step.attempts >= policy.maxAttempts) {
    return failCurrentStep(
      base(run, now, true),
      {
        code: 'StepAbandoned',
        message: `Step '${step.name}' did not finish in ${plural(step.attempts, 'attempt')}`,
      },
      now,
    );
  }
  const state: RunState = run.state === 'running' ? idleState(run, false) : run.state;
  return {
    run: {
      ...run,
      lease: undefined,
      state,
      updatedOn: now,
      resumes: run.resumes + 1,
      resumedOn: now,
      outbox: [],
    },
    next: { delayMs: 0 },
  };
}

/** The run with a cancel requested: the step in flight observes it; nothing else changes. */
export function requestCancel(run: Run, request: { actor: string; reason: string }, now: Date): Run {
  return { ...run, cancelRequest: { ...request, requestedOn: now }, updatedOn: now, outbox: [] };
}

/**
 * The run cancelled (no step in flight). Steps that never started are marked `cancelled`, a step
 * left between executions (waiting, backing off, abandoned by a dead worker) too, so no step is
 * left `running`. Then, newest first, a compensation is appended for every started step whose kind
 * declares one (`compensable`): the run is `cancelling` until they ran, else `cancelled` at once.
 */
export function cancelTransition(
  run: Run,
  reason: string,
  now: Date,
  compensable: (step: string) => boolean = () => false,
): Transition {
  if (isTerminal(run.state) || run.state === 'cancelling') return { run };
  const steps: RunStep[] = run.steps.map((step) => {
    if (step.compensates !== undefined || (step.status !== 'pending' && step.status !== 'running'))
      return step;
    if (step.startedOn === undefined) return { ...step, status: 'cancelled' };
    return {
      ...step,
      status: 'cancelled',
      endedOn: now,
      error: { code: 'Cancelled', message: 'cancelled before this step finished: its effect is unknown' },
    };
  });
  const undo = run.steps
    .filter((s) => s.compensates === undefined && s.startedOn !== undefined && s.status !== 'skipped')
    .filter((s) => compensable(s.name))
    .reverse()
    .map((s): RunStep => ({ name: `undo-${s.name}`, compensates: s.name, status: 'pending', attempts: 0 }));
  const next: Run = {
    ...base(run, now, true),
    steps: [...steps, ...undo],
    error: { code: 'Cancelled', message: reason },
  };
  if (undo.length === 0) {
    return { run: { ...next, state: 'cancelled', currentStep: next.steps.length, dueOn: undefined } };
  }
  return {
    run: { ...next, state: 'cancelling', currentStep: steps.length, dueOn: now },
    next: { delayMs: 0 },
  };
}

/** The run parked before its current step until an approver decides, or `expiresAfterMs` passes. */
export function parkForApproval(run: Run, now: Date, expiresAfterMs: number): Transition {
  const step = currentStepOf(run);
  const expiresOn = new Date(now.getTime() + expiresAfterMs);
  const steps = replaceStep(run.steps, run.currentStep, {
    ...step,
    approval: { requestedOn: now, expiresOn },
  });
  // Due when the approval expires (or at the deadline, if that comes first): the message sent
  // for that instant ends the run if no one decided.
  const dueOn = dueWithin(run, now, expiresAfterMs);
  return {
    run: { ...base(run, now, true), steps, state: 'awaiting-approval', dueOn },
    next: { delayMs: dueOn.getTime() - now.getTime() },
  };
}

/** The approver's yes: the parked step runs next. */
export function approveTransition(
  run: Run,
  decision: { actor: string; comment?: string },
  now: Date,
): Transition {
  const step = currentStepOf(run);
  if (!step.approval) throw new ValidationError(`Run ${run.id} is not awaiting an approval`);
  const steps = replaceStep(run.steps, run.currentStep, {
    ...step,
    approval: {
      ...step.approval,
      decision: 'approved',
      decidedBy: decision.actor,
      decidedOn: now,
      ...(decision.comment ? { comment: decision.comment } : {}),
    },
  });
  return { run: { ...base(run, now, true), steps, state: 'pending', dueOn: now }, next: { delayMs: 0 } };
}

/** The approver's no: the approval is recorded as rejected and the run is cancelled (with compensations). */
export function rejectTransition(
  run: Run,
  decision: { actor: string; comment?: string },
  now: Date,
  compensable: (step: string) => boolean,
): Transition {
  const step = currentStepOf(run);
  if (!step.approval) throw new ValidationError(`Run ${run.id} is not awaiting an approval`);
  const steps = replaceStep(run.steps, run.currentStep, {
    ...step,
    approval: {
      ...step.approval,
      decision: 'rejected',
      decidedBy: decision.actor,
      decidedOn: now,
      ...(decision.comment ? { comment: decision.comment } : {}),
    },
  });
  const reason = `rejected by ${decision.actor}${decision.comment ? `: ${decision.comment}` : ''}`;
  return cancelTransition({ ...run, steps }, reason, now, compensable);
}

/** Fails the run at its current step (deadline passed, approval expired, steps unmappable...). */
export function failTransition(run: Run, error: RunError, now: Date): Transition {
  return failCurrentStep(base(run, now, true), error, now);
}

/**
 * A run of an older version of its kind, moved onto the current steps: steps already over keep
 * their record where the new version still has them, the run resumes at `resumeAt` (a step of the
 * new version), steps of the new version before it that the run never ran are `skipped`, and the
 * ones after it are pending. The ticket is unchanged: the message in hand still advances the run.
 */
export function migrateRun(run: Run, stepNames: string[], version: number, resumeAt: string, now: Date): Run {
  const target = stepNames.indexOf(resumeAt);
  if (target < 0) throw new ValidationError(`Step '${resumeAt}' is not a step of version ${version}`);
  const old = new Map(run.steps.filter((s) => s.compensates === undefined).map((s) => [s.name, s]));
  const current = run.steps[run.currentStep];
  const steps = stepNames.map((name, index): RunStep => {
    const before = old.get(name);
    if (index < target) return before ?? { name, status: 'skipped', attempts: 0 };
    if (index === target && before && before === current) return before;
    return { name, status: 'pending', attempts: 0 };
  });
  return {
    ...run,
    steps,
    currentStep: target,
    kindVersion: version,
    updatedOn: now,
    deferredSince: undefined,
    outbox: [],
  };
}

function failCurrentStep(next: Run, error: RunError, now: Date): Transition {
  const step = currentStepOf(next);
  // A compensation that fails leaves the cancel half done: say so, a person must look.
  const runError =
    step.compensates !== undefined
      ? { code: 'CompensationFailed', message: `${step.name}: ${error.code}: ${error.message}` }
      : error;
  const steps = replaceStep(next.steps, next.currentStep, { ...step, status: 'failed', endedOn: now, error });
  return { run: { ...next, steps, state: 'failed', dueOn: undefined, error: runError } };
}

function currentStepOf(run: Run): RunStep {
  const step = run.steps[run.currentStep];
  if (!step) throw new ValidationError(`Run ${run.id} has no step at index ${run.currentStep}`);
  return step;
}

function replaceStep(steps: RunStep[], index: number, step: RunStep): RunStep[] {
  const out = steps.slice();
  out[index] = step;
  return out;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
