import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startTimerListener, timerSchedule, timerTriggerData } from '../../../src/local/host/timer';
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
  #pending: Array<(o: InvocationOutcome) => void> = [];
  invoke(_fn: RegisteredFunction, input: InvocationInput): Promise<InvocationOutcome> {
    this.calls.push(input);
    return new Promise((resolve) => this.#pending.push(resolve));
  }
  finishAll(): void {
    for (const resolve of this.#pending.splice(0)) resolve({ ok: true, attempts: 1 });
  }
}

const quiet = { info: () => {}, warn: vi.fn(), error: () => {} };

describe('timer listener', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-05-01T10:00:00.200Z'));
    quiet.warn.mockClear();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires on the schedule with the host TimerInfo (Last, Next, LastUpdated, IsPastDue)', async () => {
    // Prepare
    const invoker = new ControlledInvoker();
    const listener = startTimerListener(timerFunction({ schedule: '*/10 * * * * *' }), {
      invoker,
      logger: quiet,
      env: {},
    });
    // Act
    await vi.advanceTimersByTimeAsync(10_000);
    invoker.finishAll();
    await vi.advanceTimersByTimeAsync(10_000);
    invoker.finishAll();
    await listener.stop();
    // Assess
    const infos = invoker.calls.map((c) => JSON.parse(c.trigger.json as string));
    expect(infos).toHaveLength(2);
    expect(infos[0]).toMatchObject({
      Schedule: { AdjustForDST: true },
      ScheduleStatus: { Last: '0001-01-01T00:00:00', Next: '2026-05-01T10:00:20.000Z' },
      IsPastDue: false,
    });
    expect(infos[1].ScheduleStatus).toMatchObject({
      Last: '2026-05-01T10:00:10.000Z',
      Next: '2026-05-01T10:00:30.000Z',
    });
  });

  it('does not overlap: occurrences while an invocation still runs are skipped', async () => {
    // Prepare
    const invoker = new ControlledInvoker();
    const listener = startTimerListener(timerFunction({ schedule: '*/1 * * * * *' }), {
      invoker,
      logger: quiet,
      env: {},
    });
    // Act
    await vi.advanceTimersByTimeAsync(5_000);
    const whileRunning = invoker.calls.length;
    invoker.finishAll();
    await vi.advanceTimersByTimeAsync(1_000);
    invoker.finishAll();
    await listener.stop();
    // Assess
    expect(whileRunning).toBe(1);
    expect(quiet.warn).toHaveBeenCalledWith(expect.stringContaining('still running'));
    expect(invoker.calls).toHaveLength(2);
  });

  it('fires each occurrence once when the timer fires a millisecond early', async () => {
    // Prepare: the listener's clock reads 1 ms behind the timer that wakes it, as when Node fires
    // a timer early.
    const invoker = new ControlledInvoker();
    let lagMs = 0;
    const listener = startTimerListener(timerFunction({ schedule: '*/10 * * * * *' }), {
      invoker,
      logger: quiet,
      env: {},
      now: () => new Date(Date.now() - lagMs),
    });
    lagMs = 1;
    // Act
    await vi.advanceTimersByTimeAsync(9_800);
    invoker.finishAll();
    await vi.advanceTimersByTimeAsync(50);
    invoker.finishAll();
    await vi.advanceTimersByTimeAsync(9_951);
    invoker.finishAll();
    await listener.stop();
    // Assess
    const scheduled = invoker.calls.map((c) => JSON.parse(c.trigger.json as string).ScheduleStatus.Next);
    expect(scheduled).toEqual(['2026-05-01T10:00:20.000Z', '2026-05-01T10:00:30.000Z']);
    expect(quiet.warn).not.toHaveBeenCalled();
  });

  it('stops without waiting for ever for an invocation that never ends, and says so', async () => {
    // Prepare
    const invoker = new ControlledInvoker();
    const listener = startTimerListener(timerFunction({ schedule: '*/10 * * * * *' }), {
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
    const listener = startTimerListener(timerFunction({ schedule: '0 0 0 1 JAN *', runOnStartup: true }), {
      invoker,
      logger: quiet,
      env: {},
    });
    // Act
    const atStart = invoker.calls.length;
    invoker.finishAll();
    await listener.stop();
    await vi.advanceTimersByTimeAsync(366 * 24 * 3600 * 1000);
    // Assess
    expect(atStart).toBe(1);
    expect(invoker.calls).toHaveLength(1);
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

  it('builds the TimerInfo of an admin invocation', () => {
    // Act
    const info = JSON.parse(timerTriggerData({ now: new Date('2026-01-01T00:00:00Z') }).json as string);
    // Assess
    expect(info).toEqual({
      Schedule: { AdjustForDST: true },
      ScheduleStatus: {
        Last: '0001-01-01T00:00:00',
        Next: '0001-01-01T00:00:00',
        LastUpdated: '2026-01-01T00:00:00.000Z',
      },
      IsPastDue: false,
    });
  });
});
