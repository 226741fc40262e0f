import { describe, expect, it } from 'vitest';
import { TransientError } from '../../../src/lib/core/errors';
import type { AuditLog } from '../../../src/lib/ports/state';
import { RunEngine } from '../../../src/lib/runs';
import { auditOf, freshStores, QueueTrigger, TestClock } from './support';

describe('the audit is not best-effort (issue 6, §5)', () => {
  it('never separates a change from its record: records written while the audit is down arrive once it is back', async () => {
    // Prepare: the real audit table behind an outage switch
    const clock = new TestClock();
    const stores = await freshStores(clock);
    let down = true;
    const audit: AuditLog = {
      append: async (record, options) => {
        if (down) throw new TransientError('audit append failed (503 ServerBusy)');
        return stores.audit.append(record, options);
      },
      query: (query, options) => stores.audit.query(query, options),
    };
    const engine = new RunEngine({
      runs: stores.runs,
      queue: stores.workQueue,
      audit,
      clock,
      kinds: [
        {
          kind: 'rotate',
          steps: [
            { name: 'regenerate', run: async () => ({ status: 'done', output: { keyVersion: 'v2' } }) },
            { name: 'publish', run: async () => ({ status: 'done' }) },
          ],
        },
      ],
      options: { stallThresholdMs: 60_000 },
    });

    // Act: the run goes through while the audit is down
    const { run } = await engine.startRun('rotate', { target: 'vaults/kv/secrets/db', correlationId: 'c' });
    clock.advance(1_000);
    await new QueueTrigger(stores, () => engine).drain();
    const finished = await engine.getRun(run.id);
    const duringOutage = await auditOf(stores, run.id);
    const stillIndexed = (await stores.runs.listActive({ limit: 10 })).entries.map((e) => e.runId);
    // ...then the audit is back, and the resume timer passes
    down = false;
    clock.advance(120_000);
    const swept = await engine.resumeStalledRuns();
    const after = await auditOf(stores, run.id);
    const indexAfter = await stores.runs.listActive({ limit: 10 });

    // Assess
    expect(finished?.state).toBe('succeeded');
    expect(duringOutage).toEqual([]);
    expect(finished?.outbox.map((e) => e.id)).toHaveLength(3);
    expect(stillIndexed).toEqual([run.id]);
    expect(swept.finished).toEqual([run.id]);
    expect(after.map((r) => `${r.action}:${r.outcome}`)).toEqual([
      'run.rotate.start:planned',
      'run.rotate.regenerate:succeeded',
      'run.rotate.publish:succeeded',
    ]);
    expect(indexAfter.entries).toEqual([]);
  });
});
