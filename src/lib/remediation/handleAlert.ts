import { findPlaybook, type Playbook, playbookTarget, type ScalingPlaybook } from '../config/playbooks';
import type { UseCaseContext } from '../core/context';
import { TransientError, type ValidationError } from '../core/errors';
import { stableHash } from '../core/ids';
import type { Logger } from '../core/logging';
import { type OnceWork, runOnce } from '../core/once';
import { notifyAndAudit } from '../notify/notifyAndAudit';
import { sendToChannelsOnce } from '../notify/sendOnce';
import type { Clock } from '../ports/clock';
import type { ChannelResult, Notification, Notifier, Severity } from '../ports/notifier';
import type { AuditLog, AuditOutcome, IdempotencyStore, RejectionLog } from '../ports/state';
import type { RunEngine } from '../runs';
import { isTerminal, type Run } from '../runs/types';
import type { AlertCondition, AlertSeverity, MonitorAlert } from './alert';
import {
  ALERT_RECEIVE_ACTION,
  type AlertFacts,
  inputOf,
  REMEDIATION_KIND,
  type RemediationInput,
} from './playbookRun';

export { ALERT_RECEIVE_ACTION };

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
  /** The policy's playbooks, in policy order (an alert takes the first that matches). */
  playbooks: readonly Playbook[];
  /** The channels a playbook's notices go to: its `notify`, else the defaults. */
  playbookChannels(playbook: Playbook): string[];
  /** The run engine: playbook alerts start (or join) a `remediation` run of the playbook's target. */
  runs: Pick<RunEngine, 'startRun' | 'runsForTarget'>;
}

export type AlertContext = UseCaseContext;

export type AlertOutcome =
  | {
      status: 'handled';
      outcome: AuditOutcome;
      auditId: string;
      channels: ChannelResult[];
      /** The playbook that took the alert, or null. */
      playbook: string | null;
      /** The remediation run the alert started or joined (Fired), or the run its Resolved closes. */
      runId: string | null;
    }
  | {
      status: 'duplicate';
      previous: { outcome?: AuditOutcome; auditId?: string; runId?: string | null; playbook?: string | null };
    };

const SEVERITY: Record<AlertSeverity, Severity> = {
  Sev0: 'critical',
  Sev1: 'critical',
  Sev2: 'warning',
  Sev3: 'info',
  Sev4: 'info',
};

/**
 * Handles one Azure Monitor alert delivered by an action group: exactly once per (alert instance,
 * monitor condition), since action groups retry deliveries; a repeat answers `duplicate` (with the
 * run of the first handling) and changes nothing. Fast enough for the action group's 10 s: it only
 * records and enqueues; the playbook's work happens in a run.
 *
 * - No playbook matches: `reported`, one audit record (`alert.receive`) and one notification to the
 *   default channels (Sev0-1 critical, Sev2 warning, Sev3-4 and every Resolved alert info).
 * - A scaling playbook, Fired: starts the `remediation` run of the playbook's target, or joins the
 *   raise already under way there (one episode per resource); audited with the run id.
 * - A scaling playbook, Resolved: closes the episode (the run under way sees it and ends); audited,
 *   and the playbook's channels are told.
 * - `notify-only`: a run that routes the alert to the playbook's channels.
 * In dry run, alerts without a playbook are planned and audited, not sent, and playbook runs are
 * dry runs (they plan, audit and notify; they change nothing).
 *
 * Needs no Azure permission (state and notification channels only).
 * Retry: throws `InProgressError` while another attempt holds the alert, `TransientError` when a
 * channel failed transiently or a scale-back of the target is under way (the alert must not be
 * swallowed by it); all are retryable, and a retry re-sends only the channels that failed.
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
      summarize: (outcome) => ({
        outcome: outcome.outcome,
        auditId: outcome.auditId,
        runId: outcome.runId,
        playbook: outcome.playbook,
      }),
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
      previous: (once.previous ?? {}) as Extract<AlertOutcome, { status: 'duplicate' }>['previous'],
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
  const playbook = findPlaybook(deps.playbooks, alert);
  if (playbook) return handlePlaybookAlert(alert, playbook, key, dryRun, deps, ctx, work);
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
  return { status: 'handled', ...result, playbook: null, runId: null };
}

/** The alert as a run carries it: identity and what it measured. */
export function alertFacts(alert: MonitorAlert): AlertFacts {
  const condition = alert.conditions[0];
  return {
    alertId: alert.alertId,
    alertRule: alert.alertRule,
    severity: alert.severity,
    monitorCondition: alert.monitorCondition,
    firedDateTime: alert.firedDateTime.toISOString(),
    target: alertTarget(alert),
    metric: condition?.metricName ?? null,
    value: condition?.metricValue ?? null,
    threshold:
      condition?.threshold !== undefined
        ? `${condition.operator ? `${condition.operator} ` : ''}${condition.threshold}`
        : null,
  };
}

async function handlePlaybookAlert(
  alert: MonitorAlert,
  playbook: Playbook,
  key: string,
  dryRun: boolean,
  deps: AlertDeps,
  ctx: AlertContext,
  work: OnceWork,
): Promise<Extract<AlertOutcome, { status: 'handled' }>> {
  const auditTarget = alertTarget(alert);
  const channels = deps.playbookChannels(playbook);
  const record = {
    id: stableHash(key),
    time: deps.clock.now(),
    actor: ctx.actor,
    action: ALERT_RECEIVE_ACTION,
    target: auditTarget,
    correlationId: ctx.correlationId,
    before: describe(alert),
  };
  const scaling = playbook.action !== 'notify-only';
  if (scaling && alert.monitorCondition === 'Resolved')
    return closeEpisode(alert, playbook as ScalingPlaybook, key, dryRun, channels, record, deps, ctx, work);

  const input: RemediationInput = {
    playbook: playbook as RemediationInput['playbook'],
    direction: scaling ? 'raise' : 'notify',
    trigger: 'alert',
    alert: alertFacts(alert),
    evidence: null,
    channels,
  };
  const runTarget = scaling
    ? playbookTarget((playbook as ScalingPlaybook).target)
    : `alerts/${alert.alertId.toLowerCase()}/${alert.monitorCondition.toLowerCase()}`;
  const { run, created } = await deps.runs.startRun(
    REMEDIATION_KIND,
    {
      target: runTarget,
      input,
      dryRun: dryRun || (scaling && (playbook as ScalingPlaybook).dryRun),
      actor: ctx.actor,
      correlationId: ctx.correlationId,
      // A retry after the run was created but before the key completed finds the same run.
      idempotencyKey: key,
    },
    { abortSignal: ctx.abortSignal },
  );
  if (!created && inputOf(run).direction === 'lower') {
    // A scale-back is under way: joining it would swallow the alert. Its steps take seconds;
    // the action group retries a 503.
    throw new TransientError(
      `a scale-back of ${runTarget} is under way (run ${run.id}): the alert is taken once it ends`,
      { metadata: { runId: run.id, target: runTarget } },
    );
  }
  const joined = !created && run.idempotencyKey !== key;
  const reason = joined
    ? `playbook ${playbook.name}: joined the remediation run ${run.id} already under way on ${runTarget} (one episode per resource)`
    : `playbook ${playbook.name}: run ${run.id} started`;
  await deps.audit.append(
    {
      ...record,
      outcome: 'succeeded',
      reason,
      after: { playbook: playbook.name, action: playbook.action, runId: run.id, joined, runTarget },
    },
    { abortSignal: ctx.abortSignal },
  );
  deps.logger.info(joined ? 'alert joined a remediation run' : 'remediation run started', {
    operation: ALERT_RECEIVE_ACTION,
    target: runTarget,
    playbook: playbook.name,
    runId: run.id,
  });
  return {
    status: 'handled',
    outcome: 'succeeded',
    auditId: record.id,
    channels: [],
    playbook: playbook.name,
    runId: run.id,
  };
}

/**
 * A Resolved alert of a scaling playbook closes its target's episode: the raise under way sees it
 * (its verification reads this audit record) and ends; the playbook's channels are told. The
 * value raised stays until the scale-back timer lowers it.
 */
async function closeEpisode(
  alert: MonitorAlert,
  playbook: ScalingPlaybook,
  key: string,
  dryRun: boolean,
  channels: string[],
  record: {
    id: string;
    time: Date;
    actor: string;
    action: string;
    target: string;
    correlationId: string;
    before: Record<string, unknown>;
  },
  deps: AlertDeps,
  ctx: AlertContext,
  work: OnceWork,
): Promise<Extract<AlertOutcome, { status: 'handled' }>> {
  const runTarget = playbookTarget(playbook.target);
  const [latest] = await deps.runs.runsForTarget(REMEDIATION_KIND, runTarget, { limit: 1 });
  const open: Run | undefined = latest && !isTerminal(latest.state) ? latest : undefined;
  const resource = resourceName(alert);
  const notification: Notification = {
    ...buildNotification(alert, key, record.target, deps, ctx),
    title: `Alert resolved: ${alert.alertRule} (${alert.severity}) on ${resource}`,
    summary: `Alert rule ${alert.alertRule} resolved on ${resource} at ${(alert.resolvedDateTime ?? alert.firedDateTime).toISOString()}: the episode of playbook ${playbook.name} on ${runTarget} is closed${
      open ? ` (run ${open.id} ends)` : ''
    }. What was raised stays until the signal stays low long enough for a scale-back${
      playbook.scaleBack ? '' : ' (this playbook has none: a person lowers it)'
    }.`,
    severity: 'info',
  };
  notification.data = { ...notification.data, playbook: playbook.name, runId: latest?.id ?? null };
  const results = dryRun ? [] : await sendToChannelsOnce(notification, channels, deps, work, ctx);
  const transient = results.filter((r) => r.status === 'failed' && r.retryable);
  if (transient.length > 0) {
    throw new TransientError(
      `notifying ${transient.map((r) => r.channel).join(', ')} failed; the alert will be retried`,
      { metadata: { target: record.target } },
    );
  }
  const outcome: AuditOutcome = dryRun
    ? 'planned'
    : results.some((r) => r.status === 'failed')
      ? 'failed'
      : 'reported';
  await deps.audit.append(
    {
      ...record,
      outcome,
      reason: `playbook ${playbook.name}: the episode on ${runTarget} is closed${open ? ` (run ${open.id})` : ''}`,
      after: {
        playbook: playbook.name,
        runId: latest?.id ?? null,
        closes: open?.id ?? null,
        runTarget,
        notificationId: notification.id,
        channels: results,
      },
    },
    { abortSignal: ctx.abortSignal },
  );
  return {
    status: 'handled',
    outcome,
    auditId: record.id,
    channels: results,
    playbook: playbook.name,
    runId: latest?.id ?? null,
  };
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
