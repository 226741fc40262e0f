import type { IdempotencyStore } from '../ports/state';
import { ConflictError } from './errors';

const DEFAULT_LEASE_MS = 5 * 60_000;

export interface OnceOptions {
  /** Unique per attempt (the invocation id): owner of the claim. */
  owner: string;
  /** How long the completed result is remembered (duplicates inside it answer `duplicate`). */
  ttlMs: number;
  /** How long a claim protects work in progress before another attempt may take it over. */
  leaseMs?: number;
  /** What the `ConflictError` says when another attempt holds the key. */
  busyMessage: string;
  abortSignal?: AbortSignal;
}

export type OnceResult<T> = { status: 'done'; result: T } | { status: 'duplicate'; previous: unknown };

/**
 * Runs `work` at most once per `key`: claims the key, runs, then completes it with a summary of
 * the result. A key completed before answers `duplicate` (nothing runs); a key held by a live claim
 * throws a retryable `ConflictError`; a failure releases the claim so that a retry can run at once.
 * A crash between the work and the completion leaves a claim that expires after `leaseMs`: the work
 * must then be safe to repeat (check, then act).
 */
export async function runOnce<T>(
  store: IdempotencyStore,
  key: string,
  options: OnceOptions & {
    /** Non-sensitive summary of the result, stored with the key for duplicates to answer. */
    summarize?: (result: T) => unknown;
  },
  work: () => Promise<T>,
): Promise<OnceResult<T>> {
  const claim = await store.claim(key, {
    owner: options.owner,
    leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
    abortSignal: options.abortSignal,
  });
  if (claim.status === 'completed') return { status: 'duplicate', previous: claim.result };
  if (claim.status === 'inProgress') throw new ConflictError(options.busyMessage);
  try {
    const result = await work();
    await store.complete(key, {
      owner: options.owner,
      result: options.summarize ? options.summarize(result) : null,
      ttlMs: options.ttlMs,
      abortSignal: options.abortSignal,
    });
    return { status: 'done', result };
  } catch (error) {
    await store.release(key, { owner: options.owner }).catch(() => undefined);
    throw error;
  }
}
