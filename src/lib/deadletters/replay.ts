/**
 * Replaying archived dead letters: record the attempt (its message id fixed), send, record it sent.
 * A crash between the send and its record leaves the attempt `sending`; the next try sends the same
 * message id again, which an entity with duplicate detection drops, and then records it. A replay
 * asked for after an attempt was recorded sent is a new attempt with a new message id.
 */
import type { DeadLetterEntity, Policy } from '../config/policy';
import { ConflictError, ValidationError } from '../core/errors';
import type { Logger } from '../core/logging';
import type { Clock } from '../ports/clock';
import type { DeadLetterArchive, DeadLetterRecord, ReplayAttempt } from '../ports/deadLetters';
import type { MessageBus, OutgoingBusMessage, SendReport } from '../ports/messageBus';
import {
  checkReplayIsolation,
  type ReplayTarget,
  replayCopy,
  replayMessageId,
  replayTargetOf,
} from './replayMessage';

export interface ReplayDeps {
  archive: DeadLetterArchive;
  /** The message bus of an entity's namespace (its connection). */
  busFor(entity: DeadLetterEntity): MessageBus;
  policy: Pick<Policy, 'deadLetters'>;
  clock: Clock;
  logger: Logger;
}

export interface ReplayRequest {
  /** Records of `entity`. */
  records: DeadLetterRecord[];
  /** A queue or topic among the entity's replay targets; default its own entity. */
  to?: string;
  /** The revision to send; default each record's latest. */
  revision?: number;
  actor: string;
  /** Automatic replays are scheduled messages. */
  scheduledFor?: Date;
  runId?: string;
}

export interface ReplayResult {
  id: string;
  status: 'replayed' | 'skipped';
  attempt?: ReplayAttempt;
  /** Why a record was skipped (discarded, a replay to another target in progress). */
  reason?: string;
}

/** An attempt recorded but maybe not sent: the same one is sent again (same message id). */
export function pendingAttempt(record: DeadLetterRecord): ReplayAttempt | undefined {
  return record.lastReplay?.status === 'sending' ? record.lastReplay : undefined;
}

/** What stops a record from being replayed now, or undefined. */
export function replayRefusal(
  record: DeadLetterRecord,
  target: ReplayTarget,
  revision: number,
): string | undefined {
  if (record.state === 'discarded')
    return `dead letter ${record.id} was discarded (${record.stateReason ?? 'no reason'})`;
  if (revision > record.revisions) return `dead letter ${record.id} has no revision ${revision}`;
  const pending = pendingAttempt(record);
  if (pending && (pending.target !== target.entity || pending.revision !== revision)) {
    return `replay ${pending.attempt} of ${record.id} to ${pending.target} (revision ${pending.revision}) may have been sent and is not recorded yet: replay it again as it was first`;
  }
  return undefined;
}

/**
 * Replays records of one entity to one target (checked against the policy, and for a topic
 * against the replay isolation rules), each as a new attempt or as the retry of its pending one.
 * Records that cannot be replayed are skipped with the reason; the others are sent in batches.
 */
export async function replayRecords(
  entity: DeadLetterEntity,
  request: ReplayRequest,
  deps: ReplayDeps,
  options: { abortSignal?: AbortSignal } = {},
): Promise<{ results: ReplayResult[]; report?: SendReport; target: ReplayTarget }> {
  if (request.records.some((r) => r.entity !== entity.name))
    throw new ValidationError(`replaying records of another entity than ${entity.name}`);
  const target = replayTargetOf(entity, request.to);
  const bus = deps.busFor(entity);
  await checkReplayIsolation(bus, deps.policy, entity, target);
  const now = deps.clock.now();
  const results: ReplayResult[] = [];
  const marks: Array<{ record: DeadLetterRecord; attempt: ReplayAttempt }> = [];
  for (const record of request.records) {
    const revision = request.revision ?? pendingAttempt(record)?.revision ?? record.revisions;
    const refusal = replayRefusal(record, target, revision);
    if (refusal) {
      results.push({ id: record.id, status: 'skipped', reason: refusal });
      continue;
    }
    const attempt: ReplayAttempt = pendingAttempt(record) ?? {
      attempt: record.replays + 1,
      messageId: replayMessageId(record, record.replays + 1),
      target: target.entity,
      ...(target.replayTo !== undefined ? { replayTo: target.replayTo } : {}),
      revision,
      status: 'sending',
      requestedOn: now,
      actor: request.actor,
      ...(request.scheduledFor ? { scheduledFor: request.scheduledFor } : {}),
      ...(request.runId ? { runId: request.runId } : {}),
    };
    marks.push({ record, attempt });
  }
  if (marks.length === 0) return { results, target };
  // Recorded before anything is sent: a crash after the send finds the attempt and its message id.
  const sending = await deps.archive.markReplays(
    marks.filter((m) => m.record.lastReplay !== m.attempt).map((m) => m),
    options,
  );
  const byId = new Map(sending.map((r) => [r.id, r]));
  const ready = marks.map((m) => ({ record: byId.get(m.record.id) ?? m.record, attempt: m.attempt }));
  const messages: OutgoingBusMessage[] = [];
  for (const { record, attempt } of ready) {
    const { revision, body } = await deps.archive.revision(record, attempt.revision, options);
    messages.push(
      replayCopy(record, revision.message, body, {
        attempt: attempt.attempt,
        target,
        ...(attempt.scheduledFor ? { scheduledFor: attempt.scheduledFor } : {}),
      }),
    );
  }
  const report = await bus.send(target.entity, messages, options);
  const sentOn = deps.clock.now();
  const sent = await deps.archive.markReplays(
    ready.map(({ record, attempt }) => ({ record, attempt: { ...attempt, status: 'sent', sentOn } })),
    options,
  );
  for (const record of sent) results.push({ id: record.id, status: 'replayed', attempt: record.lastReplay! });
  deps.logger.info('dead letters replayed', {
    entity: entity.name,
    target: target.entity,
    replayed: sent.length,
    skipped: results.filter((r) => r.status === 'skipped').length,
  });
  return { results, report, target };
}

/** One record's replay, or why it cannot be replayed (409). */
export async function replayOne(
  entity: DeadLetterEntity,
  record: DeadLetterRecord,
  request: Omit<ReplayRequest, 'records'>,
  deps: ReplayDeps,
): Promise<{ attempt: ReplayAttempt; target: ReplayTarget }> {
  const { results, target } = await replayRecords(entity, { ...request, records: [record] }, deps);
  const result = results[0]!;
  if (result.status === 'skipped') throw new ConflictError(result.reason!, { retryable: false });
  return { attempt: result.attempt!, target };
}
