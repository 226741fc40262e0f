import type { Clock } from '../../../lib/ports/clock';
import type { WorldTicker } from '../clock';

/**
 * Time for the sandbox's Service Bus broker. Message times (enqueued time, expiry, the duplicate
 * detection window, scheduled enqueue times) follow the broker's clock: wall time by default, or
 * the sandbox clock, so that they agree with the app's own clock on the sandbox. Lock durations
 * always run on wall time: the SDK's automatic lock renewal compares `lockedUntilUtc` with its own
 * `Date.now()`, and a lock is a promise about real seconds of work.
 */

/** The broker's clock: the project's `Clock` port; a sandbox clock (with `addTicker`) also drives scheduled messages. */
export type BrokerClock = Clock & { addTicker?(ticker: WorldTicker): void };

export interface BrokerTime {
  /** The broker clock's time (epoch ms). */
  now(): number;
  /** Runs `fire` once the broker clock reaches `at` (epoch ms). */
  at(at: number, fire: () => void): { cancel(): void };
  /** Cancels everything pending (broker shutdown). */
  dispose(): void;
}

/** setTimeout's limit: a longer delay overflows and fires at once (with a TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Runs `fire` at epoch-ms `at`, however far ahead (a message may be scheduled weeks out): a delay
 * beyond setTimeout's 2^31-1 ms is waited out in chunks, re-armed until the rest fits. Unref'd, so
 * a pending schedule never keeps the process alive.
 */
export function fireAt(at: number, fire: () => void): { cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const remaining = at - Date.now();
    timer =
      remaining > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(fire, Math.max(0, remaining));
    timer.unref();
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}

/**
 * The broker's time. Without a clock: wall time and wall-time timers. With a sandbox clock (one
 * that takes world tickers): its time, and scheduled work fires as the clock is moved past it,
 * in time order, like the sandbox's other world occurrences. With any other `Clock`: its time,
 * and timers that wait the difference in real time.
 */
export function createBrokerTime(clock?: BrokerClock): BrokerTime {
  if (!clock) return { now: () => Date.now(), at: fireAt, dispose: () => {} };
  if (typeof clock.addTicker !== 'function') {
    return {
      now: () => clock.now().getTime(),
      at: (at, fire) => fireAt(Date.now() + (at - clock.now().getTime()), fire),
      dispose: () => {},
    };
  }
  return new TickerTime(clock, clock.addTicker.bind(clock));
}

interface Pending {
  at: number;
  order: number;
  fire: () => void;
  cancelled: boolean;
}

/** Scheduled work as a world ticker of the sandbox clock. */
class TickerTime implements BrokerTime, WorldTicker {
  private pending: Pending[] = [];
  private order = 0;
  private disposed = false;

  constructor(
    private readonly clock: Clock,
    addTicker: (ticker: WorldTicker) => void,
  ) {
    addTicker(this);
  }

  now(): number {
    return this.clock.now().getTime();
  }

  at(at: number, fire: () => void): { cancel(): void } {
    const entry: Pending = { at, order: this.order++, fire, cancelled: false };
    // Kept sorted by time, then by arrival: few entries are pending at once (scheduled messages).
    let index = this.pending.length;
    while (index > 0 && this.pending[index - 1]!.at > at) index -= 1;
    this.pending.splice(index, 0, entry);
    return {
      cancel: () => {
        entry.cancelled = true;
        const i = this.pending.indexOf(entry);
        if (i >= 0) this.pending.splice(i, 1);
      },
    };
  }

  nextDueAt(): number | undefined {
    return this.disposed ? undefined : this.pending[0]?.at;
  }

  async fireDue(now: number): Promise<void> {
    while (!this.disposed && this.pending.length > 0 && this.pending[0]!.at <= now) {
      const entry = this.pending.shift()!;
      if (!entry.cancelled) entry.fire();
    }
  }

  dispose(): void {
    this.disposed = true;
    this.pending = [];
  }
}
