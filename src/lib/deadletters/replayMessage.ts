/**
 * What a replay sends, and where: the copy keeps what the workload relies on, drops what Service
 * Bus stamped on the dead letter, and says what it is (a replay count and the original message
 * id); its message id is fixed per replay attempt, so a retried send is de-duplicated by an entity
 * with duplicate detection while a new replay is a new message.
 */
import type { DeadLetterEntity, Policy } from '../config/policy';
import { ConflictError, ValidationError } from '../core/errors';
import type { DeadLetterMessage, DeadLetterRecord } from '../ports/deadLetters';
import {
  type ApplicationPropertyValue,
  type BusMessageBody,
  type MessageBus,
  type OutgoingBusMessage,
  REPLAY_TARGET_PROPERTY,
  replayIsolation,
} from '../ports/messageBus';
import { DEAD_LETTER_PROPERTIES, REPLAY_PROPERTIES } from './classify';

/** Where a replay goes: a queue, or a topic (with the one subscription it is meant for, if any). */
export interface ReplayTarget {
  /** The queue or topic path sent to. */
  entity: string;
  /** A subscription's replay through its topic: the subscription it must reach alone. */
  replayTo?: string;
}

/** The message id of a replay attempt of an archived message: the same for every retry of that attempt. */
export function replayMessageId(record: Pick<DeadLetterRecord, 'id'>, attempt: number): string {
  return `${record.id}:r${attempt}`;
}

/**
 * The replayed copy of a revision of an archived message. Kept: body, content type, correlation
 * id, session id (and reply-to session id), subject, to, reply-to, application properties, and the
 * time to live it was sent with. Dropped: DeadLetterReason / DeadLetterErrorDescription, sequence
 * number, lock, delivery count, enqueued and expiry times, partition key (the session id carries a
 * session's partition), and the replay properties of an earlier replay (replaced). Added:
 * `StampkeeperReplayCount` (the lineage's replays, this one included), `StampkeeperOriginalMessageId`,
 * `StampkeeperReplayOf` (the archive id) and, through a topic, `StampkeeperReplayTo`.
 */
export function replayCopy(
  record: Pick<DeadLetterRecord, 'id' | 'replayCount' | 'originalMessageId'>,
  message: DeadLetterMessage,
  body: BusMessageBody,
  options: { attempt: number; target: ReplayTarget; scheduledFor?: Date },
): OutgoingBusMessage {
  const properties: Record<string, ApplicationPropertyValue> = {};
  for (const [key, value] of Object.entries(message.applicationProperties)) {
    if ((DEAD_LETTER_PROPERTIES as readonly string[]).includes(key)) continue;
    if (key === REPLAY_TARGET_PROPERTY || Object.values(REPLAY_PROPERTIES).includes(key as never)) continue;
    properties[key] = value;
  }
  properties[REPLAY_PROPERTIES.count] = record.replayCount + 1;
  properties[REPLAY_PROPERTIES.originalMessageId] = record.originalMessageId;
  properties[REPLAY_PROPERTIES.replayOf] = record.id;
  if (options.target.replayTo !== undefined) properties[REPLAY_TARGET_PROPERTY] = options.target.replayTo;
  const copy: OutgoingBusMessage = {
    body,
    messageId: replayMessageId(record, options.attempt),
    applicationProperties: properties,
  };
  const kept: Array<keyof OutgoingBusMessage & keyof DeadLetterMessage> = [
    'contentType',
    'correlationId',
    'sessionId',
    'replyToSessionId',
    'subject',
    'to',
    'replyTo',
  ];
  for (const key of kept) {
    const value = message[key];
    if (value !== undefined) (copy as unknown as Record<string, unknown>)[key] = value;
  }
  const ttl = timeToLiveOf(message);
  if (ttl !== undefined) copy.timeToLiveMs = ttl;
  if (options.scheduledFor !== undefined) copy.scheduledEnqueueTime = options.scheduledFor;
  return copy;
}

/** The time to live the message was sent with: its own, else what its expiry says (never "forever"). */
export function timeToLiveOf(
  message: Pick<DeadLetterMessage, 'timeToLiveMs' | 'expiresAt' | 'enqueuedTime'>,
): number | undefined {
  if (
    message.timeToLiveMs !== undefined &&
    Number.isFinite(message.timeToLiveMs) &&
    message.timeToLiveMs > 0
  ) {
    // TimeSpan.MaxValue (about 10 675 199 days) means "never expires": send none.
    return message.timeToLiveMs >= 10_000 * 365 * 86_400_000 ? undefined : message.timeToLiveMs;
  }
  if (message.expiresAt && message.expiresAt.getUTCFullYear() < 9999) {
    const ms = message.expiresAt.getTime() - message.enqueuedTime.getTime();
    if (ms > 0) return ms;
  }
  return undefined;
}

/**
 * Where a replay of an entity's dead letters goes: its own entity (a queue; a subscription's topic,
 * meant for that subscription alone), or one of the entities its policy lists in `replay.targets`
 * (any other name is refused: a request never steers where the app sends).
 */
export function replayTargetOf(entity: DeadLetterEntity, to?: string): ReplayTarget {
  const own: ReplayTarget =
    'queue' in entity.source
      ? { entity: entity.source.queue }
      : { entity: entity.source.topic, replayTo: entity.source.subscription };
  if (to === undefined || to === own.entity) return own;
  const allowed = entity.replay.targets.find((t) => t.name.toLowerCase() === to.toLowerCase());
  if (!allowed) {
    throw new ValidationError(`'${to}' is not a replay target of ${entity.name}`, [
      `to: ${own.entity} (the original) or one of the policy's replay.targets (${entity.replay.targets.map((t) => t.name).join(', ') || 'none'})`,
    ]);
  }
  return { entity: allowed.name };
}

/**
 * Checks that a replay through a topic reaches only the subscription it is meant for: that
 * subscription and every other subscription of the topic the policy knows (its
 * `topicSubscriptions` and the policy's other entities on that topic) must carry the replay rules
 * (docs/policy.md). Refuses with every problem found (409: the rules must change first).
 */
export async function checkReplayIsolation(
  bus: Pick<MessageBus, 'listRules'>,
  policy: Pick<Policy, 'deadLetters'>,
  entity: DeadLetterEntity,
  target: ReplayTarget,
): Promise<void> {
  if (target.replayTo === undefined || 'queue' in entity.source) return;
  const topic = target.entity;
  const subscriptions = new Set<string>([entity.source.subscription, ...entity.topicSubscriptions]);
  for (const other of policy.deadLetters) {
    if (
      'topic' in other.source &&
      other.namespaceId.toLowerCase() === entity.namespaceId.toLowerCase() &&
      other.source.topic.toLowerCase() === topic.toLowerCase()
    )
      subscriptions.add(other.source.subscription);
  }
  const problems: string[] = [];
  for (const subscription of subscriptions) {
    const rules = await bus.listRules(topic, subscription);
    const check = replayIsolation(rules, subscription);
    for (const problem of check.problems) problems.push(`${topic}/Subscriptions/${subscription}: ${problem}`);
  }
  if (problems.length > 0) {
    throw new ConflictError(
      `a replay through topic ${topic} would not reach ${target.replayTo} alone: ${problems.join('; ')} (docs/policy.md, "Replaying a subscription's dead letters")`,
      { retryable: false, metadata: { topic, subscription: target.replayTo, problems } },
    );
  }
}
