/**
 * The run's outbox: the audit records and notifications of a change are written in the same
 * entity write as the change, then flushed. Flushing is idempotent (an audit record is appended by
 * its id, a notification is sent once per channel through `runOnce`), so a flush may be repeated by
 * whoever finds the entries: the writer right after its write, the next writer before it replaces
 * them, or the resume timer for a run that stopped moving (a finished run leaves the index of active
 * runs only once its outbox is flushed).
 */
import { TransientError } from '../core/errors';
import { newId } from '../core/ids';
import { runOnce } from '../core/once';
import { sendToChannelsOnce } from '../notify/sendOnce';
import type { ChannelResult, Notification, Notifier } from '../ports/notifier';
import type { AuditLog, AuditOutcome, IdempotencyStore } from '../ports/state';
import type { OutboxAudit, OutboxEntry, OutboxNotice, Run } from './types';

/** What the engine needs to notify the channels of a run that fails or parks. */
export interface RunNotifyDeps {
  notifier: Notifier;
  idempotency: IdempotencyStore;
  /** The policy's default channels (a kind may name its own). */
  defaultChannels: string[];
  idempotencyTtlMs: number;
  /** How long a channel's claim protects a send in progress: longer than the longest invocation. */
  claimLeaseMs: number;
}

/** Entries flushed by this process (a small memory, so the next writer here does not flush them again). */
const flushed = new Map<string, true>();
const MAX_FLUSHED = 20_000;

function remember(id: string): void {
  if (flushed.size >= MAX_FLUSHED) {
    const oldest = flushed.keys().next().value;
    if (oldest !== undefined) flushed.delete(oldest);
  }
  flushed.set(id, true);
}

/** Whether every entry of the outbox was flushed by this process already. */
export function flushedHere(run: Pick<Run, 'outbox'>): boolean {
  return run.outbox.every((entry) => flushed.has(entry.id));
}

/** The entries of the outbox this process has not flushed. */
export function unflushed(run: Pick<Run, 'outbox'>): OutboxEntry[] {
  return run.outbox.filter((entry) => !flushed.has(entry.id));
}

/** For tests: forget what this process flushed. */
export function forgetFlushed(): void {
  flushed.clear();
}

/**
 * Flushes the outbox of `run`: appends each audit record and sends each notification. Throws when
 * an entry could not be flushed (a retryable error when a retry may succeed); the entries stay in
 * the run for the next flush. A notification of a dry run is not sent (its audit record says what
 * happened); a channel that failed for good is not retried (the notifier logged it).
 */
export async function flushOutbox(
  run: Pick<Run, 'outbox' | 'dryRun' | 'id'>,
  deps: { audit: AuditLog; notify?: RunNotifyDeps },
  options: { abortSignal?: AbortSignal } = {},
): Promise<void> {
  for (const entry of run.outbox) {
    if (flushed.has(entry.id)) continue;
    if (entry.type === 'audit') {
      await deps.audit.append(
        {
          id: entry.id,
          time: new Date(entry.time),
          actor: entry.actor,
          action: entry.action,
          target: entry.target,
          ...(entry.before ? { before: entry.before } : {}),
          ...(entry.after ? { after: entry.after } : {}),
          outcome: entry.outcome,
          correlationId: entry.correlationId,
          runId: entry.runId,
          ...(entry.reason ? { reason: entry.reason } : {}),
        },
        { abortSignal: options.abortSignal },
      );
    } else if (deps.notify && !run.dryRun && entry.channels.length > 0) {
      const notify = deps.notify;
      // One idempotency key per notice; each channel's send is kept as its progress, so a flush
      // repeated after a transient failure sends only to the channels that did not get it.
      await runOnce<ChannelResult[]>(
        notify.idempotency,
        `run-notify|${entry.id}`,
        {
          owner: `run-outbox:${newId()}`,
          ttlMs: notify.idempotencyTtlMs,
          leaseMs: notify.claimLeaseMs,
          busyMessage: `another flush is sending the notice of run ${run.id}`,
          summarize: (results) => results,
          abortSignal: options.abortSignal,
        },
        async (once) => {
          const results = await sendToChannelsOnce(toNotification(entry), entry.channels, notify, once, {
            abortSignal: options.abortSignal,
          });
          const transient = results.filter((r) => r.status === 'failed' && r.retryable);
          if (transient.length > 0) {
            throw new TransientError(
              `notifying ${transient.map((r) => r.channel).join(', ')} about run ${run.id} failed; the outbox keeps it`,
              { metadata: { runId: run.id } },
            );
          }
          return results;
        },
      );
    }
    remember(entry.id);
  }
}

function toNotification(entry: OutboxNotice): Notification {
  return {
    id: entry.id,
    type: entry.eventType,
    subject: entry.subject,
    severity: entry.severity,
    title: entry.title,
    summary: entry.summary,
    facts: entry.facts,
    correlationId: entry.correlationId,
    time: new Date(entry.time),
    data: { ...entry.facts },
  };
}

/** The audit record of a change to `run` (the run as recorded), identified by its ticket and label. */
export function auditEntry(
  run: Run | Omit<Run, 'etag'>,
  label: string,
  outcome: AuditOutcome,
  options: {
    reason?: string;
    before?: Record<string, unknown>;
    actor?: string;
    id?: string;
    extra?: Record<string, unknown>;
  } = {},
): OutboxAudit {
  const step = run.steps[Math.min(run.currentStep, run.steps.length - 1)];
  const entry: OutboxAudit = {
    type: 'audit',
    id: options.id ?? `run:${run.id}:${run.ticket}:${label}`,
    time: run.updatedOn.toISOString(),
    actor: options.actor ?? run.actor,
    action: `run.${run.kind}.${label}`,
    target: run.target,
    after: {
      state: run.state,
      step: step?.name,
      stepStatus: step?.status,
      dryRun: run.dryRun,
      ...options.extra,
    },
    outcome,
    correlationId: run.correlationId,
    runId: run.id,
  };
  if (options.before) entry.before = options.before;
  if (options.reason !== undefined) entry.reason = options.reason.slice(0, 2000);
  return entry;
}

/** The notification of a run that failed or awaits an approval. */
export function noticeEntry(
  run: Run | Omit<Run, 'etag'>,
  what: 'failed' | 'awaiting-approval',
  channels: string[],
): OutboxNotice {
  const step = run.steps[Math.min(run.currentStep, run.steps.length - 1)];
  const facts: Record<string, string> = {
    Run: run.id,
    Kind: run.kind,
    Target: run.target,
    State: run.state,
  };
  if (step) facts.Step = step.name;
  if (what === 'failed') {
    if (run.error) facts.Error = `${run.error.code}: ${run.error.message}`.slice(0, 500);
  } else {
    const expires = step?.approval?.expiresOn;
    if (expires) facts['Approve before'] = expires.toISOString();
    facts.Approve = `POST /api/runs/${run.id}/approve (or /reject)`;
  }
  return {
    type: 'notify',
    id: `run:${run.id}:${run.ticket}:notify-${what}`,
    eventType: what === 'failed' ? 'com.stampkeeper.run.failed' : 'com.stampkeeper.run.awaitingApproval',
    severity: what === 'failed' ? 'critical' : 'warning',
    title:
      what === 'failed'
        ? `Run ${run.kind} failed: ${run.target}`
        : `Run ${run.kind} awaits an approval: ${run.target}`,
    summary:
      what === 'failed'
        ? `The ${run.kind} run ${run.id} on ${run.target} failed${step ? ` at step ${step.name}` : ''}${run.error ? `: ${run.error.message}` : ''}.`
        : `The ${run.kind} run ${run.id} on ${run.target} waits for an approval before step ${step?.name}.`,
    facts,
    channels,
    time: run.updatedOn.toISOString(),
    correlationId: run.correlationId,
    subject: run.target,
  };
}

export type { OutboxEntry };
