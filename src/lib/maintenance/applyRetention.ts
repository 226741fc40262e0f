import { isRetryable, isStampkeeperError, ValidationError } from '../core/errors';
import type { Logger } from '../core/logging';
import type { Clock } from '../ports/clock';
import type {
  ExpiringIdempotency,
  ExpiringLeases,
  ExpiringRejections,
  ExpiringReports,
  FinishedRuns,
  PurgeOptions,
  PurgeResult,
  RetentionAudit,
} from '../ports/retention';

const DAY_MS = 86_400_000;
/** Rows each store may delete in one sweep; the rest waits for the next day (reported as `more`). */
export const DEFAULT_RETENTION_BUDGET = 5000;
export const MAX_RETENTION_BUDGET = 100_000;
export const RETENTION_ACTION = 'state.retention.apply';
export const RETENTION_TARGET = 'state';

export interface RetentionDeps {
  audit: RetentionAudit;
  idempotency: ExpiringIdempotency;
  leases: ExpiringLeases;
  runs: FinishedRuns;
  /** Rejection counters (optional: a deployment without them purges the rest). */
  rejections?: ExpiringRejections;
  /** Check reports (optional, as the rejection counters). */
  reports?: ExpiringReports;
  clock: Clock;
  logger: Logger;
}

export interface RetentionOptions {
  /** Audit days to keep (`settings.auditRetentionDays`), at least 1. */
  auditRetentionDays: number;
  /** Days a finished run is kept after its last update; defaults to `auditRetentionDays`. */
  runRetentionDays?: number;
  /** Rows each store may delete in this sweep (default 5000). */
  budget?: number;
  /** How long an expired lease is kept (the store's default, one day, when absent). */
  leaseGraceMs?: number;
  /** Who runs it, for the audit record (default `system:timer`). */
  actor?: string;
  /** Correlates the audit record with the invocation; also makes its id. */
  correlationId: string;
  abortSignal?: AbortSignal;
}

export type RetentionStore = 'audit' | 'idempotency' | 'leases' | 'runs' | 'rejections' | 'reports';

export interface RetentionSummary {
  outcome: 'succeeded' | 'failed';
  /** Audit days before this UTC day were purged. */
  auditCutoffDay: string;
  /** Finished runs last updated before this time were purged. */
  runCutoff: Date;
  /** What each store deleted; absent for a store whose purge failed. */
  results: Partial<Record<RetentionStore, PurgeResult>>;
  /** The stores that failed, with the error code (no data). */
  failures: Array<{ store: RetentionStore; code: string; retryable: boolean }>;
}

/**
 * The retention sweep: deletes audit days (and rejection counters) older than `auditRetentionDays`,
 * expired idempotency keys, leases expired for more than a grace, and finished runs older than `runRetentionDays`,
 * each bounded by `budget` rows, and writes one audit record `state.retention.apply` with the
 * counts (outcome `succeeded` or `failed`). A store that fails does not stop the others.
 *
 * Needs `Storage Table Data Contributor` on the state tables (read, delete, insert).
 * Retry: every purge is ETag-conditional and bounded, so a repeat is safe and continues where the
 * last one stopped. A retryable failure is rethrown after the audit record (the timer's next run
 * retries); a non-retryable one is recorded and answered as `outcome: 'failed'`. Bad options throw
 * `ValidationError` before anything is deleted.
 */
export async function applyRetention(
  deps: RetentionDeps,
  options: RetentionOptions,
): Promise<RetentionSummary> {
  const auditDays = options.auditRetentionDays;
  const runDays = options.runRetentionDays ?? auditDays;
  const budget = options.budget ?? DEFAULT_RETENTION_BUDGET;
  validate(options, auditDays, runDays, budget);

  const now = deps.clock.now();
  // At least one whole day back, so the day this sweep writes its own record in is never purged.
  const auditCutoff = new Date(now.getTime() - auditDays * DAY_MS);
  const runCutoff = new Date(now.getTime() - runDays * DAY_MS);
  const purge: PurgeOptions = { limit: budget, abortSignal: options.abortSignal };
  const leasePurge = options.leaseGraceMs === undefined ? purge : { ...purge, graceMs: options.leaseGraceMs };
  const steps: Array<[RetentionStore, () => Promise<PurgeResult>]> = [
    ['audit', () => deps.audit.purgeBefore(auditCutoff, purge)],
    ['idempotency', () => deps.idempotency.purgeExpired(now, purge)],
    ['leases', () => deps.leases.purgeExpired(now, leasePurge)],
    ['runs', () => deps.runs.purgeFinished(runCutoff, purge)],
  ];
  const rejections = deps.rejections;
  // Rejection counters are audit material: kept as long as the audit days they summarize.
  if (rejections) steps.push(['rejections', () => rejections.purgeBefore(auditCutoff, purge)]);
  const reports = deps.reports;
  // Check reports are audit material too: kept as long as the audit.
  if (reports) steps.push(['reports', () => reports.purgeBefore(auditCutoff, purge)]);

  const summary: RetentionSummary = {
    outcome: 'succeeded',
    auditCutoffDay: auditCutoff.toISOString().slice(0, 10),
    runCutoff,
    results: {},
    failures: [],
  };
  const errors: unknown[] = [];
  for (const [store, run] of steps) {
    try {
      summary.results[store] = await run();
    } catch (error) {
      errors.push(error);
      summary.failures.push({
        store,
        code: isStampkeeperError(error) ? error.code : 'Unexpected',
        retryable: isRetryable(error),
      });
      deps.logger.warn('retention purge failed', { store, error });
    }
  }
  if (errors.length > 0) summary.outcome = 'failed';

  const after: Record<string, unknown> = {
    auditCutoffDay: summary.auditCutoffDay,
    runCutoff: runCutoff.toISOString(),
    ...summary.results,
  };
  if (summary.failures.length > 0) after.failures = summary.failures;
  const record = {
    id: `${RETENTION_ACTION}:${options.correlationId}`,
    time: deps.clock.now(),
    actor: options.actor ?? 'system:timer',
    action: RETENTION_ACTION,
    target: RETENTION_TARGET,
    after,
    outcome: summary.outcome,
    correlationId: options.correlationId,
    ...(summary.failures.length > 0
      ? { reason: summary.failures.map((f) => `${f.store}: ${f.code}`).join('; ') }
      : {}),
  };
  try {
    await deps.audit.append(record, { abortSignal: options.abortSignal });
  } catch (error) {
    // The purge failure, when there is one, is the error worth surfacing; otherwise this one.
    if (errors.length === 0) throw error;
    deps.logger.error('retention audit record failed', { error });
  }

  const fields = { ...summary.results, auditCutoffDay: summary.auditCutoffDay, failures: summary.failures };
  const retryable = errors.find(isRetryable);
  if (retryable !== undefined) throw retryable;
  if (summary.outcome === 'failed') deps.logger.error('retention sweep failed', fields);
  else if (Object.values(summary.results).some((r) => r.more)) {
    deps.logger.warn('retention sweep hit its budget; the rest waits for the next sweep', fields);
  } else deps.logger.info('retention sweep done', fields);
  return summary;
}

function validate(options: RetentionOptions, auditDays: number, runDays: number, budget: number): void {
  const problems: string[] = [];
  if (!Number.isInteger(auditDays) || auditDays < 1)
    problems.push('auditRetentionDays must be an integer of at least 1');
  if (!Number.isInteger(runDays) || runDays < 1)
    problems.push('runRetentionDays must be an integer of at least 1');
  if (!Number.isInteger(budget) || budget < 1 || budget > MAX_RETENTION_BUDGET)
    problems.push(`budget must be an integer from 1 to ${MAX_RETENTION_BUDGET}`);
  if (
    options.leaseGraceMs !== undefined &&
    (!Number.isFinite(options.leaseGraceMs) || options.leaseGraceMs < 0)
  )
    problems.push('leaseGraceMs must be a number of at least 0');
  if (typeof options.correlationId !== 'string' || options.correlationId.trim() === '')
    problems.push('correlationId is required');
  if (problems.length > 0) throw new ValidationError('Invalid retention options', problems);
}
