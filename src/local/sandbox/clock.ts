/**
 * The sandbox clock: the project's `Clock` port, but time only moves when someone moves it. Moving it
 * forward walks through every world occurrence due on the way (a secret's 30-day mark, its expiry)
 * in time order, with `now()` set to the instant of each occurrence while it fires, so what the world
 * raises carries the time it would carry in Azure.
 */
import type { Clock } from '../../lib/ports/clock';

/**
 * The furthest one move may take the clock: 100 years (36 525 days). Far enough for any story of
 * expiries; a bigger move is a typo (`{"days":1e10}`), and past 275 760 years `Date` cannot even
 * hold the result.
 */
export const MAX_MOVE_MS = 36_525 * 86_400_000;
/** The latest instant a `Date` can hold (+275760-09-13). */
const MAX_DATE_MS = 8.64e15;

/** Why moving from `from` to `to` (epoch ms) is refused, or undefined when it is fine. */
export function moveProblem(from: number, to: number): string | undefined {
  if (!Number.isFinite(to) || to > MAX_DATE_MS) return 'the target time is not a valid date';
  if (to < from) return 'time only moves forward';
  if (to - from > MAX_MOVE_MS) return 'one move may take the clock at most 100 years (36525 days) ahead';
  return undefined;
}

/** Something in the world that wakes up at given instants (one per emulated service). */
export interface WorldTicker {
  /** The earliest instant (epoch ms) something is due at or after nothing was fired, or undefined. */
  nextDueAt(): number | undefined;
  /** Fires everything due at or before `now` (epoch ms). */
  fireDue(now: number): Promise<void>;
}

export interface SandboxClock extends Clock {
  /** Moves time forward by `ms` (>= 0), firing what falls due on the way. */
  advance(ms: number): Promise<Date>;
  /** Moves time to `date` (not before now), firing what falls due on the way. */
  set(date: Date): Promise<Date>;
  /** Fires whatever is already due at the current instant (e.g. a secret created inside its 30-day window). */
  settle(): Promise<void>;
  /** Registers a part of the world that wakes up at given instants. */
  addTicker(ticker: WorldTicker): void;
  /**
   * Runs at each instant a move stops at (every due occurrence, then the target) before time moves
   * on: the sandbox waits for its deliveries there. A hook must not move the clock itself.
   */
  onAfterMove(hook: () => Promise<void>): void;
}

/** A sandbox clock starting at `start` (the real time when omitted). */
export function createSandboxClock(start: Date = new Date()): SandboxClock {
  return new SandboxClockImpl(start);
}

export class SandboxClockImpl implements SandboxClock {
  private current: number;
  private readonly tickers: WorldTicker[] = [];
  private readonly afterMove: Array<() => Promise<void>> = [];
  /** Serialises moves: two concurrent advances must not interleave their walks. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(start: Date) {
    if (Number.isNaN(start.getTime()))
      throw new RangeError('sandbox clock: the start time is not a valid date');
    this.current = start.getTime();
  }

  now(): Date {
    return new Date(this.current);
  }

  addTicker(ticker: WorldTicker): void {
    this.tickers.push(ticker);
  }

  onAfterMove(hook: () => Promise<void>): void {
    this.afterMove.push(hook);
  }

  advance(ms: number): Promise<Date> {
    if (!Number.isFinite(ms) || ms < 0 || ms > MAX_MOVE_MS) {
      return Promise.reject(
        new RangeError(`sandbox clock: cannot advance by ${ms} ms (must be from 0 to ${MAX_MOVE_MS})`),
      );
    }
    return this.enqueue(() => {
      const problem = moveProblem(this.current, this.current + ms);
      if (problem) throw new RangeError(`sandbox clock: cannot advance by ${ms} ms: ${problem}`);
      return this.walkTo(this.current + ms);
    });
  }

  set(date: Date): Promise<Date> {
    const target = date.getTime();
    if (Number.isNaN(target)) return Promise.reject(new RangeError('sandbox clock: not a valid date'));
    return this.enqueue(() => {
      const problem = moveProblem(this.current, target);
      if (problem) {
        throw new RangeError(
          `sandbox clock: cannot move from ${this.now().toISOString()} to ${date.toISOString()}: ${problem}`,
        );
      }
      return this.walkTo(target);
    });
  }

  settle(): Promise<void> {
    return this.enqueue(async () => {
      await this.walkTo(this.current);
    });
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async walkTo(target: number): Promise<Date> {
    // Guards a ticker that keeps reporting the same instant without firing: a bug, not an infinite loop.
    for (let guard = 0; guard < 100_000; guard++) {
      const due = this.earliestDue();
      if (due === undefined || due > target) break;
      if (due > this.current) this.current = due;
      for (const ticker of this.tickers) {
        const at = ticker.nextDueAt();
        if (at !== undefined && at <= this.current) await ticker.fireDue(this.current);
      }
      // Deliveries happen at the instant of their event, before time moves on, as they would in Azure:
      // a handler of a near-expiry event must not see a clock already past the expiry.
      for (const hook of this.afterMove) await hook();
    }
    this.current = target;
    for (const hook of this.afterMove) await hook();
    return this.now();
  }

  private earliestDue(): number | undefined {
    let min: number | undefined;
    for (const ticker of this.tickers) {
      const at = ticker.nextDueAt();
      if (at !== undefined && (min === undefined || at < min)) min = at;
    }
    return min;
  }
}
