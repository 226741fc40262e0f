import type { IdempotencyStore } from '../ports/state';
import { CompletionPendingError, ConflictError, InProgressError, isStampkeeperError } from './errors';

/**
 * Fallback claim lease when a caller gives none. The composition root passes one derived from the
 * host's `functionTimeout` (`claimLeaseMs`), so that a claim outlives the longest invocation that
 * may hold it: a shorter lease would let a second attempt take the key over while the first one
 * is still working.
 */
const DEFAULT_LEASE_MS = 35 * 60_000;
/** Attempts at recording a completion before giving up for this invocation (then: pending). */
const COMPLETE_ATTEMPTS = 3;
const COMPLETE_BACKOFF_MS = 200;

export interface OnceOptions {
  /** Unique per attempt (the invocation id): owner of the claim. */
  owner: string;
  /** How long the completed result is remembered (duplicates inside it answer `duplicate`). */
  ttlMs: number;
  /** How long a claim protects work in progress before another attempt may take it over. */
  leaseMs?: number;
  /** What the `InProgressError` says when another attempt holds the key. */
  busyMessage: string;
  abortSignal?: AbortSignal;
}

export type OnceResult<T> =
  | { status: 'done'; result: T }
  /** The work ran but decided to do nothing: the key was left free for a later attempt. */
  | { status: 'nothingDone'; result: T }
  | { status: 'duplicate'; previous: unknown };

/** What `work` learns about the key it runs under, and how it keeps partial progress. */
export interface OnceWork {
  /**
   * An earlier attempt claimed this key and its claim ran out without a completion: it may have
   * acted (and crashed before recording it). The work must check the remote state before acting.
   */
  takenOver: boolean;
  /** What earlier attempts had done before they failed (what they passed to `setProgress`). */
  readonly progress: unknown;
  /**
   * Records what this attempt has done so far (non-sensitive). Should the work then fail, the key is
   * released with it, and the next attempt receives it as `progress`: what was done is not redone.
   */
  setProgress(progress: unknown): void;
}

/**
 * Completions that could not be recorded, kept for the life of the process: a retry in this process
 * records them instead of doing the work again. (Across processes, the claim stays held until its
 * lease runs out, and a later attempt runs with `takenOver`: check, then act.)
 */
const pendingCompletions = new Map<string, { owner: string; summary: unknown; ttlMs: number }>();
const MAX_PENDING = 10_000;

/**
 * Runs `work` at most once per `key`: claims the key, runs, then completes it with a summary of
 * the result.
 *
 * - A key completed before answers `duplicate` (nothing runs).
 * - A key held by a live claim of another attempt throws a retryable `InProgressError`.
 * - Only an action that was done consumes the key: when `consumed(result)` is false (the work
 *   decided, from state that may change, to do nothing), the claim is released and the answer is
 *   `nothingDone`, so that a later delivery, retry or sweep acts if the state then calls for it.
 * - A failure of the work releases the claim, so that a retry can run at once.
 * - When the work succeeded but its completion cannot be recorded (after a few tries), the claim is
 *   NOT released: `CompletionPendingError` (retryable) is thrown, and a retry in this process
 *   records the completion without repeating the work. Lost-race conflicts are not retried here.
 */
export async function runOnce<T>(
  store: IdempotencyStore,
  key: string,
  options: OnceOptions & {
    /** Non-sensitive summary of the result, stored with the key for duplicates to answer. */
    summarize?: (result: T) => unknown;
    /** Whether the result is an action done (default: always). */
    consumed?: (result: T) => boolean;
  },
  work: (once: OnceWork) => Promise<T>,
): Promise<OnceResult<T>> {
  const pending = pendingCompletions.get(key);
  if (pending) {
    // Done before by an attempt of this process, not recorded yet: record it, do not redo it.
    await completeWithRetries(store, key, pending.owner, pending.summary, pending.ttlMs, options.abortSignal);
    pendingCompletions.delete(key);
    return { status: 'duplicate', previous: pending.summary };
  }
  const claim = await store.claim(key, {
    owner: options.owner,
    leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
    abortSignal: options.abortSignal,
  });
  if (claim.status === 'completed') return { status: 'duplicate', previous: claim.result };
  if (claim.status === 'inProgress') {
    throw new InProgressError(options.busyMessage, {
      metadata: { heldUntil: claim.expiresOn.toISOString() },
    });
  }
  let progress: unknown = claim.progress;
  let progressed = false;
  let result: T;
  try {
    result = await work({
      takenOver: claim.takenOver === true,
      progress: claim.progress,
      setProgress(next) {
        progress = next;
        progressed = true;
      },
    });
  } catch (error) {
    await store
      .release(key, {
        owner: options.owner,
        ...(progressed || progress !== undefined ? { progress, ttlMs: options.ttlMs } : {}),
      })
      .catch(() => undefined);
    throw error;
  }
  if (options.consumed && !options.consumed(result)) {
    await store.release(key, { owner: options.owner }).catch(() => undefined);
    return { status: 'nothingDone', result };
  }
  const summary = options.summarize ? options.summarize(result) : null;
  try {
    await completeWithRetries(store, key, options.owner, summary, options.ttlMs, options.abortSignal);
  } catch (error) {
    if (error instanceof ConflictError || !isStampkeeperError(error) || !error.retryable) throw error;
    if (pendingCompletions.size >= MAX_PENDING) {
      const oldest = pendingCompletions.keys().next().value;
      if (oldest !== undefined) pendingCompletions.delete(oldest);
    }
    pendingCompletions.set(key, { owner: options.owner, summary, ttlMs: options.ttlMs });
    throw new CompletionPendingError('the work was done but recording it failed; a retry records it', {
      cause: error,
    });
  }
  return { status: 'done', result };
}

async function completeWithRetries(
  store: IdempotencyStore,
  key: string,
  owner: string,
  result: unknown,
  ttlMs: number,
  abortSignal: AbortSignal | undefined,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await store.complete(key, { owner, result, ttlMs, abortSignal });
      return;
    } catch (error) {
      const transient = isStampkeeperError(error) && error.retryable && !(error instanceof ConflictError);
      if (!transient || attempt >= COMPLETE_ATTEMPTS || abortSignal?.aborted) throw error;
      await new Promise((resolve) => setTimeout(resolve, COMPLETE_BACKOFF_MS * attempt));
    }
  }
}

/** For tests: forget completions pending in this process. */
export function clearPendingCompletions(): void {
  pendingCompletions.clear();
}
