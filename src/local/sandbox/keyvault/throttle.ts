/**
 * Key Vault's service limits, emulated (learn.microsoft.com/azure/key-vault/general/service-limits,
 * "Secrets, managed storage account keys, and vault transactions": 4,000 transactions per 10 seconds,
 * per vault per region; overview-throttling: a request over the limit fails with HTTP 429, and
 * "failed requests that return a 429 do not count towards the throttle limits").
 *
 * The window slides over machine time (`Date.now()`), not the sandbox clock: Key Vault counts
 * real seconds, and a client's retry delay is real time too. Every request that reached the vault
 * with a valid token counts as one transaction, whatever its answer; a 401 challenge (no token yet)
 * and a throttled request do not. The subscription-wide limit (5 times a vault's) is not emulated.
 */

/** What a throttled vault answers (the 429 body Key Vault sends: vcsjones/AzureSignTool#219). */
export const THROTTLED_CODE = 'Throttled';
export const THROTTLED_MESSAGE =
  'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached';

export interface KeyVaultThrottling {
  /** Transactions one vault serves per window. Key Vault: 4,000. */
  limit: number;
  /** The window, in milliseconds of machine time. Key Vault: 10 s. */
  windowMs: number;
  /**
   * Whether a 429 carries `Retry-After` (whole seconds until the window frees a slot). A real
   * `Throttled` answer was seen without one (its headers, as azure-sdk-for-net's
   * RequestFailedException printed them: vcsjones/AzureSignTool#219), and Key Vault's guidance
   * prescribes exponential back-off instead: off by default, on to check that a client honours one.
   */
  retryAfter: boolean;
}

/** Key Vault's published limit for secrets, the sandbox's default. */
export const KEY_VAULT_LIMITS: Readonly<KeyVaultThrottling> = {
  limit: 4000,
  windowMs: 10_000,
  retryAfter: false,
};

/** The decision for one request: served (it counts), or throttled for `retryAfterMs`. */
export type ThrottleDecision = { throttled: false } | { throttled: true; retryAfterMs: number };

/**
 * A sliding window per vault: the times of the last `limit` transactions served, in a ring. A
 * request is served when fewer than `limit` were served in the `windowMs` before it.
 */
export class VaultThrottle {
  private readonly rings = new Map<string, { times: number[]; head: number; size: number }>();

  constructor(
    readonly limits: Readonly<KeyVaultThrottling>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one transaction of `vault` (case-insensitive), or says how long until one frees. */
  take(vault: string): ThrottleDecision {
    const key = vault.toLowerCase();
    let ring = this.rings.get(key);
    if (!ring) {
      ring = { times: new Array<number>(this.limits.limit), head: 0, size: 0 };
      this.rings.set(key, ring);
    }
    const now = this.now();
    // Drop the transactions that left the window.
    while (ring.size > 0 && ring.times[ring.head]! <= now - this.limits.windowMs) {
      ring.head = (ring.head + 1) % this.limits.limit;
      ring.size--;
    }
    if (ring.size >= this.limits.limit) {
      return { throttled: true, retryAfterMs: ring.times[ring.head]! + this.limits.windowMs - now };
    }
    ring.times[(ring.head + ring.size) % this.limits.limit] = now;
    ring.size++;
    return { throttled: false };
  }
}
