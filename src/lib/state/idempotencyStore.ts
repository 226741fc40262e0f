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
/** How long a released key keeps its progress when the caller names no ttl. */
const DEFAULT_PROGRESS_TTL_MS = 72 * 3_600_000;
/** Claims whose ETag is remembered at once (a hint; beyond it, completion reads the row first). */
const MAX_HELD = 10_000;

interface IdempotencyEntity {
  partitionKey: string;
  rowKey: string;
  key: string;
  /** `released`: given up by an attempt that kept its progress for the next one (the key is free). */
  status: 'inProgress' | 'completed' | 'released';
  owner: string;
  /** ISO time: end of the claim (inProgress) or of the kept result (completed). */
  expiresOn: string;
  completedOn?: string;
  result?: string;
  /** JSON: what an attempt that gave up had done (e.g. the channels it notified). */
  progress?: string;
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
  /**
   * The ETag of each claim this process wrote and still holds (`partition\nowner`), so that its
   * completion or release is one conditional write instead of a read and a write. Only a hint: a
   * stale or forgotten ETag falls back to reading the row.
   */
  private readonly held = new Map<string, string>();

  constructor(
    private readonly table: TableClient,
    private readonly clock: Clock,
  ) {}

  private remember(partitionKey: string, owner: string, etag: string | undefined): void {
    if (!etag) return;
    if (this.held.size >= MAX_HELD) {
      const oldest = this.held.keys().next().value;
      if (oldest !== undefined) this.held.delete(oldest);
    }
    this.held.set(`${partitionKey}\n${owner}`, etag);
  }

  private takeHeld(partitionKey: string, owner: string): string | undefined {
    const id = `${partitionKey}\n${owner}`;
    const etag = this.held.get(id);
    this.held.delete(id);
    return etag;
  }

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
      // Most keys are new: try the insert first (one call); a 409 means the row exists, read it.
      if (round === 0) {
        let etag: string | undefined;
        const inserted = await this.tryWrite(async () => {
          etag = (await this.table.createEntity(claim, { abortSignal: options.abortSignal })).etag;
        });
        if (inserted) {
          this.remember(partitionKey, options.owner, etag);
          return { status: 'claimed' };
        }
      }
      const current = await this.read(partitionKey, options.abortSignal);
      if (!current) {
        let etag: string | undefined;
        const inserted = await this.tryWrite(async () => {
          etag = (await this.table.createEntity(claim, { abortSignal: options.abortSignal })).etag;
        });
        if (inserted) {
          this.remember(partitionKey, options.owner, etag);
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
      if (live && current.status === 'inProgress' && current.owner !== options.owner) {
        return { status: 'inProgress', owner: current.owner, expiresOn: new Date(current.expiresOn) };
      }
      // A released key keeps the progress of the attempt that gave it up, for the next attempt.
      const progress = current.status === 'released' ? parseJson(current.progress) : undefined;
      // Expired (claim or kept result), or our own live claim being renewed: take it over, if still as read.
      let etag: string | undefined;
      const taken = await this.tryWrite(async () => {
        etag = (
          await this.table.updateEntity(claim, 'Replace', {
            etag: current.etag,
            abortSignal: options.abortSignal,
          })
        ).etag;
      });
      if (taken) this.remember(partitionKey, options.owner, etag);
      // Someone else's claim ran out without a completion: they may have acted before dying.
      const takenOver = current.status === 'inProgress' && current.owner !== options.owner;
      if (taken) {
        return {
          status: 'claimed',
          ...(takenOver ? { takenOver } : {}),
          ...(progress !== undefined && progress !== null ? { progress } : {}),
        };
      }
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
    // Our claim as we wrote it: one conditional replace. Changed since (taken over, or renewed by
    // another call): read and judge below.
    const held = this.takeHeld(partitionKey, options.owner);
    if (
      held &&
      (await this.tryWrite(
        () => this.table.updateEntity(done, 'Replace', { etag: held, abortSignal: options.abortSignal }),
        [404, 409, 412],
      ))
    ) {
      return;
    }
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

  async release(
    key: string,
    options: { owner: string; progress?: unknown; ttlMs?: number; abortSignal?: AbortSignal },
  ): Promise<void> {
    validateKey(key);
    validateOwner(options.owner);
    const partitionKey = idempotencyPartition(key);
    const held = this.takeHeld(partitionKey, options.owner);
    if (options.progress !== undefined) {
      await this.releaseWithProgress(key, partitionKey, held, options);
      return;
    }
    if (held) {
      const deleted = await storageCall('idempotency release', async () => {
        try {
          await this.table.deleteEntity(partitionKey, ROW, { etag: held, abortSignal: options.abortSignal });
          return true;
        } catch (error) {
          if (statusOf(error) === 404 || statusOf(error) === 412) return false;
          throw error;
        }
      });
      if (deleted) return;
    }
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

  /** Release that keeps what was done for the next attempt: the row becomes `released` (free). */
  private async releaseWithProgress(
    key: string,
    partitionKey: string,
    held: string | undefined,
    options: { owner: string; progress?: unknown; ttlMs?: number; abortSignal?: AbortSignal },
  ): Promise<void> {
    const now = this.clock.now();
    const released: IdempotencyEntity = {
      partitionKey,
      rowKey: ROW,
      key,
      status: 'released',
      owner: options.owner,
      expiresOn: new Date(now.getTime() + (options.ttlMs ?? DEFAULT_PROGRESS_TTL_MS)).toISOString(),
      progress: fitJson(redact(options.progress)),
    };
    const replace = (etag: string) => () =>
      this.table.updateEntity(released, 'Replace', { etag, abortSignal: options.abortSignal });
    if (held && (await this.tryWrite(replace(held), [404, 409, 412]))) return;
    const current = await this.read(partitionKey, options.abortSignal);
    // Only a claim of ours is given up; a completed key or someone else's claim stays.
    if (current?.status !== 'inProgress' || current.owner !== options.owner) return;
    await this.tryWrite(replace(current.etag!), [404, 409, 412]);
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
  private tryWrite(write: () => Promise<unknown>, lost?: readonly number[]): Promise<boolean> {
    return tryConditionalWrite('idempotency write', write, lost);
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
