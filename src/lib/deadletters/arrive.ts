/**
 * Arrival: a batch the dead-letter trigger received. Its messages are read again, whole, by peeking
 * the dead-letter queue (the trigger's binding data loses property name case and types: the
 * Functions Node library camel-cases every key, dates arrive as text), classified, archived
 * (idempotently: a redelivered batch is recognised), automatic replays scheduled, and the entity's
 * alert sent if it is due. Only when all of that is recorded does the invocation succeed and the
 * host complete the messages: if anything fails, the invocation fails, the messages go back to the
 * dead-letter queue (an abandon there only counts a delivery), and nothing is lost.
 */
import type { DeadLetterEntity } from '../config/policy';
import { DependencyError, TransientError, ValidationError } from '../core/errors';
import { stableHash } from '../core/ids';
import type { DeadLetterMessage, DeadLetterRecord, NewDeadLetter, ReplayAttempt } from '../ports/deadLetters';
import type { BusSource, ReceivedBusMessage } from '../ports/messageBus';
import type { AuditLog } from '../ports/state';
import { type AlertDeps, alertIfDue } from './alerts';
import { classify, originalMessageIdOf, replayCountOf } from './classify';
import { deadLetterId } from './ids';
import { type ReplayDeps, replayRecords } from './replay';
import { checkReplayIsolation, replayMessageId, replayTargetOf } from './replayMessage';

export interface ArrivalDeps extends Omit<ReplayDeps, 'policy'>, AlertDeps {
  audit: AuditLog;
}

/** What the trigger's binding says of one message: enough to find it again. */
export interface TriggeredMessage {
  sequenceNumber: string;
  messageId?: string;
}

export interface ArrivalContext {
  actor: string;
  correlationId: string;
}

export interface ArrivalResult {
  archived: number;
  duplicates: number;
  autoReplayed: number;
  parked: number;
  alert: Awaited<ReturnType<typeof alertIfDue>>['status'];
  ids: string[];
}

/** Most messages one peek asks for. */
const PEEK_MAX = 250;

/** The dead-letter queue of a policy entity, as the MessageBus port names sources. */
export function deadLetterSource(entity: DeadLetterEntity): BusSource {
  return 'queue' in entity.source
    ? { queue: entity.source.queue, subQueue: 'deadLetter' }
    : { topic: entity.source.topic, subscription: entity.source.subscription, subQueue: 'deadLetter' };
}

/** Sequence numbers and ids from the trigger's binding data (`cardinality: 'many'`), checked. */
export function triggeredMessages(
  metadata: Record<string, unknown> | undefined,
  count: number,
): TriggeredMessage[] {
  const sequences = metadata?.sequenceNumberArray ?? metadata?.SequenceNumberArray;
  const ids = metadata?.messageIdArray ?? metadata?.MessageIdArray;
  if (!Array.isArray(sequences) || sequences.length !== count) {
    throw new ValidationError(
      `the dead-letter trigger did not pass the sequence numbers of its ${count} messages`,
      [`sequenceNumberArray: expected ${count} sequence numbers`],
    );
  }
  return sequences.map((value, i) => {
    const text = String(value);
    if (!/^\d{1,20}$/.test(text)) throw new ValidationError(`'${text}' is not a sequence number`);
    const id = Array.isArray(ids) ? ids[i] : undefined;
    return { sequenceNumber: text, ...(typeof id === 'string' && id !== '' ? { messageId: id } : {}) };
  });
}

/**
 * The messages of a batch read again from the dead-letter queue by sequence number (peek sees
 * locked messages and changes nothing). A message the peek cannot find (already completed by
 * another attempt) is not archived again: it is reported missing.
 */
async function peekBatch(
  entity: DeadLetterEntity,
  triggered: TriggeredMessage[],
  deps: Pick<ArrivalDeps, 'busFor'>,
): Promise<{ found: ReceivedBusMessage[]; missing: TriggeredMessage[] }> {
  const bus = deps.busFor(entity);
  const source = deadLetterSource(entity);
  const wanted = new Map(triggered.map((t) => [t.sequenceNumber, t]));
  const found = new Map<string, ReceivedBusMessage>();
  const order = [...wanted.keys()].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
  // Each peek starts at the smallest sequence number not found yet: contiguous batches take one.
  for (let rounds = 0; rounds < order.length; rounds++) {
    const next = order.find((s) => !found.has(s));
    if (next === undefined) break;
    const remaining = order.filter((s) => !found.has(s));
    const span = BigInt(remaining.at(-1)!) - BigInt(next) + 1n;
    const maxCount = Number(span < BigInt(PEEK_MAX) ? span : BigInt(PEEK_MAX));
    const page = await bus.peek(source, { maxCount: Math.max(1, maxCount), fromSequenceNumber: next });
    let progressed = false;
    for (const message of page) {
      if (wanted.has(message.sequenceNumber) && !found.has(message.sequenceNumber)) {
        found.set(message.sequenceNumber, message);
        progressed = true;
      }
    }
    if (!found.has(next)) {
      // Not in the queue any more (completed meanwhile): nothing to archive for it.
      wanted.delete(next);
      order.splice(order.indexOf(next), 1);
      rounds -= 1;
      continue;
    }
    if (!progressed) break;
  }
  const missing = triggered.filter((t) => !found.has(t.sequenceNumber));
  return { found: order.filter((s) => found.has(s)).map((s) => found.get(s)!), missing };
}

function messageOf(received: ReceivedBusMessage): DeadLetterMessage {
  const message: DeadLetterMessage = {
    messageId: received.messageId,
    sequenceNumber: received.sequenceNumber,
    enqueuedTime: received.enqueuedTime,
    deliveryCount: received.deliveryCount,
    applicationProperties: { ...(received.applicationProperties ?? {}) },
  };
  const optional: Array<keyof DeadLetterMessage & keyof ReceivedBusMessage> = [
    'expiresAt',
    'timeToLiveMs',
    'contentType',
    'correlationId',
    'sessionId',
    'replyToSessionId',
    'subject',
    'to',
    'replyTo',
    'partitionKey',
    'deadLetterReason',
    'deadLetterErrorDescription',
    'deadLetterSource',
  ];
  for (const key of optional) {
    const value = received[key];
    if (value !== undefined) (message as unknown as Record<string, unknown>)[key] = value;
  }
  return message;
}

/**
 * Handles one batch of the dead-letter trigger of `entity` (see the header). Throws a retryable
 * error when anything could not be recorded (the host abandons the batch and it comes back).
 */
export async function handleArrivals(
  entity: DeadLetterEntity,
  triggered: TriggeredMessage[],
  deps: ArrivalDeps,
  context: ArrivalContext,
): Promise<ArrivalResult> {
  const now = deps.clock.now();
  const { found, missing } = await peekBatch(entity, triggered, deps);
  if (missing.length > 0) {
    deps.logger.warn('dead letters of the batch were no longer in the queue (completed by another attempt)', {
      entity: entity.name,
      missing: missing.map((m) => m.sequenceNumber).slice(0, 20),
    });
  }
  const target = replayTargetOf(entity);
  let isolated: string | undefined;
  const arrivals: NewDeadLetter[] = found.map((received) => {
    const message = messageOf(received);
    const classification = classify(message, entity);
    return {
      path: entity.path,
      message,
      body: received.body,
      classification,
      replayCount: replayCountOf(message),
      originalMessageId: originalMessageIdOf(message),
      deadLetteredAt: now,
    };
  });
  // An automatic replay through a topic needs the isolation rules; without them, parked.
  if (arrivals.some((a) => a.classification.decision === 'auto-replay') && !deps.dryRun) {
    try {
      await checkReplayIsolation(deps.busFor(entity), deps.policy, entity, target);
    } catch (error) {
      if (!(error instanceof Error) || (error as { retryable?: boolean }).retryable) throw error;
      isolated = error.message;
    }
  }
  for (const arrival of arrivals) {
    if (arrival.classification.decision !== 'auto-replay') continue;
    if (deps.dryRun || isolated) {
      arrival.classification = {
        ...arrival.classification,
        decision: 'park',
        why: deps.dryRun ? `dry run: ${arrival.classification.why}, not replayed` : isolated!,
      };
      continue;
    }
    const rule = entity.replay.auto[arrival.classification.rule!]!;
    const m = arrival.message;
    arrival.replay = {
      attempt: 1,
      messageId: replayMessageId(
        { id: deadLetterId(entity.name, m.sequenceNumber, m.messageId, m.enqueuedTime) },
        1,
      ),
      target: target.entity,
      ...(target.replayTo !== undefined ? { replayTo: target.replayTo } : {}),
      revision: 0,
      status: 'sending',
      requestedOn: now,
      scheduledFor: new Date(now.getTime() + rule.delayMinutes * 60_000),
      actor: 'system:deadletters',
    } satisfies ReplayAttempt;
  }
  const result = await deps.archive.archive(entity.name, arrivals);
  if (result.conflicts.length > 0) {
    // Never complete a message that is not archived: the batch fails and comes back.
    deps.logger.error('dead letters collide with archived ones: not archived, left in the queue', {
      entity: entity.name,
      conflicts: result.conflicts.map((c) => c.problem),
    });
    throw new DependencyError(
      `${result.conflicts.length} dead letter(s) of ${entity.name} could not be archived: ${result.conflicts[0]!.problem}`,
      { retryable: true },
    );
  }
  // Automatic replays recorded but not sent yet (new ones, and those of a batch that failed before).
  const toSend = [...result.created, ...result.existing].filter(
    (r) => r.lastReplay?.status === 'sending' && r.lastReplay.actor === 'system:deadletters',
  );
  const scheduled = await sendScheduled(entity, toSend, deps);
  const alert = await alertIfDue(entity, deps).catch((error: unknown) => {
    // An alert that fails now is sent by the next arrival or report (its counts are kept).
    deps.logger.warn('dead-letter alert not sent yet', { entity: entity.name, error: String(error) });
    return { status: 'deferred' as const };
  });
  const all = [...result.created, ...result.existing];
  const summary: ArrivalResult = {
    archived: result.created.length,
    duplicates: result.existing.length,
    autoReplayed: scheduled,
    parked: all.filter((r) => r.state === 'parked').length,
    alert: alert.status as ArrivalResult['alert'],
    ids: all.map((r) => r.id),
  };
  if (result.created.length > 0) {
    await deps.audit.append({
      id: stableHash('deadletters-archive', entity.name, ...result.created.map((r) => r.id)),
      time: now,
      actor: context.actor,
      action: 'deadletters.archive',
      target: `deadletters/${entity.name}`,
      outcome: 'succeeded',
      correlationId: context.correlationId,
      after: {
        archived: result.created.length,
        duplicates: result.existing.length,
        autoReplayed: scheduled,
        parked: summary.parked,
        byReason: countBy(result.created.map((r) => r.deadLetterReason ?? '(none)')),
        ids: result.created.slice(0, 20).map((r) => r.id),
      },
    });
  }
  deps.logger.info('dead letters archived', {
    entity: entity.name,
    ...summary,
    ids: summary.ids.slice(0, 20),
  });
  return summary;
}

/** Sends the recorded automatic replays (scheduled messages) and records them sent. */
async function sendScheduled(
  entity: DeadLetterEntity,
  records: DeadLetterRecord[],
  deps: ArrivalDeps,
): Promise<number> {
  if (records.length === 0) return 0;
  // Each keeps its recorded attempt (same message id) whatever its schedule: replayRecords retries it.
  const byTime = new Map<number, DeadLetterRecord[]>();
  for (const record of records) {
    const at = record.lastReplay!.scheduledFor?.getTime() ?? 0;
    byTime.set(at, [...(byTime.get(at) ?? []), record]);
  }
  let sent = 0;
  for (const [at, group] of byTime) {
    try {
      const { results } = await replayRecords(
        entity,
        { records: group, actor: 'system:deadletters', ...(at > 0 ? { scheduledFor: new Date(at) } : {}) },
        deps,
      );
      sent += results.filter((r) => r.status === 'replayed').length;
    } catch (error) {
      throw error instanceof TransientError || (error as { retryable?: boolean }).retryable
        ? error
        : new DependencyError(`scheduling the automatic replays of ${entity.name} failed: ${String(error)}`, {
            cause: error,
            retryable: true,
          });
    }
  }
  return sent;
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
