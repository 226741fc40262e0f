import { describe, expect, it } from 'vitest';
import { ConflictError, TransientError, ValidationError } from '../../../src/lib/core/errors';
import type { Clock } from '../../../src/lib/ports/clock';
import type { RunStore, WorkMessage, WorkQueue } from '../../../src/lib/ports/runs';
import type { AuditLog, AuditRecord } from '../../../src/lib/ports/state';
import { RunEngine, type RunKindDefinition } from '../../../src/lib/runs/engine';
import type { NewRun, Run } from '../../../src/lib/runs/types';

/** In-memory fakes of the ports, with the same ETag rule as the Table adapter. */
class FakeRunStore implements RunStore {
  readonly rows = new Map<string, Run>();
  private version = 0;
  async create(run: NewRun): Promise<Run> {
    if (this.rows.has(run.id)) throw new ConflictError('exists');
    const stored = { ...run, etag: `e${++this.version}` };
    this.rows.set(run.id, stored);
    return stored;
  }
  async get(id: string): Promise<Run | undefined> {
    return this.rows.get(id);
  }
  async update(run: Run): Promise<Run> {
    if (this.rows.get(run.id)?.etag !== run.etag) throw new ConflictError('etag');
    const stored = { ...run, etag: `e${++this.version}` };
    this.rows.set(run.id, stored);
    return stored;
  }
  async list(): Promise<Run[]> {
    return [...this.rows.values()];
  }
}

class FakeQueue implements WorkQueue {
  readonly sent: Array<WorkMessage & { delayMs: number }> = [];
  async send(message: WorkMessage, options: { visibilityDelayMs?: number } = {}) {
    this.sent.push({ ...message, delayMs: options.visibilityDelayMs ?? 0 });
  }
  async receive() {
    return [];
  }
  async delete() {}
}

class FakeAudit implements AuditLog {
  readonly records: AuditRecord[] = [];
  async append(record: AuditRecord) {
    this.records.push(record);
  }
  async query() {
    return this.records;
  }
}

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
  it('leaves a run untouched when this deployment does not know its current step', async () => {
    // Prepare: a run started by a version whose kind had other steps
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
    const attempt = current.advanceRun(run.id, { owner: 'w' });

    // Assess: retryable, so the work message is kept (and ends on the poison queue if no instance knows the step)
    await expect(attempt).rejects.toBeInstanceOf(TransientError);
    expect(old.runs.rows.get(run.id)).toEqual(run);
  });

  it('never re-enqueues a stalled run of a kind this instance does not know', async () => {
    // Prepare: a run of kind 'k' whose first message was lost, long ago
    const old = engineWith([{ kind: 'k', steps: [{ name: 'a', run: done }] }]);
    const { run } = await old.engine.startRun('k', { target: 't', correlationId: 'c' });
    old.queue.sent.length = 0;
    const unaware = new RunEngine({ runs: old.runs, queue: old.queue, audit: old.audit, clock, kinds: [] });
    // Act
    const result = await unaware.resumeStalledRuns({ now: new Date(clock.now().getTime() + 3_600_000) });
    // Assess
    expect(result).toEqual({ resumed: [], failed: [] });
    expect(old.queue.sent).toEqual([]);
    expect(old.runs.rows.get(run.id)).toEqual(run);
  });

  it('reports a conflict when the run changed between the lease and the record', async () => {
    // Prepare: the step itself stands in for a second writer (e.g. a cancellation)
    const fake = engineWith([]);
    fake.engine.register({
      kind: 'k',
      steps: [
        {
          name: 'a',
          run: async (leased) => {
            await fake.runs.update({ ...leased, target: 'changed' });
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
  });
});
