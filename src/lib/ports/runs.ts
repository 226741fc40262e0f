import type { NewRun, Run, RunState } from '../runs/types';

export interface CallOptions {
  abortSignal?: AbortSignal;
}

export interface RunQuery {
  states?: RunState[];
  kind?: string;
  /** Only runs holding a lease that expired before this time. */
  leaseExpiredBefore?: Date;
  limit?: number;
}

/** The lock row of a target that admits one active run at a time (see `RunStore.createForTarget`). */
export interface TargetLock {
  /** The run that last took the target; it holds it while it is active. */
  runId: string;
  etag: string;
}

/** One row of the index of active runs: what the resume timer scans instead of every run. */
export interface ActiveRunEntry {
  runId: string;
  kind: string;
  /** When the entry was added (before the run was created). */
  addedOn: Date;
  etag: string;
}

/** Where runs live. Every write is conditional: `update` fails with `ConflictError` on a stale ETag. */
export interface RunStore {
  /** Inserts a new run; `ConflictError` when the id exists already. */
  create(run: NewRun, options?: CallOptions): Promise<Run>;
  /**
   * Inserts a run of an exclusive target and points the target's lock at it, atomically (one
   * entity-group transaction in the target's partition): the lock is inserted when `lock` is
   * undefined, else replaced if it still carries `lock.etag`. `ConflictError` when the lock or the
   * run id changed meanwhile (someone else started a run for the target first).
   */
  createForTarget(
    run: NewRun,
    lockKey: string,
    lock: TargetLock | undefined,
    options?: CallOptions,
  ): Promise<Run>;
  /** The lock row of a target, or undefined when no run ever took it. */
  getTargetLock(lockKey: string, options?: CallOptions): Promise<TargetLock | undefined>;
  /** The runs of an exclusive target (its partition), newest first, at most `limit` (1-1000). */
  listForTarget(lockKey: string, query: { limit: number }, options?: CallOptions): Promise<Run[]>;
  get(id: string, options?: CallOptions): Promise<Run | undefined>;
  /** Replaces the run if its stored ETag still equals `run.etag`; returns it with its new ETag. */
  update(run: Run, options?: CallOptions): Promise<Run>;
  /** Runs by state and kind (a scan: for tests and operators, never for the resume timer). */
  list(query: RunQuery, options?: CallOptions): Promise<Run[]>;
  /** Adds a run to the index of active runs (before the run is created); a repeat is a no-op. */
  addActive(entry: Omit<ActiveRunEntry, 'etag'>, options?: CallOptions): Promise<void>;
  /** Removes a run from the index if the entry still carries `etag` (any, when omitted); gone is fine. */
  removeActive(runId: string, options?: CallOptions & { etag?: string }): Promise<void>;
  /**
   * Active-index entries with run ids after `after`, in id order, at most `limit` (continuation
   * tokens followed). `end` is true when the index holds no entry beyond the last one returned.
   */
  listActive(
    query: { after?: string; limit: number },
    options?: CallOptions,
  ): Promise<{ entries: ActiveRunEntry[]; end: boolean }>;
  /** Where the last resume sweep stopped (a run id), so the next one continues after it. */
  getSweepCursor(options?: CallOptions): Promise<string | undefined>;
  setSweepCursor(cursor: string | undefined, options?: CallOptions): Promise<void>;
}

/** What a work message says: advance this run (expected at this step, with this ticket). */
export interface WorkMessage {
  runId: string;
  step?: string;
  ticket?: number;
}

export interface ReceivedWork {
  /** The parsed message; `undefined` when the body is not a work message (settle it as poison). */
  message?: WorkMessage;
  messageId: string;
  popReceipt: string;
  dequeueCount: number;
}

/** The queue of work messages. `send` with a delay is how runs wait. */
export interface WorkQueue {
  send(message: WorkMessage, options?: CallOptions & { visibilityDelayMs?: number }): Promise<void>;
  /** For a poller (tests, the local host): hides received messages for `visibilityTimeoutMs`. */
  receive(
    options?: CallOptions & { maxMessages?: number; visibilityTimeoutMs?: number },
  ): Promise<ReceivedWork[]>;
  delete(received: Pick<ReceivedWork, 'messageId' | 'popReceipt'>, options?: CallOptions): Promise<void>;
}
