/**
 * Alerts on dead-letter arrivals, rate-limited per entity: at most one alert per
 * `alerts.minIntervalMinutes`, carrying the counts (per reason) of everything that arrived since
 * the previous one. A storm of 10 000 dead letters makes one alert per interval, not 10 000. The
 * counts are taken from the entity's alert window by a conditional claim (one instance wins), the
 * alert is sent once per channel (its own idempotency key), then recorded; a crash in between
 * resends the claimed alert on the next arrival or the next report.
 */
import { type DeadLetterEntity, deadLetterChannels, type Policy } from '../config/policy';
import { TransientError } from '../core/errors';
import { stableHash } from '../core/ids';
import type { Logger } from '../core/logging';
import { runOnce } from '../core/once';
import { sendToChannelsOnce } from '../notify/sendOnce';
import type { Clock } from '../ports/clock';
import type { AlertWindow, DeadLetterArchive } from '../ports/deadLetters';
import type { ChannelResult, Notification, Notifier } from '../ports/notifier';
import type { AuditLog, IdempotencyStore } from '../ports/state';

export interface AlertDeps {
  archive: DeadLetterArchive;
  notifier: Notifier;
  idempotency: IdempotencyStore;
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
  policy: Policy;
  environment: string;
  idempotencyTtlMs: number;
  claimLeaseMs: number;
  dryRun: boolean;
}

export type AlertOutcome =
  | { status: 'sent'; id: string; total: number; channels: ChannelResult[] }
  | { status: 'quiet'; reason: 'nothing-pending' | 'rate-limited' | 'claimed-elsewhere'; pending: number };

/** The alert of a claimed window. */
function notificationOf(
  entity: DeadLetterEntity,
  claimed: NonNullable<AlertWindow['claimed']>,
  environment: string,
): Notification {
  const reasons = Object.entries(claimed.byReason)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${reason}: ${n}`);
  const plural = claimed.total === 1 ? 'dead letter' : 'dead letters';
  return {
    id: stableHash('deadletter-alert', entity.name, claimed.id),
    type: 'com.stampkeeper.deadletters.arrived',
    subject: `deadletters/${entity.name}`,
    severity: entity.alerts.severity,
    title: `${claimed.total} ${plural} in ${entity.path}`,
    summary:
      `${claimed.total} ${plural} arrived in the dead-letter queue of ${entity.path} (namespace ${entity.namespace}) ` +
      `since ${claimed.since.toISOString()}: ${reasons.join(', ')}. They are archived; see GET /api/deadletters?entity=${entity.name}.`,
    facts: {
      Entity: entity.name,
      Path: entity.path,
      Namespace: entity.namespace,
      Owner: entity.owner,
      'Dead letters': String(claimed.total),
      Reasons: reasons.join(', '),
      Since: claimed.since.toISOString(),
      Environment: environment,
    },
    correlationId: claimed.id,
    time: claimed.on,
    data: {
      entity: entity.name,
      path: entity.path,
      namespace: entity.namespace,
      total: claimed.total,
      byReason: claimed.byReason,
      since: claimed.since.toISOString(),
      environment,
    },
  };
}

/**
 * Sends the entity's alert if one is due: a claimed alert not recorded as sent (a crash) is sent
 * again; otherwise pending arrivals are alerted when the last alert is older than the interval.
 */
export async function alertIfDue(entity: DeadLetterEntity, deps: AlertDeps): Promise<AlertOutcome> {
  const now = deps.clock.now();
  let window = await deps.archive.alertWindow(entity.name);
  if (!window.claimed) {
    if (window.pending.total === 0) return { status: 'quiet', reason: 'nothing-pending', pending: 0 };
    const intervalMs = entity.alerts.minIntervalMinutes * 60_000;
    if (window.lastAlertOn && now.getTime() - window.lastAlertOn.getTime() < intervalMs) {
      return { status: 'quiet', reason: 'rate-limited', pending: window.pending.total };
    }
    const claimed = await deps.archive.claimAlert(
      window,
      stableHash('claim', entity.name, now.toISOString()),
      now,
    );
    if (!claimed) return { status: 'quiet', reason: 'claimed-elsewhere', pending: window.pending.total };
    window = claimed;
  }
  const claim = window.claimed!;
  const notification = notificationOf(entity, claim, deps.environment);
  const channels = deadLetterChannels(deps.policy, entity).map((c) => c.name);
  const outcome = await runOnce<ChannelResult[]>(
    deps.idempotency,
    `${deps.dryRun ? 'dry-run|' : ''}deadletter-alert|${entity.name}|${claim.id}`,
    {
      owner: `deadletter-alert:${claim.id}:${now.toISOString()}`,
      ttlMs: deps.idempotencyTtlMs,
      leaseMs: deps.claimLeaseMs,
      busyMessage: `the dead-letter alert of ${entity.name} is being sent by another attempt`,
      summarize: (results) => results,
    },
    async (once) => {
      if (deps.dryRun) return channels.map((channel): ChannelResult => ({ channel, status: 'filtered' }));
      const results = await sendToChannelsOnce(notification, channels, deps, once, {});
      const transient = results.filter((r) => r.status === 'failed' && r.retryable);
      if (transient.length > 0) {
        throw new TransientError(`alerting ${transient.map((r) => r.channel).join(', ')} failed; retried`);
      }
      await deps.audit.append({
        id: stableHash('deadletter-alert-audit', entity.name, claim.id),
        time: now,
        actor: 'system:deadletters',
        action: 'deadletters.alert',
        target: `deadletters/${entity.name}`,
        outcome: results.some((r) => r.status === 'failed') ? 'failed' : 'succeeded',
        correlationId: claim.id,
        after: {
          total: claim.total,
          byReason: claim.byReason,
          since: claim.since.toISOString(),
          channels: results,
        },
      });
      return results;
    },
  );
  await deps.archive.alertSent(window, now);
  const results = outcome.status === 'duplicate' ? (outcome.previous as ChannelResult[]) : outcome.result;
  deps.logger.info('dead-letter alert sent', { entity: entity.name, total: claim.total, alert: claim.id });
  return { status: 'sent', id: claim.id, total: claim.total, channels: results ?? [] };
}
