/**
 * Timer triggers, as the WebJobs timer extension runs them (`TimerListener`, `ScheduleMonitor`,
 * `TimerTriggerBinding`, `TimerInfo`) under the runtime's singleton (`SingletonListener`):
 *
 * - **Singleton.** `TimerListener` is `[Singleton(Mode = SingletonMode.Listener)]`: a host runs a
 *   timer only while it holds the blob lease `locks/<hostId>/Host.Functions.<name>.Listener` in the
 *   host storage (`timerStorage.ts`), renewed at half its period (`singleton.listenerLockPeriod`,
 *   60 s). A host that cannot take it runs nothing for that timer and tries again every
 *   `singleton.listenerLockRecoveryPollingInterval` (60 s); a holder that loses it stops the timer
 *   and tries again the same way. So of all hosts of an app on one storage account, one runs each
 *   timer.
 * - **One invocation at a time.** The next occurrence is armed only once the invocation has
 *   finished, from `Next` computed at the invocation's start: an occurrence that passed while the
 *   function ran fires once, at once, after it; occurrences never overlap.
 * - **Schedule monitor** (`useMonitor`, default true, forced off for schedules firing more than once
 *   a minute): the status `{ Last, Next, LastUpdated }` is kept in storage and updated after every
 *   invocation. At start, when the clock is past the recorded `Next` (an occurrence was missed while
 *   no host ran the timer), the function runs once at once with `IsPastDue: true`; when the schedule
 *   changed since, the status is recomputed instead (`ScheduleMonitor.CheckPastDueAsync`).
 *   Otherwise `runOnStartup: true` runs it once at start.
 * - **Trigger value** (`TimerInfo`, camel-cased by `@azure/functions`): `Schedule`, `ScheduleStatus`
 *   (the status before this invocation, so `Next` is the occurrence being run; null without the
 *   monitor) and `IsPastDue`.
 */
import { resolveBindingExpression } from './bindingData';
import type { SingletonConfig } from './hostConfig';
import { DRAIN_TIMEOUT_MS, describeError } from './invoker';
import { nextOccurrence, parseSchedule, type Schedule } from './ncrontab';
import { settledWithin } from './retry';
import {
  LockLostError,
  type ScheduleStatus,
  type TimerLock,
  type TimerStore,
  timerNameOf,
} from './timerStorage';
import type { HostLogger, Invoker, RegisteredFunction, RpcTypedData, TriggerListener } from './types';

/** .NET's DateTime.MinValue, what the host reports for an unset date. */
const MIN_VALUE = '0001-01-01T00:00:00';
// setTimeout holds at most 2^31-1 ms; longer waits are re-armed.
const MAX_TIMEOUT_MS = 2_147_483_647;
/** How soon a lease renewal that failed on a server error is tried again. */
const RENEWAL_RETRY_MS = 1_000;

const DEFAULT_SINGLETON: SingletonConfig = {
  listenerLockPeriodMs: 60_000,
  listenerLockRecoveryPollingIntervalMs: 60_000,
};

export type { ScheduleStatus } from './timerStorage';

export interface TimerInfoInput {
  /** The schedule status; null when the schedule is not monitored. */
  status: ScheduleStatus | null;
  isPastDue?: boolean;
}

/** The timer trigger value as the host sends it (PascalCase JSON of `TimerInfo`). */
export function timerTriggerData(info: TimerInfoInput): RpcTypedData {
  const date = (d: Date | undefined) => (d ? d.toISOString() : MIN_VALUE);
  return {
    json: JSON.stringify({
      Schedule: { AdjustForDST: true },
      ScheduleStatus: info.status
        ? {
            Last: date(info.status.last),
            Next: date(info.status.next),
            LastUpdated: date(info.status.lastUpdated),
          }
        : null,
      IsPastDue: info.isPastDue ?? false,
    }),
  };
}

/**
 * The schedule of a timer function; `%Name%` references are resolved from the environment with the
 * same rules as every other binding expression (`resolveBindingExpression`). Throws a clear error
 * when the schedule is missing, refers to an unset setting, or is invalid.
 */
export function timerSchedule(fn: RegisteredFunction, env: Record<string, string | undefined>): Schedule {
  const declared = fn.trigger.schedule;
  if (typeof declared !== 'string' || declared.trim() === '')
    throw new Error(`Timer function "${fn.name}" has no schedule.`);
  const expression = resolveBindingExpression(
    declared,
    (name) => env[name],
    `Timer function "${fn.name}": the schedule`,
  ) as string;
  try {
    return parseSchedule(expression);
  } catch (error) {
    throw new Error(`Timer function "${fn.name}": ${(error as Error).message}`);
  }
}

/**
 * Whether the schedule is monitored: `useMonitor` of the binding (default true), but never for a
 * schedule that fires more than once in the next minute, nor a TimeSpan under a minute
 * (`TimerSchedule.Create`).
 */
export function usesMonitor(fn: RegisteredFunction, schedule: Schedule, now: Date): boolean {
  if (fn.trigger.useMonitor === false) return false;
  if (schedule.kind === 'interval') return schedule.intervalMs >= 60_000;
  const first = nextOccurrence(schedule, now);
  const second = first && nextOccurrence(schedule, first);
  return !(second && second.getTime() <= now.getTime() + 60_000);
}

/**
 * `ScheduleMonitor.CheckPastDueAsync`: how far past its recorded `Next` the schedule is (0: not past
 * due), and the status to keep (to be stored when `changed`). A timer never recorded gets its first
 * status; a status whose `Next` no longer follows from the schedule (the schedule changed) is
 * recomputed, and from now when that would already be past.
 */
export function checkPastDue(
  schedule: Schedule,
  now: Date,
  recorded: ScheduleStatus | undefined,
): { pastDueMs: number; status: ScheduleStatus; changed: boolean } {
  const next = (after: Date) => nextOccurrence(schedule, after);
  let status: ScheduleStatus;
  let changed = false;
  if (!recorded) {
    status = { next: next(now), lastUpdated: now };
    changed = true;
  } else {
    status = { ...recorded };
    const basis = recorded.last ?? recorded.lastUpdated ?? now;
    let expected = next(basis);
    let lastUpdated = basis;
    if (recorded.next?.getTime() !== expected?.getTime()) {
      if (expected && now.getTime() > expected.getTime()) {
        expected = next(now);
        lastUpdated = now;
      }
      status = { last: undefined, next: expected, lastUpdated };
      changed = true;
    }
  }
  const pastDueMs =
    status.next && now.getTime() > status.next.getTime() ? now.getTime() - status.next.getTime() : 0;
  return { pastDueMs, status, changed };
}

export interface TimerListener extends TriggerListener {
  readonly schedule: Schedule;
  /** Invocations started by the schedule, past-due catch-up or runOnStartup so far. */
  readonly fired: number;
  /** Whether this host holds the timer's singleton lock (always true without a store). */
  readonly running: boolean;
}

export interface TimerListenerOptions {
  invoker: Invoker;
  logger: HostLogger;
  env: Record<string, string | undefined>;
  /** The clock the schedule is read on (default: the system clock). */
  now?: () => Date;
  /** How long `stop()` waits for a running invocation before abandoning it (default 5 s). */
  stopTimeoutMs?: number;
  /** Host storage for the schedule monitor and the singleton lock; without it, neither. */
  store?: TimerStore;
  /** host.json `singleton` (listener lock period and recovery polling interval). */
  singleton?: SingletonConfig;
}

/**
 * Starts the timer of one function: takes its singleton lock (or polls for it), reads the schedule
 * status, and arms the first occurrence (at once when past due or runOnStartup). Rejects when the
 * schedule is invalid or the host storage cannot be read.
 */
export async function startTimerListener(
  fn: RegisteredFunction,
  options: TimerListenerOptions,
): Promise<TimerListener> {
  const listener = new ScheduledTimer(fn, timerSchedule(fn, options.env), options);
  await listener.start();
  return listener;
}

class ScheduledTimer implements TimerListener {
  readonly functionName: string;
  readonly #timerName: string;
  readonly #now: () => Date;
  readonly #singleton: SingletonConfig;
  readonly #useMonitor: boolean;
  #status: ScheduleStatus = {};
  #handle: NodeJS.Timeout | undefined;
  #lockPolling: NodeJS.Timeout | undefined;
  #lockRenewal: NodeJS.Timeout | undefined;
  #lock: TimerLock | undefined;
  #active = false;
  #stopped = false;
  #running: Promise<void> | undefined;
  #fired = 0;

  constructor(
    private readonly fn: RegisteredFunction,
    readonly schedule: Schedule,
    private readonly options: TimerListenerOptions,
  ) {
    this.functionName = fn.name;
    this.#timerName = timerNameOf(fn.name);
    this.#now = options.now ?? (() => new Date());
    this.#singleton = options.singleton ?? DEFAULT_SINGLETON;
    this.#useMonitor = usesMonitor(fn, schedule, this.#now());
  }

  get fired(): number {
    return this.#fired;
  }

  get running(): boolean {
    return this.#active;
  }

  async start(): Promise<void> {
    const store = this.options.store;
    if (!store) return this.#startSchedule();
    const lock = await store.tryLock(`${this.#timerName}.Listener`, this.#singleton.listenerLockPeriodMs);
    if (lock) return this.#hold(lock);
    this.options.logger.info(
      `[${this.fn.name}] another host holds this timer's singleton lock; this host tries again every ${this.#singleton.listenerLockRecoveryPollingIntervalMs} ms.`,
    );
    this.#pollForLock();
  }

  async #hold(lock: TimerLock): Promise<void> {
    this.#lock = lock;
    this.#renewLater(this.#singleton.listenerLockPeriodMs / 2);
    try {
      await this.#startSchedule();
    } catch (error) {
      await this.#releaseLock();
      throw error;
    }
  }

  #pollForLock(): void {
    if (this.#stopped) return;
    this.#lockPolling = setTimeout(async () => {
      this.#lockPolling = undefined;
      if (this.#stopped) return;
      try {
        const lock = await this.options.store?.tryLock(
          `${this.#timerName}.Listener`,
          this.#singleton.listenerLockPeriodMs,
        );
        if (this.#stopped) {
          await lock?.release();
          return;
        }
        if (lock) {
          this.options.logger.info(
            `[${this.fn.name}] took this timer's singleton lock: the timer runs on this host.`,
          );
          await this.#hold(lock);
          return;
        }
      } catch (error) {
        this.options.logger.warn(
          `[${this.fn.name}] taking the timer's singleton lock failed: ${describeError(error)}`,
        );
      }
      this.#pollForLock();
    }, this.#singleton.listenerLockRecoveryPollingIntervalMs);
  }

  #renewLater(delayMs: number): void {
    this.#lockRenewal = setTimeout(async () => {
      this.#lockRenewal = undefined;
      const lock = this.#lock;
      if (!lock || this.#stopped) return;
      try {
        await lock.renew();
        this.#renewLater(this.#singleton.listenerLockPeriodMs / 2);
      } catch (error) {
        if (error instanceof LockLostError) {
          // SingletonListener's lease conflict: stop the timer, then try to take the lock again.
          this.options.logger.warn(
            `[${this.fn.name}] lost the timer's singleton lock: the timer stops on this host.`,
          );
          this.#lock = undefined;
          this.#stopSchedule();
          this.#pollForLock();
          return;
        }
        this.options.logger.warn(
          `[${this.fn.name}] renewing the timer's singleton lock failed: ${describeError(error)}`,
        );
        this.#renewLater(RENEWAL_RETRY_MS);
      }
    }, delayMs);
  }

  async #startSchedule(): Promise<void> {
    // A lock taken again while an invocation of the lost turn still runs: let it end first.
    if (this.#running) await this.#running;
    const now = this.#now();
    let pastDue = false;
    if (this.#useMonitor && this.options.store) {
      const recorded = await this.options.store.getStatus(this.#timerName);
      const checked = checkPastDue(this.schedule, now, recorded);
      if (checked.changed) await this.#saveStatus(checked.status);
      // A timer never recorded starts, as TimerListener.StartAsync, from a status it has not stored.
      this.#status = recorded ? checked.status : { next: checked.status.next };
      pastDue = checked.pastDueMs > 0;
    } else {
      this.#status = { next: nextOccurrence(this.schedule, now) };
    }
    if (this.#stopped) return;
    this.#active = true;
    if (pastDue) {
      this.options.logger.info(
        `[${this.fn.name}] is past due on startup (the ${this.#status.next?.toISOString()} occurrence was missed). Executing now.`,
      );
      this.#arm(0, 'pastDue');
    } else if (this.fn.trigger.runOnStartup === true) {
      this.#arm(0, 'runOnStartup');
    } else {
      this.#armAtNext();
    }
  }

  #stopSchedule(): void {
    this.#active = false;
    clearTimeout(this.#handle);
    this.#handle = undefined;
  }

  #armAtNext(): void {
    const next = this.#status.next;
    if (!next) return;
    this.#arm(next.getTime() - this.#now().getTime(), 'scheduled');
  }

  #arm(waitMs: number, reason: 'scheduled' | 'pastDue' | 'runOnStartup'): void {
    if (!this.#active || this.#stopped) return;
    const wait = Math.max(0, waitMs);
    this.#handle = setTimeout(
      () => {
        this.#handle = undefined;
        if (wait > MAX_TIMEOUT_MS) return this.#armAtNext();
        this.#running = this.#occur(reason)
          .catch((error) =>
            this.options.logger.error(`[${this.fn.name}] timer occurrence failed: ${describeError(error)}`),
          )
          .finally(() => {
            this.#running = undefined;
            this.#armAtNext();
          });
      },
      Math.min(wait, MAX_TIMEOUT_MS),
    );
  }

  /** One invocation, then the status computed as `TimerListener.InvokeJobFunction` does. */
  async #occur(reason: 'scheduled' | 'pastDue' | 'runOnStartup'): Promise<void> {
    if (!this.#active || this.#stopped) return;
    this.#fired += 1;
    const invokedAt = this.#now();
    const input = {
      trigger: timerTriggerData({
        status: this.#useMonitor ? this.#status : null,
        isPastDue: reason === 'pastDue',
      }),
    };
    // A failed invocation does not change the schedule (its error is in the log already).
    await this.options.invoker.invoke(this.fn, input);
    // A timer that wakes a little before its occurrence counts from the occurrence, so that the
    // same occurrence is never run twice.
    const next = this.#status.next;
    const at = reason === 'scheduled' && next && next.getTime() > invokedAt.getTime() ? next : invokedAt;
    this.#status = { last: at, next: nextOccurrence(this.schedule, at), lastUpdated: at };
    if (this.#useMonitor) await this.#saveStatus(this.#status);
  }

  async #saveStatus(status: ScheduleStatus): Promise<void> {
    try {
      await this.options.store?.updateStatus(this.#timerName, status);
    } catch (error) {
      // Best effort, as StorageScheduleMonitor: a missed update can only cause an extra past-due run.
      this.options.logger.error(
        `[${this.fn.name}] updating the timer's schedule status failed: ${describeError(error)}`,
      );
    }
  }

  async #releaseLock(): Promise<void> {
    clearTimeout(this.#lockRenewal);
    this.#lockRenewal = undefined;
    const lock = this.#lock;
    this.#lock = undefined;
    try {
      await lock?.release();
    } catch (error) {
      this.options.logger.warn(
        `[${this.fn.name}] releasing the timer's singleton lock failed: ${describeError(error)}`,
      );
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#lockPolling);
    this.#stopSchedule();
    const running = this.#running;
    if (running) {
      const limit = this.options.stopTimeoutMs ?? DRAIN_TIMEOUT_MS;
      if (!(await settledWithin([running], limit))) {
        this.options.logger.warn(
          `[${this.fn.name}] stopped without waiting for its running invocation (still running after ${limit} ms).`,
        );
      }
    }
    await this.#releaseLock();
  }
}
