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
  lock?: MessageLock;
}

export interface MessageLock {
  token: string;
  lockedUntil: Date;
  consumer: Consumer;
  timer: NodeJS.Timeout;
}

/** A receiver link as the store sees it. */
export interface Consumer {
  /** True while the consumer can take one more message now (link open, credit left). */
  canTake(): boolean;
  /** Hands one message over; `lock` is absent in receive-and-delete mode. */
  take(entry: StoredMessage, lock: MessageLock | undefined): void;
  readonly receiveAndDelete: boolean;
}

export interface SubQueueOptions {
  /** Undefined for a dead-letter queue: messages there are never dead-lettered again. */
  maxDeliveryCount?: number;
  lockDurationMs: number;
}

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
  private nextConsumer = 0;
  private pumping = false;
  private pumpAgain = false;

  constructor(
    /** The path receivers use (`queue`, `queue/$DeadLetterQueue`, `topic/Subscriptions/sub`). */
    readonly path: string,
    readonly options: SubQueueOptions,
    private readonly deadLetterQueue: SubQueue | undefined,
  ) {}

  get deadLetter(): SubQueue | undefined {
    return this.deadLetterQueue;
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

  addConsumer(consumer: Consumer): void {
    this.consumers.push(consumer);
  }

  /**
   * Removes a consumer. Its locked messages come back right away (counted as a delivery
   * attempt, as an expired lock would be): a closed link can never settle them, and waiting for
   * the lock to expire would only delay them.
   */
  removeConsumer(consumer: Consumer): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
    for (const entry of [...this.locks.values()]) {
      if (entry.lock?.consumer === consumer) this.releaseLock(entry, 'link closed');
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
    let index = 0;
    while (index < this.messages.length) {
      const entry = this.messages[index]!;
      if (entry.lock || entry.state !== 'active') {
        index += 1;
        continue;
      }
      const consumer = this.pickConsumer();
      if (!consumer) return;
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
    this.remove(entry);
    this.pump();
    return { ok: true };
  }

  /** Abandon: the message becomes available again with one more delivery attempt counted. */
  abandon(token: string, propertiesToModify?: Record<string, unknown>): SettleResult {
    const entry = this.lockedEntry(token);
    if (!entry) return { ok: false, lockLost: true };
    this.modifyProperties(entry, propertiesToModify);
    this.releaseLock(entry, 'abandoned');
    this.pump();
    return { ok: true };
  }

  defer(token: string, propertiesToModify?: Record<string, unknown>): SettleResult {
    const entry = this.lockedEntry(token);
    if (!entry) return { ok: false, lockLost: true };
    this.modifyProperties(entry, propertiesToModify);
    this.unlock(entry);
    entry.state = 'deferred';
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
    this.modifyProperties(entry, propertiesToModify);
    this.unlock(entry);
    this.moveToDeadLetter(entry, reason, description);
    this.pump();
    return { ok: true };
  }

  /** Renews a lock for another lock duration; undefined when the lock is already lost. */
  renewLock(token: string): Date | undefined {
    const entry = this.lockedEntry(token);
    if (!entry?.lock) return undefined;
    clearTimeout(entry.lock.timer);
    entry.lock.lockedUntil = new Date(Date.now() + this.options.lockDurationMs);
    entry.lock.timer = this.expiryTimer(entry);
    return entry.lock.lockedUntil;
  }

  /** Messages from `fromSequenceNumber` on, locked or not, without touching them (Service Bus peek). */
  peek(fromSequenceNumber: number, maxCount: number): StoredMessage[] {
    const start = this.firstIndexFrom(fromSequenceNumber);
    return this.messages.slice(start, start + Math.max(0, maxCount));
  }

  /** A deferred message by sequence number (what receive-by-sequence-number may hand out). */
  findDeferred(sequenceNumber: number): StoredMessage | undefined {
    const entry = this.messages[this.firstIndexFrom(sequenceNumber)];
    return entry?.sequenceNumber === sequenceNumber && entry.state === 'deferred' ? entry : undefined;
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

  /** Every message held here, as a read-only view. */
  list(): MessageView[] {
    return this.messages.map(toView);
  }

  /** Stops every lock timer (broker shutdown); messages stay where they are. */
  dispose(): void {
    for (const entry of this.locks.values()) if (entry.lock) clearTimeout(entry.lock.timer);
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

  private lock(entry: StoredMessage, consumer: Consumer): MessageLock {
    const lock: MessageLock = {
      token: randomUUID(),
      lockedUntil: new Date(Date.now() + this.options.lockDurationMs),
      consumer,
      timer: undefined as unknown as NodeJS.Timeout,
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
    if (!entry?.lock || entry.lock.lockedUntil.getTime() <= Date.now()) return undefined;
    return entry;
  }

  private unlock(entry: StoredMessage): void {
    if (!entry.lock) return;
    clearTimeout(entry.lock.timer);
    this.locks.delete(entry.lock.token);
    entry.lock = undefined;
  }

  /** A delivery attempt ended without settlement: count it, and dead-letter past maxDeliveryCount. */
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
    }
  }

  private moveToDeadLetter(entry: StoredMessage, reason?: string, description?: string): void {
    const target = this.deadLetterQueue;
    if (!target) {
      // A dead-letter queue has no dead-letter queue of its own: the message stays available there.
      return;
    }
    this.remove(entry);
    const applicationProperties: Record<string, unknown> = {
      ...(entry.message.application_properties ?? {}),
    };
    if (reason !== undefined) applicationProperties['DeadLetterReason'] = reason;
    if (description !== undefined) applicationProperties['DeadLetterErrorDescription'] = description;
    target.enqueue({
      ...entry,
      message: { ...entry.message, application_properties: applicationProperties },
      state: 'active',
      lock: undefined,
      deadLetterSource: this.path,
    });
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
