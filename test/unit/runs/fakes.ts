import { ConflictError } from '../../../src/lib/core/errors';
import type { Clock } from '../../../src/lib/ports/clock';
import type {
  ActiveRunEntry,
  RunStore,
  TargetLock,
  WorkMessage,
  WorkQueue,
} from '../../../src/lib/ports/runs';
import type { AuditLog, AuditRecord } from '../../../src/lib/ports/state';
import type { NewRun, Run } from '../../../src/lib/runs/types';

/** In-memory run store with the same ETag and transaction rules as the Table adapter. */
export class FakeRunStore implements RunStore {
  readonly rows = new Map<string, Run>();
  readonly locks = new Map<string, TargetLock>();
  readonly active = new Map<string, ActiveRunEntry>();
  cursor: string | undefined;
  private version = 0;

  private stamp(run: NewRun): Run {
    return { kindVersion: 1, resumes: 0, outbox: [], ...run, etag: `e${++this.version}` } as Run;
  }
  async create(run: NewRun): Promise<Run> {
    if (this.rows.has(run.id)) throw new ConflictError('exists');
    const stored = this.stamp(run);
    this.rows.set(run.id, stored);
    return stored;
  }
  async createForTarget(run: NewRun, lockKey: string, lock: TargetLock | undefined): Promise<Run> {
    const current = this.locks.get(lockKey);
    if (lock ? current?.etag !== lock.etag : current !== undefined) throw new ConflictError('lock');
    if (this.rows.has(run.id)) throw new ConflictError('exists');
    this.locks.set(lockKey, { runId: run.id, etag: `l${++this.version}` });
    return this.create(run);
  }
  async getTargetLock(lockKey: string): Promise<TargetLock | undefined> {
    return this.locks.get(lockKey);
  }
  async get(id: string): Promise<Run | undefined> {
    return this.rows.get(id);
  }
  async listForTarget(lockKey: string, query: { limit: number }): Promise<Run[]> {
    return [...this.rows.values()]
      .filter((r) => r.id.startsWith(`${lockKey}.`))
      .sort((a, b) => b.createdOn.getTime() - a.createdOn.getTime())
      .slice(0, query.limit);
  }
  async update(run: Run): Promise<Run> {
    if (this.rows.get(run.id)?.etag !== run.etag) throw new ConflictError('etag');
    const stored = this.stamp(run);
    this.rows.set(run.id, stored);
    return stored;
  }
  async list(): Promise<Run[]> {
    return [...this.rows.values()];
  }
  async addActive(entry: Omit<ActiveRunEntry, 'etag'>): Promise<void> {
    if (!this.active.has(entry.runId)) this.active.set(entry.runId, { ...entry, etag: `a${++this.version}` });
  }
  async removeActive(runId: string): Promise<void> {
    this.active.delete(runId);
  }
  async listActive(query: { after?: string; limit: number }) {
    const ids = [...this.active.keys()].sort().filter((id) => query.after === undefined || id > query.after);
    return {
      entries: ids.slice(0, query.limit).map((id) => this.active.get(id)!),
      end: ids.length <= query.limit,
    };
  }
  async getSweepCursor() {
    return this.cursor;
  }
  async setSweepCursor(cursor: string | undefined) {
    this.cursor = cursor;
  }
}

export class FakeQueue implements WorkQueue {
  readonly sent: Array<WorkMessage & { delayMs: number }> = [];
  async send(message: WorkMessage, options: { visibilityDelayMs?: number } = {}) {
    this.sent.push({ ...message, delayMs: options.visibilityDelayMs ?? 0 });
  }
  async receive() {
    return [];
  }
  async delete() {}
}

export class FakeAudit implements AuditLog {
  readonly records: AuditRecord[] = [];
  async append(record: AuditRecord) {
    if (!this.records.some((r) => r.id === record.id)) this.records.push(record);
  }
  async query() {
    return this.records;
  }
}

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  constructor(private current = new Date('2026-11-27T10:00:00.000Z')) {}
  now(): Date {
    return new Date(this.current.getTime());
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}
