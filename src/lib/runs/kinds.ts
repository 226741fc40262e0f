/**
 * Run kinds: what a capability declares (its steps, their compensations and approvals, its version,
 * its target, its deadline), validated once when registered.
 */
import { ValidationError } from '../core/errors';
import type { Logger } from '../core/logging';
import type { Clock } from '../ports/clock';
import { DEFAULT_RETRY, type RetryPolicy, type StepResult } from './rules';
import type { JsonObject, Run, StepApproval } from './types';

export interface StepContext {
  /** Name of the step being run (`undo-{step}` for a compensation). */
  step: string;
  /** 1 for the first execution of this step (waits do not count); more: an earlier one may have acted. */
  attempt: number;
  dryRun: boolean;
  input: JsonObject;
  /** Outputs of the steps before this one, by step name. */
  outputs: Record<string, unknown>;
  now: Date;
  clock: Clock;
  logger: Logger;
  /**
   * Aborts before the lease runs out (past that point another worker may take the step over), when
   * the invocation stops, or when the run is cancelled: its `reason` is a `StepAbortedError`.
   */
  abortSignal: AbortSignal;
  /** For a compensation: the step whose effect it undoes. */
  compensating?: string;
  /** The approval this step waited for, when it needed one. */
  approval?: StepApproval;
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
  /**
   * What a cancel after this step started must do: undo its effect (check, then act, like any
   * step). Compensations run newest first, after the step in flight finished or aborted.
   */
  compensate?: StepHandler;
  /**
   * The run parks as `awaiting-approval` before this step and notifies its channels; an approver
   * approves or rejects it through the authorized endpoints. Unanswered after `expiresAfterMs`,
   * the run fails (`onExpiry: 'fail'`, the default) or is cancelled.
   */
  approval?: {
    expiresAfterMs: number;
    onExpiry?: 'fail' | 'cancel';
    /** Whether this run needs the approval (default: every run), e.g. from the policy in its input. */
    when?: (run: Readonly<Run>) => boolean;
  };
}

export interface RunKindDefinition {
  kind: string;
  /**
   * The version of `steps`: bump it whenever steps are added, removed, renamed or reordered. Runs
   * record the version they started with; default 1.
   */
  version?: number;
  steps: StepDefinition[];
  /**
   * Where a run of an older version resumes: the name of a current step for its current step, or
   * `undefined` when it cannot be mapped (the run then fails clearly, with a notification).
   */
  migrate?: (from: { version: number; step: string }) => string | undefined;
  retry?: Partial<RetryPolicy>;
  /** How long a run may stay active from its start, waits and approvals included (default 7 days). */
  deadlineMs?: number;
  /**
   * The run's target admits one active run at a time: a start for a target with an active run
   * returns that run (or refuses, with its id). Kinds of one `scope` exclude each other (default:
   * the kind). Targets compare case-insensitively.
   */
  target?: { exclusive: boolean; scope?: string };
  /**
   * Channels notified when a run of this kind fails or awaits an approval (default: the policy's
   * defaults); a function picks them per run (e.g. the channels of the secret a rotation is about).
   */
  channels?: string[] | ((run: Readonly<Run>) => string[] | undefined);
}

/** The channels a run's notices go to: the kind's (fixed or per run), else `fallback`. */
export function channelsOf(
  definition: RunKindDefinition | undefined,
  run: Readonly<Run>,
  fallback: string[],
): string[] {
  const channels =
    typeof definition?.channels === 'function' ? definition.channels(run) : definition?.channels;
  return channels ?? fallback;
}

/** A validated kind, with its defaults filled in. */
export interface RegisteredKind extends RunKindDefinition {
  version: number;
  policy: RetryPolicy;
  deadlineMs: number;
}

export const DEFAULT_DEADLINE_MS = 7 * 86_400_000;
export const STEP_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/** Validates a kind; throws `ValidationError` listing every problem. */
export function validateKind(definition: RunKindDefinition, registered: ReadonlySet<string>): RegisteredKind {
  const problems: string[] = [];
  if (!STEP_NAME.test(definition.kind)) problems.push(`kind '${definition.kind}' must match ${STEP_NAME}`);
  if (registered.has(definition.kind)) problems.push(`kind '${definition.kind}' is registered already`);
  if (definition.steps.length === 0) problems.push('a run kind needs at least one step');
  const names = new Set<string>();
  for (const step of definition.steps) {
    if (!STEP_NAME.test(step.name)) problems.push(`step '${step.name}' must match ${STEP_NAME}`);
    if (names.has(step.name)) problems.push(`step '${step.name}' appears twice`);
    names.add(step.name);
    if (step.compensate !== undefined && typeof step.compensate !== 'function')
      problems.push(`step '${step.name}': compensate must be a function`);
    if (step.approval !== undefined) {
      const ms = step.approval.expiresAfterMs;
      if (!Number.isFinite(ms) || ms < 1_000)
        problems.push(`step '${step.name}': approval.expiresAfterMs must be at least 1000`);
      if (step.approval.onExpiry !== undefined && !['fail', 'cancel'].includes(step.approval.onExpiry))
        problems.push(`step '${step.name}': approval.onExpiry must be 'fail' or 'cancel'`);
    }
  }
  const version = definition.version ?? 1;
  if (!Number.isInteger(version) || version < 1) problems.push('version must be an integer >= 1');
  const policy = { ...DEFAULT_RETRY, ...definition.retry };
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1)
    problems.push('retry.maxAttempts must be >= 1');
  const deadlineMs = definition.deadlineMs ?? DEFAULT_DEADLINE_MS;
  if (!Number.isFinite(deadlineMs) || deadlineMs < 1_000) problems.push('deadlineMs must be at least 1000');
  if (definition.target?.scope !== undefined && !STEP_NAME.test(definition.target.scope))
    problems.push(`target.scope must match ${STEP_NAME}`);
  if (
    definition.channels !== undefined &&
    typeof definition.channels !== 'function' &&
    (!Array.isArray(definition.channels) ||
      definition.channels.some((c) => typeof c !== 'string' || c === ''))
  )
    problems.push('channels must be a list of channel names, or a function of the run');
  for (const step of definition.steps) {
    if (step.approval?.when !== undefined && typeof step.approval.when !== 'function')
      problems.push(`step '${step.name}': approval.when must be a function`);
  }
  if (problems.length > 0) throw new ValidationError(`Invalid run kind '${definition.kind}'`, problems);
  return { ...definition, version, policy, deadlineMs };
}
