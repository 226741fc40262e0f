/**
 * Bounded, ETag-conditional deletion of rows matching a filter: the one mechanism behind the
 * retention methods of the state stores.
 */
import type { TableClient, TableEntityResult } from '@azure/data-tables';
import { ValidationError } from '../core/errors';
import { statusOf, storageCall } from './tables';

/** Rows one purge call deletes when the caller names no limit. */
export const DEFAULT_PURGE_LIMIT = 1000;
export const MAX_PURGE_LIMIT = 100_000;
/** Point deletes in flight at once: enough to make progress, gentle on the partition servers. */
const DELETES_IN_PARALLEL = 8;

export interface PurgeOptions {
  /** At most this many rows are deleted by one call (default 1000, at most 100 000). */
  limit?: number;
  abortSignal?: AbortSignal;
}

export interface PurgeResult {
  /** Rows deleted by this call. */
  deleted: number;
  /** Whether matching rows remain beyond the limit (call again, e.g. on the next sweep). */
  more: boolean;
}

/** The limit of a purge call, validated: a positive integer up to `MAX_PURGE_LIMIT`. */
export function purgeLimit(options: PurgeOptions): number {
  const limit = options.limit ?? DEFAULT_PURGE_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PURGE_LIMIT) {
    throw new ValidationError('Invalid purge limit', [
      `limit must be an integer from 1 to ${MAX_PURGE_LIMIT}`,
    ]);
  }
  return limit;
}

/** Throws `ValidationError` unless `value` is a valid Date. */
export function validDate(value: Date, name: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new ValidationError('Invalid purge request', [`${name} must be a valid Date`]);
  }
  return value;
}

/**
 * Deletes up to `limit` rows matching `filter` (and `accept`, a second check in code so that a
 * filter the service reads differently can never widen what is deleted). Each delete is conditional
 * on the ETag the row was listed with: a row changed (412) or removed (404) since is skipped, since
 * someone else owns it now. Individual deletes rather than entity-group transactions because a
 * transaction's delete cannot carry an ETag in the SDK. Storage failures surface mapped
 * (`TransientError` for 429 / 5xx / network).
 */
export async function purgeMatching<T extends object>(
  table: TableClient,
  operation: string,
  query: { filter: string; select: string[]; accept: (row: TableEntityResult<T>) => boolean },
  options: { limit: number; abortSignal?: AbortSignal },
): Promise<PurgeResult> {
  const { limit, abortSignal } = options;
  // One row beyond the limit tells whether more remain without a second query.
  const candidates = await storageCall(`${operation} list`, async () => {
    const found: TableEntityResult<T>[] = [];
    const pages = table
      .listEntities<T>({ queryOptions: { filter: query.filter, select: query.select }, abortSignal })
      .byPage({ maxPageSize: Math.min(1000, limit + 1) });
    for await (const page of pages) {
      for (const row of page as TableEntityResult<T>[]) {
        // A row without an ETag could only be deleted unconditionally: leave it.
        if (row.etag && query.accept(row)) found.push(row);
      }
      if (found.length > limit) break;
    }
    return found;
  });
  const batch = candidates.slice(0, limit);
  let deleted = 0;
  for (let first = 0; first < batch.length; first += DELETES_IN_PARALLEL) {
    const results = await Promise.all(
      batch.slice(first, first + DELETES_IN_PARALLEL).map((row) =>
        storageCall(`${operation} delete`, async () => {
          try {
            await table.deleteEntity(row.partitionKey as string, row.rowKey as string, {
              etag: row.etag,
              abortSignal,
            });
            return true;
          } catch (error) {
            const status = statusOf(error);
            if (status === 404 || status === 412) return false;
            throw error;
          }
        }),
      ),
    );
    deleted += results.filter(Boolean).length;
  }
  return { deleted, more: candidates.length > limit };
}
