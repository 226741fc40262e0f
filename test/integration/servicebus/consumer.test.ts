import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ServiceBusClient } from '@azure/service-bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/lib/core/errors';
import { createSandbox, resolveScenario, type Sandbox, type Scenario } from '../../../src/local/sandbox';
import {
  type SandboxServiceBus,
  type ServiceBusSummary,
  startSandboxServiceBus,
} from '../../../src/local/sandbox/servicebus';
import type { MessagePreview } from '../../../src/local/sandbox/servicebus/inspect';

// The scenario's serviceBus section: the broker started from it on the sandbox clock, its
// simulated consumers failing the messages their rules pick (so they dead-letter) and completing
// fixed replays, and the /sandbox/servicebus inspection view.

const scenario: Scenario = {
  clock: { start: '2026-01-01T00:00:00Z' },
  serviceBus: {
    entities: [
      { name: 'orders', maxDeliveryCount: 3 },
      { name: 'payments' },
      { name: 'shares' },
      { name: 'carts', requiresSession: true, maxDeliveryCount: 2 },
      {
        name: 'events',
        type: 'topic',
        subscriptions: [
          {
            name: 'billing',
            rules: [
              { name: '$Default', sql: 'StampkeeperReplayTo IS NULL' },
              { name: 'stampkeeper-replay', correlation: { properties: { StampkeeperReplayTo: 'billing' } } },
            ],
          },
          {
            name: 'audit',
            rules: [
              { name: '$Default', sql: 'StampkeeperReplayTo IS NULL' },
              { name: 'stampkeeper-replay', correlation: { properties: { StampkeeperReplayTo: 'audit' } } },
            ],
          },
        ],
      },
    ],
    consumers: [
      { name: 'orders-worker', entity: 'orders', fail: [{ property: 'valid', equals: false }] },
      {
        name: 'payments-worker',
        entity: 'payments',
        maxConcurrent: 4,
        fail: [
          {
            bodyContains: '"amount":-',
            action: 'deadLetter',
            deadLetterReason: 'ValidationFailed',
            deadLetterErrorDescription: 'negative amount',
          },
        ],
      },
      { name: 'everything-fails', entity: 'shares', fail: [{ share: 1, action: 'deadLetter' }] },
      { name: 'carts-worker', entity: 'carts', fail: [{ property: 'poison', exists: true }] },
      { name: 'billing-worker', entity: 'events/Subscriptions/billing', fail: [] },
      { name: 'audit-worker', entity: 'events/Subscriptions/audit', fail: [] },
    ],
  },
};

let sandbox: Sandbox;
let serviceBus: SandboxServiceBus;
let client: ServiceBusClient;
let server: Server;
let base: string;

beforeAll(async () => {
  sandbox = createSandbox({ scenario });
  serviceBus = await startSandboxServiceBus({ scenario: sandbox.scenario.serviceBus, clock: sandbox.clock });
  sandbox.attachServiceBus(serviceBus.inspector);
  client = new ServiceBusClient(serviceBus.connectionString);
  server = createServer((req, res) => {
    sandbox.handleHttp(req, res).then((handled) => {
      if (!handled) {
        res.writeHead(418);
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await client?.close();
  await serviceBus?.stop();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

/** Waits (bounded) until `check` holds: the consumers work on their own turns. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const stats = (name: string) => serviceBus.consumers.find((c) => c.config.name === name)!.stats();

describe('sandbox Service Bus scenario and simulated consumers', () => {
  it('dead-letters what the consumer fails at max delivery count, then completes the fixed replay', async () => {
    // Prepare
    const sender = client.createSender('orders');
    const orders = serviceBus.broker.entities.get('orders');

    // Act: one good message, one the consumer fails on every attempt.
    await sender.sendMessages([
      { body: { id: 1 }, messageId: 'good', applicationProperties: { valid: true } },
      { body: { id: 2 }, messageId: 'bad', applicationProperties: { valid: false } },
    ]);
    await until(() => orders.counts().deadLetter === 1 && orders.counts().active === 0, 'the dead letter');
    const [dead] = orders.deadLetter();
    // An operator fixes the property and replays the message under a new id.
    await sender.sendMessages({
      body: { id: 2 },
      messageId: 'bad-replay-1',
      applicationProperties: { valid: true },
    });
    await until(() => stats('orders-worker').completed === 2, 'the replay to complete');

    // Assess
    expect(dead?.messageId).toBe('bad');
    expect(dead?.deadLetterReason).toBe('MaxDeliveryCountExceeded');
    expect(dead?.deliveryCount).toBe(3);
    expect(dead?.enqueuedTime).toEqual(new Date('2026-01-01T00:00:00Z'));
    const worker = stats('orders-worker');
    expect(worker).toMatchObject({ received: 5, completed: 2, abandoned: 3, deadLettered: 0, inFlight: 0 });
    expect(worker.recent.map((o) => [o.messageId, o.outcome, o.deliveryCount])).toEqual([
      ['good', 'completed', 0],
      ['bad', 'abandoned', 0],
      ['bad', 'abandoned', 1],
      ['bad', 'abandoned', 2],
      ['bad-replay-1', 'completed', 0],
    ]);
    expect(worker.recent[1]?.failedBy).toBe(0);
    await sender.close();
  });

  it("dead-letters at once with the rule's reason when its action is deadLetter, by body content or by share", async () => {
    // Prepare
    const payments = client.createSender('payments');
    const shares = client.createSender('shares');

    // Act
    await payments.sendMessages([
      { body: { amount: -5 }, messageId: 'refund' },
      { body: { amount: 5 }, messageId: 'charge' },
    ]);
    await shares.sendMessages({ body: 'any', messageId: 'drawn' });
    await until(
      () =>
        stats('payments-worker').completed + stats('payments-worker').deadLettered === 2 &&
        stats('everything-fails').deadLettered === 1,
      'the payments and shares consumers',
    );

    // Assess
    const [dead] = serviceBus.broker.entities.get('payments').deadLetter();
    expect(dead?.messageId).toBe('refund');
    expect(dead?.deadLetterReason).toBe('ValidationFailed');
    expect(dead?.deadLetterErrorDescription).toBe('negative amount');
    expect(dead?.deliveryCount).toBe(0);
    const [drawn] = serviceBus.broker.entities.get('shares').deadLetter();
    expect(drawn?.deadLetterReason).toBe('SimulatedConsumerFailure');
    await payments.close();
    await shares.close();
  });

  it('works every session of a session-enabled queue and dead-letters its poison message', async () => {
    // Prepare
    const sender = client.createSender('carts');

    // Act
    await sender.sendMessages([
      { body: 1, messageId: 'a-1', sessionId: 'a' },
      { body: 1, messageId: 'b-1', sessionId: 'b', applicationProperties: { poison: 1 } },
      { body: 2, messageId: 'a-2', sessionId: 'a' },
    ]);
    await until(
      () =>
        serviceBus.broker.entities.get('carts').counts().deadLetter === 1 &&
        stats('carts-worker').completed === 2,
      'the carts consumer',
    );

    // Assess
    const completed = stats('carts-worker').recent.filter((o) => o.outcome === 'completed');
    expect(completed.map((o) => [o.messageId, o.sessionId])).toEqual([
      ['a-1', 'a'],
      ['a-2', 'a'],
    ]);
    expect(serviceBus.broker.entities.get('carts').deadLetter()[0]?.sessionId).toBe('b');
    await sender.close();
  });

  it("replays through a topic to one subscription's consumer only", async () => {
    // Prepare
    const sender = client.createSender('events');

    // Act
    await sender.sendMessages({ body: 'new', messageId: 'e-1' });
    await sender.sendMessages({
      body: 'again',
      messageId: 'e-1-replay',
      applicationProperties: { StampkeeperReplayTo: 'audit' },
    });
    await until(
      () => stats('billing-worker').completed === 1 && stats('audit-worker').completed === 2,
      'the topic consumers',
    );

    // Assess
    expect(stats('billing-worker').recent.map((o) => o.messageId)).toEqual(['e-1']);
    expect(stats('audit-worker').recent.map((o) => o.messageId)).toEqual(['e-1', 'e-1-replay']);
    await sender.close();
  });

  it('serves the entities, their counts and rules, the consumers and a bounded look at messages under /sandbox/servicebus', async () => {
    // Act
    const summary = (await (await fetch(`${base}/sandbox/servicebus`)).json()) as ServiceBusSummary;
    const dlq = await fetch(`${base}/sandbox/servicebus/messages?path=orders&queue=deadLetter&limit=5`);
    const dlqBody = (await dlq.json()) as { messages: MessagePreview[] };
    const subscription = await fetch(`${base}/sandbox/servicebus/messages?path=events/Subscriptions/billing`);
    const badLimit = await fetch(`${base}/sandbox/servicebus/messages?path=orders&limit=1000`);
    const badQueue = await fetch(`${base}/sandbox/servicebus/messages?path=orders&queue=everything`);
    const noPath = await fetch(`${base}/sandbox/servicebus/messages`);
    const unknown = await fetch(`${base}/sandbox/servicebus/messages?path=nowhere`);
    const write = await fetch(`${base}/sandbox/servicebus`, { method: 'POST', body: '{}' });
    const index = (await (await fetch(`${base}/sandbox`)).json()) as { links: Record<string, string> };

    // Assess
    const orders = summary.entities.find((e) => e.path === 'orders');
    expect(summary.endpoint).toMatch(/^sb:\/\/127\.0\.0\.1:\d+$/);
    expect(summary.tier).toBe('standard');
    expect(orders).toMatchObject({
      type: 'queue',
      maxDeliveryCount: 3,
      counts: { active: 0, deadLetter: 1 },
    });
    const billing = summary.entities.find((e) => e.path === 'events/Subscriptions/billing');
    expect(billing?.rules?.map((r) => r.name)).toEqual(['$Default', 'stampkeeper-replay']);
    expect(summary.consumers.map((c) => c.name)).toContain('orders-worker');
    expect(dlq.status).toBe(200);
    expect(dlqBody.messages).toHaveLength(1);
    expect(dlqBody.messages[0]).toMatchObject({
      messageId: 'bad',
      deadLetterReason: 'MaxDeliveryCountExceeded',
      body: '{"id":2}',
      bodyTruncated: false,
    });
    expect(subscription.status).toBe(200);
    expect(badLimit.status).toBe(400);
    expect(badQueue.status).toBe(400);
    expect(noPath.status).toBe(400);
    expect(unknown.status).toBe(404);
    expect(write.status).toBe(405);
    expect(index.links.serviceBus).toBe('/sandbox/servicebus');
  });

  it('answers 404 on /sandbox/servicebus when no broker is attached', async () => {
    // Prepare
    sandbox.attachServiceBus(undefined);

    // Act
    const response = await fetch(`${base}/sandbox/servicebus`);

    // Assess
    expect(response.status).toBe(404);
    sandbox.attachServiceBus(serviceBus.inspector);
  });
});

describe('sandbox scenario: the serviceBus section', () => {
  it('names every problem with its path, including what the broker itself would refuse', () => {
    // Prepare
    const bad = {
      serviceBus: {
        tier: 'basic',
        entities: [{ name: 'q', maxDeliveryCount: 3, colour: 'red' }, 'not-a-mapping'],
        consumers: [
          {
            name: 'w',
            entity: 'nowhere',
            fail: [{ share: 2 }, { property: 'p' }, { bodyContains: 'x', share: 0.5 }],
          },
          { name: 'w', entity: 'q', fail: [{ property: 'p', equals: 1, deadLetterReason: 'x' }] },
        ],
      },
    };
    const brokerLevel = { serviceBus: { entities: [{ name: 'q', maxDeliveryCount: 0 }] } };

    // Act
    const problems = (input: unknown) => {
      try {
        resolveScenario(input);
      } catch (error) {
        if (error instanceof ValidationError) return error.problems;
        throw error;
      }
      return [];
    };

    // Assess
    expect(problems(bad)).toEqual(
      expect.arrayContaining([
        "serviceBus.tier: must be 'standard' or 'premium'",
        expect.stringMatching(/^serviceBus\.entities\[0\]\.colour: unknown key/),
        'serviceBus.entities[1]: must be a mapping',
        'serviceBus.consumers[0].fail[0].share: must be a number from 0 to 1',
        'serviceBus.consumers[0].fail[1]: a property rule takes either equals or exists',
        'serviceBus.consumers[0].fail[2]: give exactly one of property (with equals or exists), bodyContains, share',
        "serviceBus.consumers[1].name: duplicate consumer 'w'",
        'serviceBus.consumers[1].fail[0]: deadLetterReason and deadLetterErrorDescription go with action: deadLetter',
      ]),
    );
    expect(problems(brokerLevel)).toEqual([
      "serviceBus.entities: maxDeliveryCount of 'q' must be an integer >= 1.",
    ]);
    expect(
      problems({
        serviceBus: { entities: [{ name: 'q' }], consumers: [{ name: 'w', entity: 'nowhere', fail: [] }] },
      }),
    ).toEqual([
      "serviceBus.consumers[0].entity: 'nowhere' is not a queue or subscription of this scenario (write a subscription as topic/Subscriptions/name)",
    ]);
  });

  it('refuses to start a broker from a hand-written section with problems', async () => {
    // Act
    const start = startSandboxServiceBus({
      scenario: { entities: [{ name: 'q' }], consumers: [{ entity: 'q' }] },
    });

    // Assess
    await expect(start).rejects.toThrow(/serviceBus\.consumers\[0\]\.name: must be a non-empty string/);
  });
});
