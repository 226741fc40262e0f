import { odata, type TableClient, type TableEntityResult, type TransactionAction } from '@azure/data-tables';
import { ValidationError } from '../core/errors';
import { toTableKey } from '../core/ids';
import { redact } from '../core/redact';
import type { Clock } from '../ports/clock';
import type { AuditLog, AuditOutcome, AuditQuery, AuditRecord } from '../ports/state';
import { fitJson, parseJson } from './limits';
import { type PurgeOptions, type PurgeResult, purgeLimit, purgeMatching, validDate } from './purge';
import { mapStorageError, statusOf, storageCall, storageErrorCode } from './tables';

const DAY_MS = 86_400_000;
const DAY_PARTITION = /^\d{4}-\d{2}-\d{2}$/;
/** How far back a query without `since` looks. */
export const DEFAULT_AUDIT_WINDOW_DAYS = 30;
export const DEFAULT_AUDIT_LIMIT = 100;
export const MAX_AUDIT_LIMIT = 1000;
export const MAX_AUDIT_WINDOW_DAYS = 366;
const DAYS_IN_PARALLEL = 8;
/** Marker rows (one per record id) sort after every record row (`2…` < `~`). */
const ID_MARKER_PREFIX = '~id~';
/** Short free-text properties are cut well below the property limit. */
const MAX_TEXT_CHARS = 4096;

const OUTCOMES: readonly AuditOutcome[] = [
  'succeeded',
  'failed',
  'rejected',
  'skipped',
  'planned',
  'reported',
];

type AuditEntity = {
  partitionKey: string;
  rowKey: string;
  recordId: string;
  time: string;
  actor: string;
  action: string;
  target: string;
  before?: string;
  after?: string;
  outcome: string;
  correlationId: string;
  runId?: string;
  reason?: string;
  /** The target's last segment, lower-cased: a bare secret name finds the secret in every vault. */
  targetName?: string;
};

/** PartitionKey of a record: its UTC day, so a time window touches only the days it spans. */
export function auditPartition(time: Date): string {
  return time.toISOString().slice(0, 10);
}

/** RowKey: time first (ISO 8601 sorts as text), then the id so records of the same millisecond stay apart. */
export function auditRowKey(time: Date, id: string): string {
  return `${time.toISOString()}_${toTableKey(id)}`;
}

/**
 * The audit trail on a Table. Append-only: a record row and an id marker row are inserted in one
 * entity-group transaction in the record's day partition, so a repeat of the same id (that day or,
 * for a retry across midnight, the next) is a no-op and nothing is ever overwritten. `before` / `after` go through `redact()` before storing.
 * Needs `Storage Table Data Contributor` on the table. Transient Storage failures surface as
 * `TransientError` (safe to retry: the append is idempotent by id).
 */
export class TableAuditLog implements AuditLog {
  constructor(
    private readonly table: TableClient,
    private readonly clock: Clock,
  ) {}

  private async hasMarker(
    partitionKey: string,
    rowKey: string,
    options: { abortSignal?: AbortSignal },
  ): Promise<boolean> {
    try {
      await this.table.getEntity(partitionKey, rowKey, { abortSignal: options.abortSignal });
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw mapStorageError('audit append', error);
    }
  }

  async append(record: AuditRecord, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    validateRecord(record);
    const partitionKey = auditPartition(record.time);
    const entity: AuditEntity = {
      partitionKey,
      rowKey: auditRowKey(record.time, record.id),
      recordId: record.id,
      time: record.time.toISOString(),
      actor: cut(record.actor),
      action: cut(record.action),
      target: cut(record.target),
      outcome: record.outcome,
      correlationId: cut(record.correlationId),
      targetName: targetNameOf(record.target),
    };
    if (record.before !== undefined) entity.before = fitJson(redact(record.before));
    if (record.after !== undefined) entity.after = fitJson(redact(record.after));
    if (record.runId !== undefined) entity.runId = cut(record.runId);
    if (record.reason !== undefined) entity.reason = cut(redact(record.reason));
    const markerRowKey = `${ID_MARKER_PREFIX}${toTableKey(record.id)}`;
    // A retry that crosses midnight lands in the next day's partition: look for the id the day before.
    if (await this.hasMarker(auditPartition(new Date(record.time.getTime() - DAY_MS)), markerRowKey, options))
      return;
    const marker = { partitionKey, rowKey: markerRowKey, rowKeyOfRecord: entity.rowKey };
    const actions: TransactionAction[] = [
      ['create', marker],
      ['create', entity],
    ];
    try {
      await this.table.submitTransaction(actions, { abortSignal: options.abortSignal });
    } catch (error) {
      // The marker already exists: this id was appended before. Append-only means: do nothing.
      // (A failed transaction reports the Storage code in `code`, a single write in `details`.)
      if (statusOf(error) === 409 && storageErrorCode(error) === 'EntityAlreadyExists') return;
      throw mapStorageError('audit append', error);
    }
  }

  /**
   * Retention: deletes the day partitions strictly older than `cutoff`'s UTC day (record rows and
   * id markers alike), at most `limit` rows per call, oldest day first. The cutoff day itself and
   * every later day stay whole, so nothing younger than the start of the cutoff day goes. This is
   * the only deletion the audit knows: records are never updated. Each delete is conditional on
   * the ETag read (a row changed or gone since is skipped). Needs `Storage Table Data Contributor`.
   * Transient failures surface as `TransientError`; a repeat simply continues where it stopped.
   */
  async purgeBefore(cutoff: Date, options: PurgeOptions = {}): Promise<PurgeResult> {
    const limit = purgeLimit(options);
    const cutoffDay = auditPartition(validDate(cutoff, 'cutoff'));
    return purgeMatching<{ partitionKey: string }>(
      this.table,
      'audit purge',
      {
        filter: odata`PartitionKey lt ${cutoffDay}`,
        select: ['PartitionKey', 'RowKey'],
        accept: (row) => DAY_PARTITION.test(row.partitionKey) && row.partitionKey < cutoffDay,
      },
      { limit, abortSignal: options.abortSignal },
    );
  }

  async query(query: AuditQuery, options: { abortSignal?: AbortSignal } = {}): Promise<AuditRecord[]> {
    const until = query.until ?? this.clock.now();
    const since = query.since ?? new Date(until.getTime() - DEFAULT_AUDIT_WINDOW_DAYS * DAY_MS);
    const limit = query.limit ?? DEFAULT_AUDIT_LIMIT;
    if (Number.isNaN(since.getTime()) || Number.isNaN(until.getTime())) {
      throw new ValidationError('Audit query has an invalid date', ['since/until must be valid dates']);
    }
    if (since.getTime() > until.getTime()) {
      throw new ValidationError('Audit query window is empty', ['since must not be after until']);
    }
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_LIMIT) {
      throw new ValidationError('Audit query limit is out of range', [
        `limit must be an integer from 1 to ${MAX_AUDIT_LIMIT}`,
      ]);
    }
    // Checked before the days are listed: an absurd window must cost nothing.
    if (until.getTime() - since.getTime() > MAX_AUDIT_WINDOW_DAYS * DAY_MS) {
      throw new ValidationError('Audit query window is too long', [
        `since and until must be at most ${MAX_AUDIT_WINDOW_DAYS} days apart`,
      ]);
    }
    const days = daysBetween(since, until);
    const out: AuditRecord[] = [];
    // Record RowKeys start with the ISO time; `until` is inclusive, so compare with its successor.
    const lower = since.toISOString();
    const upper = `${until.toISOString()}\uffff`;
    const readDay = (day: string, max: number) => {
      let filter = odata`PartitionKey eq ${day} and RowKey ge ${lower} and RowKey lt ${upper}`;
      if (query.target !== undefined) filter += ` and ${odata`target eq ${query.target}`}`;
      if (query.targetName !== undefined)
        filter += ` and ${odata`targetName eq ${query.targetName.toLowerCase()}`}`;
      return storageCall('audit query', async () => {
        const found: AuditEntity[] = [];
        const pages = this.table
          .listEntities<AuditEntity>({ queryOptions: { filter }, abortSignal: options.abortSignal })
          .byPage({ maxPageSize: Math.min(1000, max) });
        for await (const page of pages) {
          for (const row of page as TableEntityResult<AuditEntity>[]) found.push(row);
          if (found.length >= max) break;
        }
        return found;
      });
    };
    // Days are read a few at a time in parallel (each may be nearly empty) and consumed in order.
    for (let first = 0; first < days.length; first += DAYS_IN_PARALLEL) {
      const remaining = limit - out.length;
      const batches = await Promise.all(
        days.slice(first, first + DAYS_IN_PARALLEL).map((day) => readDay(day, remaining)),
      );
      for (const row of batches.flat()) {
        out.push(toRecord(row));
        if (out.length >= limit) return out;
      }
    }
    return out;
  }
}

function toRecord(row: AuditEntity): AuditRecord {
  const record: AuditRecord = {
    id: row.recordId,
    time: new Date(row.time),
    actor: row.actor,
    action: row.action,
    target: row.target,
    outcome: row.outcome as AuditOutcome,
    correlationId: row.correlationId,
  };
  const before = parseJson(row.before);
  const after = parseJson(row.after);
  if (before !== undefined) record.before = before as Record<string, unknown>;
  if (after !== undefined) record.after = after as Record<string, unknown>;
  if (row.runId) record.runId = row.runId;
  if (row.reason) record.reason = row.reason;
  return record;
}

/** The UTC days from `since` to `until`, oldest first. */
export function daysBetween(since: Date, until: Date): string[] {
  const days: string[] = [];
  const start = Date.UTC(since.getUTCFullYear(), since.getUTCMonth(), since.getUTCDate());
  for (let t = start; t <= until.getTime(); t += DAY_MS) days.push(auditPartition(new Date(t)));
  return days;
}

function targetNameOf(target: string): string {
  const parts = target.split('/').filter(Boolean);
  return cut((parts[parts.length - 1] ?? target).toLowerCase());
}

function cut(text: string): string {
  return text.length > MAX_TEXT_CHARS ? `${text.slice(0, MAX_TEXT_CHARS - 14)}…[truncated]` : text;
}

function validateRecord(record: AuditRecord): void {
  const problems: string[] = [];
  for (const field of ['id', 'actor', 'action', 'target', 'correlationId'] as const) {
    if (typeof record[field] !== 'string' || record[field].trim() === '')
      problems.push(`${field} is required`);
  }
  if (!(record.time instanceof Date) || Number.isNaN(record.time.getTime()))
    problems.push('time must be a valid Date');
  if (!OUTCOMES.includes(record.outcome)) problems.push(`outcome must be one of ${OUTCOMES.join(', ')}`);
  if (typeof record.id === 'string' && record.id.length > 256)
    problems.push('id must be at most 256 characters');
  if (problems.length > 0) throw new ValidationError('Invalid audit record', problems);
}
