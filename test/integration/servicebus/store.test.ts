import { describe, expect, it } from 'vitest';
import { type Consumer, type StoredMessage, SubQueue } from '../../../src/local/sandbox/servicebus/store';

// The broker's message store on its own: ordering and hand-out rules the AMQP tests cannot pin down.

function stored(sequenceNumber: number): StoredMessage {
  return {
    sequenceNumber,
    message: { message_id: `m-${sequenceNumber}`, body: `body ${sequenceNumber}` },
    enqueuedTime: new Date('2026-01-01T00:00:00Z'),
    deliveryCount: 0,
    state: 'active',
  };
}

/** A receiver link with `credit` messages of credit that records what it is handed. */
function consumer(credit: number, receiveAndDelete = false): Consumer & { taken: number[] } {
  const taken: number[] = [];
  return {
    taken,
    receiveAndDelete,
    canTake: () => taken.length < credit,
    take: (entry) => {
      taken.push(entry.sequenceNumber);
    },
  };
}

function queue(): SubQueue {
  const dlq = new SubQueue('q/$DeadLetterQueue', { lockDurationMs: 60_000 }, undefined);
  return new SubQueue('q', { maxDeliveryCount: 10, lockDurationMs: 60_000 }, dlq);
}

describe('sandbox Service Bus store', () => {
  it('keeps sequence order when a message arrives behind newer ones (a scheduled one reaching its time)', () => {
    // Prepare
    const q = queue();

    // Act
    for (const n of [1, 2, 5, 6]) q.enqueue(stored(n));
    q.enqueue(stored(3));
    q.enqueue(stored(7));

    // Assess
    expect(q.list().map((m) => m.sequenceNumber)).toEqual([1, 2, 3, 5, 6, 7]);
    expect(q.peek(3, 2).map((m) => m.sequenceNumber)).toEqual([3, 5]);
    expect(q.peek(4, 10).map((m) => m.sequenceNumber)).toEqual([5, 6, 7]);
  });

  it('hands out the oldest unlocked messages, skipping locked ones, and a returned one in its place', () => {
    // Prepare
    const q = queue();
    for (const n of [1, 2, 3]) q.enqueue(stored(n));
    const first = consumer(1);
    q.addConsumer(first);

    // Act
    const second = consumer(2);
    q.addConsumer(second);
    q.pump();
    q.removeConsumer(first);
    const third = consumer(5);
    q.addConsumer(third);
    q.pump();

    // Assess
    expect(first.taken).toEqual([1]);
    expect(second.taken).toEqual([2, 3]);
    expect(third.taken).toEqual([1]);
    expect(q.list().map((m) => [m.sequenceNumber, m.deliveryCount, m.locked])).toEqual([
      [1, 1, true],
      [2, 0, true],
      [3, 0, true],
    ]);
  });

  it('removes receive-and-delete hand-outs without skipping the message after each', () => {
    // Prepare
    const q = queue();
    for (const n of [1, 2, 3, 4]) q.enqueue(stored(n));
    const taker = consumer(3, true);

    // Act
    q.addConsumer(taker);
    q.pump();

    // Assess
    expect(taker.taken).toEqual([1, 2, 3]);
    expect(q.list().map((m) => m.sequenceNumber)).toEqual([4]);
  });

  it('orders the dead-letter queue by sequence number whatever order messages are dead-lettered in', () => {
    // Prepare
    const q = queue();
    for (const n of [1, 2, 3]) q.enqueue(stored(n));
    const locks: string[] = [];
    q.addConsumer({
      receiveAndDelete: false,
      canTake: () => locks.length < 3,
      take: (_entry, lock) => {
        locks.push(lock!.token);
      },
    });
    q.pump();

    // Act
    for (const token of [locks[2]!, locks[0]!, locks[1]!]) q.deadLetterByToken(token, 'Bad', 'bad');

    // Assess
    expect(q.list()).toEqual([]);
    expect(q.deadLetter!.list().map((m) => m.sequenceNumber)).toEqual([1, 2, 3]);
  });
});
