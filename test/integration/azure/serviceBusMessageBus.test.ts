import { ServiceBusClient } from '@azure/service-bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceBusMessageBus } from '../../../src/lib/azure/serviceBusMessageBus';
import {
  ConflictError,
  DependencyError,
  NotFoundError,
  TransientError,
  ValidationError,
} from '../../../src/lib/core/errors';
import {
  type OutgoingBusMessage,
  REPLAY_TARGET_PROPERTY,
  replayIsolation,
  type SentBatch,
} from '../../../src/lib/ports/messageBus';
import { type ServiceBusBroker, startServiceBusBroker } from '../../../src/local/sandbox/servicebus/broker';

// The MessageBus adapter over the real @azure/service-bus client, against the sandbox broker.

let broker: ServiceBusBroker;
let bus: ServiceBusMessageBus;
let raw: ServiceBusClient;

beforeAll(async () => {
  broker = await startServiceBusBroker({
    entities: [
      { name: 'bulk' },
      { name: 'bodies' },
      { name: 'failing' },
      { name: 'settle' },
      { name: 'locks', lockDurationMs: 300 },
      { name: 'carts', requiresSession: true },
      { name: 'dedupe', requiresDuplicateDetection: true },
      { name: 'orders', type: 'topic', subscriptions: ['billing', 'audit'] },
      {
        name: 'routed',
        type: 'topic',
        subscriptions: [
          {
            name: 'vip',
            rules: [
              { name: 'vip-only', correlation: { correlationId: 'vip', properties: { tier: 'gold' } } },
            ],
          },
          'other',
        ],
      },
    ],
  });
  bus = new ServiceBusMessageBus({ connectionString: broker.connectionString });
  raw = new ServiceBusClient(broker.connectionString);
});

afterAll(async () => {
  await bus?.close();
  await raw?.close();
  await broker?.stop();
});

const text = (value: string) => ({ type: 'data' as const, bytes: new TextEncoder().encode(value) });

describe('ServiceBusMessageBus: sending', () => {
  it('streams messages into batches filled to the negotiated size and reports the fill', async () => {
    // Prepare
    async function* messages(): AsyncIterable<OutgoingBusMessage> {
      for (let i = 0; i < 1000; i++) yield { body: text(`${i}:${'x'.repeat(1000)}`), messageId: `m-${i}` };
    }
    const batches: SentBatch[] = [];

    // Act
    const report = await bus.send('bulk', messages(), { onBatch: (batch) => void batches.push(batch) });

    // Assess
    expect(report.messages).toBe(1000);
    expect(report.batches).toBe(batches.length);
    expect(batches.length).toBeGreaterThanOrEqual(4);
    expect(batches.reduce((n, b) => n + b.messages, 0)).toBe(1000);
    for (const batch of batches.slice(0, -1)) {
      expect(batch.maxSizeInBytes).toBe(256 * 1024);
      expect(batch.sizeInBytes / batch.maxSizeInBytes).toBeGreaterThan(0.99);
    }
    expect(report.fillRatio).toBeCloseTo(report.bytes / report.capacity);
    const stored = broker.entities.get('bulk').active();
    expect(stored).toHaveLength(1000);
    expect(stored.map((m) => m.messageId).slice(0, 3)).toEqual(['m-0', 'm-1', 'm-2']);
  });

  it('keeps bodies, system and application properties as they were: bytes, AMQP values, dates', async () => {
    // Prepare
    const bytes = new Uint8Array([0, 255, 1, 254, 123]);
    const at = new Date('2026-03-01T12:00:00.000Z');

    // Act
    await bus.send('bodies', [
      {
        body: { type: 'data', bytes },
        messageId: 'binary',
        contentType: 'application/octet-stream',
        correlationId: 'corr-1',
        subject: 'order.created',
        to: 'store-5',
        replyTo: 'replies',
        timeToLiveMs: 3_600_000,
        applicationProperties: { tenant: 'contoso', attempt: 2, urgent: true, at, nothing: null },
      },
      { body: text('{"id":1}'), messageId: 'json', contentType: 'application/json' },
      { body: { type: 'value', value: { id: 7, tags: ['a'] } }, messageId: 'value' },
    ]);
    const [binary, json, value] = await bus.peek({ queue: 'bodies' }, { maxCount: 10 });

    // Assess
    expect(binary?.body).toEqual({ type: 'data', bytes });
    expect(binary).toMatchObject({
      messageId: 'binary',
      contentType: 'application/octet-stream',
      correlationId: 'corr-1',
      subject: 'order.created',
      to: 'store-5',
      replyTo: 'replies',
      timeToLiveMs: 3_600_000,
      sequenceNumber: '1',
      deliveryCount: 0,
      state: 'active',
      applicationProperties: { tenant: 'contoso', attempt: 2, urgent: true, at, nothing: null },
    });
    expect(new TextDecoder().decode((json!.body as { bytes: Uint8Array }).bytes)).toBe('{"id":1}');
    expect(value?.body).toEqual({ type: 'value', value: { id: 7, tags: ['a'] } });
  });

  it('refuses bad messages before sending any, and a message too large for the entity', async () => {
    // Act / Assess
    await expect(
      bus.send('failing', [
        { body: text('fine'), messageId: 'ok' },
        {
          body: text('bad'),
          sessionId: 'x'.repeat(200),
          applicationProperties: { list: [1] as unknown as string },
        },
      ]),
    ).rejects.toBeInstanceOf(ValidationError);
    expect(broker.entities.get('failing').active()).toEqual([]);
    await expect(
      bus.send('failing', [{ body: { type: 'data', bytes: new Uint8Array(300 * 1024) } }]),
    ).rejects.toThrow(/larger than the 262144 bytes/);
    await expect(bus.send('no such queue', [])).rejects.toBeInstanceOf(ValidationError);
  });

  it('maps Service Bus errors: unknown entity, session-less send to a session queue', async () => {
    // Act / Assess
    await expect(bus.send('nowhere', [{ body: text('x') }])).rejects.toBeInstanceOf(NotFoundError);
    const sessionless = bus.send('carts', [{ body: text('x'), messageId: 'c' }]);
    await expect(sessionless).rejects.toBeInstanceOf(DependencyError);
    await expect(sessionless).rejects.toMatchObject({
      retryable: false,
      metadata: { serviceBusCode: 'GeneralError' },
    });
  });

  it('keeps the session id of a replayed message', async () => {
    // Act
    await bus.send('carts', [{ body: text('again'), messageId: 'cart-1-replay', sessionId: 'cart-1' }]);

    // Assess
    expect(broker.entities.get('carts').active()[0]).toMatchObject({
      messageId: 'cart-1-replay',
      sessionId: 'cart-1',
    });
  });

  it('is silently de-duplicated by an entity with duplicate detection when it resends the same id', async () => {
    // Act
    const first = await bus.send('dedupe', [{ body: text('replay'), messageId: 'replay-of-42-attempt-1' }]);
    const retried = await bus.send('dedupe', [{ body: text('replay'), messageId: 'replay-of-42-attempt-1' }]);

    // Assess: both sends succeed; the entity holds one copy.
    expect(first.messages).toBe(1);
    expect(retried.messages).toBe(1);
    expect(broker.entities.get('dedupe').counts()).toMatchObject({ active: 1, duplicatesDropped: 1 });
  });

  it('fails with a transient error when the namespace cannot be reached', async () => {
    // Prepare
    const gone = await startServiceBusBroker({ entities: [{ name: 'q' }] });
    const connectionString = gone.connectionString;
    await gone.stop();
    const unreachable = new ServiceBusMessageBus(
      { connectionString },
      { retryOptions: { maxRetries: 0, timeoutInMs: 2_000 } },
    );

    // Act
    const send = unreachable.send('q', [{ body: text('x') }]);

    // Assess
    await expect(send).rejects.toBeInstanceOf(TransientError);
    await unreachable.close();
  });
});

describe('ServiceBusMessageBus: reading and settling', () => {
  it('reads a dead-letter queue: reason and description as fields, not application properties', async () => {
    // Prepare
    await bus.send('settle', [
      { body: text('a'), messageId: 'd-1', applicationProperties: { tenant: 't1' } },
      { body: text('b'), messageId: 'd-2' },
      { body: text('c'), messageId: 'd-3' },
      { body: text('d'), messageId: 'd-4' },
    ]);
    const received = await bus.receive({ queue: 'settle' }, { maxCount: 4, maxWaitMs: 5_000 });
    for (const message of received)
      await bus.deadLetter(message, { reason: 'Poison', description: 'bad amount' });

    // Act
    const peeked = await bus.peek({ queue: 'settle', subQueue: 'deadLetter' }, { maxCount: 10 });

    // Assess
    expect(peeked.map((m) => m.messageId)).toEqual(['d-1', 'd-2', 'd-3', 'd-4']);
    expect(peeked[0]).toMatchObject({
      deadLetterReason: 'Poison',
      deadLetterErrorDescription: 'bad amount',
      deadLetterSource: 'settle',
      applicationProperties: { tenant: 't1' },
    });
    expect(Object.keys(peeked[0]!.applicationProperties ?? {})).toEqual(['tenant']);
  });

  it('settles dead letters by sequence number, leaving every other one in place', async () => {
    // Prepare
    const before = await bus.peek({ queue: 'settle', subQueue: 'deadLetter' }, { maxCount: 10 });
    const [first, second, third, fourth] = before.map((m) => m.sequenceNumber);

    // Act
    const report = await bus.settleBySequenceNumber(
      { queue: 'settle', subQueue: 'deadLetter' },
      [second!, fourth!, '999'],
      { complete: true },
      { maxScan: 10, maxWaitMs: 1_000 },
    );

    // Assess
    expect(report).toEqual({ settled: [second, fourth], notFound: ['999'] });
    const left = broker.entities.get('settle').deadLetter();
    expect(left.map((m) => String(m.sequenceNumber))).toEqual([first, third]);
    expect(left.every((m) => !m.locked)).toBe(true);
  });

  it('completes, abandons, defers, receives deferred and renews locks; a lost lock is a retryable conflict', async () => {
    // Prepare
    // Without automatic renewal, so that the 300 ms lock lapses.
    const bus = new ServiceBusMessageBus(
      { connectionString: broker.connectionString },
      { maxAutoLockRenewalDurationInMs: 0 },
    );
    await bus.send('locks', [
      { body: text('1'), messageId: 'l-1' },
      { body: text('2'), messageId: 'l-2' },
    ]);
    const [one, two] = await bus.receive({ queue: 'locks' }, { maxCount: 2, maxWaitMs: 5_000 });

    // Act
    await bus.defer(one!);
    const [deferred] = await bus.receiveDeferred({ queue: 'locks' }, [one!.sequenceNumber]);
    const renewed = await bus.renewLock(deferred!);
    await bus.complete(deferred!);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const lost = bus.complete(two!);

    // Assess
    expect(deferred?.state).toBe('deferred');
    expect(renewed.getTime()).toBeGreaterThan(deferred!.lockedUntil.getTime());
    await expect(lost).rejects.toBeInstanceOf(ConflictError);
    await expect(lost).rejects.toMatchObject({
      retryable: true,
      metadata: { serviceBusCode: 'MessageLockLost' },
    });
    await expect(bus.complete({ ...one! })).rejects.toBeInstanceOf(ValidationError);
    await expect(
      bus.peek({ queue: 'locks' }, { maxCount: 1, fromSequenceNumber: '-1' }),
    ).rejects.toBeInstanceOf(ValidationError);
    await bus.close();
  });
});

describe('ServiceBusMessageBus: replay isolation rules', () => {
  it('guards every rule of a subscription and adds its replay rule, so a replay reaches it alone', async () => {
    // Act
    const billing = await bus.ensureReplayIsolation('orders', 'billing');
    const audit = await bus.ensureReplayIsolation('orders', 'audit');
    const again = await bus.ensureReplayIsolation('orders', 'billing');
    const rules = await bus.listRules('orders', 'billing');
    await bus.send('orders', [
      { body: text('new'), messageId: 'o-1' },
      {
        body: text('replay'),
        messageId: 'o-0-replay',
        applicationProperties: { [REPLAY_TARGET_PROPERTY]: 'audit' },
      },
    ]);

    // Assess
    expect(billing).toEqual({ created: ['$Default-guarded', 'stampkeeper-replay'], deleted: ['$Default'] });
    expect(audit.created).toHaveLength(2);
    expect(again).toEqual({ created: [], deleted: [] });
    expect(rules).toEqual([
      { name: '$Default-guarded', filter: { sql: 'StampkeeperReplayTo IS NULL' } },
      {
        name: 'stampkeeper-replay',
        filter: { correlation: { applicationProperties: { StampkeeperReplayTo: 'billing' } } },
      },
    ]);
    expect(replayIsolation(rules, 'billing').isolated).toBe(true);
    expect(
      broker.entities
        .get('orders/Subscriptions/billing')
        .active()
        .map((m) => m.messageId),
    ).toEqual(['o-1']);
    expect(
      broker.entities
        .get('orders/Subscriptions/audit')
        .active()
        .map((m) => m.messageId),
    ).toEqual(['o-1', 'o-0-replay']);
  });

  it('turns a correlation rule into the equivalent guarded SQL rule: the same messages still arrive', async () => {
    // Act
    await bus.ensureReplayIsolation('routed', 'vip');
    await bus.send('routed', [
      { body: text('1'), messageId: 'gold', correlationId: 'vip', applicationProperties: { tier: 'gold' } },
      {
        body: text('2'),
        messageId: 'silver',
        correlationId: 'vip',
        applicationProperties: { tier: 'silver' },
      },
      {
        body: text('3'),
        messageId: 'gold-replay',
        correlationId: 'vip',
        applicationProperties: { tier: 'gold', [REPLAY_TARGET_PROPERTY]: 'other' },
      },
    ]);
    const rules = await bus.listRules('routed', 'vip');

    // Assess
    expect(rules[0]).toEqual({
      name: 'vip-only-guarded',
      filter: { sql: "(sys.CorrelationId = 'vip' AND [tier] = 'gold') AND StampkeeperReplayTo IS NULL" },
    });
    expect(
      broker.entities
        .get('routed/Subscriptions/vip')
        .active()
        .map((m) => m.messageId),
    ).toEqual(['gold']);
  });

  it('maps rule errors: a taken name is a non-retryable conflict, an unknown subscription is not found', async () => {
    // Act / Assess
    const taken = bus.createRule('orders', 'billing', { name: 'stampkeeper-replay', filter: { sql: '1=1' } });
    await expect(taken).rejects.toBeInstanceOf(ConflictError);
    await expect(taken).rejects.toMatchObject({ retryable: false });
    await expect(bus.listRules('orders', 'nobody')).rejects.toBeInstanceOf(NotFoundError);
  });
});
