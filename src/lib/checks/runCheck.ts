/**
 * Running a maintenance check: its findings, one stored report, one audit record, and a notification
 * to the check's channels when the report needs a person. The notification of a given set of problems
 * goes out once a day at most (an idempotency key of the check, the problems and the UTC day), so a
 * timer that runs hourly does not page every hour, and a problem still there tomorrow is said again.
 */
import { randomBytes } from 'node:crypto';
import { type CheckName, channelsFor, type Policy } from '../config/policy';
import { NotFoundError } from '../core/errors';
import { stableHash } from '../core/ids';
import type { Logger } from '../core/logging';
import { runOnce } from '../core/once';
import { sendToChannelsOnce } from '../notify/sendOnce';
import type { Clock } from '../ports/clock';
import type { CosmosDbInventory, KubernetesInventory, QuotaReader } from '../ports/inventory';
import type { ChannelResult, Notification, Notifier } from '../ports/notifier';
import type { CheckReport, Finding, ReportStore } from '../ports/reports';
import type { SecretVault } from '../ports/secrets';
import type { AuditLog, IdempotencyStore } from '../ports/state';
import { checkBackupReadiness } from './backupReadiness';
import { checkCredentialHygiene } from './credentialHygiene';
import { checkPlatformVersions, type RuntimeFacts, type RuntimeSupportData } from './platformVersions';
import { checkQuotaHeadroom } from './quotaHeadroom';
import { countFindings, reportStatus, worstFirst } from './report';

/** Findings a report keeps at most (the worst first); the rest are counted. */
export const MAX_REPORT_FINDINGS = 300;

export interface CheckDeps {
  policy: Policy;
  clock: Clock;
  logger: Logger;
  reports: ReportStore;
  audit: AuditLog;
  notifier: Notifier;
  idempotency: IdempotencyStore;
  environment: string;
  idempotencyTtlMs: number;
  claimLeaseMs: number;
  cosmos: CosmosDbInventory;
  kubernetes: KubernetesInventory;
  quotas: QuotaReader;
  vault: SecretVault;
  runtime: RuntimeFacts;
  /** The runtime support data (default: the bundled file); tests give their own. */
  runtimeSupport?: RuntimeSupportData;
}

export interface CheckRequest {
  trigger: 'timer' | 'manual';
  actor: string;
  correlationId: string;
  abortSignal?: AbortSignal;
}

/** The checks the policy configures, in a stable order. */
export function configuredChecks(policy: Policy): CheckName[] {
  return (['backupReadiness', 'quotaHeadroom', 'platformVersions', 'credentialHygiene'] as const).filter(
    (name) => policy.checks[name] !== undefined,
  );
}

/** The findings of one check, each part read on its own (a failure of one is an `unknown` finding, not a crash). */
async function findingsOf(
  name: CheckName,
  deps: CheckDeps,
  now: Date,
  abortSignal?: AbortSignal,
): Promise<Finding[]> {
  const checks = deps.policy.checks;
  switch (name) {
    case 'backupReadiness':
      return checkBackupReadiness(checks.backupReadiness!, { cosmos: deps.cosmos, now, checks, abortSignal });
    case 'quotaHeadroom':
      return checkQuotaHeadroom(checks.quotaHeadroom!, { quotas: deps.quotas, checks, abortSignal });
    case 'platformVersions':
      return checkPlatformVersions(checks.platformVersions!, {
        kubernetes: deps.kubernetes,
        runtime: deps.runtime,
        now,
        checks,
        ...(deps.runtimeSupport ? { support: deps.runtimeSupport } : {}),
        abortSignal,
      });
    case 'credentialHygiene':
      return checkCredentialHygiene(checks.credentialHygiene!, {
        vault: deps.vault,
        cosmos: deps.cosmos,
        policy: deps.policy,
        now,
        checks,
        abortSignal,
      });
  }
}

/** `20260101T050000123Z-1a2b3c`: sorts by time, unique per run. */
function reportId(at: Date): string {
  return `${at.toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
}

const TITLES: Record<CheckName, string> = {
  backupReadiness: 'Backup and restore readiness',
  quotaHeadroom: 'Quota headroom',
  platformVersions: 'Platform version support',
  credentialHygiene: 'Credential hygiene',
};

/**
 * Runs the check `name` of the policy now: stores its report, audits it (`check.run`), and notifies
 * the check's channels when it needs a person. Throws `NotFoundError` for a check the policy does not
 * configure; a storage failure (the report could not be kept) propagates, retryable or not.
 */
export async function runCheck(
  name: CheckName,
  request: CheckRequest,
  deps: CheckDeps,
): Promise<CheckReport> {
  if (!deps.policy.checks[name]) throw new NotFoundError(`the policy configures no check ${name}`);
  const started = deps.clock.now();
  const all = worstFirst(await findingsOf(name, deps, started, request.abortSignal));
  const findings = all.slice(0, MAX_REPORT_FINDINGS);
  const finished = deps.clock.now();
  const status = reportStatus(all);
  const counts = countFindings(all);
  const needsPerson = status !== 'ok';
  const summary =
    status === 'ok'
      ? `${TITLES[name]}: ${all.length} finding(s), nothing needs a person.`
      : `${TITLES[name]}: ${counts.failed} failed, ${counts.unknown} could not be read, ${counts.warning} warning(s) of ${all.length}.`;
  const report: CheckReport = {
    id: reportId(started),
    check: name,
    status,
    needsPerson,
    summary,
    counts,
    startedOn: started.toISOString(),
    finishedOn: finished.toISOString(),
    trigger: request.trigger,
    actor: request.actor,
    correlationId: request.correlationId,
    findings,
    omittedFindings: all.length - findings.length,
  };
  await deps.reports.save(report, { abortSignal: request.abortSignal });
  const attention = all.filter((f) => f.status !== 'ok');
  await deps.audit.append(
    {
      id: stableHash('check-run', name, report.id),
      time: finished,
      actor: request.actor,
      action: 'check.run',
      target: `checks/${name}`,
      outcome: status === 'ok' ? 'succeeded' : 'reported',
      correlationId: request.correlationId,
      after: {
        reportId: report.id,
        status,
        counts,
        needsPerson: attention.slice(0, 20).map((f) => `${f.status}: ${f.subject} (${f.code})`),
      },
    },
    { abortSignal: request.abortSignal },
  );
  deps.logger.info('check ran', { check: name, reportId: report.id, status, ...counts });
  if (needsPerson) await notify(name, report, attention, request, deps);
  return report;
}

async function notify(
  name: CheckName,
  report: CheckReport,
  attention: Finding[],
  request: CheckRequest,
  deps: CheckDeps,
): Promise<void> {
  const check = deps.policy.checks[name]!;
  const channels = channelsFor(deps.policy, { notify: check.notify }).map((c) => c.name);
  if (channels.length === 0) return;
  const problems = attention.map((f) => `${f.status}|${f.subject}|${f.code}`).sort();
  const day = report.startedOn.slice(0, 10);
  const key = `check-notice|${name}|${stableHash(...problems)}|${day}`;
  const severity = report.status === 'failed' ? 'critical' : 'warning';
  const notification: Notification = {
    id: stableHash('check-notice', name, ...problems, day),
    type: `com.stampkeeper.check.${report.status}`,
    subject: `checks/${name}`,
    severity,
    title: `${TITLES[name]}: ${attention.length} finding(s) need a person`,
    summary: attention
      .slice(0, 5)
      .map((f) => `${f.title}${f.action ? ` (${f.action.summary})` : ''}`)
      .join(' | '),
    facts: {
      Check: name,
      Report: report.id,
      Failed: String(report.counts.failed),
      Unknown: String(report.counts.unknown),
      Warnings: String(report.counts.warning),
      Environment: deps.environment,
    },
    correlationId: request.correlationId,
    time: deps.clock.now(),
    data: {
      check: name,
      reportId: report.id,
      status: report.status,
      findings: attention.slice(0, 20).map((f) => ({
        subject: f.subject,
        code: f.code,
        status: f.status,
        title: f.title,
        ...(f.action ? { action: f.action.summary, runbook: f.action.runbook ?? null } : {}),
      })),
      environment: deps.environment,
    },
  };
  const outcome = await runOnce<ChannelResult[]>(
    deps.idempotency,
    key,
    {
      owner: `check:${report.id}`,
      ttlMs: Math.max(deps.idempotencyTtlMs, 2 * 86_400_000),
      leaseMs: deps.claimLeaseMs,
      busyMessage: `the ${name} notice is being sent by another run`,
      summarize: (results) => results,
      abortSignal: request.abortSignal,
    },
    (once) => sendToChannelsOnce(notification, channels, deps, once, { abortSignal: request.abortSignal }),
  );
  if (outcome.status === 'done') {
    const failed = outcome.result.filter((r) => r.status === 'failed');
    if (failed.length > 0)
      deps.logger.warn('check notice not delivered to every channel', {
        check: name,
        channels: failed.map((r) => r.channel),
      });
  }
}
