import { describe, expect, it } from 'vitest';
import type { RunKindDefinition } from '../../../src/lib/runs';
import { createSandboxClock } from '../../../src/local/sandbox/clock';
import { QueueTrigger, setupEngine } from './support';

const HOUR = 3_600_000;
const LEASE_MS = 60_000;

describe('one clock (issue 6, §7)', () => {
  it('aborts a step in flight when the sandbox clock passes its abort time, before the lease expires: the effect happens once', async () => {
    // Prepare: a step that acts when the test lets it, unless its signal aborted first
    const clock = createSandboxClock(new Date('2026-11-27T10:00:00Z'));
    let running = 0;
    let maxRunning = 0;
    let effects = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started!: () => void;
    let firstStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    const kind: RunKindDefinition = {
      kind: 'rotate',
      steps: [
        {
          name: 'regenerate',
          run: async (_run, ctx) => {
            running++;
            maxRunning = Math.max(maxRunning, running);
            started();
            try {
              await new Promise<void>((resolve, reject) => {
                ctx.abortSignal.addEventListener('abort', () => reject(ctx.abortSignal.reason), {
                  once: true,
                });
                void released.then(resolve);
              });
              effects++;
              return { status: 'done' };
            } finally {
              running--;
            }
          },
        },
      ],
    };
    const { stores, engine } = await setupEngine(
      [kind],
      { leaseMs: LEASE_MS, stallThresholdMs: 30_000 },
      clock,
    );
    const { run } = await engine.startRun('rotate', { target: 'vaults/kv/secrets/db', correlationId: 'c' });
    const first = engine.advanceRun(run.id, { owner: 'msg:a:0', ticket: 0 }).catch((e: unknown) => e);
    await firstStarted;

    // Act: the clock jumps past the lease; the resume timer and a second worker come
    await clock.advance(LEASE_MS + 1_000);
    await engine.resumeStalledRuns();
    const afterMove = await engine.getRun(run.id);
    await clock.advance(5 * 60_000);
    firstStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    const second = engine.advanceRun(run.id, { owner: 'msg:b:1', ticket: afterMove?.ticket });
    await firstStarted;
    release();
    await Promise.all([first, second]);
    await new QueueTrigger(stores, () => engine).drain();
    const final = await engine.getRun(run.id);

    // Assess: the first execution stopped (recorded as a retry) before the lease could be taken over
    expect(afterMove?.state).toBe('waiting');
    expect(afterMove?.lease).toBeUndefined();
    expect(afterMove?.steps[0]).toMatchObject({
      status: 'pending',
      attempts: 1,
      error: { code: 'StepAborted' },
    });
    expect(maxRunning).toBe(1);
    expect(effects).toBe(1);
    expect(final?.state).toBe('succeeded');
    expect(final?.steps[0]?.attempts).toBe(2);
  });

  it('makes a wait due when the sandbox clock reaches its end, not when the wall clock does', async () => {
    // Prepare: an hour's wait, on a sandbox clock that only moves when told
    const clock = createSandboxClock(new Date('2026-11-27T10:00:00Z'));
    let polls = 0;
    const kind: RunKindDefinition = {
      kind: 'drain',
      steps: [
        {
          name: 'waitEmpty',
          run: async () => {
            polls++;
            return polls === 1 ? { status: 'wait', delayMs: HOUR } : { status: 'done' };
          },
        },
      ],
    };
    const { stores, engine } = await setupEngine([kind], { maxQueueDelayMs: 1_000 }, clock);
    const { run } = await engine.startRun('drain', { target: 'queues/q', correlationId: 'c' });
    const trigger = new QueueTrigger(stores, () => engine);
    await trigger.drain();

    // Act: wall time passes, the clock does not: the wait is not over
    const frozenUntil = Date.now() + 2_500;
    while (Date.now() < frozenUntil) {
      await trigger.poll();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const whileFrozen = await engine.getRun(run.id);
    // ...then the clock moves by the hour
    await clock.advance(HOUR);
    const movedAt = Date.now();
    while ((await engine.getRun(run.id))?.state !== 'succeeded' && Date.now() - movedAt < 10_000) {
      await trigger.poll();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const final = await engine.getRun(run.id);

    // Assess
    expect(whileFrozen).toMatchObject({ state: 'waiting' });
    expect(final?.state).toBe('succeeded');
    expect(polls).toBe(2);
  });
});
