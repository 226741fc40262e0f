import { odata, type TableClient } from '@azure/data-tables';
import { ConflictError, ValidationError } from '../core/errors';
import { stableHash } from '../core/ids';
import { redactText } from '../core/redact';
import type { AuditLog, Rejection, RejectionBucket, RejectionLog } from '../ports/state';
import { type PurgeOptions, type PurgeResult, purgeLimit, purgeMatching, validDate } from './purge';
import { readEntity, storageCall, tryConditionalWrite } from './tables';

const HOUR_MS = 3_600_000;
/** Re-reads of a counter after losing a write race before giving up for this flush. */
const MAX_ROUNDS = 8;
const MAX_SAMPLES = 5;
const MAX_PROBLEMS_CHARS = 2000;
const MAX_LABEL = 120;
export const MAX_REJECTION_WINDOW_HOURS = 24 * 31;
const HOUR_PARTITION = /^\d{4}-\d{2}-\d{2}T\d{2}$/;

interface CounterEntity {
  partitionKey: string;
  rowKey: string;
  kind: string;
  source: string;
  reason: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
  /** JSON array of the first sample ids. */
  samples: string;
  auditId: string;
  etag?: string;
}

interface Pending {
  bucket: { hour: string; row: string; kind: string; source: string; reason: string };
  first: Rejection;
  count: number;
  lastSeen: Date;
  samples: string[];
  waiters: Array<{ resolve: (r: { auditId: string }) => void; reject: (e: unknown) => void }>;
}

/** UTC hour partition `yyyy-mm-ddThh`. */
export function rejectionHour(time: Date): string {
  return time.toISOString().slice(0, 13);
}

/**
 * Rejected inputs, bounded: one counter entity per (UTC hour, kind, source, reason) and one audit
 * record per such bucket (its first rejection, with the problems), however many inputs are rejected.
 * Rejections arriving together are group-committed: one counter write per bucket per flush, and
 * every `record` call resolves only once its count is durable (a failure rejects it, so the input's
 * delivery is retried: nothing is lost, a count may be repeated). Callers bound `source` and `reason`
 * to small fixed sets, so a junk batch cannot make rows without limit.
 * Needs `Storage Table Data Contributor`.
 */
export class TableRejectionLog implements RejectionLog {
  private pending = new Map<string, Pending>();
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly table: TableClient,
    private readonly audit: AuditLog,
  ) {}

  async record(
    rejection: Rejection,
    options: { abortSignal?: AbortSignal } = {},
  ): Promise<{ auditId: string }> {
    validateRejection(rejection);
    const kind = label(rejection.kind);
    const source = label(rejection.source);
    const reason = label(rejection.reason);
    const hour = rejectionHour(rejection.time);
    const row = stableHash('rejection', kind, source, reason);
    const key = `${hour}/${row}`;
    return new Promise((resolve, reject) => {
      let entry = this.pending.get(key);
      if (!entry) {
        entry = {
          bucket: { hour, row, kind, source, reason },
          first: rejection,
          count: 0,
          lastSeen: rejection.time,
          samples: [],
          waiters: [],
        };
        this.pending.set(key, entry);
      }
      entry.count++;
      if (rejection.time > entry.lastSeen) entry.lastSeen = rejection.time;
      if (rejection.sampleId && entry.samples.length < MAX_SAMPLES)
        entry.samples.push(rejection.sampleId.slice(0, MAX_LABEL));
      entry.waiters.push({ resolve, reject });
      if (options.abortSignal?.aborted) reject(options.abortSignal.reason);
      this.schedule();
    });
  }

  /** Counters of the hours from `since` to `until` (at most 31 days), oldest hour first. */
  async list(
    query: { since: Date; until: Date },
    options: { abortSignal?: AbortSignal } = {},
  ): Promise<RejectionBucket[]> {
    const since = validDate(query.since, 'since');
    const until = validDate(query.until, 'until');
    if (since.getTime() > until.getTime()) {
      throw new ValidationError('Rejection query window is empty', ['since must not be after until']);
    }
    if (until.getTime() - since.getTime() > MAX_REJECTION_WINDOW_HOURS * HOUR_MS) {
      throw new ValidationError('Rejection query window is too long', [
        `since and until must be at most ${MAX_REJECTION_WINDOW_HOURS / 24} days apart`,
      ]);
    }
    const filter = odata`PartitionKey ge ${rejectionHour(since)} and PartitionKey le ${rejectionHour(until)}`;
    return storageCall('rejections query', async () => {
      const out: RejectionBucket[] = [];
      for await (const row of this.table.listEntities<CounterEntity>({
        queryOptions: { filter },
        abortSignal: options.abortSignal,
      })) {
        out.push({
          hour: `${row.partitionKey}:00:00.000Z`,
          kind: row.kind,
          source: row.source,
          reason: row.reason,
          count: row.count,
          firstSeen: new Date(row.firstSeen),
          lastSeen: new Date(row.lastSeen),
          samples: JSON.parse(row.samples ?? '[]') as string[],
          auditId: row.auditId,
        });
      }
      return out.sort(
        (a, b) => a.hour.localeCompare(b.hour) || a.firstSeen.getTime() - b.firstSeen.getTime(),
      );
    });
  }

  /**
   * Retention: deletes the counters of hours strictly before `cutoff`'s hour, at most `limit` per
   * call, each conditional on the ETag listed.
   */
  async purgeBefore(cutoff: Date, options: PurgeOptions = {}): Promise<PurgeResult> {
    const limit = purgeLimit(options);
    const cutoffHour = rejectionHour(validDate(cutoff, 'cutoff'));
    return purgeMatching<{ partitionKey: string }>(
      this.table,
      'rejections purge',
      {
        filter: odata`PartitionKey lt ${cutoffHour}`,
        select: ['PartitionKey', 'RowKey'],
        accept: (row) => HOUR_PARTITION.test(row.partitionKey) && row.partitionKey < cutoffHour,
      },
      { limit, abortSignal: options.abortSignal },
    );
  }

  private schedule(): void {
    if (this.flushing) return;
    // Rejections of the same tick (a batch's invocations) join one flush.
    this.flushing = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.flushAll())
      .finally(() => {
        this.flushing = undefined;
        if (this.pending.size > 0) this.schedule();
      });
  }

  private async flushAll(): Promise<void> {
    const batch = [...this.pending.values()];
    this.pending = new Map();
    await Promise.all(
      batch.map(async (entry) => {
        try {
          const auditId = await this.flushOne(entry);
          for (const w of entry.waiters) w.resolve({ auditId });
        } catch (error) {
          for (const w of entry.waiters) w.reject(error);
        }
      }),
    );
  }

  private async flushOne(entry: Pending): Promise<string> {
    const { hour, row, kind, source, reason } = entry.bucket;
    const auditId = stableHash('rejections', hour, row);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const current = await this.read(hour, row);
      if (!current) {
        // The bucket's first rejection is audited once (append is idempotent by id), then counted.
        await this.audit.append({
          id: auditId,
          time: entry.first.time,
          actor: entry.first.actor,
          action: `${kind}.reject`,
          target: `${kind}s/${source}`,
          outcome: 'rejected',
          correlationId: entry.first.correlationId,
          reason: redactText(entry.first.problems.join('; ')).slice(0, MAX_PROBLEMS_CHARS) || reason,
          after: {
            reason,
            source,
            hour: `${hour}:00:00.000Z`,
            firstId: entry.first.sampleId ?? null,
            counted:
              'further rejections of this source and reason in this hour are counted, not audited one by one: GET /api/rejections',
          },
        });
        const created: CounterEntity = {
          partitionKey: hour,
          rowKey: row,
          kind,
          source,
          reason,
          count: entry.count,
          firstSeen: entry.first.time.toISOString(),
          lastSeen: entry.lastSeen.toISOString(),
          samples: JSON.stringify(entry.samples),
          auditId,
        };
        if (await this.tryWrite(() => this.table.createEntity(created))) return auditId;
        continue;
      }
      const samples = JSON.parse(current.samples ?? '[]') as string[];
      for (const s of entry.samples)
        if (samples.length < MAX_SAMPLES && !samples.includes(s)) samples.push(s);
      const updated: CounterEntity = {
        ...current,
        count: (current.count ?? 0) + entry.count,
        lastSeen: new Date(Math.max(entry.lastSeen.getTime(), Date.parse(current.lastSeen))).toISOString(),
        samples: JSON.stringify(samples),
      };
      delete updated.etag;
      if (await this.tryWrite(() => this.table.updateEntity(updated, 'Replace', { etag: current.etag })))
        return current.auditId ?? auditId;
    }
    throw new ConflictError('Rejection counter is contended; the rejection will be retried', {
      metadata: { hour, source, reason },
    });
  }

  private read(hour: string, row: string): Promise<CounterEntity | undefined> {
    return readEntity<CounterEntity>(this.table, hour, row, 'rejections read');
  }

  private tryWrite(write: () => Promise<unknown>): Promise<boolean> {
    return tryConditionalWrite('rejections write', write);
  }
}

function label(text: string): string {
  const clean = text.trim().replace(/[^\w.:@/-]/g, '_');
  return clean.slice(0, MAX_LABEL) || 'unknown';
}

function validateRejection(r: Rejection): void {
  const problems: string[] = [];
  for (const field of ['kind', 'source', 'reason', 'actor', 'correlationId'] as const) {
    if (typeof r[field] !== 'string' || r[field].trim() === '') problems.push(`${field} is required`);
  }
  if (!(r.time instanceof Date) || Number.isNaN(r.time.getTime())) problems.push('time must be a valid Date');
  if (problems.length > 0) throw new ValidationError('Invalid rejection', problems);
}
