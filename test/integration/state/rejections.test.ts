import { describe, expect, it } from 'vitest';
import type { Rejection } from '../../../src/lib/ports/state';
import { createStateStores } from '../../../src/lib/state';
import { createTableClient } from '../../../src/lib/state/tables';
import { storageConnectionString } from '../../support/storage';
import { freshStores, TestClock } from './helpers';

const T0 = new Date('2026-11-27T10:15:00.000Z');

function rejection(i: number, overrides: Partial<Rejection> = {}): Rejection {
  return {
    kind: 'event',
    source: 'other',
    reason: 'invalid-event',
    problems: [`data.Id: must be a secret identifier (#${i})`],
    sampleId: `junk-${i}`,
    actor: 'system:eventgrid',
    correlationId: `inv-${i}`,
    time: T0,
    ...overrides,
  };
}

async function rowCount(tableName: string): Promise<number> {
  let n = 0;
  for await (const _ of createTableClient(storageConnectionString(), tableName).listEntities()) n++;
  return n;
}

describe('TableRejectionLog on Azurite', () => {
  it('counts a junk batch of 2,000 concurrent rejections exactly, in one row and one audit record', async () => {
    // Prepare
    const stores = await freshStores(new TestClock());

    // Act
    await Promise.all(Array.from({ length: 2000 }, (_, i) => stores.rejections.record(rejection(i))));
    const buckets = await stores.rejections.list({ since: T0, until: T0 });

    // Assess
    expect(buckets).toEqual([
      expect.objectContaining({
        kind: 'event',
        source: 'other',
        reason: 'invalid-event',
        count: 2000,
        samples: ['junk-0', 'junk-1', 'junk-2', 'junk-3', 'junk-4'],
        hour: '2026-11-27T10:00:00.000Z',
      }),
    ]);
    expect(await rowCount(stores.names.rejections)).toBe(1);
    // One record plus its id marker.
    expect(await rowCount(stores.names.audit)).toBe(2);
    const records = await stores.audit.query({ since: T0, until: T0 });
    expect(records).toEqual([
      expect.objectContaining({
        id: buckets[0]!.auditId,
        action: 'event.reject',
        target: 'events/other',
        outcome: 'rejected',
        reason: 'data.Id: must be a secret identifier (#0)',
      }),
    ]);
  });

  it('keeps separate buckets per hour, source and reason, and adds to a bucket across flushes', async () => {
    // Prepare
    const stores = await freshStores(new TestClock());
    const nextHour = new Date(T0.getTime() + 3_600_000);

    // Act
    await stores.rejections.record(rejection(1));
    await stores.rejections.record(rejection(2));
    await stores.rejections.record(rejection(3, { reason: 'unhandled-event-type' }));
    await stores.rejections.record(rejection(4, { source: 'contoso-kv' }));
    await stores.rejections.record(rejection(5, { time: nextHour }));
    const buckets = await stores.rejections.list({ since: T0, until: nextHour });

    // Assess
    expect(buckets.map((b) => [b.hour.slice(11, 13), b.source, b.reason, b.count]).sort()).toEqual([
      ['10', 'contoso-kv', 'invalid-event', 1],
      ['10', 'other', 'invalid-event', 2],
      ['10', 'other', 'unhandled-event-type', 1],
      ['11', 'other', 'invalid-event', 1],
    ]);
    expect(await stores.audit.query({ since: T0, until: nextHour })).toHaveLength(4);
  });

  it('counts correctly when two processes record into the same bucket at once (ETag-conditional)', async () => {
    // Prepare: two logs over the same tables, as two instances of the app
    const clock = new TestClock();
    const a = await freshStores(clock);
    const b = createStateStores({
      connectionString: storageConnectionString(),
      tablePrefix: a.names.runs.slice(0, -'Runs'.length),
      workQueueName: a.names.workQueue,
      clock,
    });

    // Act
    await Promise.all([
      ...Array.from({ length: 150 }, (_, i) => a.rejections.record(rejection(i))),
      ...Array.from({ length: 150 }, (_, i) => b.rejections.record(rejection(1000 + i))),
    ]);

    // Assess
    const buckets = await a.rejections.list({ since: T0, until: T0 });
    expect(buckets.map((x) => x.count)).toEqual([300]);
    expect(await a.audit.query({ since: T0, until: T0 })).toHaveLength(1);
  });

  it('refuses a window over 31 days and a bad rejection before any call', async () => {
    // Prepare
    const stores = await freshStores(new TestClock());

    // Act
    const long = stores.rejections.list({ since: new Date(0), until: T0 });
    const bad = stores.rejections.record(rejection(1, { kind: '' }));

    // Assess
    await expect(long).rejects.toMatchObject({ code: 'ValidationFailed' });
    await expect(bad).rejects.toMatchObject({ code: 'ValidationFailed' });
  });

  it('purges the counters of hours before a cutoff, and only those', async () => {
    // Prepare
    const stores = await freshStores(new TestClock());
    await stores.rejections.record(rejection(1, { time: new Date('2026-01-01T05:00:00Z') }));
    await stores.rejections.record(rejection(2));

    // Act
    const purged = await stores.rejections.purgeBefore(new Date('2026-06-01T00:00:00Z'));

    // Assess
    expect(purged).toEqual({ deleted: 1, more: false });
    expect(await rowCount(stores.names.rejections)).toBe(1);
  });
});
