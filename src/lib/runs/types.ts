/**
 * Runs: long work (rotations, remediations, bulk replays) as a Table entity with ordered steps,
 * advanced one step per work message. Domain types only; no SDK here.
 */
import type { AuditOutcome } from '../ports/state';

export type RunState =
  | 'pending'
  | 'running'
  | 'waiting'
  /** Parked until an approver approves or rejects the current step (or the approval expires). */
  | 'awaiting-approval'
  /** Cancelled; the compensations of the steps that had started are running. */
  | 'cancelling'
  | 'succeeded'
  | 'failed'
  | 'cancelled';
export type StepStatus = 'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'cancelled';

export const TERMINAL_STATES: readonly RunState[] = ['succeeded', 'failed', 'cancelled'];
export const ACTIVE_STATES: readonly RunState[] = [
  'pending',
  'running',
  'waiting',
  'awaiting-approval',
  'cancelling',
];

/** JSON that is safe to store and show: never a secret value. */
export type JsonObject = Record<string, unknown>;

export interface RunError {
  code: string;
  message: string;
}

/** An approval asked for before a step runs, and what became of it. */
export interface StepApproval {
  requestedOn: Date;
  /** Past this instant the approval can no longer be given: the run fails (or is cancelled). */
  expiresOn: Date;
  decision?: 'approved' | 'rejected';
  /** The approver (`user:{name}`), as the authorized endpoint identified them. */
  decidedBy?: string;
  decidedOn?: Date;
  comment?: string;
}

export interface RunStep {
  name: string;
  status: StepStatus;
  /** Executions of this step that ended other than in 'wait' (a crash counts). */
  attempts: number;
  /** Times this step answered `wait` (each wait counts toward the run's deadline). */
  waits?: number;
  startedOn?: Date;
  endedOn?: Date;
  /** Non-sensitive output, readable by later steps. */
  output?: unknown;
  error?: RunError;
  /** A compensation step: the name of the step whose effect it undoes (after a cancel). */
  compensates?: string;
  approval?: StepApproval;
}

export interface RunLease {
  /**
   * Who holds it: the work message and its ticket (`{messageId}:{ticket}`), not the invocation, so
   * a redelivery of the same message takes its own lease back instead of finding the run busy.
   */
  owner: string;
  expiresOn: Date;
}

/** A cancel asked for while a step was in flight: the step observes it, then the run is cancelled. */
export interface CancelRequest {
  actor: string;
  reason: string;
  requestedOn: Date;
}

/** An audit record waiting in the run's outbox (times as ISO text, as stored). */
export interface OutboxAudit {
  type: 'audit';
  id: string;
  time: string;
  actor: string;
  action: string;
  target: string;
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
  outcome: AuditOutcome;
  correlationId: string;
  runId: string;
  reason?: string;
}

/** A notification waiting in the run's outbox (sent once per channel, by its id). */
export interface OutboxNotice {
  type: 'notify';
  id: string;
  eventType: string;
  severity: 'info' | 'warning' | 'critical';
  title: string;
  summary: string;
  facts: Record<string, string>;
  channels: string[];
  time: string;
  correlationId: string;
  subject: string;
}

export type OutboxEntry = OutboxAudit | OutboxNotice;

export interface Run {
  id: string;
  kind: string;
  /** The version of the kind's steps this run follows (see `RunKindDefinition.version`). */
  kindVersion: number;
  target: string;
  state: RunState;
  steps: RunStep[];
  /** Index into `steps` of the step to run next; `steps.length` once every step is over. */
  currentStep: number;
  input: JsonObject;
  dryRun: boolean;
  correlationId: string;
  /** Who started it (`system:eventgrid`, `user:{principal}`...), carried into audit records. */
  actor: string;
  idempotencyKey?: string;
  createdOn: Date;
  updatedOn: Date;
  /** When the next work message is expected to be handled (now, or the end of a wait / backoff). */
  dueOn?: Date;
  /** The run fails when it is still active past this instant, waits included. */
  deadline?: Date;
  lease?: RunLease;
  /**
   * Generation of the one live work message: bumped on every recorded change of step or state. A
   * message carrying another ticket is stale and dropped, so duplicates and late messages never
   * run a step twice.
   */
  ticket: number;
  /** Times the resume timer re-sent this run's message without progress in between (backoff). */
  resumes: number;
  resumedOn?: Date;
  /** A cancel asked for while a step was in flight. */
  cancelRequest?: CancelRequest;
  /** First time an instance could not run this run's kind or version (a deploy in progress?). */
  deferredSince?: Date;
  /**
   * Audit records and notifications of the last recorded change, written in the same entity
   * write as the change itself, then flushed (idempotently). A writer flushes them before it
   * replaces them, so a change is never separated from its record.
   */
  outbox: OutboxEntry[];
  /** Why the run failed or was cancelled. */
  error?: RunError;
  /** Storage concurrency token; every write is conditional on it. */
  etag: string;
}

/** A run to create; the store fills in what a run created before these fields existed lacks. */
export type NewRun = Omit<Run, 'etag' | 'kindVersion' | 'resumes' | 'outbox'> &
  Partial<Pick<Run, 'kindVersion' | 'resumes' | 'outbox'>>;

/** Whether a run in this state is over (no step will run again). */
export function isTerminal(state: RunState): boolean {
  return TERMINAL_STATES.includes(state);
}
