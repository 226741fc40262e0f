/**
 * Dual-key credentials, as a port: a resource (Cosmos DB account, Storage account, Service Bus
 * authorization rule) holds two keys that are both valid at once, so one can be regenerated while
 * consumers use the other. Values travel only where a caller must test or publish one: a listing
 * carries fingerprints unless values are asked for; a regeneration returns the new value.
 */
import { createHash } from 'node:crypto';

/**
 * The credential family: Cosmos DB account keys (read-write pair), Cosmos DB read-only keys, Storage
 * account keys, Service Bus SAS rule keys (namespace or queue / topic rule).
 */
export type KeyProviderKind = 'cosmosDb' | 'cosmosDbReadOnly' | 'storage' | 'serviceBus';

/** Which of the two keys: every provider's pair is a primary and a secondary (Storage: key1, key2). */
export type KeySlot = 'primary' | 'secondary';

export interface ProvidedKey {
  slot: KeySlot;
  /**
   * The provider's own name for the key: `primaryMasterKey` / `secondaryMasterKey` /
   * `primaryReadonlyMasterKey` / `secondaryReadonlyMasterKey` (Cosmos DB), `key1` / `key2`
   * (Storage), `primaryKey` / `secondaryKey` (Service Bus). Safe to log.
   */
  name: string;
  /**
   * `keyFingerprint(value)`: compare with the fingerprint of the value a Key Vault version holds to
   * tell which key it is, without carrying the value. Safe to log.
   */
  fingerprint: string;
  /** The value, only when asked for (`withValues`) or just regenerated. Registered with the redactor; never log it. */
  value?: string;
}

export interface KeyPair {
  kind: KeyProviderKind;
  resourceId: string;
  primary: ProvidedKey;
  secondary: ProvidedKey;
}

export interface KeyTestResult {
  /** True when the data plane accepted the key; false when it refused it as invalid (401 / 403 on the signature). */
  accepted: boolean;
  /** The status the data plane answered. */
  status: number;
  /** What the data plane said, safe to log (no value): `200 database account read`, `401 Unauthorized: ...`. */
  detail: string;
}

export interface KeyCallOptions {
  abortSignal?: AbortSignal;
}

/** One credential family's management and data-plane test. Adapters live in `src/lib/azure/*Keys.ts`. */
export interface KeyProvider {
  readonly kind: KeyProviderKind;
  /** Both keys of the resource: names and fingerprints, and values with `withValues`. */
  listKeys(resourceId: string, options?: KeyCallOptions & { withValues?: boolean }): Promise<KeyPair>;
  /**
   * Regenerates one key and returns it with its new value (which the caller must test, then publish).
   * Not idempotent: every call replaces the key; callers check the remote state first.
   */
  regenerateKey(
    resourceId: string,
    slot: KeySlot,
    options?: KeyCallOptions,
  ): Promise<ProvidedKey & { value: string }>;
  /**
   * Tests a key against the resource's data plane with a read that changes nothing. Resolves
   * `accepted: false` when the service refuses the key; throws (a retryable `TransientError`, a
   * `DependencyError`...) when the answer says nothing about the key (throttling, outage, network).
   */
  testKey(resourceId: string, value: string, options?: KeyCallOptions): Promise<KeyTestResult>;
  /**
   * The connection string a consumer would use with this key (the format the service's portal
   * shows), for secrets that hold a connection string rather than the bare key. No remote call.
   */
  connectionString(resourceId: string, value: string): string;
}

/**
 * A short, non-reversible fingerprint of a key value (the first 16 hex digits of its SHA-256): enough
 * to tell two keys apart, useless to anyone who wants the key.
 */
export function keyFingerprint(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 16);
}

/**
 * The key inside a secret value: the `AccountKey=` or `SharedAccessKey=` part of a connection string,
 * or the value itself when it is a bare key.
 */
export function keyInSecretValue(value: string): string {
  const match = /(?:^|;)\s*(?:AccountKey|SharedAccessKey)=([^;]+)/i.exec(value);
  return match?.[1]?.trim() ?? value.trim();
}
