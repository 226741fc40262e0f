import { describe, expect, it } from 'vitest';
import { ConfigurationError, ConflictError, ValidationError } from '../../../src/lib/core/errors';
import type { Clock } from '../../../src/lib/ports/clock';
import {
  abortAfterMs,
  checkLeaseCoversTimeout,
  RunEngine,
  type RunKindDefinition,
} from '../../../src/lib/runs/engine';
import { FakeAudit, FakeQueue, FakeRunStore } from './fakes';

const clock: Clock = { now: () => new Date('2026-11-27T10:00:00.000Z') };
const done = async () => ({ status: 'done' as const });

function engineWith(kinds: RunKindDefinition[]) {
  const runs = new FakeRunStore();
  const queue = new FakeQueue();
  const audit = new FakeAudit();
  return { runs, queue, audit, engine: new RunEngine({ runs, queue, audit, clock, kinds }) };
}

describe('RunEngine registration', () => {
  it('rejects a kind with no step, a repeated step, a bad name or a duplicate kind', () => {
    const problemsOf = (kinds: RunKindDefinition[]) => {
      try {
        engineWith(kinds);
        return [];
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return (error as ValidationError).problems;
      }
    };
    expect(problemsOf([{ kind: 'k', steps: [] }])).toEqual(['a run kind needs at least one step']);
    expect(
      problemsOf([
        {
          kind: 'k',
          steps: [
            { name: 'a', run: done },
            { name: 'a', run: done },
          ],
        },
      ]),
    ).toEqual(["step 'a' appears twice"]);
    expect(problemsOf([{ kind: 'k', steps: [{ name: 'a.b', run: done }] }])).toHaveLength(1);
    expect(
      problemsOf([
        { kind: 'k', steps: [{ name: 'a', run: done }] },
        { kind: 'k', steps: [{ name: 'a', run: done }] },
      ]),
    ).toEqual(["kind 'k' is registered already"]);
  });
});

describe('RunEngine.startRun', () => {
  it('lists every problem of a bad request and writes nothing', async () => {
    // Prepare
    const { engine, runs, queue, audit } = engineWith([{ kind: 'k', steps: [{ name: 'a', run: done }] }]);

    // Act
    const attempt = engine.startRun('k', {
      target: '',
      correlationId: '',
      input: [] as never,
      idempotencyKey: '',
    });

    // Assess
    await expect(attempt).rejects.toMatchObject({
      problems: [
        'target is required',
        'correlationId is required',
        'idempotencyKey must be a non-empty string when given',
        'input must be a JSON object',
      ],
    });
    expect(runs.rows.size).toBe(0);
    expect(queue.sent).toEqual([]);
    expect(audit.records).toEqual([]);
  });

  it('refuses an oversized input', async () => {
    const { engine, runs } = engineWith([{ kind: 'k', steps: [{ name: 'a', run: done }] }]);
    const attempt = engine.startRun('k', {
      target: 't',
      correlationId: 'c',
      input: { x: 'y'.repeat(20_000) },
    });
    await expect(attempt).rejects.toBeInstanceOf(ValidationError);
    expect(runs.rows.size).toBe(0);
  });

  it('creates a pending run, sends its first message with ticket 0 and audits the start', async () => {
    // Prepare
    const { engine, queue, audit } = engineWith([{ kind: 'k', steps: [{ name: 'a', run: done }] }]);

    // Act
    const { run } = await engine.startRun('k', { target: 't', correlationId: 'c', actor: 'user:ops' });

    // Assess
    expect(run).toMatchObject({ state: 'pending', currentStep: 0, ticket: 0, actor: 'user:ops' });
    expect(queue.sent).toEqual([{ runId: run.id, step: 'a', ticket: 0, delayMs: 0 }]);
    expect(audit.records).toMatchObject([
      { action: 'run.k.start', actor: 'user:ops', outcome: 'planned', runId: run.id },
    ]);
  });
});

describe('RunEngine.advanceRun', () => {
  it('fails a run whose steps changed without a new version, instead of retrying it forever', async () => {
    // Prepare: a run started by a deployment whose kind had other steps, under the same version
    const old = engineWith([{ kind: 'k', steps: [{ name: 'old', run: done }] }]);
    const { run } = await old.engine.startRun('k', { target: 't', correlationId: 'c' });
    const current = new RunEngine({
      runs: old.runs,
      queue: old.queue,
      audit: old.audit,
      clock,
      kinds: [{ kind: 'k', steps: [{ name: 'new', run: done }] }],
    });

    // Act
    const outcome = await current.advanceRun(run.id, { owner: 'w' });

    // Assess
    expect(outcome).toMatchObject({ status: 'advanced', decision: 'unmappable' });
    expect(old.runs.rows.get(run.id)).toMatchObject({ state: 'failed', error: { code: 'StepsChanged' } });
    expect(old.audit.records.map((r) => `${r.action}:${r.outcome}`)).toContain('run.k.deploy:failed');
  });

  it('reports a conflict when the lease was taken over between the lease and the record', async () => {
    // Prepare: the step itself stands in for a second worker that took the lease over
    const fake = engineWith([]);
    fake.engine.register({
      kind: 'k',
      steps: [
        {
          name: 'a',
          run: async (leased) => {
            const now = clock.now();
            await fake.runs.update({
              ...leased,
              lease: { owner: 'other', expiresOn: new Date(now.getTime() + 1) },
            });
            return { status: 'done' };
          },
        },
      ],
    });
    const { run } = await fake.engine.startRun('k', { target: 't', correlationId: 'c' });

    // Act
    const attempt = fake.engine.advanceRun(run.id, { owner: 'w' });

    // Assess
    await expect(attempt).rejects.toBeInstanceOf(ConflictError);
    expect(fake.queue.sent).toHaveLength(1);
    expect(fake.runs.rows.get(run.id)?.lease?.owner).toBe('other');
  });

  it('records the result on top of a change that left the lease to the worker', async () => {
    // Prepare: while the step runs, someone else writes the run without touching its lease
    const fake = engineWith([]);
    fake.engine.register({
      kind: 'k',
      steps: [
        {
          name: 'a',
          run: async (leased) => {
            await fake.runs.update({ ...leased, correlationId: 'changed-meanwhile' });
            return { status: 'done' };
          },
        },
      ],
    });
    const { run } = await fake.engine.startRun('k', { target: 't', correlationId: 'c' });

    // Act
    const outcome = await fake.engine.advanceRun(run.id, { owner: 'w' });

    // Assess
    expect(outcome).toMatchObject({ status: 'advanced', step: 'a' });
    expect(fake.runs.rows.get(run.id)).toMatchObject({
      state: 'succeeded',
      correlationId: 'changed-meanwhile',
      lease: undefined,
    });
  });
});

describe('lease length against functionTimeout (issue 6, §7)', () => {
  it('refuses at start-up a lease that an invocation could outlive', () => {
    // Act
    const build = (leaseMs: number, functionTimeoutMs: number) => () =>
      new RunEngine({
        runs: new FakeRunStore(),
        queue: new FakeQueue(),
        audit: new FakeAudit(),
        clock,
        kinds: [],
        options: { leaseMs, functionTimeoutMs },
      });

    // Assess
    expect(build(10 * 60_000, 10 * 60_000)).toThrow(ConfigurationError);
    expect(build(10 * 60_000 + 59_999, 10 * 60_000)).toThrow(/must exceed host.json functionTimeout/);
    expect(build(12 * 60_000, 10 * 60_000)).not.toThrow();
    // Flex Consumption's default when host.json drops functionTimeout: 30 minutes (+ 2 in deps)
    expect(() => checkLeaseCoversTimeout(32 * 60_000, 30 * 60_000)).not.toThrow();
  });

  it('aborts a step before its lease expires, with a margin, and before functionTimeout', () => {
    expect(abortAfterMs(120_000)).toBe(108_000);
    expect(abortAfterMs(32 * 60_000, 30 * 60_000)).toBe(29.5 * 60_000);
    expect(abortAfterMs(12 * 60_000, 10 * 60_000)).toBe(9.5 * 60_000);
    for (const lease of [2_000, 60_000, 600_000, 3_600_000]) {
      expect(abortAfterMs(lease)).toBeLessThan(lease);
    }
  });
});
