/**
 * Function-level retry policies (`retry` on an `app.*` registration), computed as the Functions host
 * does: `fixedDelay` waits `delayInterval` between attempts; `exponentialBackoff` follows the WebJobs
 * `RandomizedExponentialBackoffStrategy` (first retry after `minimumInterval`, then
 * minimum + 2^(n-2) x minimum x a random factor in [0.8, 1.2], never above `maximumInterval`).
 */
import type { RetryOptions } from './types';

/**
 * The triggers whose function-level retry policy the Functions runtime (4.x) enforces. Others retry
 * through their extension (queues and Service Bus by redelivery, Event Grid by its own delivery retries)
 * and the host ignores a `retry` on them.
 */
export const RETRY_POLICY_TRIGGERS = ['timerTrigger', 'eventHubTrigger', 'kafkaTrigger', 'cosmosDBTrigger'];

export function retryPolicyApplies(triggerType: string): boolean {
  return RETRY_POLICY_TRIGGERS.some((t) => t.toLowerCase() === triggerType.toLowerCase());
}

/** Locally, `maxRetryCount: -1` (retry forever) is capped to this many retries. */
export const LOCAL_INFINITE_RETRY_CAP = 10;

export interface RetryPolicy {
  strategy: 'fixedDelay' | 'exponentialBackoff';
  /** Retries after the first attempt (already capped). */
  maxRetryCount: number;
  /** The registration asked for infinite retries (-1), capped locally. */
  capped: boolean;
  delayMs: number;
  minimumMs: number;
  maximumMs: number;
}

/**
 * Parses the `retryOptions` of a function's metadata. The library serializes durations as
 * `{ seconds }` (`toRpcDuration`); numbers are milliseconds and strings are .NET TimeSpans
 * (`hh:mm:ss`, as in function.json). Throws a clear error on a malformed policy.
 */
export function parseRetryOptions(
  options: RetryOptions | undefined,
  functionName: string,
): RetryPolicy | undefined {
  if (!options) return undefined;
  const raw = options as RetryOptions & { retryStrategy?: string };
  const strategy = raw.strategy ?? raw.retryStrategy;
  const where = `retry options of function "${functionName}"`;
  if (strategy !== 'fixedDelay' && strategy !== 'exponentialBackoff') {
    throw new Error(
      `${where}: strategy must be "fixedDelay" or "exponentialBackoff", got "${String(strategy)}".`,
    );
  }
  const count = Number(raw.maxRetryCount);
  if (!Number.isInteger(count) || count < -1) {
    throw new Error(`${where}: maxRetryCount must be an integer >= -1, got "${String(raw.maxRetryCount)}".`);
  }
  const capped = count === -1;
  const maxRetryCount = capped ? LOCAL_INFINITE_RETRY_CAP : count;
  if (strategy === 'fixedDelay') {
    const delayMs = durationToMs(raw.delayInterval, `${where}: delayInterval`);
    return { strategy, maxRetryCount, capped, delayMs, minimumMs: delayMs, maximumMs: delayMs };
  }
  const minimumMs = durationToMs(raw.minimumInterval, `${where}: minimumInterval`);
  const maximumMs = durationToMs(raw.maximumInterval, `${where}: maximumInterval`);
  if (minimumMs > maximumMs)
    throw new Error(`${where}: minimumInterval must not be greater than maximumInterval.`);
  return { strategy, maxRetryCount, capped, delayMs: minimumMs, minimumMs, maximumMs };
}

/**
 * The wait before retry number `retryCount` (1 = first retry). `random` returns [0, 1) and is only
 * used by `exponentialBackoff`, for the host's +-20 % randomization.
 */
export function retryDelayMs(
  policy: RetryPolicy,
  retryCount: number,
  random: () => number = Math.random,
): number {
  if (retryCount < 1) return 0;
  if (policy.strategy === 'fixedDelay') return policy.delayMs;
  if (retryCount === 1) return Math.min(policy.minimumMs, policy.maximumMs);
  const factor = 0.8 + 0.4 * random();
  const increment = factor * 2 ** (retryCount - 2) * policy.minimumMs;
  return Math.min(policy.minimumMs + increment, policy.maximumMs);
}

const TIMESPAN = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$/;

/** A duration as the library or function.json gives it, in milliseconds. */
export function durationToMs(value: unknown, what: string): number {
  if (value === undefined || value === null) throw new Error(`${what} is required.`);
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error(`${what} must be a non-negative number of ms.`);
    return value;
  }
  if (typeof value === 'string') {
    const ms = parseTimeSpan(value);
    if (ms === undefined) throw new Error(`${what} must be a TimeSpan like "00:00:05", got "${value}".`);
    return ms;
  }
  if (typeof value === 'object') {
    const d = value as { seconds?: unknown; milliseconds?: unknown; minutes?: unknown; hours?: unknown };
    const parts = [d.hours, d.minutes, d.seconds, d.milliseconds].map((p) =>
      p === undefined ? 0 : Number(p),
    );
    if (parts.some((p) => !Number.isFinite(p) || p < 0))
      throw new Error(`${what} has a negative or non-numeric part.`);
    const [h, m, s, ms] = parts as [number, number, number, number];
    return ((h * 60 + m) * 60 + s) * 1000 + ms;
  }
  throw new Error(`${what} must be a number (ms), a Duration object or a TimeSpan string.`);
}

/** Parses a .NET TimeSpan (`[d.]hh:mm[:ss[.fffffff]]`) into ms; undefined when it is not one. */
export function parseTimeSpan(text: string): number | undefined {
  const match = TIMESPAN.exec(text.trim());
  if (!match) return undefined;
  const [, days, hours, minutes, seconds, fraction] = match;
  const h = Number(hours);
  const m = Number(minutes);
  const s = Number(seconds ?? 0);
  if (h > 23 || m > 59 || s > 59) return undefined;
  const fractionMs = fraction ? Number(`0.${fraction}`) * 1000 : 0;
  return (((Number(days ?? 0) * 24 + h) * 60 + m) * 60 + s) * 1000 + fractionMs;
}

/**
 * Resolves true after `ms`, or false early when `signal` aborts (at once if it already has): the
 * host's waits (retry delays, queue polling back-off, batch gathering) end when the host stops.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Resolves true once every promise in `work` has settled, or false after `ms` when some still
 * have not: a stopping host waits for running invocations, but not for ever.
 */
export async function settledWithin(work: Iterable<Promise<unknown>>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const all = Promise.allSettled([...work]).then(() => true);
  const limit = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([all, limit]);
  } finally {
    clearTimeout(timer);
  }
}
