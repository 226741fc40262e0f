import type { InvocationContext } from '@azure/functions';
import { ServiceBusClient } from '@azure/service-bus';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServiceBusListener } from '../../../src/local/host/serviceBusTrigger';
import type { TriggerListener } from '../../../src/local/host/types';
import { type ServiceBusBroker, startServiceBusBroker } from '../../../src/local/sandbox/servicebus/broker';
import { createTestHost, eventually, type TestHost } from './support';

// The Service Bus listener (real @azure/service-bus) against the sandbox broker, invoking through
// the local host's real LocalInvoker and the @azure/functions invocation model.

interface Call {
  message: unknown;
  metadata: Record<string, unknown>;
}

let host: TestHost;
let broker: ServiceBusBroker;
let client: ServiceBusClient;
const calls = new Map<string, Call[]>();
const listeners: TriggerListener[] = [];
const settings: Record<string, string | undefined> = { ORDERS_QUEUE: 'orders' };
const resolveSetting = (name: string) => settings[name];
/** Lets the handler of `sbHung` end (it waits for this once started). */
let releaseHung: () => void = () => {};

function record(fnName: string, fail = false) {
  return (message: unknown, context: InvocationContext) => {
    const list = calls.get(fnName) ?? [];
    list.push({ message, metadata: { ...(context.triggerMetadata ?? {}) } });
    calls.set(fnName, list);
    if (fail) throw new Error('handler refuses this message');
  };
}

async function listen(fnName: string, hostConfig = {}) {
  const listener = await startServiceBusListener(host.fn(fnName), {
    invoker: host.invoker,
    resolveSetting,
    hostConfig,
    logger: host.logger,
  });
  listeners.push(listener);
  return listener;
}

beforeAll(async () => {
  broker = await startServiceBusBroker({
    entities: [
      { name: 'orders' },
      { name: 'failing', maxDeliveryCount: 3 },
      { name: 'batches' },
      { name: 'batchfail', maxDeliveryCount: 2 },
      { name: 'events', type: 'topic', subscriptions: ['audit'] },
      { name: 'manual', lockDurationMs: 300 },
      { name: 'hung' },
      { name: 'broken' },
    ],
  });
  settings['ServiceBusConnection'] = broker.connectionString;
  settings['Identity__fullyQualifiedNamespace'] = 'example.servicebus.windows.net';
  client = new ServiceBusClient(broker.connectionString);
  host = await createTestHost();
  const connection = 'ServiceBusConnection';
  host.app.serviceBusQueue('sbOne', { queueName: '%ORDERS_QUEUE%', connection, handler: record('sbOne') });
  host.app.serviceBusQueue('sbFailing', {
    queueName: 'failing',
    connection,
    handler: record('sbFailing', true),
  });
  host.app.serviceBusQueue('sbMany', {
    queueName: 'batches',
    connection,
    cardinality: 'many',
    handler: record('sbMany'),
  });
  host.app.serviceBusQueue('sbManyFailing', {
    queueName: 'batchfail',
    connection,
    cardinality: 'many',
    handler: record('sbManyFailing', true),
  });
  host.app.serviceBusTopic('sbTopic', {
    topicName: 'events',
    subscriptionName: 'audit',
    connection,
    handler: record('sbTopic'),
  });
  host.app.serviceBusQueue('sbManual', { queueName: 'manual', connection, handler: record('sbManual') });
  host.app.serviceBusQueue('sbHung', {
    queueName: 'hung',
    connection,
    handler: async (message, context) => {
      record('sbHung')(message, context);
      await new Promise<void>((resolve) => {
        releaseHung = resolve;
      });
    },
  });
  host.app.serviceBusQueue('sbBroken', { queueName: 'broken', connection, handler: record('sbBroken') });
  host.app.serviceBusQueue('sbIdentity', {
    queueName: 'orders',
    connection: 'Identity',
    handler: record('sbIdentity'),
  });
  host.app.serviceBusQueue('sbSessions', {
    queueName: 'orders',
    connection,
    isSessionsEnabled: true,
    handler: record('sbSessions'),
  });
});

afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.stop()));
});

afterAll(async () => {
  await client?.close();
  await broker?.stop();
});

describe('Service Bus trigger listener', () => {
  it('invokes once per message with the body and the extension binding data, then completes it', async () => {
    // Prepare
    const sender = client.createSender('orders');
    await sender.sendMessages({
      body: { orderId: 7 },
      messageId: 'order-7',
      correlationId: 'corr-7',
      contentType: 'application/json',
      subject: 'created',
      applicationProperties: { tenant: 'contoso' },
    });
    await listen('sbOne');

    // Act
    await eventually(
      () => (calls.get('sbOne')?.length ?? 0) > 0 && broker.entities.get('orders').active().length === 0,
      'message completed',
    );

    // Assess
    const [call] = calls.get('sbOne')!;
    expect(call?.message).toEqual({ orderId: 7 });
    expect(call?.metadata).toMatchObject({
      messageId: 'order-7',
      correlationId: 'corr-7',
      contentType: 'application/json',
      subject: 'created',
      label: 'created',
      deliveryCount: 1,
      sequenceNumber: 1,
      applicationProperties: { tenant: 'contoso' },
      userProperties: { tenant: 'contoso' },
    });
    expect(call?.metadata['lockToken']).toMatch(/^[0-9a-f-]{36}$/);
    expect(call?.metadata['enqueuedTimeUtc']).toMatch(/Z$/);
    expect(broker.entities.get('orders').deadLetter()).toEqual([]);
    await sender.close();
  });

  it('abandons a failing message until the broker dead-letters it at maxDeliveryCount', async () => {
    // Prepare
    const sender = client.createSender('failing');
    await sender.sendMessages({ body: 'poison', messageId: 'bad-1' });
    await listen('sbFailing');

    // Act
    await eventually(() => broker.entities.get('failing').deadLetter().length === 1, 'dead-lettered');

    // Assess
    expect(calls.get('sbFailing')?.map((c) => c.metadata['deliveryCount'])).toEqual([1, 2, 3]);
    expect(calls.get('sbFailing')?.[0]?.message).toBe('poison');
    const [dead] = broker.entities.get('failing').deadLetter();
    expect(dead?.messageId).toBe('bad-1');
    expect(dead?.deadLetterReason).toBe('MaxDeliveryCountExceeded');
    expect(broker.entities.get('failing').active()).toEqual([]);
    await sender.close();
  });

  it('hands cardinality "many" an array of bodies with metadata arrays, and completes them all', async () => {
    // Prepare
    const sender = client.createSender('batches');
    const batch = await sender.createMessageBatch();
    batch.tryAddMessage({ body: { n: 1 }, messageId: 'b-1', applicationProperties: { k: 'one' } });
    batch.tryAddMessage({ body: 'two', messageId: 'b-2' });
    batch.tryAddMessage({ body: { n: 3 }, messageId: 'b-3' });
    await sender.sendMessages(batch);
    await listen('sbMany');

    // Act
    await eventually(() => broker.entities.get('batches').active().length === 0, 'batch completed');

    // Assess
    const invocations = calls.get('sbMany')!;
    const bodies = invocations.flatMap((c) => c.message as unknown[]);
    const ids = invocations.flatMap((c) => c.metadata['messageIdArray'] as string[]);
    expect(bodies).toEqual([{ n: 1 }, 'two', { n: 3 }]);
    expect(ids).toEqual(['b-1', 'b-2', 'b-3']);
    for (const call of invocations) {
      const size = (call.message as unknown[]).length;
      expect(call.metadata['deliveryCountArray']).toEqual(new Array(size).fill(1));
      expect(call.metadata['lockTokenArray']).toHaveLength(size);
      expect(call.metadata['sequenceNumberArray']).toHaveLength(size);
    }
    expect(invocations[0]?.metadata['applicationPropertiesArray']).toContainEqual({ k: 'one' });
    await sender.close();
  });

  it('abandons every message of a failed batch, so each is redelivered and finally dead-lettered', async () => {
    // Prepare
    const sender = client.createSender('batchfail');
    await sender.sendMessages([
      { body: 'x', messageId: 'x-1' },
      { body: 'y', messageId: 'y-1' },
    ]);
    await listen('sbManyFailing');

    // Act
    await eventually(() => broker.entities.get('batchfail').deadLetter().length === 2, 'both dead-lettered');

    // Assess
    const seen = calls.get('sbManyFailing')!.flatMap((c) => c.metadata['messageIdArray'] as string[]);
    expect(seen.filter((id) => id === 'x-1')).toHaveLength(2);
    expect(seen.filter((id) => id === 'y-1')).toHaveLength(2);
    expect(broker.entities.get('batchfail').active()).toEqual([]);
    await sender.close();
  });

  it('leaves settlement to the function when autoCompleteMessages is false: the lock lapses and the message returns', async () => {
    // Prepare
    const sender = client.createSender('manual');
    await sender.sendMessages({ body: 'settle me yourself', messageId: 'm-1' });
    await listen('sbManual', { autoCompleteMessages: false, maxAutoLockRenewalDurationMs: 0 });

    // Act
    await eventually(() => (calls.get('sbManual')?.length ?? 0) >= 2, 'redelivered after the lock lapsed');

    // Assess
    expect(
      calls
        .get('sbManual')
        ?.slice(0, 2)
        .map((c) => c.metadata['deliveryCount']),
    ).toEqual([1, 2]);
    expect(
      broker.entities
        .get('manual')
        .active()
        .map((m) => m.messageId),
    ).toEqual(['m-1']);
    expect(host.logger.lines.some((l) => l.includes('[sbManual] autoCompleteMessages is false'))).toBe(true);
    await sender.close();
  });

  it('receives from a topic subscription', async () => {
    // Prepare
    const sender = client.createSender('events');
    await sender.sendMessages({ body: { event: 'rotated' }, messageId: 'ev-1' });
    await listen('sbTopic');

    // Act
    await eventually(
      () => broker.entities.get('events/Subscriptions/audit').active().length === 0,
      'completed',
    );

    // Assess
    expect(calls.get('sbTopic')?.map((c) => c.message)).toEqual([{ event: 'rotated' }]);
  });

  it('stops without waiting for ever for a handler that never ends, releasing its message to the broker', async () => {
    // Prepare
    const sender = client.createSender('hung');
    await sender.sendMessages({ body: 'never ends', messageId: 'hung-1' });
    const listener = await startServiceBusListener(host.fn('sbHung'), {
      invoker: host.invoker,
      resolveSetting,
      logger: host.logger,
      stopTimeoutMs: 100,
    });
    await eventually(() => (calls.get('sbHung')?.length ?? 0) > 0, 'hung handler started');

    // Act
    await listener.stop();

    // Assess
    releaseHung();
    expect(
      host.logger.lines.some(
        (l) =>
          l.startsWith('warn [sbHung] stopped without waiting for 1 running invocation') &&
          l.includes('hung-1'),
      ),
    ).toBe(true);
    await eventually(() => broker.entities.get('hung').active().length === 1, 'message back on the queue');
    await sender.close();
  });

  it('logs a failure of the listener itself instead of leaving an unhandled rejection', async () => {
    // Prepare: an Invoker that rejects (the host's never does) stands for any failure of the
    // listener's own code around the invocation.
    const failingInvoker = {
      invoke: () => Promise.reject(new Error('listener broke; AccountKey=c2VjcmV0LXNlY3JldA==')),
    };
    const sender = client.createSender('broken');
    await sender.sendMessages({ body: 'x', messageId: 'broken-1' });
    listeners.push(
      await startServiceBusListener(host.fn('sbBroken'), {
        invoker: failingInvoker,
        resolveSetting,
        logger: host.logger,
      }),
    );

    // Act
    await eventually(() => host.logger.lines.some((l) => l.startsWith('error [sbBroken]')), 'failure logged');

    // Assess
    const line = host.logger.lines.find((l) => l.startsWith('error [sbBroken]'));
    expect(line).toContain('broken-1');
    expect(line).toContain('listener broke');
    expect(line).not.toContain('c2VjcmV0LXNlY3JldA==');
    await sender.close();
  });

  it('does not serve identity-based connections or session receivers, and says so', async () => {
    // Act
    await listen('sbIdentity');
    await listen('sbSessions');

    // Assess
    const warnings = host.logger.lines.filter((l) => l.startsWith('warn'));
    expect(warnings.some((l) => l.includes('"sbIdentity"') && l.includes('identity-based'))).toBe(true);
    expect(warnings.some((l) => l.includes('"sbSessions"') && l.includes('session-enabled'))).toBe(true);
    expect(calls.get('sbIdentity')).toBeUndefined();
  });

  it('refuses a binding without an entity or with a missing connection setting', async () => {
    // Prepare
    const fn = host.fn('sbOne');
    const noEntity = { ...fn, trigger: { ...fn.trigger, queueName: undefined } };
    const noSetting = { ...fn, trigger: { ...fn.trigger, connection: 'Nowhere' } };
    const options = { invoker: host.invoker, resolveSetting, logger: host.logger };

    // Act
    const first = startServiceBusListener(noEntity, options);
    const second = startServiceBusListener(noSetting, options);

    // Assess
    await expect(first).rejects.toThrow(/needs queueName, or topicName and subscriptionName/);
    await expect(second).rejects.toThrow(/connection setting 'Nowhere' is not set/);
  });
});
