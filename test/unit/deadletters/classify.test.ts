import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/lib/config/policy';
import { ValidationError } from '../../../src/lib/core/errors';
import { triggeredMessages } from '../../../src/lib/deadletters/arrive';
import { classify, reasonClassOf } from '../../../src/lib/deadletters/classify';
import type { DeadLetterMessage } from '../../../src/lib/ports/deadLetters';

const NS =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/contoso-sb';
const policy = parsePolicy(`version: 1
deadLetters:
  - name: orders
    namespaceId: ${NS}
    queue: orders
    owner: team
    replay:
      maxReplays: 3
      auto:
        - { reason: "MaxDeliveryCountExceeded|TTLExpiredException", delayMinutes: 10, maxAttempts: 2 }
        - { reason: Downstream.*, description: timeout, delayMinutes: 5, maxAttempts: 5 }
`);
const entity = policy.deadLetters[0]!;

const message = (overrides: Partial<DeadLetterMessage> = {}): DeadLetterMessage => ({
  messageId: 'm-1',
  sequenceNumber: '7',
  enqueuedTime: new Date('2026-01-01T00:00:00Z'),
  deliveryCount: 3,
  applicationProperties: {},
  ...overrides,
});

describe('classify', () => {
  it("names the reasons Service Bus sets and treats any other as the application's", () => {
    // Act / Assess
    expect(reasonClassOf('MaxDeliveryCountExceeded')).toBe('delivery-exhausted');
    expect(reasonClassOf('TTLExpiredException')).toBe('expired');
    expect(reasonClassOf('HeaderSizeExceeded')).toBe('header-size');
    expect(reasonClassOf('Session ID is null.')).toBe('session-missing');
    expect(reasonClassOf('MaxTransferHopCountExceeded')).toBe('hop-count');
    expect(reasonClassOf('ValidationFailed')).toBe('application');
    expect(reasonClassOf(undefined)).toBe('unknown');
  });

  it('replays automatically when a rule matches the whole reason (and the description), parks otherwise', () => {
    // Act
    const transient = classify(
      message({ deadLetterReason: 'MaxDeliveryCountExceeded', subject: 'OrderPlaced' }),
      entity,
    );
    const partial = classify(message({ deadLetterReason: 'XMaxDeliveryCountExceeded' }), entity);
    const described = classify(
      message({
        deadLetterReason: 'DownstreamUnavailable',
        deadLetterErrorDescription: 'socket TIMEOUT after 30s',
      }),
      entity,
    );
    const undescribed = classify(
      message({ deadLetterReason: 'DownstreamUnavailable', deadLetterErrorDescription: 'refused' }),
      entity,
    );
    const typed = classify(
      message({ deadLetterReason: 'ValidationFailed', applicationProperties: { MessageType: 'Invoice' } }),
      entity,
    );

    // Assess
    expect(transient).toMatchObject({
      decision: 'auto-replay',
      rule: 0,
      reasonClass: 'delivery-exhausted',
      messageType: 'OrderPlaced',
    });
    expect(transient.why).toContain('after 10 minutes');
    expect(partial).toMatchObject({ decision: 'park', reasonClass: 'application' });
    expect(described).toMatchObject({ decision: 'auto-replay', rule: 1 });
    expect(undescribed.decision).toBe('park');
    expect(typed).toMatchObject({ decision: 'park', messageType: 'Invoice' });
  });

  it("never replays automatically a message replayed maxAttempts (the rule's) or maxReplays times", () => {
    // Act
    const once = classify(
      message({
        deadLetterReason: 'MaxDeliveryCountExceeded',
        applicationProperties: { StampkeeperReplayCount: 1 },
      }),
      entity,
    );
    const twice = classify(
      message({
        deadLetterReason: 'MaxDeliveryCountExceeded',
        applicationProperties: { StampkeeperReplayCount: 2 },
      }),
      entity,
    );
    const many = classify(
      message({
        deadLetterReason: 'DownstreamUnavailable',
        deadLetterErrorDescription: 'timeout',
        applicationProperties: { StampkeeperReplayCount: 3 },
      }),
      entity,
    );

    // Assess
    expect(once.decision).toBe('auto-replay');
    expect(twice).toMatchObject({ decision: 'park' });
    expect(twice.why).toContain('maxAttempts 2');
    expect(many).toMatchObject({ decision: 'park' });
    expect(many.why).toContain('maxReplays 3');
  });
});

describe('triggeredMessages', () => {
  it('reads the sequence numbers and ids the trigger passes, and refuses a batch without them', () => {
    // Act / Assess
    expect(triggeredMessages({ sequenceNumberArray: [5, '6'], messageIdArray: ['a', ''] }, 2)).toEqual([
      { sequenceNumber: '5', messageId: 'a' },
      { sequenceNumber: '6' },
    ]);
    expect(() => triggeredMessages({}, 1)).toThrow(ValidationError);
    expect(() => triggeredMessages({ sequenceNumberArray: [1] }, 2)).toThrow(/of its 2 messages/);
    expect(() => triggeredMessages({ sequenceNumberArray: [-1] }, 1)).toThrow(/not a sequence number/);
  });
});
