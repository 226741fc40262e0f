import { describe, expect, it } from 'vitest';
import { ConflictError, TransientError } from '../../../src/lib/core/errors';
import type { RunKindDefinition, StepResult } from '../../../src/lib/runs';
import { RunEngine } from '../../../src/lib/runs';
import { QueueTrigger, setupEngine, TestClock } from './support';

/** A rotation: one per secret at a time. */
function rotation(effects: string[]): RunKindDefinition {
  return {
    kind: 'rotate',
    target: { exclusive: true },
    steps: [
      {
        name: 'regenerate',
        run: async (run) => {
          effects.push(`regenerated ${run.target}`);
          return { status: 'done' };
        },
      },
    ],
  };
}

/** A step that notes it ran. */
const recorder = (log: string[], entry: string) => async (): Promise<StepResult> => {
  log.push(entry);
  return { status: 'done' };
};

const SECRET = 'vaults/kv1/secrets/cosmos-key';

describe('one run per target (issue 6, §4)', () => {
  it('creates exactly one run for two concurrent starts on one target, and the key is regenerated once', async () => {
    // Prepare
    const effects: string[] = [];
    const { stores, engine } = await setupEngine([rotation(effects)]);

    // Act
    const [a, b] = await Promise.all([
      engine.startRun('rotate', { target: SECRET, correlationId: 'c1' }),
      engine.startRun('rotate', { target: SECRET.toUpperCase(), correlationId: 'c2' }),
    ]);
    await new QueueTrigger(stores, () => engine).drain();
    const runs = await stores.runs.list({ kind: 'rotate' });

    // Assess
    expect(a.run.id).toBe(b.run.id);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(runs).toHaveLength(1);
    // Either start may win the race: the run keeps the target as its creator spelled it.
    expect(effects.map((e) => e.toLowerCase())).toEqual([`regenerated ${SECRET}`]);
  });

  it('returns the active run for the target, or refuses with 409 naming it; a finished run does not block', async () => {
    // Prepare
    const effects: string[] = [];
    const { stores, engine } = await setupEngine([rotation(effects)]);
    const first = await engine.startRun('rotate', { target: SECRET, correlationId: 'c1' });

    // Act
    const again = await engine.startRun('rotate', { target: SECRET, correlationId: 'c2' });
    const refused = await engine
      .startRun('rotate', { target: SECRET, correlationId: 'c3', ifActive: 'refuse' })
      .catch((error: unknown) => error);
    const other = await engine.startRun('rotate', {
      target: 'vaults/kv1/secrets/other',
      correlationId: 'c4',
    });
    await new QueueTrigger(stores, () => engine).drain();
    const next = await engine.startRun('rotate', { target: SECRET, correlationId: 'c5' });

    // Assess
    expect(again).toEqual({ run: first.run, created: false });
    expect(refused).toBeInstanceOf(ConflictError);
    expect((refused as ConflictError).status).toBe(409);
    expect((refused as ConflictError).retryable).toBe(false);
    expect((refused as ConflictError).message).toContain(first.run.id);
    expect(other.created).toBe(true);
    expect((await engine.getRun(first.run.id))?.state).toBe('succeeded');
    expect(next.created).toBe(true);
    expect(next.run.id).not.toBe(first.run.id);
  });

  it("lists a target's runs, newest first, and only that target's", async () => {
    // Prepare
    const { stores, engine, clock } = await setupEngine([rotation([])]);
    const trigger = new QueueTrigger(stores, () => engine);
    const first = await engine.startRun('rotate', { target: SECRET, correlationId: 'c1' });
    await trigger.drain();
    (clock as TestClock).advance(60_000);
    const second = await engine.startRun('rotate', { target: SECRET, correlationId: 'c2' });
    await trigger.drain();
    await engine.startRun('rotate', { target: 'vaults/kv1/secrets/other', correlationId: 'c3' });

    // Act
    const history = await engine.runsForTarget('rotate', SECRET.toUpperCase());
    const latest = await engine.runsForTarget('rotate', SECRET, { limit: 1 });

    // Assess
    expect(history.map((r) => r.id)).toEqual([second.run.id, first.run.id]);
    expect(latest.map((r) => r.id)).toEqual([second.run.id]);
  });

  it('does not create a second run when a start without a key is retried after its message could not be sent', async () => {
    // Prepare: the queue fails the first send (a network blip) and works afterwards
    const effects: string[] = [];
    const clock = new TestClock();
    const { stores } = await setupEngine([], {}, clock);
    let failures = 3;
    const flakyQueue = {
      send: async (...args: Parameters<typeof stores.workQueue.send>) => {
        if (failures-- > 0) throw new TransientError('queue send failed (503)');
        return stores.workQueue.send(...args);
      },
      receive: stores.workQueue.receive.bind(stores.workQueue),
      delete: stores.workQueue.delete.bind(stores.workQueue),
    };
    const engine = new RunEngine({
      runs: stores.runs,
      queue: flakyQueue,
      audit: stores.audit,
      clock,
      kinds: [{ kind: 'notify', steps: [{ name: 'send', run: recorder(effects, 'sent') }] }],
      options: { stallThresholdMs: 60_000 },
    });

    // Act: the caller retries when start throws, as any caller would
    let started: Awaited<ReturnType<RunEngine['startRun']>> | undefined;
    let calls = 0;
    while (!started && calls < 3) {
      calls++;
      started = await engine.startRun('notify', { target: 't', correlationId: 'c' }).catch(() => undefined);
    }
    clock.advance(61_000);
    const swept = await engine.resumeStalledRuns();
    await new QueueTrigger(stores, () => engine).drain();

    // Assess: one call was enough, one run exists, the resume timer sent its message
    expect(calls).toBe(1);
    expect(await stores.runs.list({ kind: 'notify' })).toHaveLength(1);
    expect(swept.resumed).toEqual([started?.run.id]);
    expect(effects).toEqual(['sent']);
  });
});

describe('a start whose create answer was lost', () => {
  it('tries again with the same id and answers its own run, not a second one', async () => {
    // Prepare: the run is written, but the first answer never arrives
    const clock = new TestClock();
    const { stores } = await setupEngine([], {}, clock);
    let lost = 1;
    const runs = Object.create(stores.runs) as typeof stores.runs;
    runs.create = async (run, options) => {
      const created = await stores.runs.create(run, options);
      if (lost-- > 0) throw new TransientError('run create failed (ECONNRESET)');
      return created;
    };
    const engine = new RunEngine({
      runs,
      queue: stores.workQueue,
      audit: stores.audit,
      clock,
      kinds: [{ kind: 'notify', steps: [{ name: 'send', run: async () => ({ status: 'done' }) }] }],
    });

    // Act
    const started = await engine.startRun('notify', { target: 't', correlationId: 'c' });

    // Assess
    expect(started.created).toBe(true);
    expect((await stores.runs.list({ kind: 'notify' })).map((r) => r.id)).toEqual([started.run.id]);
  });
});

describe('retention of exclusive runs', () => {
  it('purges a finished run of an exclusive target, and the target takes a new run afterwards', async () => {
    // Prepare
    const effects: string[] = [];
    const clock = new TestClock();
    const { stores, engine } = await setupEngine([rotation(effects)], {}, clock);
    const first = await engine.startRun('rotate', { target: SECRET, correlationId: 'c1' });
    await new QueueTrigger(stores, () => engine).drain();
    clock.advance(401 * 86_400_000);

    // Act
    const purged = await stores.runs.purgeFinished(new Date(clock.now().getTime() - 400 * 86_400_000));
    const next = await engine.startRun('rotate', { target: SECRET, correlationId: 'c2' });

    // Assess
    expect(purged).toEqual({ deleted: 1, more: false });
    expect(await engine.getRun(first.run.id)).toBeUndefined();
    expect(next.created).toBe(true);
    expect(next.run.id).not.toBe(first.run.id);
  });
});
