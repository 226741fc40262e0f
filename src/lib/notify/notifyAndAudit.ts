import { TransientError } from '../core/errors';
import type { OnceWork } from '../core/once';
import type { ChannelResult, Notification, Notifier } from '../ports/notifier';
import type { AuditLog, AuditOutcome, AuditRecord } from '../ports/state';
import { sendToChannelsOnce } from './sendOnce';

export interface NotifyAndAuditInput {
  notification: Notification;
  channels: string[];
  /** The audit record, but for its outcome and `after` (which this fills in). */
  record: Omit<AuditRecord, 'outcome' | 'after'>;
  /** The outcome when every channel got it: `succeeded` for managed work, `reported` otherwise. */
  sentOutcome: AuditOutcome;
  dryRun: boolean;
  /** How the retry message names the work, e.g. `the event`, `the alert`. */
  what: string;
}

export interface NotifyAndAuditDeps {
  notifier: Notifier;
  audit: AuditLog;
}

/**
 * The last stretch of every notifying use case, inside its `runOnce` work: in dry run, audit
 * `planned` and send nothing; otherwise send to each channel once (`sendToChannelsOnce`, the sends
 * kept as the key's progress), throw a retryable `TransientError` while a channel failed
 * transiently (nothing audited yet: the retry re-sends only that channel), and audit once, `failed`
 * when a channel failed for good.
 */
export async function notifyAndAudit(
  input: NotifyAndAuditInput,
  deps: NotifyAndAuditDeps,
  ctx: { abortSignal?: AbortSignal },
  once: OnceWork,
): Promise<{ outcome: AuditOutcome; auditId: string; channels: ChannelResult[] }> {
  const { notification, channels, record } = input;
  if (input.dryRun) {
    await deps.audit.append(
      {
        ...record,
        outcome: 'planned',
        reason: record.reason ? `dry run: nothing sent; ${record.reason}` : 'dry run: nothing sent',
        after: { notificationId: notification.id, channels },
      },
      { abortSignal: ctx.abortSignal },
    );
    return {
      outcome: 'planned',
      auditId: record.id,
      channels: channels.map((channel): ChannelResult => ({ channel, status: 'filtered' })),
    };
  }
  const results = await sendToChannelsOnce(notification, channels, deps, once, ctx);
  const transient = results.filter((r) => r.status === 'failed' && r.retryable);
  if (transient.length > 0) {
    throw new TransientError(
      `notifying ${transient.map((r) => r.channel).join(', ')} failed; ${input.what} will be retried`,
      { metadata: { target: record.target } },
    );
  }
  const outcome: AuditOutcome = results.some((r) => r.status === 'failed') ? 'failed' : input.sentOutcome;
  await deps.audit.append(
    { ...record, outcome, after: { notificationId: notification.id, channels: results } },
    { abortSignal: ctx.abortSignal },
  );
  return { outcome, auditId: record.id, channels: results };
}
