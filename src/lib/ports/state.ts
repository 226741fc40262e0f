/** State ports: audit trail and idempotency keys (runs live in `src/lib/runs`). */
export type AuditOutcome = 'succeeded' | 'failed' | 'rejected' | 'skipped' | 'planned' | 'reported';

export interface AuditRecord {
  id: string;
  time: Date;
  /** Who acted: `system:eventgrid`, `system:timer`, `user:{principal}`, `pipeline:{name}`. */
  actor: string;
  /** What was done, e.g. `secret.nearExpiry.notify`. */
  action: string;
  /** What it was done to, e.g. `vaults/contoso-kv/secrets/cosmos-key`. */
  target: string;
  /** Non-sensitive state before / after. Never a secret value. */
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
  outcome: AuditOutcome;
  correlationId: string;
  runId?: string;
  reason?: string;
}

export interface AuditQuery {
  since?: Date;
  until?: Date;
  /** Exact target, as audited (`vaults/contoso-kv/secrets/cosmos-key`). */
  target?: string;
  /** The last segment of the target, case-insensitive: a bare secret name matches it in every vault. */
  targetName?: string;
  limit?: number;
}

export interface AuditLog {
  /** Appends one record. Append-only: an existing id is never overwritten (a repeat is a no-op). */
  append(record: AuditRecord, options?: { abortSignal?: AbortSignal }): Promise<void>;
  /** Records, oldest first. */
  query(query: AuditQuery, options?: { abortSignal?: AbortSignal }): Promise<AuditRecord[]>;
}

export type ClaimResult =
  /**
   * The key is ours. `takenOver`: an earlier attempt's claim ran out without a completion, so it
   * may have acted before it died: check the remote state before acting again.
   */
  | {
      status: 'claimed';
      takenOver?: boolean;
      /** What an earlier attempt had done before it gave the key up (see `release`'s `progress`). */
      progress?: unknown;
    }
  | { status: 'inProgress'; owner: string; expiresOn: Date }
  | { status: 'completed'; result: unknown; completedOn: Date };

export interface IdempotencyStore {
  /**
   * Claims `key` for `owner` until `leaseMs` from now. A key completed before answers `completed`
   * with its stored result until `ttlMs` after completion; a key held by a live claim answers
   * `inProgress`; an expired claim can be taken over.
   */
  claim(
    key: string,
    options: { owner: string; leaseMs: number; abortSignal?: AbortSignal },
  ): Promise<ClaimResult>;
  /**
   * Marks `key` done with a (non-sensitive) result, kept for `ttlMs`. Throws `InProgressError` when
   * another owner holds the key now (our claim ran out and was taken over), `AlreadyDoneError` when
   * another owner completed it, `ConflictError` when it changed while being written.
   */
  complete(
    key: string,
    options: { owner: string; result: unknown; ttlMs: number; abortSignal?: AbortSignal },
  ): Promise<void>;
  /**
   * Gives up a claim (after a failure) so a retry can take it at once. With `progress`, the key
   * keeps it (non-sensitive, for `ttlMs`) and the next claim receives it: what was done is not redone.
   */
  release(
    key: string,
    options: { owner: string; progress?: unknown; ttlMs?: number; abortSignal?: AbortSignal },
  ): Promise<void>;
}

export interface LeaseGrant {
  name: string;
  owner: string;
  expiresOn: Date;
}

/**
 * Named locks with a time-to-live, for singleton work (a timer sweep that must not run twice at once).
 * A lease whose time ran out can be taken by anyone; every change is conditional on what was read.
 */
export interface LeaseStore {
  /** Takes `name` for `owner` for `ttlMs`; `undefined` when someone else holds a live lease. Re-entrant for the same owner. */
  acquire(
    name: string,
    owner: string,
    ttlMs: number,
    options?: { abortSignal?: AbortSignal },
  ): Promise<LeaseGrant | undefined>;
  /** Extends a lease `owner` holds; `undefined` when it is no longer theirs. */
  renew(
    name: string,
    owner: string,
    ttlMs: number,
    options?: { abortSignal?: AbortSignal },
  ): Promise<LeaseGrant | undefined>;
  /** Gives the lease up if `owner` holds it; otherwise does nothing. */
  release(name: string, owner: string, options?: { abortSignal?: AbortSignal }): Promise<void>;
}

/** One rejected input (an event or an alert that failed validation or is not allowed). */
export interface Rejection {
  /** What was rejected: `event`, `alert`. */
  kind: string;
  /** A bounded label of where it came from: an allowed vault's name, `azure-monitor`, or `other`. */
  source: string;
  /** A code from a small fixed set, e.g. `invalid-event`, `unhandled-event-type`, `vault-not-allowed`. */
  reason: string;
  /** What is wrong, for the bucket's audit record (never a payload, never a value). */
  problems: string[];
  /** The input's own id (an event id, an alert id), clipped; kept as a sample. */
  sampleId?: string;
  actor: string;
  correlationId: string;
  time: Date;
}

/** The counter of one (hour, kind, source, reason) bucket. */
export interface RejectionBucket {
  /** Start of the UTC hour, ISO. */
  hour: string;
  kind: string;
  source: string;
  reason: string;
  count: number;
  firstSeen: Date;
  lastSeen: Date;
  /** The first few input ids. */
  samples: string[];
  /** The audit record written for the bucket's first rejection. */
  auditId: string;
}

/**
 * Rejections, bounded: counted per hour, source and reason, with one audit record per bucket, so
 * that a junk batch of thousands writes a handful of rows. `record` resolves once the rejection is
 * durably counted.
 */
export interface RejectionLog {
  record(rejection: Rejection, options?: { abortSignal?: AbortSignal }): Promise<{ auditId: string }>;
  list(
    query: { since: Date; until: Date },
    options?: { abortSignal?: AbortSignal },
  ): Promise<RejectionBucket[]>;
}
