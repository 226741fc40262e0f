/**
 * A dead letter of several MB on a Premium entity, on the real pieces (the sandbox broker through
 * `@azure/service-bus`, the archive on Azurite's Table and Blob services): archived with its body
 * in Blob storage, shown by the view without the body (its size and hash: a view is bounded), and
 * replayed with the exact bytes.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_VIEW_BODY_BYTES, replayDeadLetter, viewDeadLetter } from '../../../src/lib/deadletters/operate';
import { type DeadLetterSetup, drain, NS, setupDeadLetters } from './support';

let setup: DeadLetterSetup | undefined;
afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

const MB = 1024 * 1024;
/**
 * 6 MB always; the Premium limit (100 MB, less room for the headers) only with STAMPKEEPER_TEST_100MB=1, as it takes several
 * seconds and a few hundred MB of memory on the shared machine.
 */
const SIZES = process.env.STAMPKEEPER_TEST_100MB === '1' ? [6 * MB, 100 * MB - 64 * 1024] : [6 * MB];

describe('a large dead letter', { timeout: 120_000 }, () => {
  it.each(SIZES)(
    'of %i bytes goes to Blob storage, is viewed bounded, and is replayed with the exact bytes',
    async (SIZE) => {
      // Prepare: a Premium queue taking 100 MB messages; a binary body, dead-lettered.
      setup = await setupDeadLetters(
        [{ name: 'orders', maxMessageSizeInKilobytes: 102_400 }],
        `  - name: orders
    namespaceId: ${NS}
    queue: orders
    owner: team-orders`,
        { tier: 'premium' },
      );
      const body = Buffer.alloc(SIZE);
      for (let i = 0; i < SIZE; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i);
      const sha256 = createHash('sha256').update(body).digest('hex');
      const sender = setup.client.createSender('orders');
      await sender.sendMessages({ messageId: 'big', body, contentType: 'application/octet-stream' });
      await sender.close();
      const receiver = setup.client.createReceiver('orders');
      const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5000 });
      await receiver.deadLetterMessage(message!, {
        deadLetterReason: 'TooLarge',
        deadLetterErrorDescription: 'x',
      });
      await receiver.close();

      // Act
      const archived = await drain(setup, 'orders', 'orders');
      const [record] = (await setup.stores.deadLetters.list({ entity: 'orders' }, { limit: 10 })).records;
      const view = await viewDeadLetter(record!.id, setup.deps);
      const replayed = await replayDeadLetter(record!.id, {}, setup.deps, {
        actor: 'user:ops@contoso.example',
        correlationId: 'test',
      });
      const consumer = setup.client.createReceiver('orders', { receiveMode: 'receiveAndDelete' });
      const [copy] = await consumer.receiveMessages(1, { maxWaitTimeInMs: 5000 });
      await consumer.close();

      // Assess
      expect(archived).toBe(1);
      expect(record!.body).toMatchObject({ location: 'blob', size: SIZE, sha256 });
      expect(SIZE).toBeGreaterThan(MAX_VIEW_BODY_BYTES);
      expect(view.current.body).toEqual({
        encoding: 'omitted',
        value: null,
        size: SIZE,
        sha256,
        note: expect.stringContaining(`${MAX_VIEW_BODY_BYTES} bytes`),
      });
      expect(replayed.attempt).toMatchObject({ status: 'sent' });
      expect(copy!.messageId).toBe(replayed.attempt.messageId);
      const received = Buffer.from(copy!.body as Uint8Array);
      expect(received.length).toBe(SIZE);
      expect(createHash('sha256').update(received).digest('hex')).toBe(sha256);
    },
  );
});
