/** Hand-written fakes of the ports, for unit tests of use cases. */
import { AlreadyDoneError, InProgressError, NotFoundError } from '../../src/lib/core/errors';
import type { Clock } from '../../src/lib/ports/clock';
import type { ChannelResult, Notification, Notifier } from '../../src/lib/ports/notifier';
import type { SecretProperties, SecretVault, SecretWithValue } from '../../src/lib/ports/secrets';
import type {
  AuditLog,
  AuditQuery,
  AuditRecord,
  ClaimResult,
  IdempotencyStore,
  Rejection,
  RejectionBucket,
  RejectionLog,
} from '../../src/lib/ports/state';

export class TestClock implements Clock {
  constructor(private current: Date) {}
  now(): Date {
    return new Date(this.current);
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

export class MemoryAudit implements AuditLog {
  readonly records: AuditRecord[] = [];
  async append(record: AuditRecord): Promise<void> {
    if (this.records.some((r) => r.id === record.id)) return;
    this.records.push(structuredClone(record));
  }
  async query(q: AuditQuery): Promise<AuditRecord[]> {
    return this.records.filter(
      (r) =>
        (!q.since || r.time >= q.since) &&
        (!q.until || r.time <= q.until) &&
        (!q.target || r.target === q.target),
    );
  }
}

export class MemoryIdempotency implements IdempotencyStore {
  private readonly entries = new Map<
    string,
    {
      owner: string;
      expiresOn: Date;
      result?: unknown;
      completedOn?: Date;
      progress?: unknown;
      released?: boolean;
    }
  >();
  /** Errors the next `complete` calls throw, one per call (to play a storage outage). */
  readonly completeFailures: Error[] = [];
  completeCalls = 0;
  constructor(private readonly clock: Clock) {}
  /** Whether `key` is held by a live, uncompleted claim. */
  held(key: string): boolean {
    const entry = this.entries.get(key);
    return Boolean(entry && !entry.completedOn && !entry.released && entry.expiresOn > this.clock.now());
  }
  async claim(key: string, o: { owner: string; leaseMs: number }): Promise<ClaimResult> {
    const now = this.clock.now();
    const entry = this.entries.get(key);
    if (entry?.completedOn && entry.expiresOn > now)
      return { status: 'completed', result: entry.result, completedOn: entry.completedOn };
    if (entry && !entry.completedOn && !entry.released && entry.expiresOn > now && entry.owner !== o.owner) {
      return { status: 'inProgress', owner: entry.owner, expiresOn: entry.expiresOn };
    }
    this.entries.set(key, { owner: o.owner, expiresOn: new Date(now.getTime() + o.leaseMs) });
    // As the real store: a released key hands its progress on; an expired claim of another owner
    // that never completed is taken over.
    if (entry?.released)
      return entry.progress === undefined
        ? { status: 'claimed' }
        : { status: 'claimed', progress: entry.progress };
    if (entry && !entry.completedOn && entry.owner !== o.owner) return { status: 'claimed', takenOver: true };
    return { status: 'claimed' };
  }
  async complete(key: string, o: { owner: string; result: unknown; ttlMs: number }): Promise<void> {
    this.completeCalls++;
    const failure = this.completeFailures.shift();
    if (failure) throw failure;
    const now = this.clock.now();
    const entry = this.entries.get(key);
    // As the real store: completing a key that another owner holds or completed is refused.
    if (entry && entry.owner !== o.owner && entry.completedOn)
      throw new AlreadyDoneError(`key ${key} was completed by another owner`);
    if (!entry || entry.owner !== o.owner)
      throw new InProgressError(`claim ${key} is not held by ${o.owner}`);
    this.entries.set(key, {
      owner: o.owner,
      result: o.result,
      completedOn: now,
      expiresOn: new Date(now.getTime() + o.ttlMs),
    });
  }
  async release(key: string, o: { owner: string; progress?: unknown }): Promise<void> {
    const entry = this.entries.get(key);
    if (entry?.owner !== o.owner || entry.completedOn || entry.released) return;
    if (o.progress === undefined) this.entries.delete(key);
    else this.entries.set(key, { ...entry, released: true, progress: structuredClone(o.progress) });
  }
}

export class MemoryVault implements SecretVault {
  readonly versions: Array<SecretWithValue> = [];
  /** Every vault URL a call was made for, in order (reads and listings). */
  readonly calls: string[] = [];
  add(
    props: Omit<SecretProperties, 'tags'> & { tags?: Record<string, string> },
    value = 'not-a-real-secret',
  ): void {
    this.versions.push({ properties: { tags: {}, ...props }, value });
  }
  private latest(vaultUrl: string, name: string): SecretWithValue | undefined {
    return this.versions
      .filter((v) => v.properties.vaultUrl === vaultUrl && v.properties.name === name)
      .sort((a, b) => (b.properties.createdOn?.getTime() ?? 0) - (a.properties.createdOn?.getTime() ?? 0))[0];
  }
  async getSecretProperties(vaultUrl: string, name: string): Promise<SecretProperties | undefined> {
    this.calls.push(vaultUrl);
    return this.latest(vaultUrl, name)?.properties;
  }
  async getSecret(vaultUrl: string, name: string): Promise<SecretWithValue> {
    const found = this.latest(vaultUrl, name);
    if (!found) throw new NotFoundError(`secret ${name} not found`);
    return found;
  }
  async *listSecrets(vaultUrl: string): AsyncIterable<SecretProperties> {
    this.calls.push(vaultUrl);
    for (const v of this.versions) if (v.properties.vaultUrl === vaultUrl) yield v.properties;
  }
  /** In insertion order, as Key Vault's version-id order is unrelated to creation order. */
  async *listSecretVersions(vaultUrl: string, name: string): AsyncIterable<SecretProperties> {
    this.calls.push(vaultUrl);
    for (const v of this.versions)
      if (v.properties.vaultUrl === vaultUrl && v.properties.name === name) yield v.properties;
  }
  async setSecret(): Promise<SecretProperties> {
    throw new Error('not used by these tests');
  }
  async updateSecretProperties(): Promise<SecretProperties> {
    throw new Error('not used by these tests');
  }
}

export class RecordingNotifier implements Notifier {
  readonly sent: Array<{ channel: string; notification: Notification }> = [];
  /** Channel name -> how the next sends to it fail (consumed one per send). */
  readonly failures = new Map<string, Array<{ retryable: boolean }>>();
  async notify(notification: Notification, o: { channels: string[] }): Promise<ChannelResult[]> {
    return o.channels.map((channel) => {
      const failure = this.failures.get(channel)?.shift();
      if (failure) return { channel, status: 'failed', retryable: failure.retryable, error: 'boom' };
      this.sent.push({ channel, notification });
      return { channel, status: 'sent' };
    });
  }
}

/** Rejections counted per (hour, kind, source, reason), one audit record per bucket, as the Table adapter. */
export class MemoryRejections implements RejectionLog {
  readonly buckets = new Map<string, RejectionBucket>();
  constructor(private readonly audit: AuditLog) {}
  async record(r: Rejection): Promise<{ auditId: string }> {
    const hour = r.time.toISOString().slice(0, 13);
    const key = `${hour}|${r.kind}|${r.source}|${r.reason}`;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = {
        hour: `${hour}:00:00.000Z`,
        kind: r.kind,
        source: r.source,
        reason: r.reason,
        count: 0,
        firstSeen: r.time,
        lastSeen: r.time,
        samples: [],
        auditId: `rejections:${key}`,
      };
      this.buckets.set(key, bucket);
      await this.audit.append({
        id: bucket.auditId,
        time: r.time,
        actor: r.actor,
        action: `${r.kind}.reject`,
        target: `${r.kind}s/${r.source}`,
        outcome: 'rejected',
        correlationId: r.correlationId,
        reason: r.problems.join('; '),
        after: { reason: r.reason, source: r.source, firstId: r.sampleId ?? null },
      });
    }
    bucket.count++;
    bucket.lastSeen = r.time;
    if (r.sampleId && bucket.samples.length < 5) bucket.samples.push(r.sampleId);
    return { auditId: bucket.auditId };
  }
  async list(q: { since: Date; until: Date }): Promise<RejectionBucket[]> {
    return [...this.buckets.values()].filter((b) => b.lastSeen >= q.since && b.firstSeen <= q.until);
  }
}
