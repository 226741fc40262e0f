/**
 * Arrival on the real pieces: the sandbox broker through `@azure/service-bus`, the archive on
 * Azurite, the real notifier. A batch is archived before it is completed; a crash in between
 * leaves it in the dead-letter queue; storms make one alert per interval; transient reasons are
 * replayed automatically (scheduled), until the policy's limit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createStateStores } from '../../../src/lib/state';
import { storageConnectionString, uniquePrefix } from '../../support/storage';
import {
  type DeadLetterSetup,
  deadLetterMessages,
  drain,
  NS,
  setupDeadLetters,
  T0,
  triggerOnce,
} from './support';

let setup: DeadLetterSetup | undefined;
afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

const ORDERS = `  - name: orders
    namespaceId: ${NS}
    queue: orders
    owner: team-orders
    alerts: { minIntervalMinutes: 15 }
    replay:
      maxReplays: 2
      auto:
        - { reason: MaxDeliveryCountExceeded, delayMinutes: 10, maxAttempts: 1 }`;

// Bounds, not speed checks: the broker, Azurite and the tests share a 2-core machine.
describe('arrival', { timeout: 120_000 }, () => {
  it('archives a batch before it is completed: a crash in between leaves every message in the dead-letter queue', async () => {
    // Prepare
    setup = await setupDeadLetters([{ name: 'orders' }], ORDERS);
    await deadLetterMessages(setup, 'orders', 40);
    const orders = setup.broker.entities.get('orders');
    expect(orders.counts().deadLetter).toBe(40);

    // Act: the invocation archives, then the process dies before the host completes anything.
    const crashed = await triggerOnce(setup, 'orders', { crashAfterArrival: true });
    const afterCrash = orders.counts().deadLetter;
    const archivedAfterCrash = await setup.stores.deadLetters.list({ entity: 'orders' }, { limit: 1000 });
    // The redelivery finds them archived, does not count them again, and completes them.
    const drained = await drain(setup, 'orders', 'orders');
    const archived = await setup.stores.deadLetters.list({ entity: 'orders' }, { limit: 1000 });
    const counts = await setup.stores.deadLetters.counts({
      entity: 'orders',
      since: setup.clock.now(),
      until: setup.clock.now(),
    });

    // Assess
    expect(crashed.received).toBe(40);
    expect(crashed.error).toBeUndefined();
    expect(afterCrash).toBe(40);
    expect(archivedAfterCrash.records).toHaveLength(40);
    expect(drained).toBe(40);
    expect(orders.counts().deadLetter).toBe(0);
    expect(archived.records).toHaveLength(40);
    expect(counts).toEqual([expect.objectContaining({ reason: 'ValidationFailed', count: 40 })]);
    const first = archived.records.find((r) => r.messageId === 'm-0')!;
    expect(first).toMatchObject({
      path: 'orders',
      subject: 'OrderPlaced',
      contentType: 'application/json',
      deadLetterReason: 'ValidationFailed',
      deadLetterErrorDescription: 'refused by the test consumer',
      applicationProperties: { n: 0 },
      state: 'parked',
      classification: { reasonClass: 'application', decision: 'park', messageType: 'OrderPlaced' },
    });
  });

  it('fails the invocation when the archive cannot be written, and the messages stay', async () => {
    // Prepare: tables that were never created.
    setup = await setupDeadLetters([{ name: 'orders' }], ORDERS);
    await deadLetterMessages(setup, 'orders', 5);
    const prefix = uniquePrefix('missing');
    const missing = createStateStores({ connectionString: storageConnectionString(), tablePrefix: prefix });
    setup.deps.archive = missing.deadLetters;

    // Act
    const result = await triggerOnce(setup, 'orders');

    // Assess
    expect(result.error).toBeDefined();
    expect(setup.broker.entities.get('orders').counts().deadLetter).toBe(5);
    expect(setup.channel.sent).toEqual([]);
  });

  it('makes one alert per interval out of a storm, with the counts of everything since the last one', async () => {
    // Prepare
    setup = await setupDeadLetters([{ name: 'orders' }], ORDERS);
    await deadLetterMessages(setup, 'orders', 300, { prefix: 'a' });

    // Act: the storm arrives in batches of 100.
    for (let i = 0; i < 3; i++) await triggerOnce(setup, 'orders', { maxMessages: 100 });
    const duringStorm = setup.channel.sent.length;
    await deadLetterMessages(setup, 'orders', 50, { prefix: 'b', reason: 'SchemaMismatch' });
    await drain(setup, 'orders', 'orders');
    const stillQuiet = setup.channel.sent.length;
    await setup.clock.advance(15 * 60_000);
    await deadLetterMessages(setup, 'orders', 1, { prefix: 'c' });
    await drain(setup, 'orders', 'orders');

    // Assess
    expect(duringStorm).toBe(1);
    expect(setup.channel.sent[0]!.facts['Dead letters']).toBe('100');
    expect(stillQuiet).toBe(1);
    expect(setup.channel.sent).toHaveLength(2);
    const second = setup.channel.sent[1]!;
    expect(second.data).toMatchObject({
      total: 251,
      byReason: { ValidationFailed: 201, SchemaMismatch: 50 },
    });
    expect(second.title).toBe('251 dead letters in orders');
    const audit = await setup.stores.audit.query({ since: T0, target: 'deadletters/orders', limit: 1000 });
    expect(audit.filter((r) => r.action === 'deadletters.alert')).toHaveLength(2);
  });

  it('replays transient reasons automatically after the delay, and parks a message replayed as often as the policy allows', async () => {
    // Prepare: the consumer always fails (abandons) orders for one warehouse.
    setup = await setupDeadLetters([{ name: 'orders', maxDeliveryCount: 1 }], ORDERS);
    await deadLetterMessages(setup, 'orders', 1, { reason: 'MaxDeliveryCountExceeded' });

    // Act
    await drain(setup, 'orders', 'orders');
    const orders = setup.broker.entities.get('orders');
    const scheduled = orders.scheduled();
    const [first] = (await setup.stores.deadLetters.list({ entity: 'orders' }, { limit: 10 })).records;
    await setup.clock.advance(10 * 60_000);
    const replayed = orders.active();
    // The replayed copy fails again and dead-letters again.
    const receiver = setup.client.createReceiver('orders');
    const [copy] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    await receiver.deadLetterMessage(copy!, {
      deadLetterReason: 'MaxDeliveryCountExceeded',
      deadLetterErrorDescription: 'again',
    });
    await receiver.close();
    await drain(setup, 'orders', 'orders');
    const all = (await setup.stores.deadLetters.list({ entity: 'orders' }, { limit: 10 })).records;

    // Assess
    expect(first).toMatchObject({
      state: 'replayed',
      replays: 1,
      classification: { decision: 'auto-replay', rule: 0 },
      lastReplay: { attempt: 1, status: 'sent', target: 'orders', actor: 'system:deadletters' },
    });
    expect(first!.lastReplay!.scheduledFor).toEqual(new Date(T0.getTime() + 10 * 60_000));
    expect(scheduled).toHaveLength(1);
    expect(replayed).toHaveLength(1);
    expect(copy!.messageId).toBe(`${first!.id}:r1`);
    expect(copy!.applicationProperties).toMatchObject({
      n: 0,
      StampkeeperReplayCount: 1,
      StampkeeperOriginalMessageId: 'm-0',
      StampkeeperReplayOf: first!.id,
    });
    expect(copy!.applicationProperties).not.toHaveProperty('DeadLetterReason');
    const second = all.find((r) => r.id !== first!.id)!;
    expect(second).toMatchObject({
      replayCount: 1,
      originalMessageId: 'm-0',
      state: 'parked',
      classification: { decision: 'park' },
    });
    expect(second.classification.why).toContain('maxAttempts 1');
    expect(orders.scheduled()).toHaveLength(0);
  });
});
