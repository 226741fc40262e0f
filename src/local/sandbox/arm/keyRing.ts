/**
 * The keys of one credential-bearing resource (a Cosmos DB account, a Storage account, a Service
 * Bus authorization rule) and the record of their regenerations. Values are random bytes in base64
 * of the lengths the services use (Cosmos DB and Storage: 64 bytes, 88 characters; Service Bus SAS:
 * 32 bytes, 44 characters), generated at random (never derived from the scenario's seed, never
 * printed). They leave the sandbox only in the bodies of `listKeys` / `regenerateKey(s)` answers.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

export type CredentialKind = 'cosmosDb' | 'storage' | 'serviceBusRule';

/** A regeneration, as inspection shows it: which key, when, never a value. */
export interface KeyRegeneration {
  resourceId: string;
  keyName: string;
  at: string;
}

export type KeyRingListener = (ring: KeyRing, keyName: string) => void;

export class KeyRing {
  private readonly keys = new Map<string, string>();
  /** When a regenerated key starts being accepted by the data plane (epoch ms, sandbox clock). */
  private readonly acceptedFromMs = new Map<string, number>();
  private readonly history: KeyRegeneration[] = [];

  constructor(
    /** Canonical ARM id of the resource. */
    readonly resourceId: string,
    readonly kind: CredentialKind,
    /** Key names in the provider's order (`primaryMasterKey`..., `key1`/`key2`, `primaryKey`/`secondaryKey`). */
    readonly names: readonly string[],
    private readonly bytes: number,
    private readonly now: () => Date,
    private readonly listener: KeyRingListener,
    /**
     * How long a regenerated key takes to reach the data plane (scenario
     * `arm.operations.keyPropagationSeconds`, default 0). Azure documents that a regenerated key
     * can take a while to be accepted everywhere (Cosmos DB: "it may take a few minutes"): ARM's
     * `listKeys` returns it at once, while the data plane refuses it (and the value it replaced) until
     * then.
     */
    private readonly propagationMs = 0,
  ) {
    for (const name of names) this.keys.set(name, KeyRing.generate(bytes));
  }

  static generate(bytes: number): string {
    return randomBytes(bytes).toString('base64');
  }

  /** The value of a key (for the emulated `listKeys` answers and data-plane checks only). */
  value(name: string): string {
    const value = this.keys.get(name);
    if (value === undefined) throw new Error(`sandbox: ${this.resourceId} has no key ${name}`);
    return value;
  }

  /** Replaces a key by a new random value (or `value`, as Service Bus `regenerateKeys` accepts). */
  regenerate(name: string, value?: string): string {
    if (!this.keys.has(name)) throw new Error(`sandbox: ${this.resourceId} has no key ${name}`);
    const next = value ?? KeyRing.generate(this.bytes);
    this.keys.set(name, next);
    if (this.propagationMs > 0) this.acceptedFromMs.set(name, this.now().getTime() + this.propagationMs);
    this.history.push({ resourceId: this.resourceId, keyName: name, at: this.now().toISOString() });
    this.listener(this, name);
    return next;
  }

  /** The name of the key equal to `candidate` that the data plane accepts now, compared in constant time per key; undefined when none. */
  match(candidate: string): string | undefined {
    const given = Buffer.from(candidate, 'utf8');
    for (const { name, value } of this.values()) {
      const expected = Buffer.from(value, 'utf8');
      if (expected.length === given.length && timingSafeEqual(expected, given)) return name;
    }
    return undefined;
  }

  /** Whether the resource accepts this value now. */
  accepts(candidate: string): boolean {
    return this.match(candidate) !== undefined;
  }

  /**
   * Every value the data plane accepts now (a regenerated key still propagating is left out), for
   * the services that check a signature against each key in turn.
   */
  values(): Array<{ name: string; value: string }> {
    const nowMs = this.now().getTime();
    return [...this.keys]
      .filter(([name]) => (this.acceptedFromMs.get(name) ?? 0) <= nowMs)
      .map(([name, value]) => ({ name, value }));
  }

  regenerations(): KeyRegeneration[] {
    return this.history.map((r) => ({ ...r }));
  }
}

/** Every credential-bearing resource of the estate, by canonical id (case-insensitive). */
export class KeyRings {
  private readonly rings = new Map<string, KeyRing>();
  private readonly listeners: KeyRingListener[] = [];

  constructor(
    private readonly now: () => Date,
    /** `arm.operations.keyPropagationSeconds`, in ms: see `KeyRing`. */
    private readonly propagationMs = 0,
  ) {}

  create(resourceId: string, kind: CredentialKind, names: readonly string[], bytes: number): KeyRing {
    const ring = new KeyRing(
      resourceId,
      kind,
      names,
      bytes,
      this.now,
      (r, name) => {
        for (const listener of this.listeners) listener(r, name);
      },
      this.propagationMs,
    );
    this.rings.set(resourceId.toLowerCase(), ring);
    return ring;
  }

  get(resourceId: string): KeyRing | undefined {
    return this.rings.get(resourceId.toLowerCase());
  }

  all(): KeyRing[] {
    return [...this.rings.values()];
  }

  /** Called after every regeneration (the consumers' world recomputes who holds a dead key). */
  onRegenerate(listener: KeyRingListener): void {
    this.listeners.push(listener);
  }
}
