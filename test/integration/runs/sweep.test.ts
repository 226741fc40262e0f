import { describe, expect, it } from 'vitest';
import { DependencyError } from '../../../src/lib/core/errors';
import { stableHash } from '../../../src/lib/core/ids';
import type { RunKindDefinition } from '../../../src/lib/runs';
import { RunEngine } from '../../../src/lib/runs';
import { freshStores, setupEngine, TestClock } from './support';

const STALL_MS = 60_000;
const done = async () => ({ status: 'done' as const });
const kind = (name: string): RunKindDefinition => ({ kind: name, steps: [{ name: 'one', run: done }] });

/** Idempotency keys whose runs (`r-{hash}`) sort first or last in the index, to place runs in it. */
function keysSorted(kindName: string, count: number): string[] {
  const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`);
  return keys
    .sort((a, b) => (stableHash('run', kindName, a) < stableHash('run', kindName, b) ? -1 : 1))
    .slice(0, count);
}

describe('the resume sweep at scale (issue 6, §9)', () => {
  it('looks only at active runs: finished runs leave the index', async () => {
    // Prepare: twenty runs that finished, one whose first message was lost
    const clock = new TestClock();
    const { stores, engine } = await setupEngine([kind('k')], { stallThresholdMs: STALL_MS }, clock);
    for (let i = 0; i < 20; i++) {
      const { run } = await engine.startRun('k', { target: `t${i}`, correlationId: 'c' });
      await engine.advanceRun(run.id, { owner: `m${i}` });
    }
    await stores.workQueue
      .receive({ maxMessages: 32 })
      .then((all) => Promise.all(all.map((m) => stores.workQueue.delete(m))));
    const { run: lost } = await engine.startRun('k', { target: 'lost', correlationId: 'c' });
    const [message] = await stores.workQueue.receive();
    await stores.workQueue.delete(message!);

    // Act
    clock.advance(STALL_MS + 1);
    const sweep = await engine.resumeStalledRuns();

    // Assess
    expect(sweep).toMatchObject({ visited: 1, resumed: [lost.id], errors: [], more: false });
  });

  it('continues where the last tick stopped, so runs it cannot handle never hide stalled runs behind them', async () => {
    // Prepare: four runs of a kind the sweeping deployment does not know come first in the index,
    // two stalled runs of a known kind come last
    const clock = new TestClock();
    const stores = await freshStores(clock);
    const make = (kinds: RunKindDefinition[]) =>
      new RunEngine({
        runs: stores.runs,
        queue: stores.workQueue,
        audit: stores.audit,
        clock,
        kinds,
        options: { stallThresholdMs: STALL_MS },
      });
    const old = make([kind('gone'), kind('k')]);
    const current = make([kind('k')]);
    for (const key of keysSorted('gone', 4))
      await old.startRun('gone', { target: key, correlationId: 'c', idempotencyKey: key });
    const known: string[] = [];
    for (const key of keysSorted('k', 200).slice(-2)) {
      known.push((await old.startRun('k', { target: key, correlationId: 'c', idempotencyKey: key })).run.id);
    }
    clock.advance(STALL_MS + 1);

    // Act: three ticks of at most two runs each
    const ticks = [];
    for (let i = 0; i < 3; i++) ticks.push(await current.resumeStalledRuns({ budget: 2 }));

    // Assess
    expect(ticks.map((t) => t.visited)).toEqual([2, 2, 2]);
    expect(ticks.map((t) => t.more)).toEqual([true, true, false]);
    expect(ticks.flatMap((t) => t.resumed)).toEqual(expect.arrayContaining(known));
  });

  it('follows continuation tokens and bounds the work of one tick', async () => {
    // Prepare: 150 index entries (runs being started)
    const clock = new TestClock();
    const stores = await freshStores(clock);
    const engine = new RunEngine({
      runs: stores.runs,
      queue: stores.workQueue,
      audit: stores.audit,
      clock,
      kinds: [],
    });
    for (let i = 0; i < 150; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, j) =>
          stores.runs.addActive({
            runId: `run-${String(i + j).padStart(3, '0')}`,
            kind: 'k',
            addedOn: clock.now(),
          }),
        ),
      );
    }

    // Act
    const first = await engine.resumeStalledRuns({ budget: 120 });
    const second = await engine.resumeStalledRuns({ budget: 120 });
    const third = await engine.resumeStalledRuns({ budget: 120 });

    // Assess: 120 (two pages), then the 30 after them, then from the start again
    expect([first.visited, first.more]).toEqual([120, true]);
    expect([second.visited, second.more]).toEqual([30, false]);
    expect([third.visited, third.more]).toEqual([120, true]);
  });

  it('goes on when one run fails, and reports it', async () => {
    // Prepare: three stalled runs; writing one of them fails for good
    const clock = new TestClock();
    const stores = await freshStores(clock);
    const broken = new Set<string>();
    const runs = Object.create(stores.runs) as typeof stores.runs;
    runs.update = async (run, options) => {
      if (broken.has(run.id)) throw new DependencyError('run update failed (400 PropertyValueTooLarge)');
      return stores.runs.update(run, options);
    };
    const engine = new RunEngine({
      runs,
      queue: stores.workQueue,
      audit: stores.audit,
      clock,
      kinds: [kind('k')],
      options: { stallThresholdMs: STALL_MS },
    });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await engine.startRun('k', { target: `t${i}`, correlationId: 'c' })).run.id);
    broken.add(ids[1]!);
    clock.advance(STALL_MS + 1);

    // Act
    const sweep = await engine.resumeStalledRuns();

    // Assess
    expect(sweep.errors).toEqual([ids[1]]);
    expect(sweep.resumed.sort()).toEqual([ids[0], ids[2]].sort());
  });
});
