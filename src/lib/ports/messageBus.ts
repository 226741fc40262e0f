/**
 * Service Bus, as a port: send (batches filled to the negotiated size), peek and receive from a
 * queue, a subscription or their dead-letter queues, settle, and the subscription rules that
 * keep a replay through a topic to the one subscription it is meant for.
 *
 * Sequence numbers travel as decimal strings: on partitioned entities they use the high bits and
 * exceed what a JS number holds exactly.
 */

/** Where messages are read from. */
export type BusSource =
  | { queue: string; subQueue?: 'deadLetter' }
  | { topic: string; subscription: string; subQueue?: 'deadLetter' };

/**
 * A body as it travels: bytes (an AMQP data section: what every SDK sends by default; JSON is
 * bytes too), or an AMQP value or sequence section (sent by AMQP clients; kept as they are).
 */
export type BusMessageBody =
  | { type: 'data'; bytes: Uint8Array }
  | { type: 'value'; value: unknown }
  | { type: 'sequence'; sequences: unknown[][] };

export type ApplicationPropertyValue = string | number | boolean | Date | null;

/** A message to send: the fields a replay keeps, and what it may add. */
export interface OutgoingBusMessage {
  body: BusMessageBody;
  messageId?: string;
  contentType?: string;
  correlationId?: string;
  sessionId?: string;
  replyToSessionId?: string;
  subject?: string;
  to?: string;
  replyTo?: string;
  partitionKey?: string;
  /** Relative time to live; the entity's default caps it. */
  timeToLiveMs?: number;
  /** Enqueued at this time instead of now (a scheduled message). */
  scheduledEnqueueTime?: Date;
  applicationProperties?: Record<string, ApplicationPropertyValue>;
}

/** A message as read from an entity, with what the broker stamped on it. */
export interface ReceivedBusMessage extends OutgoingBusMessage {
  messageId: string;
  sequenceNumber: string;
  enqueuedTime: Date;
  expiresAt?: Date;
  /**
   * Delivery attempts before this one, as the JS SDK reports it (the AMQP header; .NET and the
   * Functions host report this + 1).
   */
  deliveryCount: number;
  state: 'active' | 'deferred' | 'scheduled';
  deadLetterReason?: string;
  deadLetterErrorDescription?: string;
  /** The entity a dead-lettered message came from. */
  deadLetterSource?: string;
}

/** A message received in peek-lock: settle it with `complete` / `abandon` / `deadLetter` / `defer`. */
export interface LockedBusMessage extends ReceivedBusMessage {
  lockToken: string;
  lockedUntil: Date;
}

/** What one batch of a send carried (for progress and the fill ratio). */
export interface SentBatch {
  messages: number;
  /** The batch's encoded size. */
  sizeInBytes: number;
  /** Its capacity: the link's negotiated max message size. */
  maxSizeInBytes: number;
}

export interface SendReport {
  messages: number;
  batches: number;
  bytes: number;
  capacity: number;
  /** bytes ÷ capacity over every batch sent (the last, partial one included). */
  fillRatio: number;
}

export interface SendOptions {
  abortSignal?: AbortSignal;
  /** Called after each batch is sent (progress; a run records it). */
  onBatch?: (batch: SentBatch) => void | Promise<void>;
}

/** A subscription rule: a SQL filter (true / false filters read as `1=1` / `1=0`) or a correlation filter. */
export interface SubscriptionRule {
  name: string;
  filter: { sql: string } | { correlation: CorrelationFilter };
  /** A SQL rule action (`SET ...`), as read; the rules the app creates have none. */
  action?: string;
}

export interface CorrelationFilter {
  correlationId?: string;
  messageId?: string;
  to?: string;
  replyTo?: string;
  subject?: string;
  sessionId?: string;
  replyToSessionId?: string;
  contentType?: string;
  applicationProperties?: Record<string, string | number | boolean>;
}

/** How a settlement by sequence number went: which were found and settled, which were not seen. */
export interface SettleBySequenceReport {
  settled: string[];
  notFound: string[];
}

export interface MessageBus {
  /**
   * Sends messages to a queue or topic, streaming: batches are filled with `tryAddMessage` up to
   * the negotiated size and sent one at a time. A message too large for an empty batch throws a
   * `ValidationError` (the batches before it are sent: `onBatch` said which).
   */
  send(
    entity: string,
    messages: Iterable<OutgoingBusMessage> | AsyncIterable<OutgoingBusMessage>,
    options?: SendOptions,
  ): Promise<SendReport>;
  /** Browses messages without locking them (dead-letter queues included). */
  peek(
    source: BusSource,
    options: { maxCount: number; fromSequenceNumber?: string; abortSignal?: AbortSignal },
  ): Promise<ReceivedBusMessage[]>;
  /** Receives up to `maxCount` messages in peek-lock, waiting at most `maxWaitMs` for the first. */
  receive(
    source: BusSource,
    options: { maxCount: number; maxWaitMs: number; abortSignal?: AbortSignal },
  ): Promise<LockedBusMessage[]>;
  /** Receives deferred messages by sequence number, in peek-lock. */
  receiveDeferred(source: BusSource, sequenceNumbers: string[]): Promise<LockedBusMessage[]>;
  /**
   * Finds messages by sequence number among the first `maxScan` a receiver gets (locking them in
   * turn) and settles those; every other one is abandoned at once. On a dead-letter queue an
   * abandon only counts an attempt: nothing is lost.
   */
  settleBySequenceNumber(
    source: BusSource,
    sequenceNumbers: string[],
    action: { complete: true } | { deadLetter: { reason: string; description: string } },
    options: { maxScan: number; maxWaitMs: number },
  ): Promise<SettleBySequenceReport>;
  complete(message: LockedBusMessage): Promise<void>;
  abandon(
    message: LockedBusMessage,
    propertiesToModify?: Record<string, ApplicationPropertyValue>,
  ): Promise<void>;
  deadLetter(message: LockedBusMessage, details: { reason: string; description: string }): Promise<void>;
  defer(message: LockedBusMessage): Promise<void>;
  renewLock(message: LockedBusMessage): Promise<Date>;
  listRules(topic: string, subscription: string): Promise<SubscriptionRule[]>;
  createRule(topic: string, subscription: string, rule: SubscriptionRule): Promise<void>;
  deleteRule(topic: string, subscription: string, name: string): Promise<void>;
  /**
   * Makes a subscription's rules replay-isolated (see `replayIsolation`): every other rule is
   * replaced by its guarded form (created first, then the old one deleted, so no message is missed
   * in between), then the replay rule is added. Does nothing when already isolated.
   */
  ensureReplayIsolation(
    topic: string,
    subscription: string,
  ): Promise<{ created: string[]; deleted: string[] }>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Replay through a topic to one subscription
//
// Rules of a subscription are OR'ed: a message enters when ANY rule matches (Service Bus
// topic-filters.md). So a replay through the topic reaches only the subscription it names when
// (1) every subscription of the topic has the replay rule admitting messages that carry
// `StampkeeperReplayTo = '<its name>'`, and (2) every OTHER rule of every subscription excludes
// messages carrying the property (`... AND StampkeeperReplayTo IS NULL`). A subscription that keeps
// the `$Default` true filter takes every replay: replaying through its topic is then refused.

/** The application property a replay through a topic carries: the one subscription it is for. */
export const REPLAY_TARGET_PROPERTY = 'StampkeeperReplayTo';
/** The name of the rule admitting replays meant for its subscription. */
export const REPLAY_RULE_NAME = 'stampkeeper-replay';
const GUARD = `${REPLAY_TARGET_PROPERTY} IS NULL`;
const GUARDED_SUFFIX = '-guarded';
const MAX_RULE_NAME = 50;

/** The rule admitting replays meant for `subscription`. */
export function replayRule(subscription: string): SubscriptionRule {
  return {
    name: REPLAY_RULE_NAME,
    filter: { correlation: { applicationProperties: { [REPLAY_TARGET_PROPERTY]: subscription } } },
  };
}

/**
 * The guarded form of a workload rule: the same messages, replays excluded. A correlation
 * filter becomes the equivalent SQL filter (its property names then match case-insensitively).
 */
export function guardedRule(rule: SubscriptionRule): SubscriptionRule {
  const base =
    rule.name.length + GUARDED_SUFFIX.length > MAX_RULE_NAME
      ? rule.name.slice(0, MAX_RULE_NAME - GUARDED_SUFFIX.length)
      : rule.name;
  const name = `${base}${GUARDED_SUFFIX}`;
  const expression =
    'sql' in rule.filter ? rule.filter.sql.trim() : correlationToSql(rule.filter.correlation);
  if (expression === '1=1') return { name, filter: { sql: GUARD } };
  return { name, filter: { sql: `(${expression}) AND ${GUARD}` } };
}

/** Why a subscription's rules do not keep replays to it (empty when they do). */
export function replayIsolation(
  rules: SubscriptionRule[],
  subscription: string,
): { isolated: boolean; problems: string[] } {
  const problems: string[] = [];
  let hasReplayRule = false;
  for (const rule of rules) {
    if (rule.action !== undefined) {
      problems.push(
        `rule '${rule.name}' has an action, which makes a copy of every message it matches: replays cannot be kept from it`,
      );
      continue;
    }
    if (isReplayRuleFor(rule, subscription)) {
      hasReplayRule = true;
      continue;
    }
    if ('sql' in rule.filter && (rule.filter.sql.trim() === '1=0' || isGuarded(rule.filter.sql))) continue;
    problems.push(
      `rule '${rule.name}' admits replays meant for other subscriptions: its filter must end with "AND ${GUARD}" around the original expression`,
    );
  }
  if (!hasReplayRule) {
    problems.push(
      `no '${REPLAY_RULE_NAME}' rule admits replays meant for '${subscription}' (${REPLAY_TARGET_PROPERTY} = '${subscription}')`,
    );
  }
  return { isolated: problems.length === 0, problems };
}

function isReplayRuleFor(rule: SubscriptionRule, subscription: string): boolean {
  if (rule.name !== REPLAY_RULE_NAME || !('correlation' in rule.filter)) return false;
  const { applicationProperties, ...system } = rule.filter.correlation;
  const props = Object.entries(applicationProperties ?? {});
  const systemSet = Object.values(system).some((v) => v !== undefined && v !== null);
  return (
    !systemSet &&
    props.length === 1 &&
    props[0]![0] === REPLAY_TARGET_PROPERTY &&
    props[0]![1] === subscription
  );
}

/**
 * Whether a SQL expression is `StampkeeperReplayTo IS NULL`, or `(<e>) AND StampkeeperReplayTo IS NULL`
 * where the opening parenthesis closes right before the AND (so no OR escapes the guard).
 */
export function isGuarded(expression: string): boolean {
  const text = expression.trim();
  if (text.toLowerCase() === GUARD.toLowerCase()) return true;
  const suffix = ` AND ${GUARD}`;
  if (!text.toLowerCase().endsWith(suffix.toLowerCase()) || !text.startsWith('(')) return false;
  const inner = text.slice(0, text.length - suffix.length);
  return inner.endsWith(')') && closingParenthesis(inner, 0) === inner.length - 1;
}

/** Index of the parenthesis closing the one at `open`, skipping strings and delimited identifiers; -1 if none. */
function closingParenthesis(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === '[') {
      const close = c === '[' ? ']' : c;
      i += 1;
      while (i < text.length) {
        if (text[i] === close) {
          if (text[i + 1] === close) i += 2;
          else break;
        } else i += 1;
      }
      continue;
    }
    if (c === '(') depth += 1;
    else if (c === ')') {
      depth -= 1;
      if (depth === 0) return i;
    }
  }
  return -1;
}

const CORRELATION_SQL: Array<[keyof Omit<CorrelationFilter, 'applicationProperties'>, string]> = [
  ['correlationId', 'sys.CorrelationId'],
  ['messageId', 'sys.MessageId'],
  ['to', 'sys.To'],
  ['replyTo', 'sys.ReplyTo'],
  ['subject', 'sys.Label'],
  ['sessionId', 'sys.SessionId'],
  ['replyToSessionId', 'sys.ReplyToSessionId'],
  ['contentType', 'sys.ContentType'],
];

function correlationToSql(filter: CorrelationFilter): string {
  const terms: string[] = [];
  for (const [key, column] of CORRELATION_SQL) {
    const value = filter[key];
    if (value !== undefined && value !== null) terms.push(`${column} = ${sqlLiteral(value)}`);
  }
  for (const [name, value] of Object.entries(filter.applicationProperties ?? {})) {
    terms.push(`[${name.replace(/]/g, ']]')}] = ${sqlLiteral(value)}`);
  }
  return terms.length === 0 ? '1=0' : terms.join(' AND ');
}

function sqlLiteral(value: string | number | boolean): string {
  if (typeof value === 'string') return `'${value.replace(/'/g, "''")}'`;
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  return String(value);
}
