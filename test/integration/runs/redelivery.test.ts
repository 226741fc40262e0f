import { describe, expect, it } from 'vitest';
import { TransientError } from '../../../src/lib/core/errors';
import type { Run, RunKindDefinition } from '../../../src/lib/runs';
import { RunEngine } from '../../../src/lib/runs';
import { freshStores, QueueTrigger, TestClock } from './support';

/**
 * The real run store, with its `update` failing as a network would: `before` = the request never
 * reached the table, `after` = it was written but the answer was lost.
 */
function flakyRuns(runs: Awaited<ReturnType<typeof freshStores>>['runs']) {
  const faults: Array<{ when: (run: Run) => boolean; mode: 'before' | 'after' }> = [];
  const store = Object.create(runs) as typeof runs;
  store.update = async (run, options) => {
    const fault = faults.findIndex((f) => f.when(run));
    if (fault >= 0) {
      const mode = faults.splice(fault, 1)[0]?.mode;
      if (mode === 'after') await runs.update(run, options);
      throw new TransientError('run update failed (ECONNRESET)');
    }
    return runs.update(run, options);
  };
  return { store, faults };
}

function setup(
  clock: TestClock,
  stores: Awaited<ReturnType<typeof freshStores>>,
  runs: typeof stores.runs,
  executed: string[],
) {
  const kind: RunKindDefinition = {
    kind: 'rotate',
    steps: [
      {
        name: 'regenerate',
        run: async () => {
          executed.push('regenerate');
          return { status: 'done' };
        },
      },
      {
        name: 'publish',
        run: async () => {
          executed.push('publish');
          return { status: 'done' };
        },
      },
    ],
  };
  return new RunEngine({ runs, queue: stores.workQueue, audit: stores.audit, clock, kinds: [kind] });
}

describe('a redelivered message reclaims its own lease (issue 6, §8)', () => {
  it('records the result of a step whose result write failed, on the redelivery, without running it again', async () => {
    // Prepare: the write recording `regenerate` fails every time within the first delivery
    const clock = new TestClock();
    const stores = await freshStores(clock);
    const { store, faults } = flakyRuns(stores.runs);
    const recording = (run: Run) => run.state !== 'running' && run.steps[0]?.status === 'done';
    for (let i = 0; i < 3; i++) faults.push({ when: recording, mode: 'before' });
    const executed: string[] = [];
    const engine = setup(clock, stores, store, executed);
    const trigger = new QueueTrigger(stores, () => engine);
    const { run } = await engine.startRun('rotate', { target: 'vaults/kv/secrets/db', correlationId: 'c' });

    // Act: the trigger redelivers the message at once (same message id, a new invocation)
    await trigger.drain();
    const final = await engine.getRun(run.id);

    // Assess
    expect(trigger.deliveries.filter((d) => d.error)).toHaveLength(1);
    expect(final?.state).toBe('succeeded');
    expect(executed).toEqual(['regenerate', 'publish']);
    expect(final?.steps[0]?.attempts).toBe(1);
  });

  it('takes its own lease back when the lease write was applied but its answer lost: the run does not stall', async () => {
    // Prepare: the first lease write succeeds on the table, but the worker sees an error
    const clock = new TestClock();
    const stores = await freshStores(clock);
    const { store, faults } = flakyRuns(stores.runs);
    faults.push({ when: (run) => run.state === 'running', mode: 'after' });
    const executed: string[] = [];
    const engine = setup(clock, stores, store, executed);
    const trigger = new QueueTrigger(stores, () => engine);
    const { run } = await engine.startRun('rotate', { target: 'vaults/kv/secrets/db', correlationId: 'c' });

    // Act
    await trigger.drain();
    const final = await engine.getRun(run.id);

    // Assess: no resume timer was needed, nothing was poisoned
    expect(final?.state).toBe('succeeded');
    expect(executed).toEqual(['regenerate', 'publish']);
    expect(trigger.poison).toEqual([]);
  });
});
