import { describe, expect, it } from 'vitest';
import type { RunKindDefinition } from '../../../src/lib/runs';
import { auditOf, setupEngine, TestClock } from './support';

const STALL_MS = 60_000;

describe('a backlog is not a stall (issue 6, §1)', () => {
  it('drains a queue whose consumer is slower than the resume timer, and every run advances', async () => {
    // Prepare: six three-step runs; the consumer handles ONE message per tick, and each tick the
    // clock moves 90 s (more than the stall threshold) and the resume timer runs.
    const executions: Record<string, number> = {};
    const counted = (name: string) => ({
      name,
      run: async (run: { id: string }) => {
        executions[`${run.id}:${name}`] = (executions[`${run.id}:${name}`] ?? 0) + 1;
        return { status: 'done' as const };
      },
    });
    const kind: RunKindDefinition = { kind: 'replay', steps: [counted('a'), counted('b'), counted('c')] };
    const clock = new TestClock();
    const { stores, engine } = await setupEngine([kind], { stallThresholdMs: STALL_MS }, clock);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      ids.push((await engine.startRun('replay', { target: `queues/q${i}`, correlationId: `c${i}` })).run.id);
    }

    // Act
    let ticks = 0;
    let handled = 0;
    for (; ticks < 300; ticks++) {
      const [item] = await stores.workQueue.receive({ maxMessages: 1 });
      if (item?.message) {
        await engine.advanceRun(item.message.runId, {
          owner: `msg:${item.messageId}:${item.message.ticket}`,
          ticket: item.message.ticket,
        });
        await stores.workQueue.delete(item);
        handled++;
      }
      const runs = await Promise.all(ids.map((id) => engine.getRun(id)));
      if (runs.every((r) => r?.state === 'succeeded')) break;
      clock.advance(90_000);
      await engine.resumeStalledRuns();
    }
    const runs = await Promise.all(ids.map((id) => engine.getRun(id)));
    const resumes = (await Promise.all(ids.map((id) => auditOf(stores, id))))
      .flat()
      .filter((r) => r.action.endsWith('.resume'));

    // Assess: every run finished, each step ran once, and the resume timer added a bounded number
    // of copies (it backs off while a run waits its turn) instead of one per run per tick.
    expect(runs.map((r) => r?.state)).toEqual(Array(6).fill('succeeded'));
    expect(Object.values(executions)).toEqual(Array(18).fill(1));
    expect(ticks).toBeLessThan(300);
    expect(resumes.length).toBeLessThan(handled);
  });
});
