import { ServiceBusClient } from '@azure/service-bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServiceBusBroker, startServiceBusBroker } from '../../../src/local/sandbox/servicebus/broker';

// Message size limits by tier, as the SDK negotiates them (the link's max-message-size) and as the
// service enforces them (a transfer over the limit is rejected: MessageSizeExceeded).

let standard: ServiceBusBroker;
let premium: ServiceBusBroker;
let standardClient: ServiceBusClient;
let premiumClient: ServiceBusClient;

beforeAll(async () => {
  standard = await startServiceBusBroker({ entities: [{ name: 'small' }, { name: 'fill' }] });
  premium = await startServiceBusBroker({
    tier: 'premium',
    entities: [{ name: 'default-premium' }, { name: 'large', maxMessageSizeInKilobytes: 2048 }],
  });
  standardClient = new ServiceBusClient(standard.connectionString);
  premiumClient = new ServiceBusClient(premium.connectionString);
});

afterAll(async () => {
  await standardClient?.close();
  await premiumClient?.close();
  await standard?.stop();
  await premium?.stop();
});

describe('sandbox Service Bus message size', () => {
  it('negotiates 256 KB on the standard tier and refuses a bigger message, storing nothing', async () => {
    // Prepare
    const sender = standardClient.createSender('small');

    // Act
    const batch = await sender.createMessageBatch();
    const tooBig = sender.sendMessages({ body: Buffer.alloc(300 * 1024, 1), messageId: 'big' });

    // Assess
    expect(batch.maxSizeInBytes).toBe(256 * 1024);
    await expect(tooBig).rejects.toMatchObject({ code: 'MessageSizeExceeded' });
    expect(standard.entities.get('small').active()).toEqual([]);
    await sender.close();
  });

  it('accepts a batch filled to its negotiated capacity by tryAddMessage', async () => {
    // Prepare
    const sender = standardClient.createSender('fill');
    const batch = await sender.createMessageBatch();
    let added = 0;
    while (batch.tryAddMessage({ body: 'x'.repeat(1000), messageId: `m-${added}` })) added += 1;

    // Act
    await sender.sendMessages(batch);

    // Assess
    expect(batch.sizeInBytes / batch.maxSizeInBytes).toBeGreaterThan(0.98);
    expect(standard.entities.get('fill').counts().active).toBe(added);
    await sender.close();
  });

  it("negotiates the premium entity's size (1 MB default, maxMessageSizeInKilobytes) and carries a large message intact", async () => {
    // Prepare
    const byDefault = premiumClient.createSender('default-premium');
    const sender = premiumClient.createSender('large');
    const body = Buffer.alloc(1_500_000);
    for (let i = 0; i < body.length; i++) body[i] = i % 251;

    // Act
    const defaultBatch = await byDefault.createMessageBatch();
    const largeBatch = await sender.createMessageBatch();
    await sender.sendMessages({ body, messageId: 'large-1' });
    const receiver = premiumClient.createReceiver('large', { receiveMode: 'receiveAndDelete' });
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 10_000 });
    const scheduleTooBig = sender.scheduleMessages(
      { body: Buffer.alloc(2100 * 1024), messageId: 'too-big' },
      new Date(Date.now() + 60_000),
    );

    // Assess
    expect(defaultBatch.maxSizeInBytes).toBe(1024 * 1024);
    expect(largeBatch.maxSizeInBytes).toBe(2048 * 1024);
    expect(Buffer.compare(message!.body as Buffer, body)).toBe(0);
    await expect(scheduleTooBig).rejects.toMatchObject({ code: 'MessageSizeExceeded' });
    expect(premium.entities.get('large').scheduled()).toEqual([]);
    await byDefault.close();
    await sender.close();
    await receiver.close();
  });

  it('refuses a per-entity size on the standard tier and a premium size out of 1024..102400 KB', async () => {
    // Act / Assess
    await expect(
      startServiceBusBroker({ entities: [{ name: 'q', maxMessageSizeInKilobytes: 2048 }] }),
    ).rejects.toThrow(/needs the premium tier/);
    await expect(
      startServiceBusBroker({
        tier: 'premium',
        entities: [{ name: 'q', maxMessageSizeInKilobytes: 200_000 }],
      }),
    ).rejects.toThrow(/from 1024 to 102400/);
  });
});
