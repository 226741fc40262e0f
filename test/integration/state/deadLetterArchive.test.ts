/**
 * The dead-letter archive on Azurite (tables and blobs): idempotent batch archiving with exact
 * counts, large bodies in blobs, typed properties, revisions, replay marks, listings and removal.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError } from '../../../src/lib/core/errors';
import type { DeadLetterArchive, NewDeadLetter, ReplayAttempt } from '../../../src/lib/ports/deadLetters';
import { deadLetterContainerName } from '../../../src/lib/state/deadLetterBlobs';
import { deadLetterId, fingerprintOf } from '../../../src/lib/state/deadLetterCodec';
import { storageConnectionString } from '../../support/storage';
import { freshStores, TestClock } from './helpers';

const T0 = new Date('2026-03-01T10:15:00.000Z');
const text = (value: string) => ({ type: 'data' as const, bytes: new Uint8Array(Buffer.from(value)) });

function arrival(
  seq: number,
  overrides: Partial<NewDeadLetter['message']> = {},
  extra: Partial<NewDeadLetter> = {},
): NewDeadLetter {
  return {
    path: 'orders',
    message: {
      messageId: `order-${seq}`,
      sequenceNumber: String(seq),
      enqueuedTime: new Date(T0.getTime() - 60_000),
      deliveryCount: 3,
      contentType: 'application/json',
      subject: 'OrderPlaced',
      applicationProperties: {
        tenant: 'contoso',
        amount: 12.5,
        valid: false,
        at: new Date('2026-02-28T00:00:00Z'),
      },
      deadLetterReason: seq % 2 === 0 ? 'MaxDeliveryCountExceeded' : 'ValidationFailed',
      deadLetterErrorDescription: 'it failed',
      ...overrides,
    },
    body: text(JSON.stringify({ order: seq })),
    classification: {
      reasonClass: 'application',
      messageType: 'OrderPlaced',
      decision: 'park',
      why: 'no rule',
    },
    replayCount: 0,
    originalMessageId: `order-${seq}`,
    deadLetteredAt: T0,
    ...extra,
  };
}

let clock: TestClock;
let archive: DeadLetterArchive;
let prefix: string;

beforeEach(async () => {
  clock = new TestClock(T0);
  const stores = await freshStores(clock);
  archive = stores.deadLetters;
  prefix = stores.names.runs.replace(/Runs$/, '');
});

describe('archiving', () => {
  it('archives a batch once, counts it once per hour and reason, and keeps every property typed', async () => {
    // Prepare
    const batch = Array.from({ length: 250 }, (_, i) => arrival(i + 1));

    // Act
    const first = await archive.archive('orders', batch);
    const again = await archive.archive('orders', batch);
    const record = await archive.get(deadLetterId('orders', '7', 'order-7', batch[6]!.message.enqueuedTime));
    const counts = await archive.counts({ entity: 'orders', since: T0, until: T0 });
    const window = await archive.alertWindow('orders');

    // Assess
    expect(first.created).toHaveLength(250);
    expect(first.existing).toEqual([]);
    expect(again.created).toEqual([]);
    expect(again.existing).toHaveLength(250);
    expect(record).toMatchObject({
      id: `orders.7.${fingerprintOf('order-7', batch[6]!.message.enqueuedTime)}`,
      entity: 'orders',
      path: 'orders',
      messageId: 'order-7',
      sequenceNumber: '7',
      deliveryCount: 3,
      subject: 'OrderPlaced',
      deadLetterReason: 'ValidationFailed',
      state: 'parked',
      body: { type: 'data', location: 'table', size: Buffer.byteLength('{"order":7}') },
    });
    expect(record!.applicationProperties).toEqual({
      tenant: 'contoso',
      amount: 12.5,
      valid: false,
      at: new Date('2026-02-28T00:00:00Z'),
    });
    expect(counts.map((c) => [c.reason, c.count]).sort()).toEqual([
      ['MaxDeliveryCountExceeded', 125],
      ['ValidationFailed', 125],
    ]);
    expect(window.pending).toMatchObject({
      total: 250,
      byReason: { MaxDeliveryCountExceeded: 125, ValidationFailed: 125 },
    });
  });

  it('counts exactly when two archivers take the same batch at once', async () => {
    // Prepare
    const batch = Array.from({ length: 120 }, (_, i) => arrival(1000 + i));

    // Act
    const [a, b] = await Promise.all([archive.archive('orders', batch), archive.archive('orders', batch)]);
    const counts = await archive.counts({ entity: 'orders', since: T0, until: T0 });

    // Assess
    expect(a.created.length + b.created.length).toBe(120);
    expect(a.existing.length + b.existing.length).toBe(120);
    expect(counts.reduce((n, c) => n + c.count, 0)).toBe(120);
    expect((await archive.alertWindow('orders')).pending.total).toBe(120);
  });

  it('keeps a large body in a blob and AMQP value bodies with their section type', async () => {
    // Prepare
    const large = new Uint8Array(300 * 1024).map((_, i) => i % 251);
    const batch = [
      { ...arrival(1), body: { type: 'data' as const, bytes: large } },
      {
        ...arrival(2),
        body: { type: 'value' as const, value: { when: new Date('2026-01-01T00:00:00Z'), n: 3 } },
      },
    ];

    // Act
    const { created } = await archive.archive('orders', batch);
    const [big, value] = created;
    const bigBody = await archive.body(big!);
    const valueBody = await archive.body(value!);
    const blobs: string[] = [];
    const container = BlobServiceClient.fromConnectionString(storageConnectionString()).getContainerClient(
      deadLetterContainerName(prefix),
    );
    for await (const blob of container.listBlobsFlat()) blobs.push(blob.name);

    // Assess
    expect(big!.body).toMatchObject({ location: 'blob', size: large.byteLength });
    expect(Buffer.from((bigBody as { bytes: Uint8Array }).bytes).equals(Buffer.from(large))).toBe(true);
    expect(valueBody).toEqual({ type: 'value', value: { when: new Date('2026-01-01T00:00:00Z'), n: 3 } });
    expect(blobs).toEqual([`orders/${big!.id}/body`]);
  });

  it('refuses to take an arrival for another message whose id collides, and archives the rest', async () => {
    // Prepare: two messages of one sequence number whose fingerprints collide (found by search).
    const seen = new Map<string, number>();
    let pair: [number, number] | undefined;
    for (let i = 0; !pair; i++) {
      const fp = fingerprintOf(`m-${i}`, T0);
      const j = seen.get(fp);
      if (j !== undefined) pair = [j, i];
      else seen.set(fp, i);
    }
    const one = arrival(5, { messageId: `m-${pair[0]}`, enqueuedTime: T0 });
    const other = arrival(5, { messageId: `m-${pair[1]}`, enqueuedTime: T0 });
    await archive.archive('orders', [one]);

    // Act
    const result = await archive.archive('orders', [other, arrival(6)]);

    // Assess
    expect(result.conflicts).toEqual([expect.objectContaining({ messageId: `m-${pair[1]}` })]);
    expect(result.created.map((r) => r.messageId)).toEqual(['order-6']);
  });
});

describe('revisions, replays, listings', () => {
  it('adds revisions over the original, which never changes', async () => {
    // Prepare
    const [record] = (await archive.archive('orders', [arrival(1)])).created;

    // Act
    const first = await archive.addRevision(
      record!,
      { applicationProperties: { valid: true, tenant: null }, subject: 'OrderFixed' },
      { actor: 'user:ops', reason: 'fixed the flag', now: T0 },
    );
    const second = await archive.addRevision(
      first.record,
      { body: text('{"order":1,"fixed":true}') },
      {
        actor: 'user:ops',
        now: T0,
      },
    );
    const all = await archive.revisions(second.record);
    const latest = await archive.revision(second.record, 2);
    const stale = await archive
      .addRevision(record!, { subject: 'x' }, { actor: 'user:late', now: T0 })
      .catch((error: unknown) => error);

    // Assess
    expect([first.revision, second.revision]).toEqual([1, 2]);
    expect(all.map((r) => [r.revision, r.message.subject, r.message.applicationProperties.valid])).toEqual([
      [0, 'OrderPlaced', false],
      [1, 'OrderFixed', true],
      [2, 'OrderFixed', true],
    ]);
    expect(all[1]!.message.applicationProperties).toEqual({
      amount: 12.5,
      valid: true,
      at: new Date('2026-02-28T00:00:00Z'),
    });
    expect(Buffer.from((latest.body as { bytes: Uint8Array }).bytes).toString()).toBe(
      '{"order":1,"fixed":true}',
    );
    expect(
      Buffer.from(((await archive.body(second.record, 0)) as { bytes: Uint8Array }).bytes).toString(),
    ).toBe('{"order":1}');
    expect(stale).toBeInstanceOf(ConflictError);
    await expect(archive.revision(second.record, 3)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('marks replays of many records in transactions, conditionally', async () => {
    // Prepare
    const { created } = await archive.archive(
      'orders',
      Array.from({ length: 150 }, (_, i) => arrival(i + 1)),
    );
    const attempt = (id: string, status: ReplayAttempt['status']): ReplayAttempt => ({
      attempt: 1,
      messageId: `${id}:r1`,
      target: 'orders',
      revision: 0,
      status,
      requestedOn: T0,
      actor: 'user:ops',
    });

    // Act
    const sending = await archive.markReplays(
      created.map((record) => ({ record, attempt: attempt(record.id, 'sending') })),
    );
    const sent = await archive.markReplays(
      sending.map((record) => ({ record, attempt: attempt(record.id, 'sent') })),
    );
    const stale = await archive
      .markReplays([{ record: created[0]!, attempt: attempt(created[0]!.id, 'sent') }])
      .catch((error: unknown) => error);
    const reread = await archive.get(created[149]!.id);

    // Assess
    expect(sending.every((r) => r.state === 'replaying')).toBe(true);
    expect(sent.every((r) => r.state === 'replayed' && r.replays === 1)).toBe(true);
    expect(reread).toMatchObject({
      state: 'replayed',
      replays: 1,
      lastReplay: { messageId: `${created[149]!.id}:r1` },
    });
    expect(reread!.etag).toBe(sent[149]!.etag);
    expect(stale).toBeInstanceOf(ConflictError);
  });

  it('lists by entity, reason, state, time and text, page by page without gaps', async () => {
    // Prepare
    await archive.archive(
      'orders',
      Array.from({ length: 30 }, (_, i) => arrival(i + 1)),
    );
    await archive.archive('billing', [
      arrival(1, { subject: 'InvoiceSent' }, { path: 'events/Subscriptions/billing' }),
    ]);
    const later = new Date(T0.getTime() + 3 * 3_600_000);
    await archive.archive('orders', [arrival(99, {}, { deadLetteredAt: later })]);
    const discarded = (await archive.get(
      deadLetterId('orders', '3', 'order-3', arrival(3).message.enqueuedTime),
    ))!;
    await archive.setState(discarded, 'discarded', 'duplicate order', T0);

    // Act
    const pages: string[][] = [];
    let continuation: string | undefined;
    do {
      const page = await archive.list(
        { entity: 'orders' },
        { limit: 7, ...(continuation ? { continuation } : {}) },
      );
      pages.push(page.records.map((r) => r.id));
      continuation = page.continuation;
    } while (continuation);
    const validation = await archive.list({ reason: 'ValidationFailed' }, { limit: 100 });
    const gone = await archive.list({ state: 'discarded' }, { limit: 100 });
    const laterOnes = await archive.list({ from: new Date(T0.getTime() + 3_600_000) }, { limit: 100 });
    const invoices = await archive.list({ q: 'invoice' }, { limit: 100 });

    // Assess
    const all = pages.flat();
    expect(all).toHaveLength(31);
    expect(new Set(all).size).toBe(31);
    expect(pages.slice(0, -1).every((p) => p.length === 7)).toBe(true);
    expect(validation.records.every((r) => r.deadLetterReason === 'ValidationFailed')).toBe(true);
    // The odd ones of 1-30, billing's 1 and order 99.
    expect(validation.records).toHaveLength(17);
    expect(gone.records.map((r) => [r.id, r.stateReason])).toEqual([[discarded.id, 'duplicate order']]);
    expect(laterOnes.records.map((r) => r.messageId)).toEqual(['order-99']);
    expect(invoices.records.map((r) => r.entity)).toEqual(['billing']);
  });

  it('removes records with their revisions and blobs', async () => {
    // Prepare
    const large = new Uint8Array(100 * 1024).fill(7);
    const { created } = await archive.archive('orders', [
      { ...arrival(1), body: { type: 'data', bytes: large } },
      arrival(2),
    ]);
    const revised = await archive.addRevision(
      created[0]!,
      { body: { type: 'data', bytes: large } },
      { actor: 'u', now: T0 },
    );

    // Act
    const removed = await archive.remove([revised.record, created[1]!]);
    const container = BlobServiceClient.fromConnectionString(storageConnectionString()).getContainerClient(
      deadLetterContainerName(prefix),
    );
    const blobs: string[] = [];
    for await (const blob of container.listBlobsFlat()) blobs.push(blob.name);

    // Assess
    expect(removed).toBe(2);
    expect(await archive.get(created[0]!.id)).toBeUndefined();
    expect(await archive.get(created[1]!.id)).toBeUndefined();
    expect(blobs).toEqual([]);
  });

  it('claims an alert window once, and keeps what arrives after the claim', async () => {
    // Prepare
    await archive.archive('orders', [arrival(1), arrival(2)]);
    const window = await archive.alertWindow('orders');

    // Act
    const claimed = await archive.claimAlert(window, 'alert-1', T0);
    const lost = await archive.claimAlert(window, 'alert-2', T0);
    await archive.archive('orders', [arrival(3)]);
    await archive.alertSent(claimed!, new Date(T0.getTime() + 1000));
    const after = await archive.alertWindow('orders');

    // Assess
    expect(claimed?.claimed).toMatchObject({ id: 'alert-1', total: 2 });
    expect(lost).toBeUndefined();
    expect(after.claimed).toBeUndefined();
    expect(after.lastAlertOn).toEqual(new Date(T0.getTime() + 1000));
    expect(after.pending).toMatchObject({ total: 1, byReason: { ValidationFailed: 1 } });
  });
});
