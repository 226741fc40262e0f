import { describe, expect, it } from 'vitest';
import { DependencyError, TransientError, ValidationError } from '../../../src/lib/core/errors';
import { silentLogger } from '../../../src/lib/core/logging';
import { applyRetention, type RetentionDeps } from '../../../src/lib/maintenance/applyRetention';
import type { PurgeOptions, PurgeResult } from '../../../src/lib/ports/retention';
import type { AuditRecord } from '../../../src/lib/ports/state';

type Call = { store: string; at: Date; options: PurgeOptions & { graceMs?: number } };

/** Hand-written fakes of the retention ports: they record calls and answer what they are told. */
function fakes(answers: Partial<Record<string, PurgeResult | Error>> = {}) {
  const calls: Call[] = [];
  const records: AuditRecord[] = [];
  let appendError: Error | undefined;
  const answer = async (store: string, at: Date, options: Call['options']): Promise<PurgeResult> => {
    calls.push({ store, at, options });
    const a = answers[store] ?? { deleted: 0, more: false };
    if (a instanceof Error) throw a;
    return a;
  };
  const deps: RetentionDeps = {
    audit: {
      purgeBefore: (cutoff, options) => answer('audit', cutoff, options),
      append: async (record) => {
        if (appendError) throw appendError;
        records.push(record);
      },
    },
    idempotency: { purgeExpired: (now, options) => answer('idempotency', now, options) },
    leases: { purgeExpired: (now, options) => answer('leases', now, options) },
    runs: { purgeFinished: (before, options) => answer('runs', before, options) },
    clock: { now: () => new Date('2026-11-27T03:30:00.000Z') },
    logger: silentLogger,
  };
  return {
    deps,
    calls,
    records,
    failAppend: (error: Error) => {
      appendError = error;
    },
  };
}

describe('applyRetention', () => {
  it('asks each store for what is older than its retention, within the budget', async () => {
    // Prepare
    const { deps, calls } = fakes();

    // Act
    await applyRetention(deps, {
      auditRetentionDays: 400,
      runRetentionDays: 30,
      budget: 50,
      leaseGraceMs: 60_000,
      correlationId: 'c1',
    });

    // Assess
    expect(calls.map((c) => [c.store, c.at.toISOString(), c.options.limit])).toEqual([
      ['audit', '2025-10-23T03:30:00.000Z', 50],
      ['idempotency', '2026-11-27T03:30:00.000Z', 50],
      ['leases', '2026-11-27T03:30:00.000Z', 50],
      ['runs', '2026-10-28T03:30:00.000Z', 50],
    ]);
    expect(calls.find((c) => c.store === 'leases')?.options.graceMs).toBe(60_000);
  });

  it('keeps runs as long as the audit when no run retention is given', async () => {
    // Prepare
    const { deps, calls } = fakes();

    // Act
    await applyRetention(deps, { auditRetentionDays: 10, correlationId: 'c1' });

    // Assess
    expect(calls.find((c) => c.store === 'runs')?.at.toISOString()).toBe('2026-11-17T03:30:00.000Z');
  });

  it('writes one succeeded audit record with the counts', async () => {
    // Prepare
    const { deps, records } = fakes({ audit: { deleted: 7, more: true }, runs: { deleted: 2, more: false } });

    // Act
    const summary = await applyRetention(deps, { auditRetentionDays: 1, correlationId: 'c1' });

    // Assess
    expect(summary.outcome).toBe('succeeded');
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      id: 'state.retention.apply:c1',
      action: 'state.retention.apply',
      outcome: 'succeeded',
      correlationId: 'c1',
      after: {
        auditCutoffDay: '2026-11-26',
        audit: { deleted: 7, more: true },
        runs: { deleted: 2, more: false },
      },
    });
  });

  it('records a non-retryable failure, still purges the other stores, and settles', async () => {
    // Prepare
    const { deps, calls, records } = fakes({
      idempotency: new DependencyError('denied', { retryable: false }),
    });

    // Act
    const summary = await applyRetention(deps, { auditRetentionDays: 30, correlationId: 'c1' });

    // Assess
    expect(calls.map((c) => c.store)).toEqual(['audit', 'idempotency', 'leases', 'runs']);
    expect(summary.outcome).toBe('failed');
    expect(summary.failures).toEqual([{ store: 'idempotency', code: 'DependencyFailed', retryable: false }]);
    expect(records[0]).toMatchObject({ outcome: 'failed', reason: 'idempotency: DependencyFailed' });
  });

  it('rethrows a retryable failure after recording it', async () => {
    // Prepare
    const transient = new TransientError('throttled');
    const { deps, records } = fakes({ runs: transient });

    // Act
    const act = applyRetention(deps, { auditRetentionDays: 30, correlationId: 'c1' });

    // Assess
    await expect(act).rejects.toBe(transient);
    expect(records).toEqual([
      expect.objectContaining({ outcome: 'failed', reason: 'runs: TransientFailure' }),
    ]);
  });

  it('surfaces a failed audit write when the purges went well', async () => {
    // Prepare
    const { deps, failAppend } = fakes();
    const transient = new TransientError('audit down');
    failAppend(transient);

    // Act
    const act = applyRetention(deps, { auditRetentionDays: 30, correlationId: 'c1' });

    // Assess
    await expect(act).rejects.toBe(transient);
  });

  it.each([
    { auditRetentionDays: 0 },
    { auditRetentionDays: 1.5 },
    { auditRetentionDays: 30, runRetentionDays: 0 },
    { auditRetentionDays: 30, budget: 0 },
    { auditRetentionDays: 30, leaseGraceMs: -1 },
    { auditRetentionDays: 30, correlationId: ' ' },
  ])('rejects bad options %o and touches nothing', async (bad) => {
    // Prepare
    const { deps, calls, records } = fakes();

    // Act
    const act = applyRetention(deps, { correlationId: 'c1', ...bad });

    // Assess
    await expect(act).rejects.toBeInstanceOf(ValidationError);
    expect(calls).toEqual([]);
    expect(records).toEqual([]);
  });
});
