/**
 * Pure rules of the step machine: whether a message may advance a run, and how a step's result
 * changes the run. No I/O, no clock: `now` is an argument, so every rule is unit-testable.
 */
import { ValidationError } from '../core/errors';
import type { WorkMessage } from '../ports/runs';
import { isTerminal, type Run, type RunError, type RunStep } from './types';

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
    ...run,
    steps,
    state: 'running',
    lease: { owner, expiresOn: new Date(now.getTime() + leaseMs) },
    updatedOn: now,
  };
}

/** Records a step's result on a run begun with `beginStep`. The lease is released in the same write. */
export function applyResult(run: Run, result: StepResult, now: Date): Transition {
  const index = run.currentStep;
  const step = currentStepOf(run);
  const base: Run = { ...run, lease: undefined, updatedOn: now, ticket: run.ticket + 1 };
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
        return { run: { ...base, steps, currentStep: nextIndex, state: 'succeeded', dueOn: undefined } };
      }
      return {
        run: { ...base, steps, currentStep: nextIndex, state: 'pending', dueOn: now },
        next: { delayMs: 0 },
      };
    }
    case 'wait': {
      const delayMs = Math.max(0, Math.round(result.delayMs));
      // A wait is the step polling, not failing: it does not use up the attempt budget.
      const waiting: RunStep = { ...step, status: 'running', attempts: Math.max(0, step.attempts - 1) };
      if (result.output !== undefined) waiting.output = result.output;
      const steps = replaceStep(run.steps, index, waiting);
      return {
        run: { ...base, steps, state: 'waiting', dueOn: new Date(now.getTime() + delayMs) },
        next: { delayMs },
      };
    }
    case 'fail':
      return failCurrentStep(base, result.error, now);
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
  const base: Run = { ...run, lease: undefined, updatedOn: now, ticket: run.ticket + 1 };
  if (!retryable || step.attempts >= policy.maxAttempts) {
    const reason = retryable
      ? { ...error, message: `${error.message} (gave up after ${plural(step.attempts, 'attempt')})` }
      : error;
    return failCurrentStep(base, reason, now);
  }
  const delayMs = retryDelayMs(step.attempts, policy);
  const steps = replaceStep(run.steps, index, { ...step, status: 'pending', error });
  return {
    run: { ...base, steps, state: 'waiting', dueOn: new Date(now.getTime() + delayMs) },
    next: { delayMs },
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
 * `thresholdMs` (lost between "recorded" and "enqueued", or the queue lost it).
 */
export function isStalled(run: Run, now: Date, thresholdMs: number): boolean {
  if (isTerminal(run.state)) return false;
  if (run.lease) return run.lease.expiresOn.getTime() <= now.getTime();
  const expected = (run.dueOn ?? run.updatedOn).getTime();
  return now.getTime() - expected > thresholdMs;
}

/**
 * The run as the resume timer leaves it: lease dropped, a new ticket (so any late message is
 * stale), due now. A step that crashed its worker on its last allowed attempt fails the run instead.
 */
export function resumeTransition(run: Run, policy: RetryPolicy, now: Date): Transition {
  const base: Run = { ...run, lease: undefined, updatedOn: now, ticket: run.ticket + 1 };
  const step = run.steps[run.currentStep];
  if (run.lease && step && step.status === 'running' && step.attempts >= policy.maxAttempts) {
    return failCurrentStep(
      base,
      {
        code: 'StepAbandoned',
        message: `Step '${step.name}' did not finish in ${plural(step.attempts, 'attempt')}`,
      },
      now,
    );
  }
  const state = run.state === 'running' ? 'pending' : run.state;
  return { run: { ...base, state, dueOn: now }, next: { delayMs: 0 } };
}

/** The run cancelled: no further step runs; a worker mid-step loses its recording write. */
export function cancelTransition(run: Run, reason: string, now: Date): Run {
  return {
    ...run,
    state: 'cancelled',
    lease: undefined,
    dueOn: undefined,
    updatedOn: now,
    ticket: run.ticket + 1,
    error: { code: 'Cancelled', message: reason },
  };
}

function failCurrentStep(base: Run, error: RunError, now: Date): Transition {
  const step = currentStepOf(base);
  const steps = replaceStep(base.steps, base.currentStep, { ...step, status: 'failed', endedOn: now, error });
  return { run: { ...base, steps, state: 'failed', dueOn: undefined, error } };
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
