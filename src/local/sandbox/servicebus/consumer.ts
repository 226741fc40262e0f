import { createHash } from 'node:crypto';
import type { Message } from 'rhea';
import type { ConsumerConfig, ConsumerFailRule } from './scenario';
import { ANY_SESSION, type Consumer, type MessageLock, type StoredMessage, type SubQueue } from './store';

/**
 * A simulated consumer of the sandbox: the workload's message handler, working one queue or
 * subscription in peek-lock inside the broker. It fails the messages its scenario rules pick
 * (abandon, so that the broker dead-letters them at max delivery count, or dead-letter at once
 * with a reason) and completes the others, so a message fixed by an operator and replayed goes
 * through. It takes every session of a session-enabled entity, one session's messages in order.
 */

export type ConsumerOutcomeKind = 'completed' | 'abandoned' | 'deadLettered';

export interface ConsumerOutcome {
  /** When it settled (the broker's clock). */
  at: string;
  sequenceNumber: number;
  messageId?: string;
  sessionId?: string;
  /** Previous delivery attempts when it was received. */
  deliveryCount: number;
  outcome: ConsumerOutcomeKind;
  /** The index of the fail rule that failed it. */
  failedBy?: number;
}

export interface ConsumerStats {
  name: string;
  entity: string;
  received: number;
  completed: number;
  abandoned: number;
  deadLettered: number;
  inFlight: number;
  /** The last outcomes, newest last (at most `RECENT_OUTCOMES`). */
  recent: ConsumerOutcome[];
}

/** How many outcomes a consumer remembers for inspection. */
export const RECENT_OUTCOMES = 50;

export class SimulatedConsumer implements Consumer {
  readonly receiveAndDelete = false;
  readonly sessionId: typeof ANY_SESSION | undefined;
  private queue: SubQueue | undefined;
  private inFlight = 0;
  private stopped = false;
  private readonly counts = { received: 0, completed: 0, abandoned: 0, deadLettered: 0 };
  private readonly recent: ConsumerOutcome[] = [];

  constructor(
    readonly config: ConsumerConfig,
    private readonly now: () => number,
    requiresSession: boolean,
  ) {
    this.sessionId = requiresSession ? ANY_SESSION : undefined;
  }

  /** Binds it to the store path it was attached to (see `ServiceBusBroker.attachConsumer`). */
  bind(queue: SubQueue): void {
    this.queue = queue;
  }

  canTake(): boolean {
    return !this.stopped && this.queue !== undefined && this.inFlight < this.config.maxConcurrent;
  }

  take(entry: StoredMessage, lock: MessageLock | undefined): void {
    if (!lock) return;
    this.inFlight += 1;
    this.counts.received += 1;
    const deliveryCount = entry.deliveryCount;
    // Handled on a later turn, as a real handler would be: never inside the broker's hand-out.
    setImmediate(() => this.handle(entry, lock.token, deliveryCount));
  }

  /** Stops taking messages; the ones it holds go back to the entity (one attempt counted each). */
  stop(): void {
    this.stopped = true;
    this.queue?.removeConsumer(this);
  }

  stats(): ConsumerStats {
    return {
      name: this.config.name,
      entity: this.config.entity,
      ...this.counts,
      inFlight: this.inFlight,
      recent: this.recent.map((o) => ({ ...o })),
    };
  }

  private handle(entry: StoredMessage, token: string, deliveryCount: number): void {
    this.inFlight -= 1;
    const queue = this.queue;
    if (!queue || this.stopped) return;
    const failedBy = this.config.fail.findIndex((rule) => failsOn(rule, entry.message, this.config.name));
    const rule = failedBy >= 0 ? this.config.fail[failedBy] : undefined;
    let outcome: ConsumerOutcomeKind;
    let settled: { ok: boolean };
    if (!rule) {
      outcome = 'completed';
      settled = queue.complete(token);
    } else if (rule.action === 'deadLetter') {
      outcome = 'deadLettered';
      settled = queue.deadLetterByToken(
        token,
        rule.deadLetterReason ?? 'SimulatedConsumerFailure',
        rule.deadLetterErrorDescription ??
          `The sandbox consumer '${this.config.name}' rejected the message (fail rule ${failedBy}).`,
      );
    } else {
      outcome = 'abandoned';
      settled = queue.abandon(token);
    }
    // A lost lock (expired while queued) settles nothing: the broker already took the message back.
    if (!settled.ok) {
      queue.pump();
      return;
    }
    this.counts[outcome] += 1;
    const record: ConsumerOutcome = {
      at: new Date(this.now()).toISOString(),
      sequenceNumber: entry.sequenceNumber,
      deliveryCount,
      outcome,
    };
    if (entry.message.message_id !== undefined) record.messageId = String(entry.message.message_id);
    if (entry.sessionId !== undefined) record.sessionId = entry.sessionId;
    if (failedBy >= 0) record.failedBy = failedBy;
    this.recent.push(record);
    if (this.recent.length > RECENT_OUTCOMES) this.recent.shift();
    queue.pump();
  }
}

/** Whether a fail rule picks a message. */
export function failsOn(rule: ConsumerFailRule, message: Message, consumerName: string): boolean {
  if ('property' in rule) {
    const props = (message.application_properties ?? {}) as Record<string, unknown>;
    if ('exists' in rule) return Object.hasOwn(props, rule.property) === rule.exists;
    return Object.hasOwn(props, rule.property) && props[rule.property] === rule.equals;
  }
  if ('bodyContains' in rule) return bodyText(message).includes(rule.bodyContains);
  // A share of messages, picked by message id: the same message always gets the same answer, so
  // its redeliveries fail alike and it dead-letters; a replay under a new id is drawn again.
  const digest = createHash('sha256')
    .update(`${consumerName}\0${String(message.message_id ?? '')}`)
    .digest();
  return digest.readUInt32BE(0) / 0x1_0000_0000 < rule.share;
}

/** The body as text: a data section's bytes as UTF-8, any other body as JSON. */
function bodyText(message: Message): string {
  const body = message.body as unknown;
  if (body && typeof body === 'object' && 'content' in body) {
    const content = (body as { content: unknown }).content;
    if (Buffer.isBuffer(content)) return content.toString('utf8');
    if (Array.isArray(content)) {
      return content
        .map((part) => (Buffer.isBuffer(part) ? part.toString('utf8') : JSON.stringify(part)))
        .join('');
    }
    return JSON.stringify(content) ?? '';
  }
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  return JSON.stringify(body) ?? '';
}
