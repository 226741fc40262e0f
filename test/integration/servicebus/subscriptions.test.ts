import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServiceBusBroker, startServiceBusBroker } from '../../../src/local/sandbox/servicebus/broker';

// Topic subscriptions with rules, through the real SDK: routing by SQL and correlation filters,
// rule management as ServiceBusRuleManager sends it, and the replay isolation rule pattern.

let broker: ServiceBusBroker;
let client: ServiceBusClient;

const REPLAY_GUARD = 'StampkeeperReplayTo IS NULL';
const replayRule = (subscription: string) => ({
  name: 'stampkeeper-replay',
  correlation: { properties: { StampkeeperReplayTo: subscription } },
});

beforeAll(async () => {
  broker = await startServiceBusBroker({
    entities: [
      {
        name: 'orders',
        type: 'topic',
        subscriptions: [
          'everything',
          { name: 'red', rules: [{ name: 'red-only', sql: "color = 'red' AND quantity > 1" }] },
          {
            name: 'vip',
            rules: [{ name: 'by-correlation', correlation: { correlationId: 'vip', label: 'order' } }],
          },
          { name: 'nothing', rules: [] },
        ],
      },
      { name: 'managed', type: 'topic', subscriptions: ['sub'] },
      {
        name: 'replays',
        type: 'topic',
        subscriptions: [
          { name: 'billing', rules: [{ name: '$Default', sql: REPLAY_GUARD }, replayRule('billing')] },
          { name: 'audit', rules: [{ name: '$Default', sql: REPLAY_GUARD }, replayRule('audit')] },
        ],
      },
      {
        name: 'unguarded',
        type: 'topic',
        subscriptions: [
          { name: 'billing', rules: [{ name: '$Default', sql: REPLAY_GUARD }, replayRule('billing')] },
          // A subscription left with the true filter takes replays meant for another one.
          'legacy',
        ],
      },
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

describe('sandbox Service Bus subscription rules', () => {
  it('copies a message into the subscriptions whose rules match, and only those', async () => {
    // Prepare
    const sender = client.createSender('orders');

    // Act
    await sender.sendMessages([
      { body: 1, messageId: 'red-3', applicationProperties: { color: 'red', quantity: 3 } },
      { body: 2, messageId: 'red-1', applicationProperties: { color: 'red', quantity: 1 } },
      { body: 3, messageId: 'blue', applicationProperties: { color: 'blue', quantity: 9 } },
      { body: 4, messageId: 'vip', correlationId: 'vip', subject: 'order' },
      { body: 5, messageId: 'vip-other', correlationId: 'vip', subject: 'refund' },
    ]);

    // Assess
    expect(ids('orders/Subscriptions/everything')).toEqual(['red-3', 'red-1', 'blue', 'vip', 'vip-other']);
    expect(ids('orders/Subscriptions/red')).toEqual(['red-3']);
    expect(ids('orders/Subscriptions/vip')).toEqual(['vip']);
    expect(ids('orders/Subscriptions/nothing')).toEqual([]);
    // One topic sequence: each copy keeps the number the topic gave the message.
    expect(broker.entities.get('orders/Subscriptions/red').active()[0]?.sequenceNumber).toBe(1);
    await sender.close();
  });

  it('lists, creates and deletes rules through ServiceBusRuleManager, and routes by the new rules', async () => {
    // Prepare
    const rules = client.createRuleManager('managed', 'sub');
    const sender = client.createSender('managed');
    const receiver = client.createReceiver('managed', 'sub', { receiveMode: 'receiveAndDelete' });

    // Act
    const initial = [];
    for await (const rule of rules.listRules()) initial.push(rule);
    await rules.createRule('blue', { sqlExpression: "color = 'blue'" });
    await rules.createRule('tenant', {
      correlationId: 'c-1',
      applicationProperties: { tenant: 'contoso', tier: 2 },
    });
    await rules.deleteRule('$Default');
    const after = [];
    for await (const rule of rules.listRules()) after.push(rule);
    await sender.sendMessages([
      { body: 'a', messageId: 'green', applicationProperties: { color: 'green' } },
      { body: 'b', messageId: 'blue', applicationProperties: { color: 'blue' } },
      {
        body: 'c',
        messageId: 'tenant',
        correlationId: 'c-1',
        applicationProperties: { tenant: 'contoso', tier: 2 },
      },
      {
        body: 'd',
        messageId: 'tenant-typed',
        correlationId: 'c-1',
        applicationProperties: { tenant: 'contoso', tier: '2' },
      },
    ]);
    const received = await receiver.receiveMessages(10, { maxWaitTimeInMs: 1_000 });

    // Assess
    expect(initial).toEqual([{ name: '$Default', filter: { sqlExpression: '1=1' }, action: {} }]);
    expect(after.map((r) => r.name)).toEqual(['blue', 'tenant']);
    expect(after[0]?.filter).toEqual({ sqlExpression: "color = 'blue'" });
    expect(after[1]?.filter).toMatchObject({
      correlationId: 'c-1',
      applicationProperties: { tenant: 'contoso', tier: 2 },
    });
    expect(received.map((m: ServiceBusReceivedMessage) => m.messageId)).toEqual(['blue', 'tenant']);
    await sender.close();
    await receiver.close();
  });

  it('refuses a taken rule name, an unknown rule, a bad expression and a rule action, changing nothing', async () => {
    // Prepare
    const rules = client.createRuleManager('managed', 'sub');
    const before = broker.entities.get('managed/Subscriptions/sub').rules();

    // Act / Assess
    await expect(rules.createRule('blue', { sqlExpression: '1=1' })).rejects.toMatchObject({
      code: 'MessagingEntityAlreadyExists',
    });
    await expect(rules.deleteRule('no-such-rule')).rejects.toMatchObject({ code: 'MessagingEntityNotFound' });
    await expect(rules.createRule('broken', { sqlExpression: "color = 'blue' AND" })).rejects.toThrow(
      /found the end of the expression at position 18/,
    );
    await expect(
      rules.createRule('with-action', { sqlExpression: '1=1' }, { sqlExpression: "SET color = 'x'" }),
    ).rejects.toThrow(/not emulated/);
    expect(broker.entities.get('managed/Subscriptions/sub').rules()).toEqual(before);
  });

  it('delivers a replay through the topic to the one subscription it names, when every subscription guards against replays', async () => {
    // Prepare
    const sender = client.createSender('replays');

    // Act
    await sender.sendMessages([
      { body: 'new', messageId: 'fresh' },
      { body: 'again', messageId: 'replayed', applicationProperties: { StampkeeperReplayTo: 'billing' } },
    ]);

    // Assess
    expect(ids('replays/Subscriptions/billing')).toEqual(['fresh', 'replayed']);
    expect(ids('replays/Subscriptions/audit')).toEqual(['fresh']);
    await sender.close();
  });

  it('leaks a replay into a subscription that keeps the true filter (why every subscription needs the guard)', async () => {
    // Prepare
    const sender = client.createSender('unguarded');

    // Act
    await sender.sendMessages({
      body: 'again',
      messageId: 'replayed',
      applicationProperties: { StampkeeperReplayTo: 'billing' },
    });

    // Assess
    expect(ids('unguarded/Subscriptions/billing')).toEqual(['replayed']);
    expect(ids('unguarded/Subscriptions/legacy')).toEqual(['replayed']);
    await sender.close();
  });

  it('refuses rule operations on an unknown subscription', async () => {
    // Prepare
    const unknown = client.createRuleManager('managed', 'no-such-subscription');

    // Act
    const list = async () => {
      for await (const _ of unknown.listRules()) {
        // nothing expected
      }
    };

    // Assess
    await expect(list()).rejects.toMatchObject({ code: 'MessagingEntityNotFound' });
  });

  it('refuses a bad rule in the start options before listening', async () => {
    // Act
    const badSql = startServiceBusBroker({
      entities: [
        { name: 't', type: 'topic', subscriptions: [{ name: 's', rules: [{ name: 'r', sql: 'color =' }] }] },
      ],
    });
    const twice = startServiceBusBroker({
      entities: [
        {
          name: 't',
          type: 'topic',
          subscriptions: [
            {
              name: 's',
              rules: [
                { name: 'r', filter: 'true' },
                { name: 'R', filter: 'false' },
              ],
            },
          ],
        },
      ],
    });

    // Assess
    await expect(badSql).rejects.toThrow(/a rule of 't\/Subscriptions\/s' is refused/);
    await expect(twice).rejects.toThrow(/listed twice/);
  });
});
