/**
 * Runs: long work (rotations, remediations, bulk replays) as a Table entity with ordered steps,
 * advanced one step per work message. Domain types only; no SDK here.
 */
export type RunState = 'pending' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled';
export type StepStatus = 'pending' | 'running' | 'done' | 'failed' | 'skipped';

export const TERMINAL_STATES: readonly RunState[] = ['succeeded', 'failed', 'cancelled'];
export const ACTIVE_STATES: readonly RunState[] = ['pending', 'running', 'waiting'];

/** JSON that is safe to store and show: never a secret value. */
export type JsonObject = Record<string, unknown>;

export interface RunError {
  code: string;
  message: string;
}

export interface RunStep {
  name: string;
  status: StepStatus;
  /** Executions of this step that ended other than in 'wait' (a crash counts). */
  attempts: number;
  startedOn?: Date;
  endedOn?: Date;
  /** Non-sensitive output, readable by later steps. */
  output?: unknown;
  error?: RunError;
}

export interface RunLease {
  owner: string;
  expiresOn: Date;
}

export interface Run {
  id: string;
  kind: string;
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
  lease?: RunLease;
  /**
   * Generation of the one live work message: bumped on every recorded change. A message carrying
   * another ticket is stale and dropped, so duplicates and re-enqueues never multiply work.
   */
  ticket: number;
  /** Why the run failed or was cancelled. */
  error?: RunError;
  /** Storage concurrency token; every write is conditional on it. */
  etag: string;
}

export type NewRun = Omit<Run, 'etag'>;

/** Whether a run in this state is over (no step will run again). */
export function isTerminal(state: RunState): boolean {
  return TERMINAL_STATES.includes(state);
}
