import { odata, type TableClient } from '@azure/data-tables';
import { AlreadyDoneError, ConflictError, InProgressError, ValidationError } from '../core/errors';
import { stableHash, toTableKey } from '../core/ids';
import { redact } from '../core/redact';
import type { Clock } from '../ports/clock';
import type { ClaimResult, IdempotencyStore } from '../ports/state';
import { fitJson, parseJson } from './limits';
import { type PurgeOptions, type PurgeResult, purgeLimit, purgeMatching, validDate } from './purge';
import { readEntity, statusOf, storageCall, tryConditionalWrite } from './tables';

const ROW = 'key';
/** Keys longer than this are hashed (Table keys are limited to 1 KiB and forbid some characters). */
const MAX_READABLE_KEY = 255;
/** Re-reads after losing a write race before giving up with a `ConflictError`. */
const MAX_ROUNDS = 5;

interface IdempotencyEntity {
  partitionKey: string;
  rowKey: string;
  key: string;
  status: 'inProgress' | 'completed';
  owner: string;
  /** ISO time: end of the claim (inProgress) or of the kept result (completed). */
  expiresOn: string;
  completedOn?: string;
  result?: string;
  etag?: string;
}

/** PartitionKey for an idempotency key: readable when short, hashed when long. */
export function idempotencyPartition(key: string): string {
  const readable = toTableKey(key);
  return readable.length <= MAX_READABLE_KEY ? readable : `h_${stableHash(key)}`;
}

/**
 * Idempotency keys on a Table, one entity per key. Every change is an ETag-conditional write
 * (insert for a new key, replace-if-match otherwise), so of N concurrent claims exactly one wins.
 * Expiry is judged by the injected clock. Needs `Storage Table Data Contributor`. A lost race is
 * re-read and re-judged; Storage failures surface as `TransientError` / `DependencyError`.
 */
export class TableIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly table: TableClient,
    private readonly clock: Clock,
  ) {}

  async claim(
    key: string,
    options: { owner: string; leaseMs: number; abortSignal?: AbortSignal },
  ): Promise<ClaimResult> {
    validateKey(key);
    validateOwner(options.owner);
    if (!Number.isFinite(options.leaseMs) || options.leaseMs <= 0) {
      throw new ValidationError('Invalid idempotency claim', ['leaseMs must be a positive number']);
    }
    const partitionKey = idempotencyPartition(key);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const now = this.clock.now();
      const claim: IdempotencyEntity = {
        partitionKey,
        rowKey: ROW,
        key,
        status: 'inProgress',
        owner: options.owner,
        expiresOn: new Date(now.getTime() + options.leaseMs).toISOString(),
      };
      const current = await this.read(partitionKey, options.abortSignal);
      if (!current) {
        if (await this.tryWrite(() => this.table.createEntity(claim, { abortSignal: options.abortSignal }))) {
          return { status: 'claimed' };
        }
        continue;
      }
      const live = new Date(current.expiresOn).getTime() > now.getTime();
      if (live && current.status === 'completed') {
        return {
          status: 'completed',
          result: parseJson(current.result),
          completedOn: new Date(current.completedOn ?? current.expiresOn),
        };
      }
      if (live && current.owner !== options.owner) {
        return { status: 'inProgress', owner: current.owner, expiresOn: new Date(current.expiresOn) };
      }
      // Expired (claim or kept result), or our own live claim being renewed: take it over, if still as read.
      const taken = await this.tryWrite(() =>
        this.table.updateEntity(claim, 'Replace', { etag: current.etag, abortSignal: options.abortSignal }),
      );
      // Someone else's claim ran out without a completion: they may have acted before dying.
      const takenOver = current.status === 'inProgress' && current.owner !== options.owner;
      if (taken) return takenOver ? { status: 'claimed', takenOver } : { status: 'claimed' };
    }
    throw new ConflictError(`Idempotency key is contended; gave up after ${MAX_ROUNDS} rounds`, {
      metadata: { key: partitionKey },
    });
  }

  async complete(
    key: string,
    options: { owner: string; result: unknown; ttlMs: number; abortSignal?: AbortSignal },
  ): Promise<void> {
    validateKey(key);
    validateOwner(options.owner);
    if (!Number.isFinite(options.ttlMs) || options.ttlMs <= 0) {
      throw new ValidationError('Invalid idempotency completion', ['ttlMs must be a positive number']);
    }
    const partitionKey = idempotencyPartition(key);
    const now = this.clock.now();
    const done: IdempotencyEntity = {
      partitionKey,
      rowKey: ROW,
      key,
      status: 'completed',
      owner: options.owner,
      completedOn: now.toISOString(),
      expiresOn: new Date(now.getTime() + options.ttlMs).toISOString(),
      result: fitJson(redact(options.result ?? null)),
    };
    const current = await this.read(partitionKey, options.abortSignal);
    if (current && current.owner !== options.owner) {
      // Our claim expired and someone else took the key over: their outcome is the one that counts.
      if (current.status === 'completed') {
        throw new AlreadyDoneError('Idempotency key was completed by another owner', {
          metadata: { key: partitionKey, owner: current.owner },
        });
      }
      throw new InProgressError('Idempotency key is now held by another owner', {
        metadata: { key: partitionKey, owner: current.owner },
      });
    }
    const ok = await this.tryWrite(() =>
      current
        ? this.table.updateEntity(done, 'Replace', { etag: current.etag, abortSignal: options.abortSignal })
        : this.table.createEntity(done, { abortSignal: options.abortSignal }),
    );
    if (!ok) {
      throw new ConflictError('Idempotency key changed while completing it', {
        metadata: { key: partitionKey },
      });
    }
  }

  async release(key: string, options: { owner: string; abortSignal?: AbortSignal }): Promise<void> {
    validateKey(key);
    validateOwner(options.owner);
    const partitionKey = idempotencyPartition(key);
    const current = await this.read(partitionKey, options.abortSignal);
    // Only a claim of ours is given up; a completed key or someone else's claim stays.
    if (current?.status !== 'inProgress' || current.owner !== options.owner) return;
    await storageCall('idempotency release', async () => {
      try {
        await this.table.deleteEntity(partitionKey, ROW, {
          etag: current.etag,
          abortSignal: options.abortSignal,
        });
      } catch (error) {
        // Gone or changed since read: someone else's state now, not ours to remove.
        if (statusOf(error) === 404 || statusOf(error) === 412) return;
        throw error;
      }
    });
  }

  /**
   * Retention: deletes keys whose expiry is before `now` (kept results past their TTL and claims
   * abandoned by a worker that died), at most `limit` per call. Such a row is already treated as
   * absent by `claim`, so removing it changes no answer. Each delete is conditional on the ETag
   * read: a key claimed again meanwhile (412) or released (404) is skipped. Needs
   * `Storage Table Data Contributor`; transient failures surface as `TransientError` (safe to repeat).
   */
  async purgeExpired(now: Date, options: PurgeOptions = {}): Promise<PurgeResult> {
    const limit = purgeLimit(options);
    const cutoff = validDate(now, 'now').getTime();
    return purgeMatching<IdempotencyEntity>(
      this.table,
      'idempotency purge',
      {
        filter: odata`expiresOn lt ${new Date(cutoff).toISOString()}`,
        select: ['PartitionKey', 'RowKey', 'expiresOn'],
        accept: (row) => new Date(row.expiresOn).getTime() < cutoff,
      },
      { limit, abortSignal: options.abortSignal },
    );
  }

  private read(partitionKey: string, abortSignal?: AbortSignal): Promise<IdempotencyEntity | undefined> {
    return readEntity<IdempotencyEntity>(this.table, partitionKey, ROW, 'idempotency read', abortSignal);
  }

  /** Runs a conditional write; `false` when it lost the race (409 on insert, 412 on replace). */
  private tryWrite(write: () => Promise<unknown>): Promise<boolean> {
    return tryConditionalWrite('idempotency write', write);
  }
}

function validateKey(key: string): void {
  if (typeof key !== 'string' || key.trim() === '') {
    throw new ValidationError('Invalid idempotency key', ['key must be a non-empty string']);
  }
  if (key.length > 4096)
    throw new ValidationError('Invalid idempotency key', ['key must be at most 4096 characters']);
}

function validateOwner(owner: string): void {
  if (typeof owner !== 'string' || owner.trim() === '') {
    throw new ValidationError('Invalid idempotency owner', ['owner must be a non-empty string']);
  }
}
