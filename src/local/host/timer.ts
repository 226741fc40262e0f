/**
 * Timer triggers: fires a function on its schedule (NCRONTAB or TimeSpan, UTC) with the trigger value
 * the host sends (`TimerInfo`: Schedule, ScheduleStatus { Last, Next, LastUpdated }, IsPastDue), which
 * `@azure/functions` camel-cases into `Timer`. An occurrence that comes while the previous invocation
 * still runs is skipped, as the host's singleton lock does; `runOnStartup` fires once at start.
 */
import { resolveBindingExpression } from './bindingData';
import { DRAIN_TIMEOUT_MS } from './invoker';
import { nextOccurrence, parseSchedule, type Schedule } from './ncrontab';
import { settledWithin } from './retry';
import type {
  HostLogger,
  InvocationOutcome,
  Invoker,
  RegisteredFunction,
  RpcTypedData,
  TriggerListener,
} from './types';

/** .NET's DateTime.MinValue, what the host reports as `Last` before the first run. */
const MIN_VALUE = '0001-01-01T00:00:00';
// setTimeout holds at most 2^31-1 ms; longer waits are re-armed.
const MAX_TIMEOUT_MS = 2_147_483_647;

export interface TimerInfoInput {
  last?: Date;
  next?: Date;
  now: Date;
  isPastDue?: boolean;
}

/** The timer trigger value as the host sends it (PascalCase JSON). */
export function timerTriggerData(info: TimerInfoInput): RpcTypedData {
  return {
    json: JSON.stringify({
      Schedule: { AdjustForDST: true },
      ScheduleStatus: {
        Last: info.last ? info.last.toISOString() : MIN_VALUE,
        Next: info.next ? info.next.toISOString() : MIN_VALUE,
        LastUpdated: info.now.toISOString(),
      },
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

export interface TimerListener extends TriggerListener {
  readonly schedule: Schedule;
  /** Invocations started by the schedule or runOnStartup so far. */
  readonly fired: number;
}

export interface TimerListenerOptions {
  invoker: Invoker;
  logger: HostLogger;
  env: Record<string, string | undefined>;
  now?: () => Date;
  /** How long `stop()` waits for a running invocation before abandoning it (default 5 s). */
  stopTimeoutMs?: number;
}

/** Starts the scheduler of one timer function. */
export function startTimerListener(fn: RegisteredFunction, options: TimerListenerOptions): TimerListener {
  const schedule = timerSchedule(fn, options.env);
  const now = options.now ?? (() => new Date());
  let last: Date | undefined;
  let running: Promise<InvocationOutcome> | undefined;
  let handle: NodeJS.Timeout | undefined;
  let stopped = false;
  let fired = 0;

  const fire = (scheduled: Date) => {
    if (stopped) return;
    if (running) {
      options.logger.warn(`[${fn.name}] skipped the ${scheduled.toISOString()} occurrence: still running.`);
      return;
    }
    fired += 1;
    const at = now();
    const input = { trigger: timerTriggerData({ last, next: nextOccurrence(schedule, scheduled), now: at }) };
    last = scheduled;
    running = options.invoker.invoke(fn, input);
    void running.finally(() => {
      running = undefined;
    });
  };

  // Re-arming after an occurrence counts from that occurrence, not from the clock: Node timers may
  // fire a millisecond early, and the clock would then still be before the occurrence just fired.
  const arm = (after?: Date) => {
    if (stopped) return;
    const clock = now();
    const from = after && after.getTime() > clock.getTime() ? after : clock;
    const next = nextOccurrence(schedule, from);
    if (!next) return;
    const wait = next.getTime() - clock.getTime();
    handle = setTimeout(
      () => {
        if (wait > MAX_TIMEOUT_MS) return arm(after);
        fire(next);
        arm(next);
      },
      Math.max(0, Math.min(wait, MAX_TIMEOUT_MS)),
    );
  };

  if (fn.trigger.runOnStartup === true) fire(now());
  arm();

  return {
    functionName: fn.name,
    schedule,
    get fired() {
      return fired;
    },
    async stop() {
      stopped = true;
      clearTimeout(handle);
      if (!running) return;
      const limit = options.stopTimeoutMs ?? DRAIN_TIMEOUT_MS;
      if (!(await settledWithin([running], limit))) {
        options.logger.warn(
          `[${fn.name}] stopped without waiting for its running invocation (still running after ${limit} ms).`,
        );
      }
    },
  };
}
