import { ServiceBusClient } from '@azure/service-bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandboxClock, type SandboxClock } from '../../../src/local/sandbox/clock';
import { type ServiceBusBroker, startServiceBusBroker } from '../../../src/local/sandbox/servicebus/broker';

// The broker on the sandbox clock: duplicate detection window, scheduled messages and time to
// live follow the clock the app sees, through the real SDK.

const START = new Date('2026-01-01T00:00:00Z');
const MINUTE = 60_000;

let clock: SandboxClock;
let broker: ServiceBusBroker;
let client: ServiceBusClient;

beforeAll(async () => {
  clock = createSandboxClock(START);
  broker = await startServiceBusBroker({
    clock,
    entities: [
      { name: 'dedupe', requiresDuplicateDetection: true, duplicateDetectionHistoryTimeWindowMs: MINUTE },
      { name: 'dedupe-topic', type: 'topic', subscriptions: ['a', 'b'], requiresDuplicateDetection: true },
      { name: 'plain' },
      { name: 'later' },
      { name: 'ttl-dlq', deadLetteringOnMessageExpiration: true },
      { name: 'ttl-drop' },
      { name: 'ttl-capped', defaultMessageTimeToLiveMs: 30_000, deadLetteringOnMessageExpiration: true },
      { name: 'ttl-locked', deadLetteringOnMessageExpiration: true },
      { name: 'ttl-deferred', deadLetteringOnMessageExpiration: true },
    ],
  });
  client = new ServiceBusClient(broker.connectionString);
});

afterAll(async () => {
  await client?.close();
  await broker?.stop();
});

const ids = (path: string) =>
  broker.entities
    .get(path)
    .active()
    .map((m) => m.messageId);

describe('sandbox Service Bus duplicate detection', () => {
  it('accepts a message id seen within the window and silently drops it; after the window it is new again', async () => {
    // Prepare
    const sender = client.createSender('dedupe');

    // Act
    await sender.sendMessages({ body: 'first', messageId: 'order-1' });
    await sender.sendMessages({ body: 'retry', messageId: 'order-1' });
    await sender.sendMessages([
      { body: 'other', messageId: 'order-2' },
      { body: 'in batch', messageId: 'order-2' },
    ]);
    const withinWindow = ids('dedupe');
    await clock.advance(MINUTE + 1);
    await sender.sendMessages({ body: 'deliberate replay', messageId: 'order-1' });

    // Assess
    expect(withinWindow).toEqual(['order-1', 'order-2']);
    expect(
      broker.entities
        .get('dedupe')
        .active()
        .map((m) => m.body),
    ).toEqual(['first', 'other', 'deliberate replay']);
    expect(broker.entities.get('dedupe').counts().duplicatesDropped).toBe(2);
    await sender.close();
  });

  it('counts scheduled messages too, and works per topic (one copy per subscription, one id log)', async () => {
    // Prepare
    const sender = client.createSender('dedupe-topic');

    // Act
    await sender.scheduleMessages(
      { body: 'later', messageId: 'evt-1' },
      new Date(START.getTime() + 10 * MINUTE + 1),
    );
    await sender.sendMessages({ body: 'now', messageId: 'evt-1' });
    await sender.sendMessages({ body: 'now', messageId: 'evt-2' });
    await sender.scheduleMessages(
      { body: 'later', messageId: 'evt-2' },
      new Date(clock.now().getTime() + MINUTE),
    );

    // Assess
    expect(
      broker.entities
        .get('dedupe-topic/Subscriptions/a')
        .scheduled()
        .map((s) => s.messageId),
    ).toEqual(['evt-1']);
    expect(ids('dedupe-topic/Subscriptions/a')).toEqual(['evt-2']);
    expect(ids('dedupe-topic/Subscriptions/b')).toEqual(['evt-2']);
    await sender.close();
  });

  it('keeps every copy on an entity without duplicate detection', async () => {
    // Prepare
    const sender = client.createSender('plain');

    // Act
    await sender.sendMessages({ body: 1, messageId: 'same' });
    await sender.sendMessages({ body: 2, messageId: 'same' });

    // Assess
    expect(ids('plain')).toEqual(['same', 'same']);
    await sender.close();
  });

  it('refuses a window outside 20 s .. 7 days, and a window without duplicate detection', async () => {
    // Act / Assess
    await expect(
      startServiceBusBroker({
        entities: [
          { name: 'q', requiresDuplicateDetection: true, duplicateDetectionHistoryTimeWindowMs: 1_000 },
        ],
      }),
    ).rejects.toThrow(/from 20 s to 7 days/);
    await expect(
      startServiceBusBroker({ entities: [{ name: 'q', duplicateDetectionHistoryTimeWindowMs: MINUTE }] }),
    ).rejects.toThrow(/without requiresDuplicateDetection/);
  });
});

describe('sandbox Service Bus on the sandbox clock', () => {
  it('enqueues a scheduled message when the sandbox clock reaches its time, stamped with that time', async () => {
    // Prepare
    const sender = client.createSender('later');
    const at = new Date(clock.now().getTime() + 60 * MINUTE);

    // Act
    await sender.scheduleMessages({ body: 'in an hour', messageId: 's-1' }, at);
    const before = ids('later');
    await clock.advance(60 * MINUTE);
    const receiver = client.createReceiver('later', { receiveMode: 'receiveAndDelete' });
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Assess
    expect(before).toEqual([]);
    expect(message?.messageId).toBe('s-1');
    expect(message?.enqueuedTimeUtc).toEqual(at);
    await sender.close();
    await receiver.close();
  });
});

describe('sandbox Service Bus time to live', () => {
  it('dead-letters an expired message with TTLExpiredException when a receiver pulls, on an entity that says so', async () => {
    // Prepare
    const sender = client.createSender('ttl-dlq');
    await sender.sendMessages({ body: 'stale soon', messageId: 't-1', timeToLive: MINUTE });
    const enqueued = clock.now();
    await clock.advance(2 * MINUTE);
    const peekedBeforePull = ids('ttl-dlq');

    // Act
    const receiver = client.createReceiver('ttl-dlq');
    const received = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1_000 });
    const dlq = client.createReceiver('ttl-dlq', { subQueueType: 'deadLetter' });
    const [dead] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Assess: Service Bus expires lazily (only while a receiver pulls), so a peek before still shows it.
    expect(peekedBeforePull).toEqual(['t-1']);
    expect(received).toEqual([]);
    expect(dead?.messageId).toBe('t-1');
    expect(dead?.deadLetterReason).toBe('TTLExpiredException');
    expect(dead?.deadLetterErrorDescription).toBe('The message expired and was dead lettered.');
    expect(dead?.enqueuedTimeUtc).toEqual(enqueued);
    await dlq.completeMessage(dead!);
    await sender.close();
    await receiver.close();
    await dlq.close();
  });

  it('drops an expired message on an entity without dead-lettering on expiration', async () => {
    // Prepare
    const sender = client.createSender('ttl-drop');
    await sender.sendMessages([
      { body: 'stale', messageId: 'gone', timeToLive: MINUTE },
      { body: 'fresh', messageId: 'kept' },
    ]);
    await clock.advance(2 * MINUTE);

    // Act
    const receiver = client.createReceiver('ttl-drop', { receiveMode: 'receiveAndDelete' });
    const received = await receiver.receiveMessages(5, { maxWaitTimeInMs: 1_000 });

    // Assess
    expect(received.map((m) => m.messageId)).toEqual(['kept']);
    expect(broker.entities.get('ttl-drop').deadLetter()).toEqual([]);
    await sender.close();
    await receiver.close();
  });

  it("caps a message's time to live at the entity's default and applies it to messages without one", async () => {
    // Prepare
    const sender = client.createSender('ttl-capped');

    // Act
    await sender.sendMessages([
      { body: 'long', messageId: 'long', timeToLive: 60 * MINUTE },
      { body: 'none', messageId: 'none' },
    ]);
    const peeked = await client.createReceiver('ttl-capped').peekMessages(2);

    // Assess
    for (const message of peeked) {
      expect(message.expiresAtUtc!.getTime() - message.enqueuedTimeUtc!.getTime()).toBe(30_000);
    }
    await sender.close();
  });

  it('does not expire a locked message, and expires it at once when its lock ends after the expiry', async () => {
    // Prepare
    const sender = client.createSender('ttl-locked');
    await sender.sendMessages({ body: 'slow', messageId: 'held', timeToLive: MINUTE });
    const receiver = client.createReceiver('ttl-locked');
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Act
    await clock.advance(2 * MINUTE);
    const stillActive = ids('ttl-locked');
    await receiver.abandonMessage(message!);

    // Assess
    expect(stillActive).toEqual(['held']);
    expect(ids('ttl-locked')).toEqual([]);
    expect(broker.entities.get('ttl-locked').deadLetter()[0]?.deadLetterReason).toBe('TTLExpiredException');
    await sender.close();
    await receiver.close();
  });

  it('never expires a deferred message, nor a dead-lettered one', async () => {
    // Prepare
    const sender = client.createSender('ttl-deferred');
    await sender.sendMessages([
      { body: 'deferred', messageId: 'deferred', timeToLive: MINUTE },
      { body: 'dead', messageId: 'dead', timeToLive: MINUTE },
    ]);
    const receiver = client.createReceiver('ttl-deferred');
    const [first, second] = await receiver.receiveMessages(2, { maxWaitTimeInMs: 5_000 });
    await receiver.deferMessage(first!);
    await receiver.deadLetterMessage(second!, {
      deadLetterReason: 'Poison',
      deadLetterErrorDescription: 'bad',
    });

    // Act
    await clock.advance(10 * MINUTE);
    await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 });
    const [deferred] = await receiver.receiveDeferredMessages(first!.sequenceNumber!);
    const dlq = client.createReceiver('ttl-deferred', { subQueueType: 'deadLetter' });
    const [dead] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Assess
    expect(deferred?.messageId).toBe('deferred');
    expect(dead?.messageId).toBe('dead');
    expect(dead?.deadLetterReason).toBe('Poison');
    await receiver.completeMessage(deferred!);
    await dlq.completeMessage(dead!);
    await sender.close();
    await receiver.close();
    await dlq.close();
  });
});
