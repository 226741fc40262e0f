import { randomUUID } from 'node:crypto';
import type { Message } from 'rhea';

/**
 * The message store of the sandbox's Service Bus broker: one `SubQueue` per receivable path
 * (a queue, a subscription, and the `$DeadLetterQueue` of each), with peek-lock semantics as
 * Service Bus has them. It knows nothing about AMQP links: the broker hands it a `Consumer`
 * (something that can take a message now) and reports outcomes back by lock token.
 */

/** Dead-letter reason Service Bus uses when a message ran out of delivery attempts. */
export const MAX_DELIVERY_COUNT_EXCEEDED = 'MaxDeliveryCountExceeded';
/**
 * Dead-letter reason and description of an expired message on an entity with
 * `deadLetteringOnMessageExpiration` (service-bus-dead-letter-queues.md, "Moving messages to the DLQ").
 */
export const TTL_EXPIRED = 'TTLExpiredException';
export const TTL_EXPIRED_DESCRIPTION = 'The message expired and was dead lettered.';

export interface StoredMessage {
  sequenceNumber: number;
  /** The message as the sender sent it (rhea's decoded form), plus dead-letter properties. */
  message: Message;
  enqueuedTime: Date;
  /** Previous delivery attempts: what the AMQP header's `delivery-count` carries (0 on first delivery). */
  deliveryCount: number;
  state: 'active' | 'deferred';
  /** Set when the message sits in a dead-letter queue: the path it came from. */
  deadLetterSource?: string;
  /** When it expires (epoch ms on the broker's clock): enqueued time + its effective time to live. */
  expiresAt?: number;
  /** The message's session (`group_id`), on session-enabled entities. */
  sessionId?: string;
  lock?: MessageLock;
}

export interface MessageLock {
  token: string;
  lockedUntil: Date;
  consumer: Consumer;
  /** Absent for a message of a session: the session's lock governs it. */
  timer: NodeJS.Timeout | undefined;
  session?: SessionLock;
}

/** A session of a session-enabled queue or subscription, as Service Bus keeps it. */
export interface SessionLock {
  readonly id: string;
  /** The receiver holding the session's lock, if any. */
  holder?: Consumer;
  lockedUntil: Date;
  timer?: NodeJS.Timeout;
  /** Session state (`set-session-state`), kept whether or not the session is locked. */
  state?: Buffer;
}

/** A receiver link as the store sees it. */
export interface Consumer {
  /** True while the consumer can take one more message now (link open, credit left). */
  canTake(): boolean;
  /** Hands one message over; `lock` is absent in receive-and-delete mode. */
  take(entry: StoredMessage, lock: MessageLock | undefined): void;
  readonly receiveAndDelete: boolean;
  /**
   * Session-enabled paths: the session a session receiver holds, or `ANY_SESSION` for a consumer
   * that takes every session it can lock, one message of a session at a time holding its lock
   * (the sandbox's simulated consumer, like a session processor with unbounded sessions).
   */
  readonly sessionId?: string | typeof ANY_SESSION;
  /** Called when the broker takes the consumer's session away (its lock expired). */
  sessionLost?(sessionId: string): void;
}

/** See `Consumer.sessionId`. */
export const ANY_SESSION: unique symbol = Symbol('any session');

export interface SubQueueOptions {
  /** Undefined for a dead-letter queue: messages there are never dead-lettered again. */
  maxDeliveryCount?: number;
  lockDurationMs: number;
  /** Session-enabled queue or subscription (its dead-letter queue never is). */
  requiresSession?: boolean;
  /** Expired messages go to the dead-letter queue (`TTLExpiredException`) instead of being dropped. */
  deadLetteringOnMessageExpiration?: boolean;
  /** The broker's clock (epoch ms) for message expiry; locks always run on wall time. Default: `Date.now`. */
  now?: () => number;
}

/** The outcome of accepting a session. */
export type AcceptSessionResult =
  | { ok: true; sessionId: string; lockedUntil: Date }
  | { ok: false; reason: 'locked' | 'none' };

/** Outcome of a settlement: `lockLost` when the token is unknown or its lock has expired. */
export type SettleResult = { ok: true } | { ok: false; lockLost: true };

/** A read-only view of a stored message, for the broker's inspection API. */
export interface MessageView {
  sequenceNumber: number;
  messageId?: string;
  body: unknown;
  applicationProperties: Record<string, unknown>;
  /** Previous delivery attempts (the AMQP header value; the .NET SDK and the Functions host report this + 1). */
  deliveryCount: number;
  state: 'active' | 'deferred';
  locked: boolean;
  enqueuedTime: Date;
  expiresAt?: Date;
  sessionId?: string;
  deadLetterReason?: string;
  deadLetterErrorDescription?: string;
  deadLetterSource?: string;
}

/** The holder of locks taken through `$management` (deferred messages): no link to give back. */
const MANAGEMENT_CONSUMER: Consumer = {
  canTake: () => false,
  take: () => {},
  receiveAndDelete: false,
};

export class SubQueue {
  /** Ordered by sequence number (unique per sub-queue); locked and deferred ones stay in place. */
  private readonly messages: StoredMessage[] = [];
  private readonly locks = new Map<string, StoredMessage>();
  private readonly consumers: Consumer[] = [];
  private readonly sessions = new Map<string, SessionLock>();
  private nextConsumer = 0;
  private pumping = false;
  private pumpAgain = false;
  private readonly now: () => number;

  constructor(
    /** The path receivers use (`queue`, `queue/$DeadLetterQueue`, `topic/Subscriptions/sub`). */
    readonly path: string,
    readonly options: SubQueueOptions,
    private readonly deadLetterQueue: SubQueue | undefined,
  ) {
    this.now = options.now ?? Date.now;
  }

  get deadLetter(): SubQueue | undefined {
    return this.deadLetterQueue;
  }

  get requiresSession(): boolean {
    return this.options.requiresSession === true;
  }

  /** How many messages it holds (active, deferred and locked). */
  get size(): number {
    return this.messages.length;
  }

  /** Adds a message (already numbered by its entity) and offers it to waiting consumers. */
  enqueue(entry: StoredMessage): void {
    const last = this.messages[this.messages.length - 1];
    // Sends arrive in sequence order; only a scheduled message reaching its time, or a message
    // dead-lettered out of order, lands behind a newer one and needs a sorted insert.
    if (!last || last.sequenceNumber < entry.sequenceNumber) this.messages.push(entry);
    else this.messages.splice(this.firstIndexFrom(entry.sequenceNumber), 0, entry);
    this.pump();
  }

  /**
   * Dead-letters a message that never became available here (a session-less message reaching a
   * session-enabled subscription): it goes straight to the dead-letter queue.
   */
  enqueueDeadLettered(entry: StoredMessage, reason: string, description: string): void {
    this.deadLetterQueue?.enqueue(this.deadLettered(entry, reason, description));
  }

  addConsumer(consumer: Consumer): void {
    this.consumers.push(consumer);
  }

  /**
   * Removes a consumer. Its locked messages come back right away (counted as a delivery
   * attempt, as an expired lock would be): a closed link can never settle them, and waiting for
   * the lock to expire would only delay them. Its sessions are unlocked.
   */
  removeConsumer(consumer: Consumer): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
    for (const entry of [...this.locks.values()]) {
      if (entry.lock?.consumer === consumer) this.releaseLock(entry, 'link closed');
    }
    for (const session of this.sessions.values()) {
      if (session.holder === consumer) this.unlockSession(session);
    }
    this.pump();
  }

  /** Offers available messages, oldest first, to consumers that can take them (round robin). */
  pump(): void {
    // A pump asked for while one runs (a consumer reacting synchronously) runs after it, so the
    // walk below never sees the list change under it.
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.offerAvailable();
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  private offerAvailable(): void {
    if (!this.consumers.some((consumer) => consumer.canTake())) return;
    const now = this.now();
    let index = 0;
    while (index < this.messages.length) {
      const entry = this.messages[index]!;
      if (entry.lock || entry.state !== 'active') {
        index += 1;
        continue;
      }
      // Service Bus expires messages lazily, when a receiver pulls from the entity
      // (message-expiration.md: "not enforced when no client is actively listening").
      if (entry.expiresAt !== undefined && entry.expiresAt <= now && this.deadLetterQueue) {
        this.expire(entry);
        continue;
      }
      const consumer = this.requiresSession ? this.sessionConsumerFor(entry) : this.pickConsumer();
      if (!consumer) {
        if (this.requiresSession) {
          index += 1;
          continue;
        }
        return;
      }
      if (consumer.receiveAndDelete) {
        this.messages.splice(index, 1);
        consumer.take(entry, undefined);
        continue;
      }
      consumer.take(entry, this.lock(entry, consumer));
      index += 1;
    }
  }

  complete(token: string): SettleResult {
    const entry = this.lockedEntry(token);
    if (!entry) return { ok: false, lockLost: true };
    const session = entry.lock?.session;
    this.remove(entry);
    this.afterSettle(session);
    this.pump();
    return { ok: true };
  }

  /** Abandon: the message becomes available again with one more delivery attempt counted. */
  abandon(token: string, propertiesToModify?: Record<string, unknown>): SettleResult {
    const entry = this.lockedEntry(token);
    if (!entry) return { ok: false, lockLost: true };
    const session = entry.lock?.session;
    this.modifyProperties(entry, propertiesToModify);
    this.releaseLock(entry, 'abandoned');
    this.afterSettle(session);
    this.pump();
    return { ok: true };
  }

  defer(token: string, propertiesToModify?: Record<string, unknown>): SettleResult {
    const entry = this.lockedEntry(token);
    if (!entry) return { ok: false, lockLost: true };
    const session = entry.lock?.session;
    this.modifyProperties(entry, propertiesToModify);
    this.unlock(entry);
    entry.state = 'deferred';
    this.afterSettle(session);
    return { ok: true };
  }

  deadLetterByToken(
    token: string,
    reason: string | undefined,
    description: string | undefined,
    propertiesToModify?: Record<string, unknown>,
  ): SettleResult {
    const entry = this.lockedEntry(token);
    if (!entry) return { ok: false, lockLost: true };
    const session = entry.lock?.session;
    this.modifyProperties(entry, propertiesToModify);
    this.unlock(entry);
    this.moveToDeadLetter(entry, reason, description);
    this.afterSettle(session);
    this.pump();
    return { ok: true };
  }

  /**
   * Renews a lock for another lock duration; undefined when the lock is already lost. A message of
   * a session has no lock of its own (Service Bus refuses to renew it): undefined.
   */
  renewLock(token: string): Date | undefined {
    const entry = this.lockedEntry(token);
    if (!entry?.lock || entry.lock.session) return undefined;
    clearTimeout(entry.lock.timer);
    entry.lock.lockedUntil = new Date(Date.now() + this.options.lockDurationMs);
    entry.lock.timer = this.expiryTimer(entry);
    return entry.lock.lockedUntil;
  }

  /** Messages from `fromSequenceNumber` on, locked or not, without touching them (Service Bus peek). */
  peek(fromSequenceNumber: number, maxCount: number, sessionId?: string): StoredMessage[] {
    const start = this.firstIndexFrom(fromSequenceNumber);
    if (sessionId === undefined) return this.messages.slice(start, start + Math.max(0, maxCount));
    const found: StoredMessage[] = [];
    for (let i = start; i < this.messages.length && found.length < maxCount; i++) {
      if (this.messages[i]!.sessionId === sessionId) found.push(this.messages[i]!);
    }
    return found;
  }

  /** A deferred message by sequence number (what receive-by-sequence-number may hand out). */
  findDeferred(sequenceNumber: number, sessionId?: string): StoredMessage | undefined {
    const entry = this.messages[this.firstIndexFrom(sequenceNumber)];
    if (entry?.sequenceNumber !== sequenceNumber || entry.state !== 'deferred') return undefined;
    if (sessionId !== undefined && entry.sessionId !== sessionId) return undefined;
    return entry;
  }

  /**
   * Locks a deferred message for a receive through `$management` (peek-lock) or removes it
   * (receive-and-delete). Undefined when it is already locked.
   */
  takeDeferred(entry: StoredMessage, receiveAndDelete: boolean): MessageLock | undefined | 'removed' {
    if (entry.lock) return undefined;
    if (receiveAndDelete) {
      this.remove(entry);
      return 'removed';
    }
    return this.lock(entry, MANAGEMENT_CONSUMER);
  }

  /**
   * Locks a session for a session receiver: the named one (free, or already this consumer's), or
   * the next one with an available message. `locked` when another receiver holds the named
   * session; `none` when no session has a message to hand out.
   */
  acceptSession(consumer: Consumer, sessionId: string | undefined): AcceptSessionResult {
    let id = sessionId;
    if (id === undefined) {
      for (const entry of this.messages) {
        if (entry.lock || entry.state !== 'active' || entry.sessionId === undefined) continue;
        const held = this.sessions.get(entry.sessionId)?.holder;
        if (held === undefined || held === consumer) {
          id = entry.sessionId;
          break;
        }
      }
      if (id === undefined) return { ok: false, reason: 'none' };
    }
    const session = this.session(id);
    if (session.holder !== undefined && session.holder !== consumer) return { ok: false, reason: 'locked' };
    this.lockSession(session, consumer);
    return { ok: true, sessionId: id, lockedUntil: session.lockedUntil };
  }

  /** Renews a session's lock (`renew-session-lock`); undefined when nobody holds it. */
  renewSessionLock(sessionId: string): Date | undefined {
    const session = this.sessions.get(sessionId);
    if (!session?.holder || session.lockedUntil.getTime() <= Date.now()) return undefined;
    this.lockSession(session, session.holder);
    return session.lockedUntil;
  }

  /** Whether a session's lock is held (by anyone) right now. */
  sessionLocked(sessionId: string): boolean {
    const session = this.sessions.get(sessionId);
    return session?.holder !== undefined && session.lockedUntil.getTime() > Date.now();
  }

  getSessionState(sessionId: string): Buffer | undefined {
    return this.sessions.get(sessionId)?.state;
  }

  /** Sets (or, with undefined, clears) a session's state. */
  setSessionState(sessionId: string, state: Buffer | undefined): void {
    this.session(sessionId).state = state;
  }

  /** Ids of the sessions that hold messages or state, in the order of their first message. */
  sessionIds(): string[] {
    const ids = new Set<string>();
    for (const entry of this.messages) if (entry.sessionId !== undefined) ids.add(entry.sessionId);
    for (const [id, session] of this.sessions) if (session.state !== undefined) ids.add(id);
    return [...ids];
  }

  /** Every message held here, as a read-only view. */
  list(): MessageView[] {
    return this.messages.map(toView);
  }

  /** Counts by state, for inspection (expired messages not yet collected count as active, as in Service Bus). */
  counts(): { active: number; deferred: number; locked: number } {
    let deferred = 0;
    let locked = 0;
    for (const entry of this.messages) {
      if (entry.state === 'deferred') deferred += 1;
      if (entry.lock) locked += 1;
    }
    return { active: this.messages.length - deferred, deferred, locked };
  }

  /** The first `max` messages, as views (bounded inspection). */
  head(max: number): MessageView[] {
    return this.messages.slice(0, Math.max(0, max)).map(toView);
  }

  /** Stops every lock timer (broker shutdown); messages stay where they are. */
  dispose(): void {
    for (const entry of this.locks.values()) if (entry.lock) clearTimeout(entry.lock.timer);
    for (const session of this.sessions.values()) clearTimeout(session.timer);
    this.locks.clear();
    this.consumers.length = 0;
  }

  private pickConsumer(): Consumer | undefined {
    for (let i = 0; i < this.consumers.length; i++) {
      const index = (this.nextConsumer + i) % this.consumers.length;
      const consumer = this.consumers[index];
      if (consumer?.canTake()) {
        this.nextConsumer = index + 1;
        return consumer;
      }
    }
    return undefined;
  }

  /**
   * The consumer a session message goes to: the session's holder when it can take one more, or a
   * consumer of any session when nobody holds it (which then locks it). Messages of one session
   * go to one receiver at a time, in order.
   */
  private sessionConsumerFor(entry: StoredMessage): Consumer | undefined {
    if (entry.sessionId === undefined) return undefined;
    const session = this.sessions.get(entry.sessionId);
    const holder = session?.holder;
    if (holder) return holder.canTake() ? holder : undefined;
    for (let i = 0; i < this.consumers.length; i++) {
      const index = (this.nextConsumer + i) % this.consumers.length;
      const consumer = this.consumers[index]!;
      if (consumer.sessionId === ANY_SESSION && consumer.canTake()) {
        this.nextConsumer = index + 1;
        this.lockSession(this.session(entry.sessionId), consumer);
        return consumer;
      }
    }
    return undefined;
  }

  private session(id: string): SessionLock {
    let session = this.sessions.get(id);
    if (!session) {
      session = { id, lockedUntil: new Date(0) };
      this.sessions.set(id, session);
    }
    return session;
  }

  private lockSession(session: SessionLock, consumer: Consumer): void {
    clearTimeout(session.timer);
    session.holder = consumer;
    session.lockedUntil = new Date(Date.now() + this.options.lockDurationMs);
    for (const entry of this.locks.values()) {
      if (entry.lock?.session === session) entry.lock.lockedUntil = session.lockedUntil;
    }
    const timer = setTimeout(() => {
      if (session.holder !== consumer) return;
      this.unlockSession(session);
      consumer.sessionLost?.(session.id);
      this.pump();
    }, this.options.lockDurationMs);
    timer.unref();
    session.timer = timer;
  }

  /** Releases a session: its messages still locked by the holder come back, one attempt counted each. */
  private unlockSession(session: SessionLock): void {
    clearTimeout(session.timer);
    session.timer = undefined;
    for (const entry of [...this.locks.values()]) {
      if (entry.lock?.session === session) this.releaseLock(entry, 'session lock lost');
    }
    session.holder = undefined;
    session.lockedUntil = new Date(0);
    if (session.state === undefined && !this.messages.some((m) => m.sessionId === session.id)) {
      this.sessions.delete(session.id);
    }
  }

  /** A consumer of any session lets a session go once it holds none of its messages. */
  private afterSettle(session: SessionLock | undefined): void {
    if (!session || session.holder?.sessionId !== ANY_SESSION) return;
    for (const entry of this.locks.values()) if (entry.lock?.session === session) return;
    this.unlockSession(session);
  }

  private lock(entry: StoredMessage, consumer: Consumer): MessageLock {
    const session = entry.sessionId === undefined ? undefined : this.sessions.get(entry.sessionId);
    if (session && session.holder === consumer) {
      const lock: MessageLock = {
        token: randomUUID(),
        lockedUntil: session.lockedUntil,
        consumer,
        timer: undefined,
        session,
      };
      entry.lock = lock;
      this.locks.set(lock.token, entry);
      return lock;
    }
    const lock: MessageLock = {
      token: randomUUID(),
      lockedUntil: new Date(Date.now() + this.options.lockDurationMs),
      consumer,
      timer: undefined,
    };
    entry.lock = lock;
    lock.timer = this.expiryTimer(entry);
    this.locks.set(lock.token, entry);
    return lock;
  }

  private expiryTimer(entry: StoredMessage): NodeJS.Timeout {
    const lock = entry.lock!;
    const timer = setTimeout(
      () => {
        if (entry.lock !== lock) return;
        this.releaseLock(entry, 'lock expired');
        this.pump();
      },
      Math.max(0, lock.lockedUntil.getTime() - Date.now()),
    );
    timer.unref();
    return timer;
  }

  private lockedEntry(token: string): StoredMessage | undefined {
    const entry = this.locks.get(token.toLowerCase());
    const lock = entry?.lock;
    if (!lock) return undefined;
    if (lock.session) {
      // A message of a session is settleable while its receiver holds the session.
      const session = lock.session;
      if (session.holder !== lock.consumer || session.lockedUntil.getTime() <= Date.now()) return undefined;
      return entry;
    }
    if (lock.lockedUntil.getTime() <= Date.now()) return undefined;
    return entry;
  }

  private unlock(entry: StoredMessage): void {
    if (!entry.lock) return;
    clearTimeout(entry.lock.timer);
    this.locks.delete(entry.lock.token);
    entry.lock = undefined;
  }

  /**
   * A delivery attempt ended without settlement: count it, and dead-letter past maxDeliveryCount.
   * An expired message whose lock ends expires now (message-expiration.md: "If the lock expires or
   * the message is abandoned, the expiration takes immediate effect").
   */
  private releaseLock(entry: StoredMessage, _why: string): void {
    this.unlock(entry);
    entry.deliveryCount += 1;
    const max = this.options.maxDeliveryCount;
    if (max !== undefined && entry.deliveryCount >= max) {
      this.moveToDeadLetter(
        entry,
        MAX_DELIVERY_COUNT_EXCEEDED,
        `Message could not be consumed after ${max} delivery attempts.`,
      );
      return;
    }
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.now() && this.deadLetterQueue)
      this.expire(entry);
  }

  /** Drops an expired message, or moves it to the dead-letter queue when the entity says so. */
  private expire(entry: StoredMessage): void {
    if (this.options.deadLetteringOnMessageExpiration) {
      this.moveToDeadLetter(entry, TTL_EXPIRED, TTL_EXPIRED_DESCRIPTION);
    } else {
      this.remove(entry);
    }
  }

  private moveToDeadLetter(entry: StoredMessage, reason?: string, description?: string): void {
    const target = this.deadLetterQueue;
    if (!target) {
      // A dead-letter queue has no dead-letter queue of its own: the message stays available there.
      return;
    }
    this.remove(entry);
    target.enqueue(this.deadLettered(entry, reason, description));
  }

  /** The copy of a message the dead-letter queue holds: reason and description added, no expiry. */
  private deadLettered(entry: StoredMessage, reason?: string, description?: string): StoredMessage {
    const applicationProperties: Record<string, unknown> = {
      ...(entry.message.application_properties ?? {}),
    };
    if (reason !== undefined) applicationProperties['DeadLetterReason'] = reason;
    if (description !== undefined) applicationProperties['DeadLetterErrorDescription'] = description;
    const copy: StoredMessage = {
      ...entry,
      message: { ...entry.message, application_properties: applicationProperties },
      state: 'active',
      lock: undefined,
      deadLetterSource: this.path,
    };
    // Time to live is not observed in a dead-letter queue (service-bus-dead-letter-queues.md).
    delete copy.expiresAt;
    return copy;
  }

  private modifyProperties(entry: StoredMessage, properties?: Record<string, unknown>): void {
    if (!properties || Object.keys(properties).length === 0) return;
    entry.message = {
      ...entry.message,
      application_properties: { ...(entry.message.application_properties ?? {}), ...properties },
    };
  }

  private remove(entry: StoredMessage): void {
    this.unlock(entry);
    let index = this.firstIndexFrom(entry.sequenceNumber);
    if (this.messages[index] !== entry) index = this.messages.indexOf(entry);
    if (index >= 0) this.messages.splice(index, 1);
  }

  /** Index of the first message numbered `sequenceNumber` or later (binary search). */
  private firstIndexFrom(sequenceNumber: number): number {
    let low = 0;
    let high = this.messages.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.messages[mid]!.sequenceNumber < sequenceNumber) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

function toView(entry: StoredMessage): MessageView {
  const props = (entry.message.application_properties ?? {}) as Record<string, unknown>;
  const view: MessageView = {
    sequenceNumber: entry.sequenceNumber,
    body: bodyOf(entry.message),
    applicationProperties: { ...props },
    deliveryCount: entry.deliveryCount,
    state: entry.state,
    locked: entry.lock !== undefined,
    enqueuedTime: entry.enqueuedTime,
  };
  if (entry.message.message_id !== undefined) view.messageId = String(entry.message.message_id);
  if (typeof props['DeadLetterReason'] === 'string') view.deadLetterReason = props['DeadLetterReason'];
  if (typeof props['DeadLetterErrorDescription'] === 'string') {
    view.deadLetterErrorDescription = props['DeadLetterErrorDescription'];
  }
  if (entry.deadLetterSource !== undefined) view.deadLetterSource = entry.deadLetterSource;
  if (entry.expiresAt !== undefined) view.expiresAt = new Date(entry.expiresAt);
  if (entry.sessionId !== undefined) view.sessionId = entry.sessionId;
  return view;
}

/** The body as the SDK would hand it out: a data section's bytes, JSON parsed when they parse. */
function bodyOf(message: Message): unknown {
  const body = message.body as unknown;
  if (body && typeof body === 'object' && 'typecode' in body && 'content' in body) {
    const content = (body as { content: unknown }).content;
    if (Buffer.isBuffer(content)) {
      const text = content.toString('utf8');
      try {
        return JSON.parse(text);
      } catch {
        return content;
      }
    }
    return content;
  }
  return body;
}
