import type { NewRun, Run, RunState } from '../runs/types';

export interface CallOptions {
  abortSignal?: AbortSignal;
}

export interface RunQuery {
  states?: RunState[];
  kind?: string;
  /** Only runs holding a lease that expired before this time. */
  leaseExpiredBefore?: Date;
  /**
   * Only runs that may be stalled: lease expired by `now`, or next message due more than
   * `thresholdMs` before `now`. A pre-filter; `isStalled` has the last word.
   */
  maybeStalled?: { now: Date; thresholdMs: number };
  limit?: number;
}

/** Where runs live. Every write is conditional: `update` fails with `ConflictError` on a stale ETag. */
export interface RunStore {
  /** Inserts a new run; `ConflictError` when the id exists already. */
  create(run: NewRun, options?: CallOptions): Promise<Run>;
  get(id: string, options?: CallOptions): Promise<Run | undefined>;
  /** Replaces the run if its stored ETag still equals `run.etag`; returns it with its new ETag. */
  update(run: Run, options?: CallOptions): Promise<Run>;
  list(query: RunQuery, options?: CallOptions): Promise<Run[]>;
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
