import { ServiceBusClient } from '@azure/service-bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServiceBusBroker, startServiceBusBroker } from '../../../src/local/sandbox/servicebus/broker';

// The real @azure/service-bus client against the sandbox broker, over loopback AMQP.

let broker: ServiceBusBroker;
let client: ServiceBusClient;

beforeAll(async () => {
  broker = await startServiceBusBroker({
    entities: [
      { name: 'orders' },
      { name: 'settle' },
      { name: 'abandon' },
      { name: 'deadletter' },
      { name: 'expiry', lockDurationMs: 300 },
      { name: 'retries', maxDeliveryCount: 3 },
      { name: 'renew', lockDurationMs: 2_000 },
      { name: 'closing' },
      { name: 'deferring' },
      { name: 'takeaway' },
      { name: 'dropped' },
      { name: 'scheduling' },
      { name: 'far-future' },
      { name: 'events', type: 'topic', subscriptions: ['audit', 'billing'] },
      { name: 'long-lived' },
    ],
  });
  client = new ServiceBusClient(broker.connectionString);
});

afterAll(async () => {
  await client?.close();
  await broker?.stop();
});

describe('sandbox Service Bus broker', () => {
  it('keeps delivering on one long-lived peek-lock link past 2,048 settled messages (the sender forgets what it settled)', async () => {
    // Prepare: more messages than rhea's session buffer holds (2,048 deliveries)
    const total = 2_600;
    const sender = client.createSender('long-lived');
    let batch = await sender.createMessageBatch();
    for (let i = 0; i < total; i++) {
      if (!batch.tryAddMessage({ body: i })) {
        await sender.sendMessages(batch);
        batch = await sender.createMessageBatch();
        batch.tryAddMessage({ body: i });
      }
    }
    await sender.sendMessages(batch);
    await sender.close();
    const receiver = client.createReceiver('long-lived');

    // Act: one receiver, as the host's trigger keeps one, completing everything it gets
    let completed = 0;
    for (let empty = 0; completed < total && empty < 2; ) {
      const messages = await receiver.receiveMessages(200, { maxWaitTimeInMs: 1_000 });
      if (messages.length === 0) empty++;
      for (const message of messages) await receiver.completeMessage(message);
      completed += messages.length;
    }
    await receiver.close();

    // Assess
    expect(completed).toBe(total);
    expect(broker.entities.get('long-lived').counts().active).toBe(0);
  }, 60_000);

  it('accepts single and batched sends and peeks them in order without removing them', async () => {
    // Prepare
    const sender = client.createSender('orders');
    const receiver = client.createReceiver('orders');

    // Act
    await sender.sendMessages({
      body: { id: 1 },
      messageId: 'm-1',
      applicationProperties: { kind: 'single' },
    });
    const batch = await sender.createMessageBatch();
    expect(batch.tryAddMessage({ body: 'two', messageId: 'm-2' })).toBe(true);
    expect(
      batch.tryAddMessage({
        body: Buffer.from('three'),
        messageId: 'm-3',
        contentType: 'application/octet-stream',
      }),
    ).toBe(true);
    await sender.sendMessages(batch);
    const peeked = await receiver.peekMessages(10);

    // Assess
    expect(peeked.map((m) => m.messageId)).toEqual(['m-1', 'm-2', 'm-3']);
    expect(peeked.map((m) => m.body)).toEqual([{ id: 1 }, 'two', Buffer.from('three')]);
    expect(peeked[0]?.applicationProperties).toEqual({ kind: 'single' });
    expect(peeked[2]?.contentType).toBe('application/octet-stream');
    expect(peeked.map((m) => Number(m.sequenceNumber))).toEqual([1, 2, 3]);
    expect(peeked.every((m) => m.enqueuedTimeUtc instanceof Date)).toBe(true);
    expect(broker.entities.get('orders').active()).toHaveLength(3);
    await sender.close();
    await receiver.close();
  });

  it('stamps a message id on messages sent without one', async () => {
    // Prepare
    const sender = client.createSender('orders');

    // Act
    await sender.sendMessages({ body: 'anonymous' });

    // Assess
    const last = broker.entities.get('orders').active().at(-1);
    expect(last?.body).toBe('anonymous');
    expect(last?.messageId).toMatch(/^[0-9a-f]{32}$/);
    await sender.close();
  });

  it('peek-lock receives with a lock token and removes the message on complete', async () => {
    // Prepare
    const sender = client.createSender('settle');
    await sender.sendMessages({ body: 'work', messageId: 'w-1' });
    const receiver = client.createReceiver('settle');

    // Act
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
    const lockedWhileHeld = broker.entities.get('settle').active()[0]?.locked;
    await receiver.completeMessage(message!);

    // Assess
    expect(message?.lockToken).toMatch(/^[0-9a-f-]{36}$/);
    expect(message?.deliveryCount).toBe(0);
    expect(message?.lockedUntilUtc?.getTime()).toBeGreaterThan(Date.now());
    expect(lockedWhileHeld).toBe(true);
    expect(broker.entities.get('settle').active()).toEqual([]);
    await sender.close();
    await receiver.close();
  });

  it('abandon makes the message available again with its delivery count grown', async () => {
    // Prepare
    const sender = client.createSender('abandon');
    await sender.sendMessages({ body: 'again', messageId: 'a-1' });
    const receiver = client.createReceiver('abandon');
    const [first] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Act
    await receiver.abandonMessage(first!);
    const [second] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Assess
    expect(second?.messageId).toBe('a-1');
    expect(second?.deliveryCount).toBe(1);
    expect(second?.lockToken).not.toBe(first?.lockToken);
    await receiver.completeMessage(second!);
    await sender.close();
    await receiver.close();
  });

  it('dead-letters with reason and description, readable from the $DeadLetterQueue sub-queue', async () => {
    // Prepare
    const sender = client.createSender('deadletter');
    await sender.sendMessages({
      body: { bad: true },
      messageId: 'd-1',
      applicationProperties: { tenant: 't1' },
    });
    const receiver = client.createReceiver('deadletter');
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Act
    await receiver.deadLetterMessage(message!, {
      deadLetterReason: 'ValidationFailed',
      deadLetterErrorDescription: 'amount is negative',
    });
    const dlqReceiver = client.createReceiver('deadletter', { subQueueType: 'deadLetter' });
    const [dead] = await dlqReceiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Assess
    expect(broker.entities.get('deadletter').active()).toEqual([]);
    expect(dead?.messageId).toBe('d-1');
    expect(dead?.body).toEqual({ bad: true });
    expect(dead?.deadLetterReason).toBe('ValidationFailed');
    expect(dead?.deadLetterErrorDescription).toBe('amount is negative');
    expect(dead?.deadLetterSource).toBe('deadletter');
    expect(dead?.applicationProperties?.['tenant']).toBe('t1');
    await dlqReceiver.completeMessage(dead!);
    expect(broker.entities.get('deadletter').deadLetter()).toEqual([]);
    await sender.close();
    await receiver.close();
    await dlqReceiver.close();
  });

  it('serves a dead-letter queue addressed by path, as a Functions trigger names it', async () => {
    // Prepare
    const sender = client.createSender('deadletter');
    await sender.sendMessages({ body: 'by path', messageId: 'p-1' });
    const receiver = client.createReceiver('deadletter');
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
    await receiver.deadLetterMessage(message!, {
      deadLetterReason: 'Bad',
      deadLetterErrorDescription: 'bad',
    });

    // Act
    const byPath = client.createReceiver('deadletter/$deadletterqueue');
    const [dead] = await byPath.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
    await byPath.completeMessage(dead!);

    // Assess
    expect(dead?.messageId).toBe('p-1');
    expect(dead?.deadLetterReason).toBe('Bad');
    expect(broker.entities.get('deadletter').deadLetter()).toEqual([]);
    await sender.close();
    await receiver.close();
    await byPath.close();
  });

  it('removes messages as it hands them out in receive-and-delete mode', async () => {
    // Prepare
    const sender = client.createSender('takeaway');
    await sender.sendMessages([
      { body: 1, messageId: 't-1' },
      { body: 2, messageId: 't-2' },
    ]);
    const receiver = client.createReceiver('takeaway', { receiveMode: 'receiveAndDelete' });

    // Act
    const messages = await receiver.receiveMessages(2, { maxWaitTimeInMs: 5_000 });

    // Assess
    expect(messages.map((m) => m.messageId)).toEqual(['t-1', 't-2']);
    expect(messages.every((m) => m.lockToken === undefined)).toBe(true);
    expect(broker.entities.get('takeaway').active()).toEqual([]);
    await sender.close();
    await receiver.close();
  });

  it('returns a message whose lock expired, and refuses to settle with the lost lock', async () => {
    // Prepare
    const sender = client.createSender('expiry');
    await sender.sendMessages({ body: 'slow', messageId: 'e-1' });
    // Without auto-renewal: the SDK would otherwise keep renewing the short lock.
    const receiver = client.createReceiver('expiry', { maxAutoLockRenewalDurationInMs: 0 });
    const [held] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Act: the 300 ms lock lapses while the next receive waits for the message to come back.
    const [redelivered] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 10_000 });
    const lateComplete = receiver.completeMessage(held!);

    // Assess
    expect(redelivered?.messageId).toBe('e-1');
    expect(redelivered?.deliveryCount).toBe(1);
    await expect(lateComplete).rejects.toMatchObject({ code: 'MessageLockLost' });
    expect(broker.entities.get('expiry').active()).toHaveLength(1);
    await sender.close();
    await receiver.close();
  });

  it('dead-letters automatically with MaxDeliveryCountExceeded after maxDeliveryCount attempts', async () => {
    // Prepare
    const sender = client.createSender('retries');
    await sender.sendMessages({ body: 'poison', messageId: 'r-1' });
    const receiver = client.createReceiver('retries');
    const counts: number[] = [];

    // Act
    for (let attempt = 0; attempt < 3; attempt++) {
      const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
      counts.push(message!.deliveryCount!);
      await receiver.abandonMessage(message!);
    }

    // Assess
    expect(counts).toEqual([0, 1, 2]);
    expect(broker.entities.get('retries').active()).toEqual([]);
    const [dead] = broker.entities.get('retries').deadLetter();
    expect(dead?.messageId).toBe('r-1');
    expect(dead?.deadLetterReason).toBe('MaxDeliveryCountExceeded');
    expect(dead?.deliveryCount).toBe(3);
    await sender.close();
    await receiver.close();
  });

  it('renews a lock through the $management link', async () => {
    // Prepare
    const sender = client.createSender('renew');
    await sender.sendMessages({ body: 'long job', messageId: 'n-1' });
    const receiver = client.createReceiver('renew');
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
    const before = message!.lockedUntilUtc!.getTime();

    // Act
    await new Promise((resolve) => setTimeout(resolve, 20));
    const renewed = await receiver.renewMessageLock(message!);

    // Assess
    expect(renewed.getTime()).toBeGreaterThan(before);
    await receiver.completeMessage(message!);
    expect(broker.entities.get('renew').active()).toEqual([]);
    await sender.close();
    await receiver.close();
  });

  it('gives back the messages a closed receiver still held locked', async () => {
    // Prepare
    const sender = client.createSender('closing');
    await sender.sendMessages({ body: 'held', messageId: 'c-1' });
    const first = client.createReceiver('closing');
    await first.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Act
    await first.close();
    const second = client.createReceiver('closing');
    const [message] = await second.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Assess
    expect(message?.messageId).toBe('c-1');
    expect(message?.deliveryCount).toBe(1);
    await second.completeMessage(message!);
    await sender.close();
    await second.close();
  });

  it('defers a message and hands it out again by sequence number, settled through $management', async () => {
    // Prepare
    const sender = client.createSender('deferring');
    await sender.sendMessages({ body: 'later', messageId: 'f-1' });
    const receiver = client.createReceiver('deferring');
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Act
    await receiver.deferMessage(message!);
    const whileDeferred = await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 });
    const [deferred] = await receiver.receiveDeferredMessages(message!.sequenceNumber!);
    await receiver.completeMessage(deferred!);

    // Assess
    expect(whileDeferred).toEqual([]);
    expect(deferred?.messageId).toBe('f-1');
    expect(deferred?.state).toBe('deferred');
    expect(broker.entities.get('deferring').active()).toEqual([]);
    await sender.close();
    await receiver.close();
  });

  it('enqueues scheduled messages at their time and drops cancelled ones', async () => {
    // Prepare: far enough ahead that the round trips before the snapshot cannot reach it.
    const sender = client.createSender('scheduling');
    const receiver = client.createReceiver('scheduling');
    const at = new Date(Date.now() + 5_000);

    // Act
    const [kept] = await sender.scheduleMessages({ body: 'on time', messageId: 's-1' }, at);
    const [cancelled] = await sender.scheduleMessages({ body: 'never', messageId: 's-2' }, at);
    await sender.cancelScheduledMessages(cancelled!);
    const beforeTime = broker.entities.get('scheduling').active();
    const waiting = broker.entities.get('scheduling').scheduled();
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 15_000 });
    await receiver.completeMessage(message!);

    // Assess
    expect(Number(kept)).toBeLessThan(Number(cancelled));
    expect(beforeTime).toEqual([]);
    expect(waiting).toEqual([{ sequenceNumber: Number(kept), messageId: 's-1', scheduledEnqueueTime: at }]);
    expect(message?.messageId).toBe('s-1');
    expect(message?.sequenceNumber?.toNumber()).toBe(Number(kept));
    expect(broker.entities.get('scheduling').active()).toEqual([]);
    await sender.close();
    await receiver.close();
  });

  it('keeps a message scheduled beyond setTimeout range (30 days ahead) scheduled, not delivered at once', async () => {
    // Prepare
    const sender = client.createSender('far-future');
    const receiver = client.createReceiver('far-future');
    const at = new Date(Date.now() + 30 * 24 * 60 * 60 * 1000);

    // Act
    const [sequenceNumber] = await sender.scheduleMessages({ body: 'next month', messageId: 'f-30' }, at);
    const received = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1_000 });
    const waiting = broker.entities.get('far-future').scheduled();
    const active = broker.entities.get('far-future').active();
    await sender.cancelScheduledMessages(sequenceNumber!);

    // Assess
    expect(received).toEqual([]);
    expect(active).toEqual([]);
    expect(waiting).toEqual([
      { sequenceNumber: Number(sequenceNumber), messageId: 'f-30', scheduledEnqueueTime: at },
    ]);
    expect(broker.entities.get('far-future').scheduled()).toEqual([]);
    await sender.close();
    await receiver.close();
  });

  it('gives back the locked messages of a client whose connection closes', async () => {
    // Prepare
    const sender = client.createSender('dropped');
    await sender.sendMessages({ body: 'in flight', messageId: 'x-1' });
    const other = new ServiceBusClient(broker.connectionString);
    await other.createReceiver('dropped').receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Act
    await other.close();
    const receiver = client.createReceiver('dropped');
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Assess
    expect(message?.messageId).toBe('x-1');
    expect(message?.deliveryCount).toBe(1);
    await receiver.completeMessage(message!);
    await sender.close();
    await receiver.close();
  });

  it('copies a message sent to a topic into every subscription', async () => {
    // Prepare
    const sender = client.createSender('events');

    // Act
    await sender.sendMessages({ body: { event: 'created' }, messageId: 'ev-1' });
    const receiver = client.createReceiver('events', 'billing');
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
    await receiver.completeMessage(message!);

    // Assess
    expect(message?.body).toEqual({ event: 'created' });
    expect(broker.entities.get('events/Subscriptions/billing').active()).toEqual([]);
    expect(
      broker.entities
        .get('events/Subscriptions/audit')
        .active()
        .map((m) => m.messageId),
    ).toEqual(['ev-1']);
    await sender.close();
    await receiver.close();
  });

  it('refuses a sender to an entity it does not have', async () => {
    // Prepare
    const sender = client.createSender('nowhere');

    // Act
    const send = sender.sendMessages({ body: 'lost?' });

    // Assess
    await expect(send).rejects.toMatchObject({ code: 'MessagingEntityNotFound' });
    await sender.close();
  });

  it('refuses a bad entity list before listening', async () => {
    // Act
    const start = startServiceBusBroker({ entities: [{ name: 'ok' }, { name: 'OK' }] });
    const badName = startServiceBusBroker({ entities: [{ name: 'no spaces' }] });
    const badCount = startServiceBusBroker({ entities: [{ name: 'q', maxDeliveryCount: 0 }] });

    // Assess
    await expect(start).rejects.toThrow(/listed twice/);
    await expect(badName).rejects.toThrow(/not a valid Service Bus entity name/);
    await expect(badCount).rejects.toThrow(/maxDeliveryCount/);
  });
});
