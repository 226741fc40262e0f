import { randomUUID } from 'node:crypto';
import type { Message } from 'rhea';
import { DEFAULT_RULE_NAME, type Rule, type RuleConfig, RuleError, ruleFromConfig } from './rules';
import { type StoredMessage, SubQueue } from './store';
import type { BrokerTime } from './time';

/**
 * The entities of the sandbox broker's namespace and what happens to a message sent to one:
 * duplicate detection, routing through a topic's subscription rules, time to live, sessions and
 * the message size limit of the tier. No AMQP here: `broker.ts` speaks the protocol.
 */

/** A subscription of a topic, with its own options (defaults: the topic's). */
export interface BrokerSubscriptionConfig {
  name: string;
  maxDeliveryCount?: number;
  lockDurationMs?: number;
  requiresSession?: boolean;
  deadLetteringOnMessageExpiration?: boolean;
  /** Caps the time to live of the messages it receives (Service Bus: `defaultMessageTimeToLive`). */
  defaultMessageTimeToLiveMs?: number;
  /** Its rules at start. Omitted: the `$Default` rule with the true filter, as Service Bus creates. */
  rules?: RuleConfig[];
}

export interface BrokerEntityConfig {
  name: string;
  type?: 'queue' | 'topic';
  /** Subscriptions of a topic: names (with the topic's options and the `$Default` rule) or configs. */
  subscriptions?: Array<string | BrokerSubscriptionConfig>;
  /** Delivery attempts before a message is dead-lettered with `MaxDeliveryCountExceeded` (default 10). */
  maxDeliveryCount?: number;
  /** Peek-lock duration (default 60 s, as Service Bus); also the session lock duration. */
  lockDurationMs?: number;
  /** A queue that takes only messages with a session id, received through session receivers. */
  requiresSession?: boolean;
  /** Expired messages go to the dead-letter queue (`TTLExpiredException`); otherwise they are dropped. */
  deadLetteringOnMessageExpiration?: boolean;
  /** Time to live of messages sent without one, and the ceiling of any (Service Bus: `defaultMessageTimeToLive`). */
  defaultMessageTimeToLiveMs?: number;
  /** A message whose id was seen within the window is accepted and dropped (`requiresDuplicateDetection`). */
  requiresDuplicateDetection?: boolean;
  /** Duplicate detection window (`duplicateDetectionHistoryTimeWindow`): 20 s to 7 days, default 10 min. */
  duplicateDetectionHistoryTimeWindowMs?: number;
  /** Premium tier only: the entity's message size limit, 1 024 (the default) to 102 400 KB. */
  maxMessageSizeInKilobytes?: number;
}

export type BrokerTier = 'standard' | 'premium';

/** Service Bus's message size limit of the standard tier (service-bus-quotas.md). */
export const STANDARD_MAX_MESSAGE_BYTES = 256 * 1024;
/** The premium tier's default `maxMessageSizeInKilobytes`, and its ceiling (100 MB). */
export const PREMIUM_DEFAULT_MAX_MESSAGE_KB = 1024;
export const PREMIUM_MAX_MESSAGE_KB = 102_400;
export const DEFAULT_MAX_DELIVERY_COUNT = 10;
export const DEFAULT_LOCK_DURATION_MS = 60_000;
/** Service Bus bounds of the duplicate detection window (duplicate-detection.md). */
export const DEFAULT_DUPLICATE_WINDOW_MS = 10 * 60_000;
export const MIN_DUPLICATE_WINDOW_MS = 20_000;
export const MAX_DUPLICATE_WINDOW_MS = 7 * 24 * 60 * 60_000;
/** Service Bus's lock duration ceiling (5 minutes). */
const MAX_LOCK_DURATION_MS = 5 * 60_000;
/**
 * Reason and description of a session-less message reaching a session-enabled subscription
 * (service-bus-dead-letter-queues.md, "Moving messages to the DLQ").
 */
export const SESSION_ID_NULL = 'Session ID is null.';
export const SESSION_ID_NULL_DESCRIPTION =
  "Session enabled entity doesn't allow a message whose session identifier is null.";

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,259}$/;
const SUBSCRIPTION_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$/;
const DEAD_LETTER_QUEUE = '$deadletterqueue';

/** A receivable path of an entity: the queue itself, or one subscription of a topic. */
export interface Target {
  /** The subscription's name; the queue's name for a queue. */
  readonly name: string;
  readonly queue: SubQueue;
  /** A subscription's rules (in creation order); undefined for a queue. */
  rules?: Rule[];
  readonly defaultTtlMs?: number;
}

export interface Entity {
  readonly name: string;
  readonly type: 'queue' | 'topic';
  readonly targets: Target[];
  /** Limit of one transfer (a message or a batch) to the entity, in bytes: the link's `max-message-size`. */
  readonly maxMessageSize: number;
  /** A session-enabled queue (sends without a session id are refused). */
  readonly requiresSession: boolean;
  readonly defaultTtlMs?: number;
  readonly duplicateWindowMs?: number;
  nextSequenceNumber: number;
  /** Messages waiting for their scheduled enqueue time, by sequence number. */
  readonly scheduled: Map<number, ScheduledEntry>;
  /** Message ids seen within the duplicate detection window, with when they were logged (broker clock). */
  readonly seenIds: Map<string, number>;
  /** Duplicates accepted and dropped since start. */
  duplicatesDropped: number;
}

export interface ScheduledEntry {
  message: Message;
  at: number;
  timer: { cancel(): void };
}

/** A send the service refuses: the AMQP error the sender gets. */
export class SendRefused extends Error {
  constructor(
    readonly condition: string,
    description: string,
  ) {
    super(description);
    this.name = 'SendRefused';
  }
}

export interface NamespaceOptions {
  tier?: BrokerTier;
  time: BrokerTime;
}

/** The entities of a broker, with the routing of sent messages. */
export class Namespace {
  readonly entities = new Map<string, Entity>();
  /** Every receivable path (queues, subscriptions, their dead-letter queues), lower-cased. */
  readonly paths = new Map<string, SubQueue>();
  private readonly targets = new Map<string, { entity: Entity; target: Target }>();
  readonly tier: BrokerTier;
  private readonly time: BrokerTime;

  constructor(configs: BrokerEntityConfig[], options: NamespaceOptions) {
    this.tier = options.tier ?? 'standard';
    this.time = options.time;
    if (this.tier !== 'standard' && this.tier !== 'premium') {
      throw new TypeError(
        `startServiceBusBroker: tier must be 'standard' or 'premium', not '${String(this.tier)}'.`,
      );
    }
    if (!Array.isArray(configs) || configs.length === 0) {
      throw new TypeError('startServiceBusBroker: `entities` must list at least one queue or topic.');
    }
    for (const config of configs) this.add(config);
  }

  /** The entity a path names (`queue`, `topic`), case-insensitive. */
  entity(path: string): Entity | undefined {
    return this.entities.get(path.toLowerCase());
  }

  /** The queue or subscription (not a dead-letter queue) a path names, with its entity. */
  target(path: string): { entity: Entity; target: Target } | undefined {
    return this.targets.get(path.toLowerCase());
  }

  /** Whether a receivable path is a dead-letter queue. */
  static isDeadLetterPath(path: string): boolean {
    return path.toLowerCase().endsWith(`/${DEAD_LETTER_QUEUE}`);
  }

  /**
   * Accepts the messages of one transfer (one message or a batch). Every message is checked
   * before any is stored, so a refused batch stores nothing. Returns their sequence numbers (a
   * duplicate dropped by duplicate detection has none).
   */
  send(entity: Entity, messages: Message[]): Array<number | undefined> {
    for (const message of messages) this.check(entity, message);
    return messages.map((message) => this.accept(entity, message));
  }

  /** Cancels scheduled messages (unknown or already enqueued ones are ignored, as in Service Bus). */
  cancelScheduled(entity: Entity, sequenceNumber: number): void {
    const scheduled = entity.scheduled.get(sequenceNumber);
    if (!scheduled) return;
    scheduled.timer.cancel();
    entity.scheduled.delete(sequenceNumber);
  }

  /** Adds a rule to a subscription; throws a `RuleError` (409 when the name is taken, 403 past the quota). */
  addRule(target: Target, rule: Rule): void {
    const rules = target.rules;
    if (!rules) throw new RuleError('Rules belong to topic subscriptions.', 400, 'amqp:not-allowed');
    if (rules.some((r) => r.name.toLowerCase() === rule.name.toLowerCase())) {
      throw new RuleError(
        `The messaging entity '${target.queue.path}/Rules/${rule.name}' already exists.`,
        409,
        'com.microsoft:entity-already-exists',
      );
    }
    if (rules.length >= 2000) {
      throw new RuleError(
        `The subscription '${target.queue.path}' already has 2000 rules, the Service Bus quota.`,
        403,
        'amqp:resource-limit-exceeded',
      );
    }
    rules.push(rule);
  }

  /** Removes a subscription's rule by name (case-insensitive); throws a 404 `RuleError` when absent. */
  removeRule(target: Target, name: string): void {
    const rules = target.rules;
    const index = rules?.findIndex((r) => r.name.toLowerCase() === name.toLowerCase()) ?? -1;
    if (!rules || index < 0) {
      throw new RuleError(
        `The messaging entity '${target.queue.path}/Rules/${name}' could not be found.`,
        404,
        'amqp:not-found',
      );
    }
    rules.splice(index, 1);
  }

  dispose(): void {
    for (const queue of this.paths.values()) queue.dispose();
    for (const entity of this.entities.values()) {
      for (const scheduled of entity.scheduled.values()) scheduled.timer.cancel();
    }
  }

  private check(entity: Entity, message: Message): void {
    if (entity.requiresSession && !hasSessionId(message)) {
      // What Service Bus answers (InvalidOperationException); see Azure/azure-service-bus#289.
      throw new SendRefused(
        'amqp:not-allowed',
        'The SessionId was not set on a message, and it cannot be sent to the entity. Entities that have session support enabled can only receive messages that have the SessionId set to a valid value.',
      );
    }
  }

  /** Numbers one message and stores it now or at its scheduled time; undefined for a dropped duplicate. */
  private accept(entity: Entity, message: Message): number | undefined {
    // Service Bus stamps a message id on messages sent without one (the JS SDK relies on it,
    // e.g. for lock renewal bookkeeping).
    if (message.message_id === undefined || message.message_id === null) {
      message.message_id = randomUUID().replace(/-/g, '');
    }
    if (this.isDuplicate(entity, message)) return undefined;
    const sequenceNumber = entity.nextSequenceNumber++;
    const at = scheduledTime(message);
    if (at !== undefined && at > this.time.now()) {
      const timer = this.time.at(at, () => {
        entity.scheduled.delete(sequenceNumber);
        this.deliverNow(entity, message, sequenceNumber);
      });
      entity.scheduled.set(sequenceNumber, { message, at, timer });
      return sequenceNumber;
    }
    this.deliverNow(entity, message, sequenceNumber);
    return sequenceNumber;
  }

  /**
   * Duplicate detection (duplicate-detection.md): the message id alone decides (no partitioning
   * here); a duplicate is reported as accepted and dropped; scheduled messages count too. The id
   * stays logged for the window from its first acceptance.
   */
  private isDuplicate(entity: Entity, message: Message): boolean {
    const window = entity.duplicateWindowMs;
    if (window === undefined) return false;
    const now = this.time.now();
    // Ids are logged in time order: forget the ones past the window, oldest first.
    for (const [id, loggedAt] of entity.seenIds) {
      if (loggedAt + window > now) break;
      entity.seenIds.delete(id);
    }
    const id = idText(message.message_id);
    if (entity.seenIds.has(id)) {
      entity.duplicatesDropped += 1;
      return true;
    }
    entity.seenIds.set(id, now);
    return false;
  }

  private deliverNow(entity: Entity, message: Message, sequenceNumber: number): void {
    const now = this.time.now();
    const enqueuedTime = new Date(now);
    const sessionId = hasSessionId(message) ? String(message.group_id) : undefined;
    for (const target of entity.targets) {
      // A subscription gets one copy when any of its rules matches (topic-filters.md).
      if (target.rules && !target.rules.some((rule) => rule.matches(message))) continue;
      const ttl = effectiveTtl(message, entity.defaultTtlMs, target.defaultTtlMs);
      const entry: StoredMessage = {
        sequenceNumber,
        message: ttl === undefined ? { ...message } : { ...message, ttl: Math.min(ttl, 0xffffffff) },
        enqueuedTime,
        deliveryCount: 0,
        state: 'active',
      };
      if (ttl !== undefined) entry.expiresAt = now + ttl;
      if (sessionId !== undefined) entry.sessionId = sessionId;
      if (target.queue.requiresSession && sessionId === undefined) {
        target.queue.enqueueDeadLettered(entry, SESSION_ID_NULL, SESSION_ID_NULL_DESCRIPTION);
        continue;
      }
      target.queue.enqueue(entry);
    }
  }

  private add(config: BrokerEntityConfig): void {
    const name = config?.name;
    if (typeof name !== 'string' || !NAME_RE.test(name)) {
      throw new TypeError(
        `startServiceBusBroker: entity name '${String(name)}' is not a valid Service Bus entity name (letters, digits, '.', '-', '_').`,
      );
    }
    if (this.entities.has(name.toLowerCase())) {
      throw new TypeError(`startServiceBusBroker: entity '${name}' is listed twice.`);
    }
    const type = config.type ?? 'queue';
    if (type !== 'queue' && type !== 'topic') {
      throw new TypeError(`startServiceBusBroker: the type of '${name}' must be 'queue' or 'topic'.`);
    }
    const common = queueOptions(name, config);
    if (type === 'topic' && config.requiresSession !== undefined) {
      throw new TypeError(
        `startServiceBusBroker: requiresSession of topic '${name}' belongs on its subscriptions.`,
      );
    }
    if (type === 'queue' && config.subscriptions !== undefined) {
      throw new TypeError(`startServiceBusBroker: queue '${name}' cannot have subscriptions.`);
    }
    const defaultTtlMs = optionalDuration(
      name,
      'defaultMessageTimeToLiveMs',
      config.defaultMessageTimeToLiveMs,
    );
    let duplicateWindowMs: number | undefined;
    if (
      config.requiresDuplicateDetection !== undefined &&
      typeof config.requiresDuplicateDetection !== 'boolean'
    ) {
      throw new TypeError(
        `startServiceBusBroker: requiresDuplicateDetection of '${name}' must be true or false.`,
      );
    }
    if (config.requiresDuplicateDetection) {
      duplicateWindowMs = config.duplicateDetectionHistoryTimeWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS;
      if (
        !Number.isFinite(duplicateWindowMs) ||
        duplicateWindowMs < MIN_DUPLICATE_WINDOW_MS ||
        duplicateWindowMs > MAX_DUPLICATE_WINDOW_MS
      ) {
        throw new TypeError(
          `startServiceBusBroker: duplicateDetectionHistoryTimeWindowMs of '${name}' must be from 20 s to 7 days (${MIN_DUPLICATE_WINDOW_MS} to ${MAX_DUPLICATE_WINDOW_MS} ms).`,
        );
      }
    } else if (config.duplicateDetectionHistoryTimeWindowMs !== undefined) {
      throw new TypeError(
        `startServiceBusBroker: '${name}' sets duplicateDetectionHistoryTimeWindowMs without requiresDuplicateDetection.`,
      );
    }
    const maxMessageSize = this.maxMessageSize(name, config.maxMessageSizeInKilobytes);

    const targets: Target[] = [];
    const seenSubscriptions = new Set<string>();
    const receivable: Array<{
      path: string;
      target: Omit<Target, 'queue'>;
      options: ReturnType<typeof queueOptions>;
    }> =
      type === 'queue'
        ? [
            {
              path: name,
              target: { name, ...(defaultTtlMs === undefined ? {} : { defaultTtlMs }) },
              options: common,
            },
          ]
        : (config.subscriptions ?? []).map((item) => {
            const sub: BrokerSubscriptionConfig = typeof item === 'string' ? { name: item } : item;
            if (typeof sub?.name !== 'string' || !SUBSCRIPTION_NAME_RE.test(sub.name)) {
              throw new TypeError(
                `startServiceBusBroker: subscription '${String(sub?.name)}' of '${name}' is not a valid name (1-50 letters, digits, '.', '-', '_').`,
              );
            }
            if (seenSubscriptions.has(sub.name.toLowerCase())) {
              throw new TypeError(
                `startServiceBusBroker: subscription '${sub.name}' of '${name}' is listed twice.`,
              );
            }
            seenSubscriptions.add(sub.name.toLowerCase());
            const where = `${name}/Subscriptions/${sub.name}`;
            const options = queueOptions(where, {
              maxDeliveryCount: sub.maxDeliveryCount ?? config.maxDeliveryCount,
              lockDurationMs: sub.lockDurationMs ?? config.lockDurationMs,
              requiresSession: sub.requiresSession,
              deadLetteringOnMessageExpiration:
                sub.deadLetteringOnMessageExpiration ?? config.deadLetteringOnMessageExpiration,
            });
            const subTtl = optionalDuration(
              where,
              'defaultMessageTimeToLiveMs',
              sub.defaultMessageTimeToLiveMs,
            );
            let rules: Rule[];
            try {
              rules = (sub.rules ?? [{ name: DEFAULT_RULE_NAME, filter: 'true' }]).map(ruleFromConfig);
            } catch (error) {
              if (error instanceof RuleError) {
                throw new TypeError(
                  `startServiceBusBroker: a rule of '${where}' is refused: ${error.message}`,
                );
              }
              throw error;
            }
            const names = new Set<string>();
            for (const rule of rules) {
              if (names.has(rule.name.toLowerCase())) {
                throw new TypeError(
                  `startServiceBusBroker: rule '${rule.name}' of '${where}' is listed twice.`,
                );
              }
              names.add(rule.name.toLowerCase());
            }
            return {
              path: where,
              target: { name: sub.name, rules, ...(subTtl === undefined ? {} : { defaultTtlMs: subTtl }) },
              options,
            };
          });

    const entity: Entity = {
      name,
      type,
      targets,
      maxMessageSize,
      requiresSession: type === 'queue' && common.requiresSession === true,
      ...(defaultTtlMs === undefined ? {} : { defaultTtlMs }),
      ...(duplicateWindowMs === undefined ? {} : { duplicateWindowMs }),
      nextSequenceNumber: 1,
      scheduled: new Map(),
      seenIds: new Map(),
      duplicatesDropped: 0,
    };
    const now = () => this.time.now();
    for (const { path, target, options } of receivable) {
      const dlq = new SubQueue(
        `${path}/$DeadLetterQueue`,
        { lockDurationMs: options.lockDurationMs, now },
        undefined,
      );
      const queue = new SubQueue(path, { ...options, now }, dlq);
      this.paths.set(path.toLowerCase(), queue);
      this.paths.set(`${path}/${DEAD_LETTER_QUEUE}`.toLowerCase(), dlq);
      const full: Target = { ...target, queue };
      targets.push(full);
      this.targets.set(path.toLowerCase(), { entity, target: full });
    }
    this.entities.set(name.toLowerCase(), entity);
  }

  private maxMessageSize(name: string, kilobytes: number | undefined): number {
    if (this.tier === 'standard') {
      if (kilobytes !== undefined) {
        throw new TypeError(
          `startServiceBusBroker: maxMessageSizeInKilobytes of '${name}' needs the premium tier (standard is fixed at 256 KB).`,
        );
      }
      return STANDARD_MAX_MESSAGE_BYTES;
    }
    const kb = kilobytes ?? PREMIUM_DEFAULT_MAX_MESSAGE_KB;
    if (!Number.isInteger(kb) || kb < PREMIUM_DEFAULT_MAX_MESSAGE_KB || kb > PREMIUM_MAX_MESSAGE_KB) {
      throw new TypeError(
        `startServiceBusBroker: maxMessageSizeInKilobytes of '${name}' must be an integer from ${PREMIUM_DEFAULT_MAX_MESSAGE_KB} to ${PREMIUM_MAX_MESSAGE_KB}.`,
      );
    }
    return kb * 1024;
  }
}

function queueOptions(
  where: string,
  config: Pick<
    BrokerEntityConfig,
    'maxDeliveryCount' | 'lockDurationMs' | 'requiresSession' | 'deadLetteringOnMessageExpiration'
  >,
) {
  const maxDeliveryCount = config.maxDeliveryCount ?? DEFAULT_MAX_DELIVERY_COUNT;
  const lockDurationMs = config.lockDurationMs ?? DEFAULT_LOCK_DURATION_MS;
  if (!Number.isInteger(maxDeliveryCount) || maxDeliveryCount < 1) {
    throw new TypeError(`startServiceBusBroker: maxDeliveryCount of '${where}' must be an integer >= 1.`);
  }
  if (!Number.isFinite(lockDurationMs) || lockDurationMs <= 0 || lockDurationMs > MAX_LOCK_DURATION_MS) {
    throw new TypeError(
      `startServiceBusBroker: lockDurationMs of '${where}' must be a positive number of at most 5 minutes (300000).`,
    );
  }
  for (const key of ['requiresSession', 'deadLetteringOnMessageExpiration'] as const) {
    if (config[key] !== undefined && typeof config[key] !== 'boolean') {
      throw new TypeError(`startServiceBusBroker: ${key} of '${where}' must be true or false.`);
    }
  }
  return {
    maxDeliveryCount,
    lockDurationMs,
    requiresSession: config.requiresSession === true,
    deadLetteringOnMessageExpiration: config.deadLetteringOnMessageExpiration === true,
  };
}

function optionalDuration(where: string, key: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0) {
    throw new TypeError(
      `startServiceBusBroker: ${key} of '${where}' must be a positive number of milliseconds.`,
    );
  }
  return value;
}

/**
 * The time to live a message gets: its own (the AMQP header `ttl`), capped by the entity's and
 * the subscription's `defaultMessageTimeToLive`, which also apply when it has none
 * (message-expiration.md, "Entity-level expiration"). Undefined: it never expires.
 */
function effectiveTtl(message: Message, ...defaults: Array<number | undefined>): number | undefined {
  let ttl = typeof message.ttl === 'number' && message.ttl > 0 ? message.ttl : undefined;
  for (const cap of defaults) if (cap !== undefined) ttl = ttl === undefined ? cap : Math.min(ttl, cap);
  return ttl;
}

function hasSessionId(message: Message): boolean {
  return message.group_id !== undefined && message.group_id !== null;
}

function idText(id: unknown): string {
  if (typeof id === 'string') return id;
  if (Buffer.isBuffer(id)) return `bytes:${id.toString('hex')}`;
  return `${typeof id}:${String(id)}`;
}

function scheduledTime(message: Message): number | undefined {
  const value = (message.message_annotations as Record<string, unknown> | undefined)?.[
    'x-opt-scheduled-enqueue-time'
  ];
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number') return value;
  return undefined;
}
