import { TransientError } from '../core/errors';
import { stableHash } from '../core/ids';
import { type OnceWork, runOnce } from '../core/once';
import { sendToChannelsOnce } from '../notify/sendOnce';
import type { Clock } from '../ports/clock';
import type { ChannelResult, Notification, Notifier } from '../ports/notifier';
import type { AuditLog, IdempotencyStore } from '../ports/state';
import type { Run } from '../runs/types';
import { inputOf, type RemediationNotice } from './playbookRun';

/** What announcing a remediation step needs. */
export interface AnnounceDeps {
  notifier: Notifier;
  idempotency: IdempotencyStore;
  audit: AuditLog;
  clock: Clock;
  idempotencyTtlMs: number;
  claimLeaseMs: number;
}

/**
 * Tells the run's channels (when `notice.notify`) and the audit what a remediation step did and
 * why, at most once per run and notice label (its own idempotency key; a retry sends only to the
 * channels that did not get it, and the audit record has a stable id). Needs no Azure permission.
 */
export async function announceRemediation(
  run: Readonly<Run>,
  notice: RemediationNotice,
  deps: AnnounceDeps,
  abortSignal?: AbortSignal,
): Promise<void> {
  const input = inputOf(run);
  const notification: Notification = {
    id: stableHash('remediation-notice', run.id, notice.label),
    type: notice.eventType,
    subject: run.target,
    severity: notice.severity,
    title: notice.title,
    summary: notice.summary,
    facts: notice.facts,
    correlationId: run.correlationId,
    time: deps.clock.now(),
    data: {
      runId: run.id,
      playbook: input.playbook.name,
      action: input.playbook.action,
      direction: input.direction,
      target: run.target,
      alertId: input.alert?.alertId ?? null,
      alertRule: input.alert?.alertRule ?? null,
      before: notice.audit.before ?? null,
      after: notice.audit.after ?? null,
      reason: notice.audit.reason,
      dryRun: run.dryRun,
    },
  };
  await runOnce<ChannelResult[]>(
    deps.idempotency,
    `remediation|${run.id}|${notice.label}`,
    {
      owner: `remediation:${run.id}:${run.ticket}:${notice.label}`,
      ttlMs: deps.idempotencyTtlMs,
      leaseMs: deps.claimLeaseMs,
      busyMessage: `the ${notice.label} notice of remediation ${run.id} is being sent by another attempt`,
      summarize: (results) => results,
      abortSignal,
    },
    async (once: OnceWork) => {
      const results = notice.notify
        ? await sendToChannelsOnce(notification, input.channels, deps, once, { abortSignal })
        : [];
      const transient = results.filter((r) => r.status === 'failed' && r.retryable);
      if (transient.length > 0) {
        throw new TransientError(
          `notifying ${transient.map((r) => r.channel).join(', ')} failed; the step retries`,
        );
      }
      await deps.audit.append(
        {
          id: stableHash('remediation-audit', run.id, notice.label),
          time: deps.clock.now(),
          actor: run.actor,
          action: notice.audit.action,
          target: run.target,
          outcome: notice.audit.outcome,
          correlationId: run.correlationId,
          runId: run.id,
          ...(notice.audit.before ? { before: notice.audit.before } : {}),
          after: { ...(notice.audit.after ?? {}), channels: results },
          reason: notice.audit.reason,
        },
        { abortSignal },
      );
      return results;
    },
  );
}
