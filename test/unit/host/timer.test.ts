import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseSchedule } from '../../../src/local/host/ncrontab';
import {
  checkPastDue,
  startTimerListener,
  timerSchedule,
  timerTriggerData,
  usesMonitor,
} from '../../../src/local/host/timer';
import type {
  InvocationInput,
  InvocationOutcome,
  Invoker,
  RegisteredFunction,
} from '../../../src/local/host/types';

function timerFunction(trigger: Record<string, unknown>): RegisteredFunction {
  const binding = { type: 'timerTrigger', direction: 'in', ...trigger };
  return {
    name: 'tick',
    metadata: { name: 'tick', bindings: { t: binding } },
    callback: () => undefined,
    triggerName: 't',
    trigger: binding,
  };
}

/** A hand-written Invoker whose invocations finish when the test says so. */
class ControlledInvoker implements Invoker {
  readonly calls: InvocationInput[] = [];
  running = 0;
  maxRunning = 0;
  #pending: Array<(o: InvocationOutcome) => void> = [];
  invoke(_fn: RegisteredFunction, input: InvocationInput): Promise<InvocationOutcome> {
    this.calls.push(input);
    this.running += 1;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    return new Promise((resolve) =>
      this.#pending.push((o) => {
        this.running -= 1;
        resolve(o);
      }),
    );
  }
  finishAll(): void {
    for (const resolve of this.#pending.splice(0)) resolve({ ok: true, attempts: 1 });
  }
  infos(): Array<{ ScheduleStatus: Record<string, string> | null; IsPastDue: boolean }> {
    return this.calls.map((c) => JSON.parse(c.trigger.json as string));
  }
}

const quiet = { info: () => {}, warn: vi.fn(), error: () => {} };

describe('timer listener (no host storage)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-05-01T10:00:00.200Z'));
    quiet.warn.mockClear();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires on the schedule with the host TimerInfo: the status before the occurrence, Next being the one run', async () => {
    // Prepare
    const invoker = new ControlledInvoker();
    const listener = await startTimerListener(timerFunction({ schedule: '0 */10 * * * *' }), {
      invoker,
      logger: quiet,
      env: {},
    });
    // Act
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    invoker.finishAll();
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    invoker.finishAll();
    await listener.stop();
    // Assess
    const infos = invoker.infos();
    expect(infos).toHaveLength(2);
    expect(infos[0]).toEqual({
      Schedule: { AdjustForDST: true },
      ScheduleStatus: {
        Last: '0001-01-01T00:00:00',
        Next: '2026-05-01T10:10:00.000Z',
        LastUpdated: '0001-01-01T00:00:00',
      },
      IsPastDue: false,
    });
    expect(infos[1]?.ScheduleStatus).toEqual({
      Last: '2026-05-01T10:10:00.000Z',
      Next: '2026-05-01T10:20:00.000Z',
      LastUpdated: '2026-05-01T10:10:00.000Z',
    });
  });

  it('sends no ScheduleStatus for a schedule firing more than once a minute (not monitored)', async () => {
    // Prepare
    const invoker = new ControlledInvoker();
    const listener = await startTimerListener(timerFunction({ schedule: '*/10 * * * * *' }), {
      invoker,
      logger: quiet,
      env: {},
    });
    // Act
    await vi.advanceTimersByTimeAsync(10_000);
    invoker.finishAll();
    await listener.stop();
    // Assess
    expect(invoker.infos()).toEqual([
      { Schedule: { AdjustForDST: true }, ScheduleStatus: null, IsPastDue: false },
    ]);
  });

  it('never overlaps: the next occurrence is armed after the invocation, an occurrence missed meanwhile runs once at once', async () => {
    // Prepare
    const invoker = new ControlledInvoker();
    const listener = await startTimerListener(timerFunction({ schedule: '*/1 * * * * *' }), {
      invoker,
      logger: quiet,
      env: {},
    });
    // Act
    await vi.advanceTimersByTimeAsync(5_000);
    const whileRunning = invoker.calls.length;
    invoker.finishAll();
    await vi.advanceTimersByTimeAsync(1);
    const afterFinishing = invoker.calls.length;
    invoker.finishAll();
    await vi.advanceTimersByTimeAsync(1_000);
    invoker.finishAll();
    await listener.stop();
    // Assess
    expect(whileRunning).toBe(1);
    expect(afterFinishing).toBe(2);
    expect(invoker.calls).toHaveLength(3);
    expect(invoker.maxRunning).toBe(1);
  });

  it('runs each occurrence once when the timer wakes a millisecond early', async () => {
    // Prepare: the listener's clock reads 1 ms behind the timer that wakes it.
    const invoker = new ControlledInvoker();
    let lagMs = 0;
    const listener = await startTimerListener(timerFunction({ schedule: '0 */10 * * * *' }), {
      invoker,
      logger: quiet,
      env: {},
      now: () => new Date(Date.now() - lagMs),
    });
    lagMs = 1;
    // Act
    await vi.advanceTimersByTimeAsync(9 * 60_000 + 59_800);
    invoker.finishAll();
    await vi.advanceTimersByTimeAsync(50);
    invoker.finishAll();
    await vi.advanceTimersByTimeAsync(9 * 60_000 + 59_951);
    invoker.finishAll();
    await listener.stop();
    // Assess
    expect(invoker.infos().map((i) => i.ScheduleStatus?.Next)).toEqual([
      '2026-05-01T10:10:00.000Z',
      '2026-05-01T10:20:00.000Z',
    ]);
  });

  it('stops without waiting for ever for an invocation that never ends, and says so', async () => {
    // Prepare
    const invoker = new ControlledInvoker();
    const listener = await startTimerListener(timerFunction({ schedule: '*/10 * * * * *' }), {
      invoker,
      logger: quiet,
      env: {},
      stopTimeoutMs: 1_000,
    });
    await vi.advanceTimersByTimeAsync(10_000);
    let stopped = false;
    // Act
    const stopping = listener.stop().then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(999);
    const beforeLimit = stopped;
    await vi.advanceTimersByTimeAsync(1);
    await stopping;
    // Assess
    expect(invoker.calls).toHaveLength(1);
    expect(beforeLimit).toBe(false);
    expect(stopped).toBe(true);
    expect(quiet.warn).toHaveBeenCalledWith(expect.stringContaining('[tick] stopped without waiting'));
  });

  it('fires once at start with runOnStartup, and never after stop', async () => {
    // Prepare
    const invoker = new ControlledInvoker();
    const listener = await startTimerListener(
      timerFunction({ schedule: '0 0 0 1 JAN *', runOnStartup: true }),
      {
        invoker,
        logger: quiet,
        env: {},
      },
    );
    // Act
    await vi.advanceTimersByTimeAsync(1);
    const atStart = invoker.calls.length;
    invoker.finishAll();
    await listener.stop();
    await vi.advanceTimersByTimeAsync(366 * 24 * 3600 * 1000);
    // Assess
    expect(atStart).toBe(1);
    expect(invoker.calls).toHaveLength(1);
    expect(invoker.infos()[0]?.IsPastDue).toBe(false);
  });

  it('resolves %Setting% schedules and reports bad ones with the function name', () => {
    // Act / Assess
    expect(
      timerSchedule(timerFunction({ schedule: '%TICK_SCHEDULE%' }), { TICK_SCHEDULE: '0 */5 * * * *' }),
    ).toMatchObject({
      kind: 'cron',
      expression: '0 */5 * * * *',
    });
    expect(() => timerSchedule(timerFunction({ schedule: '%MISSING%' }), {})).toThrow(
      `Timer function "tick": the schedule refers to the app setting 'MISSING', which is not set.`,
    );
    expect(() => timerSchedule(timerFunction({ schedule: '%EMPTY%' }), { EMPTY: '' })).toThrow(
      `the app setting 'EMPTY', which is not set`,
    );
    expect(() => timerSchedule(timerFunction({ schedule: '* * * * *' }), {})).toThrow(
      /Timer function "tick": .*5 field/,
    );
    expect(() => timerSchedule(timerFunction({}), {})).toThrow('Timer function "tick" has no schedule.');
  });

  it('builds the TimerInfo with or without a status', () => {
    // Act
    const monitored = JSON.parse(
      timerTriggerData({ status: { lastUpdated: new Date('2026-01-01T00:00:00Z') }, isPastDue: true })
        .json as string,
    );
    const unmonitored = JSON.parse(timerTriggerData({ status: null }).json as string);
    // Assess
    expect(monitored).toEqual({
      Schedule: { AdjustForDST: true },
      ScheduleStatus: {
        Last: '0001-01-01T00:00:00',
        Next: '0001-01-01T00:00:00',
        LastUpdated: '2026-01-01T00:00:00.000Z',
      },
      IsPastDue: true,
    });
    expect(unmonitored).toEqual({ Schedule: { AdjustForDST: true }, ScheduleStatus: null, IsPastDue: false });
  });
});

describe('schedule monitor rules', () => {
  const hourly = parseSchedule('0 0 * * * *');
  const at = (iso: string) => new Date(iso);

  it('monitors schedules of a minute or more, unless useMonitor is false', () => {
    // Prepare
    const now = at('2026-05-01T10:00:00Z');
    const fn = timerFunction({ schedule: 'x' });
    // Act / Assess
    expect(usesMonitor(fn, parseSchedule('0 */5 * * * *'), now)).toBe(true);
    expect(usesMonitor(fn, parseSchedule('0 * * * * *'), now)).toBe(true);
    expect(usesMonitor(fn, parseSchedule('*/30 * * * * *'), now)).toBe(false);
    expect(usesMonitor(fn, parseSchedule('00:05:00'), now)).toBe(true);
    expect(usesMonitor(fn, parseSchedule('00:00:30'), now)).toBe(false);
    expect(usesMonitor(timerFunction({ schedule: 'x', useMonitor: false }), hourly, now)).toBe(false);
  });

  it('records a first status for a timer never seen, not past due', () => {
    // Act
    const checked = checkPastDue(hourly, at('2026-05-01T10:20:00Z'), undefined);
    // Assess
    expect(checked).toEqual({
      pastDueMs: 0,
      changed: true,
      status: { next: at('2026-05-01T11:00:00Z'), lastUpdated: at('2026-05-01T10:20:00Z') },
    });
  });

  it('is past due when the clock passed the recorded Next (an occurrence missed while no host ran)', () => {
    // Prepare
    const recorded = {
      last: at('2026-05-01T10:00:00Z'),
      next: at('2026-05-01T11:00:00Z'),
      lastUpdated: at('2026-05-01T10:00:00Z'),
    };
    // Act
    const checked = checkPastDue(hourly, at('2026-05-01T13:30:00Z'), recorded);
    const onTime = checkPastDue(hourly, at('2026-05-01T10:59:00Z'), recorded);
    // Assess
    expect(checked).toEqual({ pastDueMs: 2.5 * 3600_000, changed: false, status: recorded });
    expect(onTime.pastDueMs).toBe(0);
  });

  it('recomputes a status whose Next no longer follows from the schedule, from now when that is past', () => {
    // Prepare: recorded for an hourly schedule, which is now every 15 minutes
    const quarter = parseSchedule('0 */15 * * * *');
    const recorded = {
      last: at('2026-05-01T10:00:00Z'),
      next: at('2026-05-01T11:00:00Z'),
      lastUpdated: at('2026-05-01T10:00:00Z'),
    };
    // Act
    const soon = checkPastDue(quarter, at('2026-05-01T10:05:00Z'), recorded);
    const late = checkPastDue(quarter, at('2026-05-01T12:05:00Z'), recorded);
    // Assess
    expect(soon).toEqual({
      pastDueMs: 0,
      changed: true,
      status: { last: undefined, next: at('2026-05-01T10:15:00Z'), lastUpdated: at('2026-05-01T10:00:00Z') },
    });
    expect(late).toEqual({
      pastDueMs: 0,
      changed: true,
      status: { last: undefined, next: at('2026-05-01T12:15:00Z'), lastUpdated: at('2026-05-01T12:05:00Z') },
    });
  });
});
