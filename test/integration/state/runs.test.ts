import { describe, expect, it } from 'vitest';
import { ConflictError, TransientError, ValidationError } from '../../../src/lib/core/errors';
import { type AdvanceOutcome, RunEngine, type RunKindDefinition } from '../../../src/lib/runs/engine';
import type { StepResult } from '../../../src/lib/runs/rules';
import { beginStep } from '../../../src/lib/runs/rules';
import type { StateStores } from '../../../src/lib/state';
import { freshStores, TestClock } from './helpers';

const STALL_MS = 60_000;
const LEASE_MS = 120_000;

/** A three-step kind whose handlers count their executions. `middle` is scripted per test. */
function demoKind(middle: () => Promise<StepResult>, counts: Record<string, number>): RunKindDefinition {
  const counted = (name: string, body: () => Promise<StepResult>) => ({
    name,
    run: async () => {
      counts[name] = (counts[name] ?? 0) + 1;
      return body();
    },
  });
  return {
    kind: 'demo',
    retry: { maxAttempts: 2, baseDelayMs: 30_000, maxDelayMs: 60_000 },
    steps: [
      counted('prepare', async () => ({ status: 'done', output: { version: 'v2' } })),
      counted('middle', middle),
      counted('finish', async () => ({ status: 'done' })),
    ],
  };
}

async function setup(middle: () => Promise<StepResult> = async () => ({ status: 'done' })) {
  const clock = new TestClock();
  const stores = await freshStores(clock);
  const counts: Record<string, number> = {};
  const engine = new RunEngine({
    runs: stores.runs,
    queue: stores.workQueue,
    audit: stores.audit,
    clock,
    kinds: [demoKind(middle, counts)],
    options: { leaseMs: LEASE_MS, stallThresholdMs: STALL_MS },
  });
  return { clock, stores, counts, engine };
}

/** Plays the queue trigger: receive, advance, delete, until no message is visible. */
async function drain(engine: RunEngine, stores: StateStores, owner = 'worker-1'): Promise<AdvanceOutcome[]> {
  const outcomes: AdvanceOutcome[] = [];
  for (let round = 0; round < 50; round++) {
    const received = await stores.workQueue.receive({ maxMessages: 32 });
    if (received.length === 0) break;
    for (const item of received) {
      if (item.message) {
        outcomes.push(await engine.advanceRun(item.message.runId, { owner, ticket: item.message.ticket }));
      }
      await stores.workQueue.delete(item);
    }
  }
  return outcomes;
}

const start = (engine: RunEngine, extra: { idempotencyKey?: string } = {}) =>
  engine.startRun('demo', {
    target: 'vaults/kv1/secrets/cosmos-key',
    input: { vault: 'kv1' },
    correlationId: 'corr-1',
    ...extra,
  });

describe('run engine on Azurite', () => {
  it('runs a kind to success through the real queue and audits every state change', async () => {
    // Prepare
    const { stores, counts, engine } = await setup();

    // Act
    const { run } = await start(engine);
    const outcomes = await drain(engine, stores);
    const done = await engine.getRun(run.id);
    const audit = await stores.audit.query({ since: new Date('2026-11-27T00:00:00Z') });

    // Assess
    expect(outcomes.map((o) => `${o.status}:${o.step}`)).toEqual([
      'advanced:prepare',
      'advanced:middle',
      'advanced:finish',
    ]);
    expect(done?.state).toBe('succeeded');
    expect(done?.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['prepare', 'done', 1],
      ['middle', 'done', 1],
      ['finish', 'done', 1],
    ]);
    expect(done?.steps[0]?.output).toEqual({ version: 'v2' });
    expect(done?.lease).toBeUndefined();
    expect(counts).toEqual({ prepare: 1, middle: 1, finish: 1 });
    expect(audit.map((a) => `${a.action}:${a.outcome}`)).toEqual([
      'run.demo.start:planned',
      'run.demo.prepare:succeeded',
      'run.demo.middle:succeeded',
      'run.demo.finish:succeeded',
    ]);
    expect(audit.every((a) => a.runId === run.id && a.correlationId === 'corr-1')).toBe(true);
  });

  it('waits with a queue visibility delay: the next message exists but is invisible', async () => {
    // Prepare
    let waited = false;
    const { clock, stores, counts, engine } = await setup(async () => {
      if (waited) return { status: 'done' };
      waited = true;
      return { status: 'wait', delayMs: 600_000, output: { polled: 1 } };
    });
    const { run } = await start(engine);

    // Act
    await drain(engine, stores);
    const waiting = await engine.getRun(run.id);
    const visible = await stores.workQueue.receive({ maxMessages: 32 });
    const total = await stores.workQueue.approximateCount();

    // Assess
    expect(waiting?.state).toBe('waiting');
    expect(waiting?.steps[1]).toMatchObject({ status: 'running', attempts: 0, output: { polled: 1 } });
    expect(waiting?.dueOn).toEqual(new Date(clock.now().getTime() + 600_000));
    expect(visible).toEqual([]);
    expect(total).toBe(1);

    // Act: the delayed message is due (played by a direct call once the clock passed the wait)
    const early = await engine.advanceRun(run.id, { owner: 'worker-1', ticket: waiting?.ticket });
    clock.advance(600_000);
    const onTime = await engine.advanceRun(run.id, { owner: 'worker-1', ticket: waiting?.ticket });
    await drain(engine, stores);

    // Assess
    expect(early.status).toBe('notDue');
    expect(onTime).toMatchObject({ status: 'advanced', step: 'middle' });
    expect((await engine.getRun(run.id))?.state).toBe('succeeded');
    expect(counts).toEqual({ prepare: 1, middle: 2, finish: 1 });
  });

  it('recovers a crash between "step recorded" and "next message sent" without running the step twice', async () => {
    // Prepare
    const { clock, stores, counts, engine } = await setup();
    const { run } = await start(engine);
    const [first] = await stores.workQueue.receive();
    await stores.workQueue.delete(first!);

    // Act: the step is executed and recorded, then the worker dies before enqueueing
    const executed = await engine.executeStep(run.id, { owner: 'worker-1', ticket: first?.message?.ticket });
    const lostMessages = await stores.workQueue.approximateCount();
    const tooEarly = await engine.resumeStalledRuns({ now: new Date(clock.now().getTime() + STALL_MS - 1) });
    clock.advance(STALL_MS + 1);
    const resumed = await engine.resumeStalledRuns();
    await drain(engine, stores);
    const done = await engine.getRun(run.id);

    // Assess
    expect(executed.outcome).toMatchObject({ status: 'advanced', step: 'prepare' });
    expect(lostMessages).toBe(0);
    expect(tooEarly.resumed).toEqual([]);
    expect(resumed.resumed).toEqual([run.id]);
    expect(done?.state).toBe('succeeded');
    expect(counts).toEqual({ prepare: 1, middle: 1, finish: 1 });
  });

  it('resumes a run whose worker died mid-step once its lease expired', async () => {
    // Prepare
    const { clock, stores, counts, engine } = await setup();
    const { run } = await start(engine);
    const [first] = await stores.workQueue.receive();
    await stores.workQueue.delete(first!);
    // A worker took the lease and vanished before its handler reported anything.
    await stores.runs.update(beginStep(run, 'dead-worker', clock.now(), LEASE_MS));

    // Act
    const whileLeased = await engine.resumeStalledRuns();
    const busy = await engine.advanceRun(run.id, { owner: 'worker-1' });
    clock.advance(LEASE_MS);
    const resumed = await engine.resumeStalledRuns();
    await drain(engine, stores);
    const done = await engine.getRun(run.id);

    // Assess
    expect(whileLeased.resumed).toEqual([]);
    expect(busy.status).toBe('busy');
    expect(resumed.resumed).toEqual([run.id]);
    expect(done?.state).toBe('succeeded');
    expect(done?.steps[0]?.attempts).toBe(2);
    expect(counts).toEqual({ prepare: 1, middle: 1, finish: 1 });
  });

  it('runs a step once when two workers advance the same message in parallel', async () => {
    // Prepare
    const { stores, counts, engine } = await setup();
    const { run } = await start(engine);
    const [message] = await stores.workQueue.receive();

    // Act
    const outcomes = await Promise.all([
      engine.advanceRun(run.id, { owner: 'worker-1', ticket: message?.message?.ticket }),
      engine.advanceRun(run.id, { owner: 'worker-2', ticket: message?.message?.ticket }),
    ]);

    // Assess
    expect(counts.prepare).toBe(1);
    expect(outcomes.filter((o) => o.status === 'advanced')).toHaveLength(1);
    expect(['busy', 'stale']).toContain(outcomes.find((o) => o.status !== 'advanced')?.status);
  });

  it('drops a stale or duplicated message', async () => {
    // Prepare
    const { stores, counts, engine } = await setup();
    const { run } = await start(engine);
    await drain(engine, stores);

    // Act
    const replayed = await engine.advanceRun(run.id, { owner: 'worker-1', ticket: 0 });
    const unknown = await engine.advanceRun('no-such-run', { owner: 'worker-1' });

    // Assess
    expect(replayed.status).toBe('terminal');
    expect(unknown.status).toBe('notFound');
    expect(counts).toEqual({ prepare: 1, middle: 1, finish: 1 });
  });

  it('retries a retryable error after a backoff, and fails the run when attempts run out', async () => {
    // Prepare
    const { clock, stores, counts, engine } = await setup(async () => {
      throw new TransientError('throttled');
    });
    const { run } = await start(engine);
    await drain(engine, stores);

    // Act
    const afterFirst = await engine.getRun(run.id);
    clock.advance(30_000);
    const second = await engine.advanceRun(run.id, { owner: 'worker-1', ticket: afterFirst?.ticket });
    const final = await engine.getRun(run.id);

    // Assess
    expect(afterFirst?.state).toBe('waiting');
    expect(afterFirst?.steps[1]).toMatchObject({
      status: 'pending',
      attempts: 1,
      error: { code: 'TransientFailure' },
    });
    expect(second).toMatchObject({ status: 'advanced', step: 'middle' });
    expect(final?.state).toBe('failed');
    expect(final?.steps[1]?.status).toBe('failed');
    expect(final?.error?.message).toContain('gave up after 2 attempts');
    expect(counts).toEqual({ prepare: 1, middle: 2 });
  });

  it('fails at once on a non-retryable error or a fail result', async () => {
    // Prepare
    const { stores, counts, engine } = await setup(async () => ({
      status: 'fail',
      error: { code: 'KeyRejected', message: 'the new key did not authenticate' },
    }));
    const { run } = await start(engine);

    // Act
    await drain(engine, stores);
    const final = await engine.getRun(run.id);

    // Assess
    expect(final?.state).toBe('failed');
    expect(final?.error).toEqual({ code: 'KeyRejected', message: 'the new key did not authenticate' });
    expect(counts).toEqual({ prepare: 1, middle: 1 });
  });

  it('gives the same run for the same idempotency key and enqueues once', async () => {
    // Prepare
    const { stores, engine } = await setup();

    // Act
    const [a, b] = await Promise.all([
      start(engine, { idempotencyKey: 'evt-1' }),
      start(engine, { idempotencyKey: 'evt-1' }),
    ]);
    const c = await start(engine, { idempotencyKey: 'evt-2' });

    // Assess
    expect(a.run.id).toBe(b.run.id);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(c.run.id).not.toBe(a.run.id);
    expect(await stores.workQueue.approximateCount()).toBe(2);
  });

  it('rejects a bad start request and writes nothing', async () => {
    // Prepare
    const { stores, engine } = await setup();

    // Act
    const unknownKind = engine.startRun('nope', { target: 't', correlationId: 'c' });
    const noTarget = engine.startRun('demo', { target: ' ', correlationId: 'c' });

    // Assess
    await expect(unknownKind).rejects.toBeInstanceOf(ValidationError);
    await expect(noTarget).rejects.toBeInstanceOf(ValidationError);
    expect(await stores.runs.list({})).toEqual([]);
    expect(await stores.workQueue.approximateCount()).toBe(0);
  });

  it('surfaces a stale ETag as ConflictError', async () => {
    // Prepare
    const { stores, engine } = await setup();
    const { run } = await start(engine);
    await stores.runs.update({ ...run, target: 'changed' });

    // Act
    const stale = stores.runs.update({ ...run, target: 'again' });

    // Assess
    await expect(stale).rejects.toBeInstanceOf(ConflictError);
    expect((await stores.runs.get(run.id))?.target).toBe('changed');
  });

  it('cancels an active run so no further step runs', async () => {
    // Prepare
    const { stores, counts, engine } = await setup();
    const { run } = await start(engine);

    // Act
    const cancelled = await engine.cancelRun(run.id, { reason: 'operator stopped it', actor: 'user:ops' });
    const outcomes = await drain(engine, stores);

    // Assess
    expect(cancelled?.state).toBe('cancelled');
    expect(outcomes.map((o) => o.status)).toEqual(['terminal']);
    expect(counts).toEqual({});
  });

  it('lists runs by state and by expired lease, never index rows, locks or the sweep cursor', async () => {
    // Prepare
    const { clock, stores, engine } = await setup();
    const { run: a } = await start(engine, { idempotencyKey: 'a' });
    const { run: b } = await start(engine, { idempotencyKey: 'b' });
    await stores.runs.update(beginStep(b, 'w', clock.now(), 1_000));
    await engine.resumeStalledRuns();

    // Act
    const all = await stores.runs.list({});
    const pending = await stores.runs.list({ states: ['pending'] });
    const running = await stores.runs.list({ states: ['running'] });
    const expired = await stores.runs.list({ leaseExpiredBefore: new Date(clock.now().getTime() + 2_000) });

    // Assess
    expect(all.map((r) => r.id).sort()).toEqual([a.id, b.id].sort());
    expect(pending.map((r) => r.id)).toEqual([a.id]);
    expect(running.map((r) => r.id)).toEqual([b.id]);
    expect(expired.map((r) => r.id)).toEqual([b.id]);
  });
});
