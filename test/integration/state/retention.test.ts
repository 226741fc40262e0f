/**
 * Retention against Azurite: each store's purge deletes only what is older than asked, within its
 * limit, skips rows changed since they were read, and `applyRetention` ties them together.
 */
import type { TableClient } from '@azure/data-tables';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/lib/core/errors';
import { silentLogger } from '../../../src/lib/core/logging';
import { applyRetention } from '../../../src/lib/maintenance/applyRetention';
import type { AuditRecord } from '../../../src/lib/ports/state';
import type { NewRun, RunState } from '../../../src/lib/runs/types';
import { TableIdempotencyStore, TableRunStore } from '../../../src/lib/state';
import { createTableClient } from '../../../src/lib/state/tables';
import { storageConnectionString } from '../../support/storage';
import { freshStores, TestClock } from './helpers';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function record(id: string, time: string): AuditRecord {
  return {
    id,
    time: new Date(time),
    actor: 'system:test',
    action: 'test.write',
    target: 'things/1',
    outcome: 'succeeded',
    correlationId: `corr-${id}`,
  };
}

function newRun(id: string, state: RunState, updatedOn: Date): NewRun {
  return {
    id,
    kind: 'test',
    target: 'things/1',
    state,
    steps: [{ name: 'only', status: state === 'succeeded' ? 'done' : 'pending', attempts: 0 }],
    currentStep: 0,
    input: {},
    dryRun: false,
    correlationId: `corr-${id}`,
    actor: 'system:test',
    createdOn: new Date(updatedOn.getTime() - HOUR),
    updatedOn,
    ticket: 1,
  };
}

/** Every row of a table as `PartitionKey/RowKey`, sorted. */
async function rowsOf(table: TableClient): Promise<string[]> {
  const rows: string[] = [];
  for await (const row of table.listEntities()) rows.push(`${row.partitionKey}/${row.rowKey}`);
  return rows.sort();
}

function table(name: string): TableClient {
  return createTableClient(storageConnectionString(), name);
}

describe('TableAuditLog.purgeBefore', () => {
  it('deletes whole days strictly before the cutoff day, markers included, and keeps the cutoff day', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T12:00:00.000Z'));
    const stores = await freshStores(clock);
    await stores.audit.append(record('old-1', '2026-11-20T08:00:00.000Z'));
    await stores.audit.append(record('old-2', '2026-11-24T23:59:59.999Z'));
    await stores.audit.append(record('edge', '2026-11-25T00:00:00.000Z'));
    await stores.audit.append(record('recent', '2026-11-26T10:00:00.000Z'));

    // Act: the cutoff is in the middle of 2026-11-25; that whole day stays
    const result = await stores.audit.purgeBefore(new Date('2026-11-25T15:00:00.000Z'), { limit: 100 });

    // Assess
    expect(result).toEqual({ deleted: 4, more: false });
    const left = await rowsOf(table(stores.names.audit));
    expect(left).toEqual([
      '2026-11-25/2026-11-25T00:00:00.000Z_edge',
      '2026-11-25/~id~edge',
      '2026-11-26/2026-11-26T10:00:00.000Z_recent',
      '2026-11-26/~id~recent',
    ]);
  });

  it('stops at its limit, says more remain, and finishes on the next call', async () => {
    // Prepare: three old records are six rows
    const clock = new TestClock(new Date('2026-11-27T12:00:00.000Z'));
    const stores = await freshStores(clock);
    for (const [i, day] of ['2026-11-01', '2026-11-02', '2026-11-03'].entries()) {
      await stores.audit.append(record(`old-${i}`, `${day}T09:00:00.000Z`));
    }
    const cutoff = new Date('2026-11-10T00:00:00.000Z');

    // Act
    const first = await stores.audit.purgeBefore(cutoff, { limit: 4 });
    const leftAfterFirst = await rowsOf(table(stores.names.audit));
    const second = await stores.audit.purgeBefore(cutoff, { limit: 4 });

    // Assess: oldest first
    expect(first).toEqual({ deleted: 4, more: true });
    expect(leftAfterFirst).toEqual(['2026-11-03/2026-11-03T09:00:00.000Z_old-2', '2026-11-03/~id~old-2']);
    expect(second).toEqual({ deleted: 2, more: false });
    expect(await rowsOf(table(stores.names.audit))).toEqual([]);
  });

  it('rejects an invalid cutoff or limit and deletes nothing', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T12:00:00.000Z'));
    const stores = await freshStores(clock);
    await stores.audit.append(record('old', '2026-01-01T00:00:00.000Z'));

    // Act
    const badDate = stores.audit.purgeBefore(new Date('nope'), { limit: 10 });
    const badLimit = stores.audit.purgeBefore(new Date('2026-11-01T00:00:00.000Z'), { limit: 0 });

    // Assess
    await expect(badDate).rejects.toBeInstanceOf(ValidationError);
    await expect(badLimit).rejects.toBeInstanceOf(ValidationError);
    expect(await rowsOf(table(stores.names.audit))).toHaveLength(2);
  });
});

describe('TableIdempotencyStore.purgeExpired', () => {
  it('deletes expired results and abandoned claims, keeps live ones', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T10:00:00.000Z'));
    const stores = await freshStores(clock);
    const { idempotency } = stores;
    await idempotency.claim('done-old', { owner: 'w1', leaseMs: HOUR });
    await idempotency.complete('done-old', { owner: 'w1', result: { n: 1 }, ttlMs: 2 * HOUR });
    await idempotency.claim('abandoned', { owner: 'w2', leaseMs: HOUR });
    await idempotency.claim('done-live', { owner: 'w1', leaseMs: HOUR });
    await idempotency.complete('done-live', { owner: 'w1', result: { n: 2 }, ttlMs: 48 * HOUR });
    clock.advance(3 * HOUR);
    await idempotency.claim('claim-live', { owner: 'w3', leaseMs: HOUR });

    // Act
    const result = await idempotency.purgeExpired(clock.now(), { limit: 100 });

    // Assess
    expect(result).toEqual({ deleted: 2, more: false });
    expect(await rowsOf(table(stores.names.idempotency))).toEqual(['claim-live/key', 'done-live/key']);
    expect(await idempotency.claim('done-live', { owner: 'w9', leaseMs: HOUR })).toMatchObject({
      status: 'completed',
      result: { n: 2 },
    });
  });

  it('keeps a row whose expiry is exactly now', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T10:00:00.000Z'));
    const stores = await freshStores(clock);
    await stores.idempotency.claim('k', { owner: 'w1', leaseMs: HOUR });
    clock.advance(HOUR);

    // Act
    const result = await stores.idempotency.purgeExpired(clock.now(), { limit: 10 });

    // Assess
    expect(result).toEqual({ deleted: 0, more: false });
    expect(await rowsOf(table(stores.names.idempotency))).toEqual(['k/key']);
  });

  it('respects its limit and reports more', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T10:00:00.000Z'));
    const stores = await freshStores(clock);
    for (const key of ['a', 'b', 'c']) await stores.idempotency.claim(key, { owner: 'w1', leaseMs: HOUR });
    clock.advance(2 * HOUR);

    // Act
    const first = await stores.idempotency.purgeExpired(clock.now(), { limit: 2 });
    const second = await stores.idempotency.purgeExpired(clock.now(), { limit: 2 });

    // Assess
    expect(first).toEqual({ deleted: 2, more: true });
    expect(second).toEqual({ deleted: 1, more: false });
    expect(await rowsOf(table(stores.names.idempotency))).toEqual([]);
  });

  it('skips a key claimed again between the read and the delete (ETag)', async () => {
    // Prepare: the delete first lets another worker take the expired key over
    const clock = new TestClock(new Date('2026-11-27T10:00:00.000Z'));
    const stores = await freshStores(clock);
    await stores.idempotency.claim('raced', { owner: 'w1', leaseMs: HOUR });
    clock.advance(2 * HOUR);
    const client = table(stores.names.idempotency);
    const racing = new TableIdempotencyStore(client, clock);
    const realDelete = client.deleteEntity.bind(client);
    client.deleteEntity = async (...args: Parameters<TableClient['deleteEntity']>) => {
      await stores.idempotency.claim('raced', { owner: 'w2', leaseMs: HOUR });
      return realDelete(...args);
    };

    // Act
    const result = await racing.purgeExpired(clock.now(), { limit: 10 });

    // Assess: w2's fresh claim survived
    expect(result).toEqual({ deleted: 0, more: false });
    expect(await stores.idempotency.claim('raced', { owner: 'w3', leaseMs: HOUR })).toMatchObject({
      status: 'inProgress',
      owner: 'w2',
    });
  });
});

describe('TableLeaseStore.purgeExpired', () => {
  it('deletes leases expired for more than the grace, keeps live and recently expired ones', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-20T10:00:00.000Z'));
    const stores = await freshStores(clock);
    await stores.leases.acquire('long-gone', 'w1', HOUR);
    clock.advance(3 * DAY);
    await stores.leases.acquire('just-expired', 'w1', HOUR);
    clock.advance(2 * HOUR);
    await stores.leases.acquire('live', 'w2', HOUR);

    // Act: default grace, one day
    const result = await stores.leases.purgeExpired(clock.now(), { limit: 10 });

    // Assess
    expect(result).toEqual({ deleted: 1, more: false });
    expect(await rowsOf(table(stores.names.leases))).toEqual(['lease/just-expired', 'lease/live']);
  });

  it('honours a shorter grace', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-20T10:00:00.000Z'));
    const stores = await freshStores(clock);
    await stores.leases.acquire('short', 'w1', HOUR);
    clock.advance(2 * HOUR);

    // Act
    const result = await stores.leases.purgeExpired(clock.now(), { limit: 10, graceMs: 30 * 60_000 });

    // Assess
    expect(result).toEqual({ deleted: 1, more: false });
    expect(await rowsOf(table(stores.names.leases))).toEqual([]);
  });
});

describe('TableRunStore.purgeFinished', () => {
  it('deletes terminal runs older than the cutoff and never an active or recent run', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T10:00:00.000Z'));
    const stores = await freshStores(clock);
    const old = new Date('2026-01-01T00:00:00.000Z');
    const recent = new Date('2026-11-26T00:00:00.000Z');
    for (const [id, state, updatedOn] of [
      ['old-succeeded', 'succeeded', old],
      ['old-failed', 'failed', old],
      ['old-cancelled', 'cancelled', old],
      ['old-pending', 'pending', old],
      ['old-running', 'running', old],
      ['old-waiting', 'waiting', old],
      ['recent-succeeded', 'succeeded', recent],
    ] as const) {
      await stores.runs.create(newRun(id, state, updatedOn));
    }

    // Act
    const result = await stores.runs.purgeFinished(new Date('2026-06-01T00:00:00.000Z'), { limit: 100 });

    // Assess
    expect(result).toEqual({ deleted: 3, more: false });
    expect(await rowsOf(table(stores.names.runs))).toEqual([
      'old-pending/run',
      'old-running/run',
      'old-waiting/run',
      'recent-succeeded/run',
    ]);
  });

  it('respects its limit and reports more', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T10:00:00.000Z'));
    const stores = await freshStores(clock);
    for (const id of ['r1', 'r2', 'r3']) {
      await stores.runs.create(newRun(id, 'succeeded', new Date('2026-01-01T00:00:00.000Z')));
    }
    const before = new Date('2026-06-01T00:00:00.000Z');

    // Act
    const first = await stores.runs.purgeFinished(before, { limit: 1 });

    // Assess
    expect(first).toEqual({ deleted: 1, more: true });
    expect(await rowsOf(table(stores.names.runs))).toHaveLength(2);
  });

  it('skips a run changed between the read and the delete (ETag)', async () => {
    // Prepare: the run is rewritten (a new ETag) just before the delete
    const clock = new TestClock(new Date('2026-11-27T10:00:00.000Z'));
    const stores = await freshStores(clock);
    const created = await stores.runs.create(newRun('raced', 'failed', new Date('2026-01-01T00:00:00.000Z')));
    const client = table(stores.names.runs);
    const racing = new TableRunStore(client);
    const realDelete = client.deleteEntity.bind(client);
    client.deleteEntity = async (...args: Parameters<TableClient['deleteEntity']>) => {
      await stores.runs.update({ ...created, ticket: created.ticket + 1 });
      return realDelete(...args);
    };

    // Act
    const result = await racing.purgeFinished(new Date('2026-06-01T00:00:00.000Z'), { limit: 10 });

    // Assess
    expect(result).toEqual({ deleted: 0, more: false });
    expect((await stores.runs.get('raced'))?.ticket).toBe(created.ticket + 1);
  });
});

describe('applyRetention on the Table stores', () => {
  it('purges every store and writes its own audit record, which survives', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T03:30:00.000Z'));
    const stores = await freshStores(clock);
    await stores.audit.append(record('ancient', '2026-11-20T12:00:00.000Z'));
    await stores.audit.append(record('kept', '2026-11-25T00:00:00.000Z'));
    await stores.idempotency.claim('expired', { owner: 'w1', leaseMs: HOUR });
    await stores.leases.acquire('stale', 'w1', HOUR);
    await stores.runs.create(newRun('finished', 'succeeded', new Date('2026-11-21T00:00:00.000Z')));
    await stores.runs.create(newRun('active', 'running', new Date('2026-11-21T00:00:00.000Z')));
    clock.advance(2 * DAY);
    const deps = {
      audit: stores.audit,
      idempotency: stores.idempotency,
      leases: stores.leases,
      runs: stores.runs,
      clock,
      logger: silentLogger,
    };

    // Act: two days of retention at 2026-11-29T03:30 keep 2026-11-27 onwards
    const summary = await applyRetention(deps, {
      auditRetentionDays: 4,
      runRetentionDays: 4,
      correlationId: 'inv-1',
    });

    // Assess
    expect(summary).toMatchObject({
      outcome: 'succeeded',
      auditCutoffDay: '2026-11-25',
      results: {
        audit: { deleted: 2, more: false },
        idempotency: { deleted: 1, more: false },
        leases: { deleted: 1, more: false },
        runs: { deleted: 1, more: false },
      },
      failures: [],
    });
    expect(await rowsOf(table(stores.names.runs))).toEqual(['active/run']);
    const records = await stores.audit.query({ since: new Date('2026-11-01T00:00:00.000Z') });
    expect(records.map((r) => r.id)).toEqual(['kept', 'state.retention.apply:inv-1']);
    expect(records[1]).toMatchObject({
      action: 'state.retention.apply',
      actor: 'system:timer',
      outcome: 'succeeded',
      target: 'state',
      after: { audit: { deleted: 2, more: false }, runs: { deleted: 1, more: false } },
    });
  });

  it('reports more when the budget runs out', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T03:30:00.000Z'));
    const stores = await freshStores(clock);
    for (const key of ['a', 'b', 'c']) await stores.idempotency.claim(key, { owner: 'w1', leaseMs: HOUR });
    clock.advance(DAY);

    // Act
    const summary = await applyRetention(
      { ...stores, clock, logger: silentLogger },
      { auditRetentionDays: 400, budget: 2, correlationId: 'inv-2' },
    );

    // Assess
    expect(summary.results.idempotency).toEqual({ deleted: 2, more: true });
    expect(await rowsOf(table(stores.names.idempotency))).toHaveLength(1);
  });
});
