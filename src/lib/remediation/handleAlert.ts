import type { UseCaseContext } from '../core/context';
import type { ValidationError } from '../core/errors';
import { stableHash } from '../core/ids';
import type { Logger } from '../core/logging';
import { type OnceWork, runOnce } from '../core/once';
import { notifyAndAudit } from '../notify/notifyAndAudit';
import type { Clock } from '../ports/clock';
import type { ChannelResult, Notification, Notifier, Severity } from '../ports/notifier';
import type { AuditLog, AuditOutcome, IdempotencyStore, RejectionLog } from '../ports/state';
import type { AlertCondition, AlertSeverity, MonitorAlert } from './alert';

/** The audit action of every alert delivery this use case handles. */
export const ALERT_RECEIVE_ACTION = 'alert.receive';

export interface AlertDeps {
  audit: AuditLog;
  idempotency: IdempotencyStore;
  rejections: RejectionLog;
  notifier: Notifier;
  clock: Clock;
  logger: Logger;
  /** Channels told about alerts no playbook handles (the policy's `notifications.defaults`). */
  defaultChannels: string[];
  environment: string;
  dryRun: boolean;
  idempotencyTtlMs: number;
  /** How long a claim protects work in progress: longer than the longest invocation. */
  claimLeaseMs: number;
}

export type AlertContext = UseCaseContext;

export type AlertOutcome =
  | { status: 'handled'; outcome: AuditOutcome; auditId: string; channels: ChannelResult[] }
  | { status: 'duplicate'; previous: { outcome?: AuditOutcome; auditId?: string } };

const SEVERITY: Record<AlertSeverity, Severity> = {
  Sev0: 'critical',
  Sev1: 'critical',
  Sev2: 'warning',
  Sev3: 'info',
  Sev4: 'info',
};

/**
 * Handles one Azure Monitor alert delivered by an action group: exactly once per (alert instance,
 * monitor condition), since action groups retry deliveries; a repeat answers `duplicate` and
 * changes nothing. No playbook exists yet, so every alert is `reported`: one audit record
 * (`alert.receive`) and one notification to the default channels (Sev0-1 critical, Sev2 warning,
 * Sev3-4 and every Resolved alert info). In dry run, the notification is planned and audited, not sent.
 *
 * Needs no Azure permission (state and notification channels only).
 * Retry: throws `InProgressError` while another attempt holds the alert and `TransientError` when a
 * channel failed transiently; both are retryable, and a retry re-sends only the channels that failed.
 */
export async function handleAlert(
  alert: MonitorAlert,
  deps: AlertDeps,
  ctx: AlertContext,
): Promise<AlertOutcome> {
  const dryRun = ctx.dryRun ?? deps.dryRun;
  // A dry run is remembered apart: switching dry run off must still act on the same alert.
  const key = `${dryRun ? 'dry-run|' : ''}${alertKey(alert)}`;
  const once = await runOnce<Extract<AlertOutcome, { status: 'handled' }>>(
    deps.idempotency,
    key,
    {
      owner: ctx.attemptId,
      ttlMs: deps.idempotencyTtlMs,
      leaseMs: deps.claimLeaseMs,
      busyMessage: `alert ${alert.alertRule} (${alert.monitorCondition}) is being handled by another attempt`,
      summarize: (outcome) => ({ outcome: outcome.outcome, auditId: outcome.auditId }),
      abortSignal: ctx.abortSignal,
    },
    (work) => handleClaimed(alert, key, dryRun, deps, ctx, work),
  );
  if (once.status === 'duplicate') {
    deps.logger.info('duplicate alert delivery ignored', {
      operation: ALERT_RECEIVE_ACTION,
      target: alertTarget(alert),
      alertId: alert.alertId,
      monitorCondition: alert.monitorCondition,
    });
    return {
      status: 'duplicate',
      previous: (once.previous ?? {}) as { outcome?: AuditOutcome; auditId?: string },
    };
  }
  return once.result;
}

/** The idempotency key of an alert delivery: ARM ids are case-insensitive, so the id is lower-cased. */
export function alertKey(alert: Pick<MonitorAlert, 'alertId' | 'monitorCondition'>): string {
  return `alert|${alert.monitorCondition.toLowerCase()}|${alert.alertId.toLowerCase()}`;
}

/**
 * The audit / notification target of an alert: its first target resource id, lower-cased (ARM ids
 * are case-insensitive and Azure is not consistent about their case), or `alertRules/{rule}`.
 */
export function alertTarget(alert: Pick<MonitorAlert, 'targetResourceIds' | 'alertRule'>): string {
  const first = alert.targetResourceIds[0];
  return first ? first.toLowerCase() : `alertRules/${alert.alertRule}`;
}

/** The notification severity of an alert (a Resolved alert is always `info`). */
export function notificationSeverity(alert: Pick<MonitorAlert, 'severity' | 'monitorCondition'>): Severity {
  return alert.monitorCondition === 'Resolved' ? 'info' : SEVERITY[alert.severity];
}

async function handleClaimed(
  alert: MonitorAlert,
  key: string,
  dryRun: boolean,
  deps: AlertDeps,
  ctx: AlertContext,
  work: OnceWork,
): Promise<Extract<AlertOutcome, { status: 'handled' }>> {
  const target = alertTarget(alert);
  const base = {
    id: stableHash(key),
    time: deps.clock.now(),
    actor: ctx.actor,
    action: ALERT_RECEIVE_ACTION,
    target,
    correlationId: ctx.correlationId,
    before: describe(alert),
  };
  const reason = 'no playbook matches this alert: reported, nothing changed';
  const channels = deps.defaultChannels;
  const notification = buildNotification(alert, key, target, deps, ctx);

  const result = await notifyAndAudit(
    {
      notification,
      channels,
      record: { ...base, reason },
      sentOutcome: 'reported',
      dryRun,
      what: 'the alert',
    },
    deps,
    ctx,
    work,
  );
  deps.logger.info('alert reported', { operation: ALERT_RECEIVE_ACTION, target, outcome: result.outcome });
  return { status: 'handled', ...result };
}

function buildNotification(
  alert: MonitorAlert,
  key: string,
  target: string,
  deps: AlertDeps,
  ctx: AlertContext,
): Notification {
  const fired = alert.monitorCondition === 'Fired';
  const resource = resourceName(alert);
  const condition = alert.conditions[0];
  const facts: Record<string, string> = {
    Rule: alert.alertRule,
    Severity: alert.severity,
    Condition: alert.monitorCondition,
    Signal: `${alert.signalType} (${alert.monitoringService})`,
    Resource: alert.targetResourceIds[0] ?? 'none',
    Fired: alert.firedDateTime.toISOString(),
    Environment: deps.environment,
  };
  if (alert.resolvedDateTime) facts.Resolved = alert.resolvedDateTime.toISOString();
  if (alert.targetResourceCount > 1) facts['Other resources'] = String(alert.targetResourceCount - 1);
  if (condition?.metricName) facts.Metric = condition.metricName;
  if (condition?.metricValue !== undefined) facts.Value = String(condition.metricValue);
  if (condition?.threshold !== undefined)
    facts.Threshold = `${condition.operator ? `${condition.operator} ` : ''}${condition.threshold}`;
  if (alert.activityLog?.operationName) facts.Operation = alert.activityLog.operationName;

  const what = condition ? ` ${describeCondition(condition)}.` : '';
  const summary = [
    `Alert rule ${alert.alertRule} ${fired ? 'fired' : 'resolved'} on ${resource} at ${(
      alert.resolvedDateTime ?? alert.firedDateTime
    ).toISOString()}.${what}`,
    alert.description ? `Rule description: ${alert.description.slice(0, 500)}` : '',
    'No playbook matches this alert: stampkeeper reports it and changes nothing.',
  ]
    .filter(Boolean)
    .join(' ');
  return {
    id: stableHash('notification', key),
    type: fired ? 'com.stampkeeper.alert.fired' : 'com.stampkeeper.alert.resolved',
    subject: target,
    severity: notificationSeverity(alert),
    title: `${fired ? 'Alert fired' : 'Alert resolved'}: ${alert.alertRule} (${alert.severity}) on ${resource}`,
    summary,
    facts,
    correlationId: ctx.correlationId,
    time: deps.clock.now(),
    data: {
      alertId: alert.alertId,
      alertRule: alert.alertRule,
      // Not `severity`: the CloudEvent data already carries the notification's severity under that name.
      alertSeverity: alert.severity,
      signalType: alert.signalType,
      monitorCondition: alert.monitorCondition,
      monitoringService: alert.monitoringService,
      targetResourceIds: alert.targetResourceIds,
      firedDateTime: alert.firedDateTime.toISOString(),
      resolvedDateTime: alert.resolvedDateTime?.toISOString() ?? null,
      conditions: alert.conditions.map(conditionFacts),
      playbook: null,
      environment: deps.environment,
    },
  };
}

function describeCondition(c: AlertCondition): string {
  const subject = c.metricName ?? (c.kind === 'logQuery' ? 'the query result' : 'the metric');
  const value = c.metricValue !== undefined ? ` was ${c.metricValue}` : '';
  const threshold =
    c.threshold !== undefined ? ` (threshold: ${c.operator ? `${c.operator} ` : ''}${c.threshold})` : '';
  return `${subject}${value}${threshold}`;
}

/** A condition as audit / notification data: no search query (it may name tables, users, hosts). */
function conditionFacts(c: AlertCondition): Record<string, unknown> {
  return {
    kind: c.kind,
    metricName: c.metricName ?? null,
    metricNamespace: c.metricNamespace ?? null,
    operator: c.operator ?? null,
    threshold: c.threshold ?? null,
    metricValue: c.metricValue ?? null,
    timeAggregation: c.timeAggregation ?? null,
    dimensions: c.dimensions,
  };
}

/** What the audit record keeps of the alert: identity, state and the evaluated conditions. */
function describe(alert: MonitorAlert): Record<string, unknown> {
  return {
    alertId: alert.alertId,
    alertRule: alert.alertRule,
    severity: alert.severity,
    signalType: alert.signalType,
    monitorCondition: alert.monitorCondition,
    monitoringService: alert.monitoringService,
    targetResourceIds: alert.targetResourceIds.slice(0, 5),
    targetResourceCount: alert.targetResourceCount,
    firedDateTime: alert.firedDateTime.toISOString(),
    resolvedDateTime: alert.resolvedDateTime?.toISOString() ?? null,
    conditionType: alert.conditionType ?? null,
    conditions: alert.conditions.slice(0, 5).map(conditionFacts),
    operationName: alert.activityLog?.operationName ?? null,
  };
}

/** The last segment of the first target (`wcus-r2-gen2`), or the rule when there is none. */
function resourceName(alert: MonitorAlert): string {
  const first = alert.targetResourceIds[0];
  if (!first) return `the scope of ${alert.alertRule}`;
  return first.split('/').filter(Boolean).pop() ?? first;
}

/**
 * Records an alert that failed validation: one audit record (outcome `rejected`, action
 * `alert.reject`) per distinct alert delivery, with the problems but never the payload.
 */
/** Reason codes of rejected alerts: a small fixed set, so that rejections stay countable. */
export type AlertRejectionReason = 'not-common-schema' | 'invalid-alert' | 'not-json' | 'too-large';

/**
 * Records an alert delivery that failed validation: counted per hour and reason, with one audit
 * record per such bucket (its first alert's problems), so that a storm of bad deliveries writes a
 * handful of rows. Never stores the payload.
 */
export async function recordRejectedAlert(
  raw: unknown,
  error: ValidationError,
  deps: Pick<AlertDeps, 'rejections' | 'clock' | 'logger'>,
  ctx: Pick<AlertContext, 'actor' | 'correlationId' | 'abortSignal'>,
): Promise<{ auditId: string; reason: AlertRejectionReason }> {
  const alertId = typeof error.metadata.alertId === 'string' ? error.metadata.alertId : undefined;
  const condition = monitorConditionOf(raw);
  const text = `${error.message} ${error.problems.join(' ')}`;
  const reason: AlertRejectionReason = /schemaId/.test(text)
    ? 'not-common-schema'
    : /too large/.test(text)
      ? 'too-large'
      : /not valid JSON|is empty/.test(text)
        ? 'not-json'
        : 'invalid-alert';
  const { auditId } = await deps.rejections.record(
    {
      kind: 'alert',
      source: 'azure-monitor',
      reason,
      problems: error.problems.length > 0 ? error.problems : [error.message],
      sampleId: alertId ? `${alertId}${condition ? `|${condition}` : ''}` : undefined,
      actor: ctx.actor,
      correlationId: ctx.correlationId,
      time: deps.clock.now(),
    },
    { abortSignal: ctx.abortSignal },
  );
  deps.logger.warn('alert rejected', { operation: 'alert.reject', target: 'alerts/azure-monitor', reason });
  return { auditId, reason };
}

function monitorConditionOf(raw: unknown): string {
  const essentials = (raw as { data?: { essentials?: { monitorCondition?: unknown } } } | undefined)?.data
    ?.essentials;
  const value = essentials?.monitorCondition;
  return typeof value === 'string' ? value.trim().toLowerCase().slice(0, 20) : '';
}
