import { odata, type TableClient } from '@azure/data-tables';
import { ValidationError } from '../core/errors';
import { toTableKey } from '../core/ids';
import type { Clock } from '../ports/clock';
import type { LeaseGrant, LeaseStore } from '../ports/state';
import { type PurgeOptions, type PurgeResult, purgeLimit, purgeMatching, validDate } from './purge';
import { readEntity, tryConditionalWrite } from './tables';

const PARTITION = 'lease';
/** How long an expired lease is kept before retention removes it. */
export const DEFAULT_LEASE_PURGE_GRACE_MS = 86_400_000;

interface LeaseEntity {
  partitionKey: string;
  rowKey: string;
  owner: string;
  expiresOn: string;
  etag?: string;
}

/**
 * Named leases on the Leases table, one entity per name. Acquire inserts (new name) or replaces
 * if-match (expired, or re-entrant for the same owner); renew and release are conditional on the
 * ETag read, so two owners never both believe they hold a lease. Needs
 * `Storage Table Data Contributor`. A lost race answers `undefined`, not an error.
 */
export class TableLeaseStore implements LeaseStore {
  constructor(
    private readonly table: TableClient,
    private readonly clock: Clock,
  ) {}

  async acquire(
    name: string,
    owner: string,
    ttlMs: number,
    options: { abortSignal?: AbortSignal } = {},
  ): Promise<LeaseGrant | undefined> {
    validate(name, owner, ttlMs);
    const now = this.clock.now();
    const current = await this.read(name, options.abortSignal);
    const grant: LeaseGrant = { name, owner, expiresOn: new Date(now.getTime() + ttlMs) };
    const entity: LeaseEntity = {
      partitionKey: PARTITION,
      rowKey: toTableKey(name),
      owner,
      expiresOn: grant.expiresOn.toISOString(),
    };
    if (!current) {
      return (await this.tryWrite(() => this.table.createEntity(entity, options))) ? grant : undefined;
    }
    const live = new Date(current.expiresOn).getTime() > now.getTime();
    if (live && current.owner !== owner) return undefined;
    const ok = await this.tryWrite(() =>
      this.table.updateEntity(entity, 'Replace', { etag: current.etag, abortSignal: options.abortSignal }),
    );
    return ok ? grant : undefined;
  }

  async renew(
    name: string,
    owner: string,
    ttlMs: number,
    options: { abortSignal?: AbortSignal } = {},
  ): Promise<LeaseGrant | undefined> {
    validate(name, owner, ttlMs);
    const now = this.clock.now();
    const current = await this.read(name, options.abortSignal);
    // An expired lease is still ours to renew as long as nobody took it over.
    if (!current || current.owner !== owner) return undefined;
    const grant: LeaseGrant = { name, owner, expiresOn: new Date(now.getTime() + ttlMs) };
    const ok = await this.tryWrite(() =>
      this.table.updateEntity(
        {
          partitionKey: PARTITION,
          rowKey: toTableKey(name),
          owner,
          expiresOn: grant.expiresOn.toISOString(),
        },
        'Replace',
        { etag: current.etag, abortSignal: options.abortSignal },
      ),
    );
    return ok ? grant : undefined;
  }

  async release(name: string, owner: string, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    validate(name, owner, 1);
    const current = await this.read(name, options.abortSignal);
    if (!current || current.owner !== owner) return;
    await this.tryWrite(() =>
      this.table.deleteEntity(PARTITION, toTableKey(name), {
        etag: current.etag,
        abortSignal: options.abortSignal,
      }),
    );
  }

  /**
   * Retention: deletes leases that expired more than `graceMs` (default one day) before `now`, at
   * most `limit` per call. The grace keeps a lease its owner may still renew after a short overrun
   * (`renew` accepts an expired lease nobody took). Each delete is conditional on the ETag read: a
   * lease acquired or renewed meanwhile (412) or released (404) is skipped. Needs
   * `Storage Table Data Contributor`; transient failures surface as `TransientError` (safe to repeat).
   */
  async purgeExpired(now: Date, options: PurgeOptions & { graceMs?: number } = {}): Promise<PurgeResult> {
    const limit = purgeLimit(options);
    const graceMs = options.graceMs ?? DEFAULT_LEASE_PURGE_GRACE_MS;
    if (!Number.isFinite(graceMs) || graceMs < 0) {
      throw new ValidationError('Invalid lease purge', ['graceMs must be a number of at least 0']);
    }
    const cutoff = validDate(now, 'now').getTime() - graceMs;
    return purgeMatching<LeaseEntity>(
      this.table,
      'lease purge',
      {
        filter: odata`PartitionKey eq ${PARTITION} and expiresOn lt ${new Date(cutoff).toISOString()}`,
        select: ['PartitionKey', 'RowKey', 'expiresOn'],
        accept: (row) => new Date(row.expiresOn).getTime() < cutoff,
      },
      { limit, abortSignal: options.abortSignal },
    );
  }

  private read(name: string, abortSignal?: AbortSignal): Promise<LeaseEntity | undefined> {
    return readEntity<LeaseEntity>(this.table, PARTITION, toTableKey(name), 'lease read', abortSignal);
  }

  /** A conditional write; `false` when the lease changed or vanished since it was read. */
  private tryWrite(write: () => Promise<unknown>): Promise<boolean> {
    return tryConditionalWrite('lease write', write, [404, 409, 412]);
  }
}

function validate(name: string, owner: string, ttlMs: number): void {
  const problems: string[] = [];
  if (typeof name !== 'string' || name.trim() === '' || name.length > 255) {
    problems.push('name must be a non-empty string of at most 255 characters');
  }
  if (typeof owner !== 'string' || owner.trim() === '') problems.push('owner must be a non-empty string');
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) problems.push('ttlMs must be a positive number');
  if (problems.length > 0) throw new ValidationError('Invalid lease request', problems);
}
