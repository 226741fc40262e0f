/**
 * The abort signal of a step in flight, driven by the injected clock: it fires when the clock
 * reaches the step's abort instant (before its lease expires, with a margin), when the wall-clock
 * bound passes (the runtime stops an invocation at `functionTimeout` in wall time), when the
 * invocation's own signal aborts, or when a cancel is requested. Timers only decide how often to
 * look: a clock moved by hand (the sandbox's, a test's) is seen at the next look, and a clock that
 * announces its moves (`onAfterMove`, as the sandbox clock does) is seen at once: the move then
 * waits (a little) for the steps it cut off to stop and record their result, so that a lease never
 * expires under a step that is still acting.
 */
import { StampkeeperError } from '../core/errors';
import type { Clock } from '../ports/clock';

/** Why a step's signal aborted. */
export type AbortCause = 'timeout' | 'cancel' | 'invocation';

/**
 * The reason a step's abort signal carries. A step that stops because of it may throw it (or
 * anything): the engine records a timeout as retryable and a cancel as the step cancelled.
 */
export class StepAbortedError extends StampkeeperError {
  constructor(readonly abortCause: AbortCause) {
    super(
      abortCause === 'cancel' ? 'StepCancelled' : 'StepAborted',
      abortCause === 'cancel'
        ? 'the run was cancelled while this step was in flight'
        : abortCause === 'timeout'
          ? 'the step ran out of time: its lease ends soon'
          : 'the invocation was stopped',
      { retryable: abortCause !== 'cancel' },
    );
  }
}

/** A clock that announces its moves and waits for the hooks (the sandbox clock does). */
interface AnnouncingClock extends Clock {
  onAfterMove(hook: () => Promise<void>): void;
}

function announces(clock: Clock): clock is AnnouncingClock {
  return typeof (clock as Partial<AnnouncingClock>).onAfterMove === 'function';
}

/** How long a clock move waits for a step it aborted to record its result. */
const MOVE_SETTLE_MS = 5_000;

/** The watches of the steps in flight in this process, per clock (one move hook per clock). */
const watchesByClock = new WeakMap<Clock, Set<StepWatch>>();

export interface StepWatchOptions {
  clock: Clock;
  /** The clock instant at which the step must stop. */
  abortAt: Date;
  /** The same bound in wall time (from now). */
  wallMs: number;
  /** How often (wall ms) to look at the clock. */
  pollMs: number;
  /** The invocation's signal, if any. */
  parent?: AbortSignal;
  /** Whether a cancel was requested (a read of the run), asked every `cancelPollMs` of wall time. */
  cancelRequested?: () => Promise<boolean>;
  cancelPollMs: number;
}

export class StepWatch {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private readonly wallDeadline: number;
  private timer: NodeJS.Timeout | undefined;
  private lastCancelCheck: number;
  private checkingCancel = false;
  private stopped = false;
  private settled: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: StepWatchOptions) {
    this.signal = this.controller.signal;
    const start = Date.now();
    this.wallDeadline = start + options.wallMs;
    this.lastCancelCheck = start;
    const parent = options.parent;
    if (parent) {
      if (parent.aborted) this.abort('invocation');
      else parent.addEventListener('abort', () => this.abort('invocation'), { once: true });
    }
    let watches = watchesByClock.get(options.clock);
    if (!watches) {
      const created = new Set<StepWatch>();
      watches = created;
      watchesByClock.set(options.clock, created);
      if (announces(options.clock)) {
        options.clock.onAfterMove(async () => {
          for (const watch of [...created]) await watch.onClockMoved();
        });
      }
    }
    watches.add(this);
    this.look();
  }

  /** The step's promise: a clock move that aborts the step waits for it (bounded). */
  track(step: Promise<unknown>): void {
    this.settled = step.catch(() => undefined);
  }

  /** Stops watching (the step is over). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    watchesByClock.get(this.options.clock)?.delete(this);
  }

  private abort(cause: AbortCause): void {
    if (this.signal.aborted) return;
    this.controller.abort(new StepAbortedError(cause));
  }

  private due(): boolean {
    return (
      this.options.clock.now().getTime() >= this.options.abortAt.getTime() || Date.now() >= this.wallDeadline
    );
  }

  private async onClockMoved(): Promise<void> {
    if (this.stopped || this.signal.aborted || !this.due()) return;
    this.abort('timeout');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.settled,
      new Promise((resolve) => {
        timer = setTimeout(resolve, MOVE_SETTLE_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  private look(): void {
    if (this.stopped || this.signal.aborted) return;
    if (this.due()) {
      this.abort('timeout');
      return;
    }
    const now = Date.now();
    if (
      this.options.cancelRequested &&
      !this.checkingCancel &&
      now - this.lastCancelCheck >= this.options.cancelPollMs
    ) {
      this.lastCancelCheck = now;
      this.checkingCancel = true;
      this.options
        .cancelRequested()
        .then((requested) => {
          if (requested) this.abort('cancel');
        })
        // A failed read is not a cancel: look again at the next poll.
        .catch(() => undefined)
        .finally(() => {
          this.checkingCancel = false;
        });
    }
    const byClock = this.options.abortAt.getTime() - this.options.clock.now().getTime();
    const poll = this.options.cancelRequested
      ? Math.min(this.options.pollMs, this.options.cancelPollMs)
      : this.options.pollMs;
    const delay = Math.max(1, Math.min(poll, byClock, this.wallDeadline - now));
    this.timer = setTimeout(() => this.look(), delay);
    this.timer.unref?.();
  }
}
