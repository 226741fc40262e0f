/**
 * What the retention use case needs from the state stores: small structural ports, so that it
 * depends on no SDK and unit tests can hand-write fakes. The Table stores of `src/lib/state`
 * satisfy them.
 */
import type { AuditLog } from './state';

export interface PurgeOptions {
  /** At most this many rows are deleted by one call. */
  limit: number;
  abortSignal?: AbortSignal;
}

export interface PurgeResult {
  deleted: number;
  /** Matching rows remain beyond the limit. */
  more: boolean;
}

/** The audit trail, which also receives the sweep's own record. */
export interface RetentionAudit extends Pick<AuditLog, 'append'> {
  /** Deletes whole UTC-day partitions strictly older than `cutoff`'s day. */
  purgeBefore(cutoff: Date, options: PurgeOptions): Promise<PurgeResult>;
}

export interface ExpiringIdempotency {
  /** Deletes keys whose expiry is before `now`. */
  purgeExpired(now: Date, options: PurgeOptions): Promise<PurgeResult>;
}

export interface ExpiringLeases {
  /** Deletes leases expired more than `graceMs` before `now`. */
  purgeExpired(now: Date, options: PurgeOptions & { graceMs?: number }): Promise<PurgeResult>;
}

export interface FinishedRuns {
  /** Deletes terminal runs last updated before `before`; never an active run. */
  purgeFinished(before: Date, options: PurgeOptions): Promise<PurgeResult>;
}

export interface ExpiringRejections {
  /** Deletes the rejection counters of hours strictly before `cutoff`'s hour. */
  purgeBefore(cutoff: Date, options: PurgeOptions): Promise<PurgeResult>;
}

export interface ExpiringReports {
  /** Deletes the check reports that started before `cutoff`. */
  purgeBefore(cutoff: Date, options: PurgeOptions): Promise<PurgeResult>;
}
