/**
 * Triage of a dead-lettered message: what kind of failure its reason says, what the message is,
 * and whether the policy's replay rules replay it automatically or park it for a person.
 */
import type { AutoReplayRule, DeadLetterEntity } from '../config/policy';
import type { DeadLetterClassification, DeadLetterMessage, ReasonClass } from '../ports/deadLetters';

/** The application properties a replay carries (and a replayed message comes back with). */
export const REPLAY_PROPERTIES = {
  /** Replays of the message's lineage so far, this one included. */
  count: 'StampkeeperReplayCount',
  /** The message id of the first message of the lineage. */
  originalMessageId: 'StampkeeperOriginalMessageId',
  /** The archive id the replay was made from. */
  replayOf: 'StampkeeperReplayOf',
} as const;

/** The properties Service Bus adds when it dead-letters a message: never carried by a replay. */
export const DEAD_LETTER_PROPERTIES = ['DeadLetterReason', 'DeadLetterErrorDescription'] as const;

/**
 * The reasons Service Bus itself sets (service-bus-dead-letter-queues.md, "Moving messages to the
 * DLQ"); any other reason is the application's (a consumer's `deadLetter(reason)`).
 */
const SYSTEM_REASONS: Record<string, ReasonClass> = {
  maxdeliverycountexceeded: 'delivery-exhausted',
  ttlexpiredexception: 'expired',
  headersizeexceeded: 'header-size',
  'session id is null': 'session-missing',
  'session id is null.': 'session-missing',
  maxtransferhopcountexceeded: 'hop-count',
};

export function reasonClassOf(reason: string | undefined): ReasonClass {
  if (reason === undefined || reason.trim() === '') return 'unknown';
  return SYSTEM_REASONS[reason.trim().toLowerCase()] ?? 'application';
}

/** Replays of a message's lineage so far, from the property a replay carries (0 for an original). */
export function replayCountOf(message: Pick<DeadLetterMessage, 'applicationProperties'>): number {
  const value = message.applicationProperties[REPLAY_PROPERTIES.count];
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : 0;
  return Number.isInteger(n) && n > 0 ? n : 0;
}

/** The id of the first message of the lineage. */
export function originalMessageIdOf(
  message: Pick<DeadLetterMessage, 'applicationProperties' | 'messageId'>,
): string {
  const value = message.applicationProperties[REPLAY_PROPERTIES.originalMessageId];
  return typeof value === 'string' && value !== '' ? value : message.messageId;
}

function messageTypeOf(message: DeadLetterMessage): string {
  for (const key of ['MessageType', 'messageType', 'type', 'Type']) {
    const value = message.applicationProperties[key];
    if (typeof value === 'string' && value.trim() !== '') return value.slice(0, 200);
  }
  return (message.subject ?? message.contentType ?? 'unknown').slice(0, 200);
}

/** Whether a rule applies to a reason and description (reason whole, description anywhere; both case-insensitive). */
export function ruleMatches(
  rule: AutoReplayRule,
  reason: string | undefined,
  description: string | undefined,
): boolean {
  if (!new RegExp(`^(?:${rule.reason})$`, 'i').test(reason ?? '')) return false;
  return rule.description === undefined || new RegExp(rule.description, 'i').test(description ?? '');
}

/**
 * Classifies an arrival and decides: the first automatic replay rule whose reason (and
 * description) matches replays it, unless its lineage was replayed `maxAttempts` times already
 * (that rule's) or `maxReplays` times (the entity's): then, as when no rule matches, it is parked.
 */
export function classify(message: DeadLetterMessage, entity: DeadLetterEntity): DeadLetterClassification {
  const reasonClass = reasonClassOf(message.deadLetterReason);
  const messageType = messageTypeOf(message);
  const replays = replayCountOf(message);
  const reason = message.deadLetterReason ?? '(none)';
  const index = entity.replay.auto.findIndex((rule) =>
    ruleMatches(rule, message.deadLetterReason, message.deadLetterErrorDescription),
  );
  if (index < 0) {
    return {
      reasonClass,
      messageType,
      decision: 'park',
      why: `no automatic replay rule matches reason ${reason}`,
    };
  }
  const rule = entity.replay.auto[index]!;
  if (replays >= entity.replay.maxReplays) {
    return {
      reasonClass,
      messageType,
      decision: 'park',
      rule: index,
      why: `replayed ${replays} times already (maxReplays ${entity.replay.maxReplays}): parked for a person`,
    };
  }
  if (replays >= rule.maxAttempts) {
    return {
      reasonClass,
      messageType,
      decision: 'park',
      rule: index,
      why: `replayed ${replays} times already (rule ${index}: maxAttempts ${rule.maxAttempts}): parked for a person`,
    };
  }
  return {
    reasonClass,
    messageType,
    decision: 'auto-replay',
    rule: index,
    why: `rule ${index} (${rule.reason}) replays it after ${rule.delayMinutes} minutes (replay ${replays + 1} of at most ${Math.min(rule.maxAttempts, entity.replay.maxReplays)})`,
  };
}
