import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/lib/config/policy';
import { ConflictError, ValidationError } from '../../../src/lib/core/errors';
import {
  checkReplayIsolation,
  replayCopy,
  replayMessageId,
  replayTargetOf,
  timeToLiveOf,
} from '../../../src/lib/deadletters/replayMessage';
import type { DeadLetterMessage } from '../../../src/lib/ports/deadLetters';
import { guardedRule, replayRule, type SubscriptionRule } from '../../../src/lib/ports/messageBus';

const NS =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/contoso-sb';
const policy = parsePolicy(`version: 1
deadLetters:
  - { name: orders, namespaceId: ${NS}, queue: orders, owner: o, replay: { targets: [{ queue: orders-retry }] } }
  - { name: billing, namespaceId: ${NS}, topic: events, subscription: billing, topicSubscriptions: [audit], owner: o }
  - { name: shipping, namespaceId: ${NS}, topic: events, subscription: shipping, owner: o }
`);
const [orders, billing] = policy.deadLetters;

const dead: DeadLetterMessage = {
  messageId: 'order-7',
  sequenceNumber: '42',
  enqueuedTime: new Date('2026-01-01T00:00:00Z'),
  expiresAt: new Date('2026-01-01T01:00:00Z'),
  timeToLiveMs: 3_600_000,
  deliveryCount: 10,
  contentType: 'application/json',
  correlationId: 'corr-1',
  sessionId: 'cart-9',
  replyToSessionId: 'reply-9',
  subject: 'OrderPlaced',
  to: 'orders',
  replyTo: 'replies',
  partitionKey: 'cart-9',
  applicationProperties: {
    tenant: 'contoso',
    at: new Date('2026-01-01T00:00:00Z'),
    DeadLetterReason: 'MaxDeliveryCountExceeded',
    DeadLetterErrorDescription: 'failed 10 times',
    StampkeeperReplayCount: 1,
    StampkeeperReplayTo: 'someone-else',
  },
  deadLetterReason: 'MaxDeliveryCountExceeded',
  deadLetterErrorDescription: 'failed 10 times',
  deadLetterSource: 'orders',
};

describe('the replayed copy', () => {
  it('keeps what the workload relies on, drops what dead-lettering stamped, and says it is a replay', () => {
    // Prepare
    const record = { id: 'orders.42.abcdef', replayCount: 1, originalMessageId: 'order-1' };
    const body = { type: 'data' as const, bytes: new Uint8Array([1, 2, 3]) };

    // Act
    const copy = replayCopy(record, dead, body, { attempt: 2, target: { entity: 'orders' } });

    // Assess
    expect(copy).toEqual({
      body,
      messageId: 'orders.42.abcdef:r2',
      contentType: 'application/json',
      correlationId: 'corr-1',
      sessionId: 'cart-9',
      replyToSessionId: 'reply-9',
      subject: 'OrderPlaced',
      to: 'orders',
      replyTo: 'replies',
      timeToLiveMs: 3_600_000,
      applicationProperties: {
        tenant: 'contoso',
        at: new Date('2026-01-01T00:00:00Z'),
        StampkeeperReplayCount: 2,
        StampkeeperOriginalMessageId: 'order-1',
        StampkeeperReplayOf: 'orders.42.abcdef',
      },
    });
    expect(replayMessageId(record, 2)).toBe(replayMessageId(record, 2));
    expect(replayMessageId(record, 3)).not.toBe(replayMessageId(record, 2));
  });

  it('through a topic names the subscription it is meant for; scheduled replays carry their time', () => {
    // Act
    const copy = replayCopy(
      { id: 'billing.1.000000', replayCount: 0, originalMessageId: 'x' },
      dead,
      { type: 'value', value: 1 },
      {
        attempt: 1,
        target: { entity: 'events', replayTo: 'billing' },
        scheduledFor: new Date('2026-01-01T00:10:00Z'),
      },
    );

    // Assess
    expect(copy.applicationProperties?.StampkeeperReplayTo).toBe('billing');
    expect(copy.scheduledEnqueueTime).toEqual(new Date('2026-01-01T00:10:00Z'));
  });

  it('keeps the time to live the message was sent with, never "forever"', () => {
    // Act / Assess
    expect(timeToLiveOf({ enqueuedTime: new Date(0), expiresAt: new Date(90_000) })).toBe(90_000);
    expect(
      timeToLiveOf({ enqueuedTime: new Date(0), timeToLiveMs: 10_675_199 * 86_400_000 }),
    ).toBeUndefined();
    expect(
      timeToLiveOf({ enqueuedTime: new Date(0), expiresAt: new Date('9999-12-31T23:59:59Z') }),
    ).toBeUndefined();
  });
});

describe('replay targets', () => {
  it("is the original entity (a subscription's topic, for it alone) or one the policy lists; nothing else", () => {
    // Act / Assess
    expect(replayTargetOf(orders!)).toEqual({ entity: 'orders' });
    expect(replayTargetOf(orders!, 'orders-retry')).toEqual({ entity: 'orders-retry' });
    expect(replayTargetOf(billing!)).toEqual({ entity: 'events', replayTo: 'billing' });
    expect(() => replayTargetOf(orders!, 'payments')).toThrow(ValidationError);
  });

  it('refuses a replay through a topic unless every known subscription keeps replays for others out', async () => {
    // Prepare: billing isolated, audit (listed) and shipping (another policy entity) not.
    const isolated = (name: string): SubscriptionRule[] => [
      guardedRule({ name: '$Default', filter: { sql: '1=1' } }),
      replayRule(name),
    ];
    const rules: Record<string, SubscriptionRule[]> = {
      billing: isolated('billing'),
      audit: [{ name: '$Default', filter: { sql: '1=1' } }],
      shipping: isolated('shipping'),
    };
    const bus = { listRules: async (_topic: string, sub: string) => rules[sub]! };

    // Act
    const refused = await checkReplayIsolation(bus, policy, billing!, {
      entity: 'events',
      replayTo: 'billing',
    }).catch((e: unknown) => e);
    rules.audit = isolated('audit');
    const allowed = await checkReplayIsolation(bus, policy, billing!, {
      entity: 'events',
      replayTo: 'billing',
    });

    // Assess
    expect(refused).toBeInstanceOf(ConflictError);
    expect((refused as Error).message).toContain(
      "events/Subscriptions/audit: rule '$Default' admits replays meant for other subscriptions",
    );
    expect((refused as Error).message).not.toContain('Subscriptions/shipping');
    expect(allowed).toBeUndefined();
  });
});
