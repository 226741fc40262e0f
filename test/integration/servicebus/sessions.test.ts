import { ServiceBusClient } from '@azure/service-bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServiceBusBroker, startServiceBusBroker } from '../../../src/local/sandbox/servicebus/broker';

// Session-enabled queues and subscriptions through the real SDK's session receivers.

let broker: ServiceBusBroker;
let client: ServiceBusClient;
/** Fails at the first refusal instead of retrying (the SDK retries retryable errors 3 times by default). */
let once: ServiceBusClient;

beforeAll(async () => {
  broker = await startServiceBusBroker({
    entities: [
      { name: 'refuse', requiresSession: true },
      { name: 'ordered', requiresSession: true },
      { name: 'next', requiresSession: true },
      { name: 'exclusive', requiresSession: true },
      { name: 'state', requiresSession: true },
      { name: 'poison', requiresSession: true, maxDeliveryCount: 2 },
      { name: 'release', requiresSession: true },
      { name: 'short', requiresSession: true, lockDurationMs: 500 },
      { name: 'plain' },
      { name: 'events', type: 'topic', subscriptions: [{ name: 'sessions', requiresSession: true }, 'all'] },
    ],
  });
  client = new ServiceBusClient(broker.connectionString);
  once = new ServiceBusClient(broker.connectionString, {
    retryOptions: { maxRetries: 0, timeoutInMs: 5_000 },
  });
});

afterAll(async () => {
  await client?.close();
  await once?.close();
  await broker?.stop();
});

describe('sandbox Service Bus sessions', () => {
  it('refuses a message without a session id on a session-enabled queue, and a non-session receiver', async () => {
    // Prepare
    const sender = client.createSender('refuse');
    const receiver = once.createReceiver('refuse');

    // Act / Assess
    await expect(
      sender.sendMessages([
        { body: 'ok', messageId: 'a', sessionId: 's' },
        { body: 'no session', messageId: 'b' },
      ]),
    ).rejects.toThrow(/The SessionId was not set on a message/);
    await expect(receiver.receiveMessages(1, { maxWaitTimeInMs: 1_000 })).rejects.toThrow(
      /requires sessions to create a non-sessionful message receiver/,
    );
    expect(broker.entities.get('refuse').active()).toEqual([]);
    await sender.close();
    await receiver.close();
  });

  it("accepts a named session and hands out only that session's messages, in order", async () => {
    // Prepare
    const sender = client.createSender('ordered');
    await sender.sendMessages([
      { body: 1, messageId: 'a-1', sessionId: 'a' },
      { body: 1, messageId: 'b-1', sessionId: 'b' },
      { body: 2, messageId: 'a-2', sessionId: 'a' },
    ]);

    // Act
    const receiver = await client.acceptSession('ordered', 'a');
    const messages = await receiver.receiveMessages(5, { maxWaitTimeInMs: 1_000 });
    for (const message of messages) await receiver.completeMessage(message);

    // Assess
    expect(receiver.sessionId).toBe('a');
    expect(receiver.sessionLockedUntilUtc!.getTime()).toBeGreaterThan(Date.now());
    expect(messages.map((m) => [m.messageId, m.sessionId])).toEqual([
      ['a-1', 'a'],
      ['a-2', 'a'],
    ]);
    expect(
      broker.entities
        .get('ordered')
        .active()
        .map((m) => m.messageId),
    ).toEqual(['b-1']);
    await sender.close();
    await receiver.close();
  });

  it('accepts the next session with messages, one receiver per session, and times out when none is left', async () => {
    // Prepare
    const sender = client.createSender('next');
    await sender.sendMessages([
      { body: 1, messageId: 'x-1', sessionId: 'x' },
      { body: 1, messageId: 'y-1', sessionId: 'y' },
    ]);

    // Act
    const first = await once.acceptNextSession('next');
    const second = await once.acceptNextSession('next');
    const third = once.acceptNextSession('next');

    // Assess
    expect([first.sessionId, second.sessionId]).toEqual(['x', 'y']);
    await expect(third).rejects.toMatchObject({ code: 'ServiceTimeout' });
    await sender.close();
    await first.close();
    await second.close();
  });

  it('refuses a session another receiver holds, and hands it over once that receiver closes', async () => {
    // Prepare
    const sender = client.createSender('exclusive');
    await sender.sendMessages({ body: 1, messageId: 'e-1', sessionId: 'e' });
    const holder = await client.acceptSession('exclusive', 'e');
    const [held] = await holder.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Act
    const stolen = once.acceptSession('exclusive', 'e');
    await expect(stolen).rejects.toMatchObject({ code: 'SessionCannotBeLocked' });
    await holder.close();
    const next = await client.acceptSession('exclusive', 'e');
    const [again] = await next.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Assess: the closed receiver's unsettled message came back with one attempt counted.
    expect(held?.messageId).toBe('e-1');
    expect(again?.messageId).toBe('e-1');
    expect(again?.deliveryCount).toBe(1);
    await next.completeMessage(again!);
    await sender.close();
    await next.close();
  });

  it('keeps session state and renews the session lock', async () => {
    // Prepare
    const receiver = await client.acceptSession('state', 'st');
    const before = receiver.sessionLockedUntilUtc!.getTime();

    // Act
    const initial = await receiver.getSessionState();
    await receiver.setSessionState({ step: 3 });
    const stored = await receiver.getSessionState();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const renewed = await receiver.renewSessionLock();

    // Assess
    expect(initial).toBeNull();
    expect(stored).toEqual({ step: 3 });
    expect(renewed.getTime()).toBeGreaterThan(before);
    await receiver.close();
  });

  it("dead-letters a session's poison message at max delivery count into a dead-letter queue read without sessions", async () => {
    // Prepare
    const sender = client.createSender('poison');
    await sender.sendMessages({ body: 'bad', messageId: 'p-1', sessionId: 'p' });
    const receiver = await client.acceptSession('poison', 'p');

    // Act
    for (let attempt = 0; attempt < 2; attempt++) {
      const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
      await receiver.abandonMessage(message!);
    }
    const dlq = client.createReceiver('poison', { subQueueType: 'deadLetter' });
    const [dead] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
    const sessionOnDlq = once.acceptSession('poison/$DeadLetterQueue', 'p');

    // Assess
    expect(dead?.messageId).toBe('p-1');
    expect(dead?.sessionId).toBe('p');
    expect(dead?.deadLetterReason).toBe('MaxDeliveryCountExceeded');
    await expect(sessionOnDlq).rejects.toThrow(/Cannot create a MessageSession for a sub-queue/);
    await dlq.completeMessage(dead!);
    await sender.close();
    await receiver.close();
    await dlq.close();
  });

  it('takes the session away when its lock expires: settling fails, another receiver can accept it', async () => {
    // Prepare
    const sender = client.createSender('short');
    await sender.sendMessages({ body: 'slow', messageId: 'sl-1', sessionId: 'sl' });
    const receiver = await client.acceptSession('short', 'sl', { maxAutoLockRenewalDurationInMs: 0 });
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Act: wait past the 500 ms session lock.
    await new Promise((resolve) => setTimeout(resolve, 900));
    await expect(receiver.completeMessage(message!)).rejects.toMatchObject({ code: 'SessionLockLost' });
    const next = await client.acceptSession('short', 'sl');
    const [again] = await next.receiveMessages(1, { maxWaitTimeInMs: 5_000 });

    // Assess
    expect(again?.messageId).toBe('sl-1');
    expect(again?.deliveryCount).toBe(1);
    await next.completeMessage(again!);
    await sender.close();
    await next.close();
    await receiver.close();
  });

  it('refuses a session receiver on an entity without sessions', async () => {
    // Act
    const accept = once.acceptSession('plain', 's');

    // Assess
    await expect(accept).rejects.toThrow(/does not require sessions/);
  });

  it('dead-letters a session-less message in a session-enabled subscription with "Session ID is null."', async () => {
    // Prepare
    const sender = client.createSender('events');

    // Act
    await sender.sendMessages([
      { body: 'no session', messageId: 'n-1' },
      { body: 'session', messageId: 's-1', sessionId: 'k' },
    ]);

    // Assess
    expect(
      broker.entities
        .get('events/Subscriptions/sessions')
        .active()
        .map((m) => m.messageId),
    ).toEqual(['s-1']);
    const [dead] = broker.entities.get('events/Subscriptions/sessions').deadLetter();
    expect(dead?.messageId).toBe('n-1');
    expect(dead?.deadLetterReason).toBe('Session ID is null.');
    expect(dead?.deadLetterErrorDescription).toBe(
      "Session enabled entity doesn't allow a message whose session identifier is null.",
    );
    expect(
      broker.entities
        .get('events/Subscriptions/all')
        .active()
        .map((m) => m.messageId),
    ).toEqual(['n-1', 's-1']);
    await sender.close();
  });
});
