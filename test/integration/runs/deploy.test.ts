import { describe, expect, it } from 'vitest';
import type { RunKindDefinition, StepResult } from '../../../src/lib/runs';
import { auditOf, QueueTrigger, setupEngine, TestClock } from './support';

const done = async (): Promise<StepResult> => ({ status: 'done' });
/** A step that notes it ran. */
const recorder = (log: string[], entry: string) => async (): Promise<StepResult> => {
  log.push(entry);
  return { status: 'done' };
};

/** Version 1 of a kind: `prepare`, then `apply` (which waits once), then `verify`. */
function v1(executed: string[]): RunKindDefinition {
  let waited = false;
  return {
    kind: 'remediate',
    steps: [
      { name: 'prepare', run: recorder(executed, 'v1:prepare') },
      {
        name: 'apply',
        run: async () => {
          if (waited) return done();
          waited = true;
          return { status: 'wait', delayMs: 60_000 };
        },
      },
      { name: 'verify', run: done },
    ],
  };
}

describe('a deploy that changes the steps never strands a run (issue 6, §3)', () => {
  it('records the kind version and moves an old run onto the new steps the kind maps it to', async () => {
    // Prepare: a run of version 1 waits in `apply`; version 2 renames it and adds a step
    const executed: string[] = [];
    const clock = new TestClock();
    const { stores, engine, engineWith } = await setupEngine([v1(executed)], {}, clock);
    const { run } = await engine.startRun('remediate', { target: 'sites/web-1', correlationId: 'c' });
    await new QueueTrigger(stores, () => engine).drain();
    const waiting = await engine.getRun(run.id);
    const v2: RunKindDefinition = {
      kind: 'remediate',
      version: 2,
      steps: [
        { name: 'prepare', run: recorder(executed, 'v2:prepare') },
        { name: 'snapshot', run: recorder(executed, 'v2:snapshot') },
        { name: 'applyChange', run: recorder(executed, 'v2:applyChange') },
        { name: 'verify', run: recorder(executed, 'v2:verify') },
      ],
      migrate: ({ version, step }) => (version === 1 && step === 'apply' ? 'applyChange' : undefined),
    };
    const deployed = engineWith([v2]);

    // Act
    clock.advance(60_000);
    await deployed.advanceRun(run.id, { owner: 'm1', ticket: waiting?.ticket });
    await new QueueTrigger(stores, () => deployed).drain();
    const final = await deployed.getRun(run.id);
    const audit = await auditOf(stores, run.id);

    // Assess
    expect(waiting).toMatchObject({ kindVersion: 1, state: 'waiting' });
    expect(final).toMatchObject({ kindVersion: 2, state: 'succeeded' });
    expect(final?.steps.map((s) => [s.name, s.status])).toEqual([
      ['prepare', 'done'],
      ['snapshot', 'skipped'],
      ['applyChange', 'done'],
      ['verify', 'done'],
    ]);
    expect(executed).toEqual(['v1:prepare', 'v2:applyChange', 'v2:verify']);
    expect(audit.map((r) => r.action)).toContain('run.remediate.migrate');
  });

  it('fails a run it cannot map, clearly and with a notification', async () => {
    // Prepare
    const clock = new TestClock();
    const { stores, engine, engineWith, channel } = await setupEngine([v1([])], {}, clock);
    const { run } = await engine.startRun('remediate', { target: 'sites/web-1', correlationId: 'c' });
    await new QueueTrigger(stores, () => engine).drain();
    const v2: RunKindDefinition = { kind: 'remediate', version: 2, steps: [{ name: 'all', run: done }] };
    const deployed = engineWith([v2]);
    clock.advance(60_000);

    // Act
    await new QueueTrigger(stores, () => deployed).drain();
    await deployed.advanceRun(run.id, { owner: 'm1' });
    const final = await deployed.getRun(run.id);

    // Assess
    expect(final).toMatchObject({ state: 'failed', error: { code: 'StepsChanged' } });
    expect(final?.error?.message).toContain("step 'apply' of version 1");
    expect(channel.sent).toEqual([
      expect.objectContaining({ type: 'com.stampkeeper.run.failed', subject: 'sites/web-1' }),
    ]);
  });

  it('leaves a run of a kind this deployment does not know to another instance for a while, then fails it: nothing stays pending forever', async () => {
    // Prepare: a run of a kind the new deployment removed; its messages keep coming back
    const clock = new TestClock();
    const { stores, engine, engineWith, channel } = await setupEngine(
      [v1([])],
      { stallThresholdMs: 60_000 },
      clock,
    );
    const { run } = await engine.startRun('remediate', { target: 'sites/web-1', correlationId: 'c' });
    const removed = engineWith([], { stallThresholdMs: 60_000, deployGraceMs: 600_000 });
    const trigger = new QueueTrigger(stores, () => removed);

    // Act: the worker and the resume timer go on, as they would in Azure, for an hour of clock time
    await trigger.drain();
    const deferred = await removed.getRun(run.id);
    for (let minute = 0; minute < 60; minute++) {
      clock.advance(60_000);
      await removed.resumeStalledRuns();
      await trigger.drain();
      if ((await removed.getRun(run.id))?.state === 'failed') break;
    }
    const final = await removed.getRun(run.id);
    await removed.resumeStalledRuns();
    const index = await stores.runs.listActive({ limit: 10 });

    // Assess: deferred first (a rolling deploy may still run it elsewhere), never poisoned, then failed
    expect(deferred).toMatchObject({ state: 'pending', deferredSince: expect.any(Date) });
    expect(trigger.poison).toEqual([]);
    expect(final).toMatchObject({ state: 'failed', error: { code: 'KindUnknown' } });
    expect(channel.sent.map((n) => n.type)).toEqual(['com.stampkeeper.run.failed']);
    expect(index.entries).toEqual([]);
  });
});

describe('compensations across a deploy', () => {
  it('undoes a step of an old run through the step the new version maps it to', async () => {
    // Prepare: a v1 run did `reserve`, then version 2 renamed it `reserveCapacity`
    const effects: string[] = [];
    const clock = new TestClock();
    const v1kind: RunKindDefinition = {
      kind: 'scale',
      steps: [
        { name: 'reserve', run: recorder(effects, 'reserved'), compensate: recorder(effects, 'v1 released') },
        { name: 'wait', run: async () => ({ status: 'wait', delayMs: 60_000 }) },
      ],
    };
    const { stores, engine, engineWith } = await setupEngine([v1kind], {}, clock);
    const { run } = await engine.startRun('scale', { target: 'sites/web-1', correlationId: 'c' });
    await new QueueTrigger(stores, () => engine).drain();
    const v2 = engineWith([
      {
        kind: 'scale',
        version: 2,
        steps: [
          {
            name: 'reserveCapacity',
            run: recorder(effects, 'reserved'),
            compensate: recorder(effects, 'v2 released'),
          },
          { name: 'wait', run: async () => ({ status: 'wait', delayMs: 60_000 }) },
        ],
        migrate: ({ step }) => (step === 'reserve' ? 'reserveCapacity' : step),
      },
    ]);

    // Act
    const cancelled = await v2.cancelRun(run.id, { reason: 'stop', actor: 'user:ops' });
    await new QueueTrigger(stores, () => v2).drain();
    const final = await v2.getRun(run.id);

    // Assess
    expect(cancelled?.steps.map((s) => s.name)).toEqual(['reserve', 'wait', 'undo-reserve']);
    expect(final?.state).toBe('cancelled');
    expect(effects).toEqual(['reserved', 'v2 released']);
  });
});
