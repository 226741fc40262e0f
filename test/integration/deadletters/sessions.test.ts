/**
 * A session-enabled entity (`requiresSession`) on the real pieces: its consumer takes sessions,
 * its dead-letter queue is read by an ordinary receiver (Service Bus's dead-letter sub-queues are
 * never sessionful, which is what the dead-letter trigger does), the archive keeps each message's
 * session id, and a replay sends the copy under that session id, so that a session receiver of that
 * session gets it (a copy without one would be refused by the entity).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { replayDeadLetter } from '../../../src/lib/deadletters/operate';
import { replayMessageId } from '../../../src/lib/deadletters/replayMessage';
import { type DeadLetterSetup, drain, NS, setupDeadLetters, triggerOnce } from './support';

let setup: DeadLetterSetup | undefined;
afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

const ORDERS = `  - name: orders
    namespaceId: ${NS}
    queue: orders
    owner: team-orders`;
const ctx = { actor: 'user:ops@contoso.example', correlationId: 'test' };

describe('a session-enabled dead-letter entity', { timeout: 60_000 }, () => {
  it('archives dead letters with their session id and replays them to a receiver of that session', async () => {
    // Prepare: two sessions' messages; the session consumer dead-letters those of session "cart-7".
    setup = await setupDeadLetters([{ name: 'orders', requiresSession: true }], ORDERS);
    const sender = setup.client.createSender('orders');
    await sender.sendMessages([
      { messageId: 'a', sessionId: 'cart-7', body: { n: 1 }, contentType: 'application/json' },
      { messageId: 'b', sessionId: 'cart-7', body: { n: 2 }, contentType: 'application/json' },
      { messageId: 'c', sessionId: 'cart-9', body: { n: 3 }, contentType: 'application/json' },
    ]);
    await sender.close();
    const consumer = await setup.client.acceptSession('orders', 'cart-7');
    for (const m of await consumer.receiveMessages(10, { maxWaitTimeInMs: 1000 }))
      await consumer.deadLetterMessage(m, {
        deadLetterReason: 'ValidationFailed',
        deadLetterErrorDescription: 'no',
      });
    await consumer.close();

    // Act: the trigger archives; the operator replays one.
    const archivedCount = await drain(setup, 'orders', 'orders');
    const { records } = await setup.stores.deadLetters.list({ entity: 'orders' }, { limit: 10 });
    const first = records.find((r) => r.messageId === 'a')!;
    const replayed = await replayDeadLetter(first.id, {}, setup.deps, ctx);
    const session = await setup.client.acceptSession('orders', 'cart-7');
    const received = await session.receiveMessages(10, { maxWaitTimeInMs: 1000 });
    for (const m of received) await session.completeMessage(m);
    await session.close();
    const again = await triggerOnce(setup, 'orders');

    // Assess: both archived with the session id; the copy went to session cart-7 with its body.
    expect(archivedCount).toBe(2);
    expect(records.map((r) => [r.messageId, r.sessionId]).sort()).toEqual([
      ['a', 'cart-7'],
      ['b', 'cart-7'],
    ]);
    expect(replayed.attempt).toMatchObject({ attempt: 1, status: 'sent' });
    expect(received.map((m) => [m.messageId, m.sessionId, m.body])).toEqual([
      [replayMessageId(first, 1), 'cart-7', { n: 1 }],
    ]);
    expect(received[0]!.applicationProperties).toMatchObject({ StampkeeperOriginalMessageId: 'a' });
    expect(again.received).toBe(0);
    expect(setup.broker.entities.get('orders').counts()).toMatchObject({ active: 1, deadLetter: 0 });
  });
});
