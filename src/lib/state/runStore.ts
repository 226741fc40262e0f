import {
  odata,
  type TableClient,
  type TableEntity,
  type TableEntityResult,
  type TransactionAction,
} from '@azure/data-tables';
import { ValidationError } from '../core/errors';
import type { ActiveRunEntry, CallOptions, RunQuery, RunStore, TargetLock } from '../ports/runs';
import {
  type CancelRequest,
  type NewRun,
  type OutboxEntry,
  type Run,
  type RunError,
  type RunState,
  type RunStep,
  TERMINAL_STATES,
} from '../runs/types';
import { MAX_STRING_PROPERTY_CHARS } from './limits';
import { type PurgeOptions, type PurgeResult, purgeLimit, purgeMatching, validDate } from './purge';
import { mapStorageError, statusOf, storageCall } from './tables';

const ROW = 'run';
/** RowKey prefix of a run in its target's partition (`run.{suffix}`). */
const TARGET_ROW_PREFIX = 'run.';
const LOCK_ROW = 'lock';
/** The partition of the index of active runs (one row per active run, RowKey = run id). */
const ACTIVE_PARTITION = '~active';
const SWEEP_PARTITION = '~sweep';
const SWEEP_CURSOR_ROW = 'cursor';
/** Index rows per page (a page is one request; the listing follows continuation tokens). */
const ACTIVE_PAGE_SIZE = 100;
/** Run ids of exclusive targets: `t-{32 hex}.{suffix}` = partition `t-{32 hex}`, row `run.{suffix}`. */
const TARGET_RUN_ID = /^(t-[0-9a-f]{32})\.([A-Za-z0-9-]{1,80})$/;
const LOCK_KEY = /^t-[0-9a-f]{32}$/;
/** Steps JSON is split over `steps0..stepsN` properties of 32 Ki characters (64 KiB) each; 12 keep the entity under 1 MiB. */
const MAX_STEP_CHUNKS = 12;
/** Rows matching a run (and not a lock, an index entry or the sweep cursor). */
const RUN_ROWS = `(RowKey eq '${ROW}' or (RowKey ge '${TARGET_ROW_PREFIX}' and RowKey lt 'run/'))`;

interface RunEntity {
  partitionKey: string;
  rowKey: string;
  kind: string;
  kindVersion: number;
  target: string;
  state: RunState;
  currentStep: number;
  stepChunks: number;
  input: string;
  dryRun: boolean;
  correlationId: string;
  actor: string;
  idempotencyKey?: string;
  createdOn: string;
  updatedOn: string;
  dueOn?: string;
  deadline?: string;
  leaseOwner?: string;
  leaseExpiresOn?: string;
  ticket: number;
  resumes: number;
  resumedOn?: string;
  cancelRequest?: string;
  deferredSince?: string;
  outbox?: string;
  errorCode?: string;
  errorMessage?: string;
  [chunk: `steps${number}`]: string;
}

/** Where a run lives: its own partition (`run` row), or its exclusive target's partition. */
export function runKeys(id: string): { partitionKey: string; rowKey: string } | undefined {
  // Table keys forbid / \\ # ? and control characters; run ids are letters, digits, dots and dashes.
  if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/.test(id)) {
    return undefined;
  }
  const target = TARGET_RUN_ID.exec(id);
  if (target) return { partitionKey: target[1]!, rowKey: `${TARGET_ROW_PREFIX}${target[2]}` };
  if (id.startsWith('t-') || id.startsWith('~')) return undefined;
  return { partitionKey: id, rowKey: ROW };
}

/**
 * Runs on a Table. A run of a kind without an exclusive target has its own partition (PartitionKey
 * = run id, RowKey `run`): point reads and writes, no hot partition. A run of an exclusive target
 * lives in the target's partition (`t-{hash}`, RowKey `run.{suffix}`) next to the target's lock row,
 * so that "the lock points at this run" and "the run exists" are written in one entity-group
 * transaction. The index of active runs is the partition `~active` (RowKey = run id), which the
 * resume timer reads instead of scanning every run. `create` inserts (409 -> `ConflictError`),
 * `update` replaces if-match on the run's ETag (412 -> `ConflictError`). Needs
 * `Storage Table Data Contributor`.
 */
export class TableRunStore implements RunStore {
  constructor(private readonly table: TableClient) {}

  async create(run: NewRun, options: CallOptions = {}): Promise<Run> {
    const entity = toEntity(run);
    const response = await storageCall('run create', () =>
      this.table.createEntity(entity, { abortSignal: options.abortSignal }),
    );
    return { ...withDefaults(run), etag: response.etag ?? '' };
  }

  async createForTarget(
    run: NewRun,
    lockKey: string,
    lock: TargetLock | undefined,
    options: CallOptions = {},
  ): Promise<Run> {
    const entity = toEntity(run);
    if (!LOCK_KEY.test(lockKey) || entity.partitionKey !== lockKey) {
      throw new ValidationError(`Run ${run.id} does not belong to target lock ${lockKey}`);
    }
    const lockEntity = {
      partitionKey: lockKey,
      rowKey: LOCK_ROW,
      runId: run.id,
      target: run.target.slice(0, 1024),
    };
    const actions: TransactionAction[] = [
      lock ? ['update', lockEntity, 'Replace', { etag: lock.etag }] : ['create', lockEntity],
      ['create', entity as unknown as TableEntity<Record<string, unknown>>],
    ];
    try {
      await this.table.submitTransaction(actions, { abortSignal: options.abortSignal });
    } catch (error) {
      throw mapStorageError('run create for target', error);
    }
    // A transaction answers no per-entity ETag the SDK exposes: read the run back for its ETag.
    const stored = await this.get(run.id, options);
    if (!stored) throw mapStorageError('run create for target', { statusCode: 503 });
    return stored;
  }

  async getTargetLock(lockKey: string, options: CallOptions = {}): Promise<TargetLock | undefined> {
    if (!LOCK_KEY.test(lockKey)) throw new ValidationError('Invalid target lock key', ['lockKey']);
    return storageCall('target lock read', async () => {
      try {
        const entity = await this.table.getEntity<{ runId: string }>(lockKey, LOCK_ROW, {
          abortSignal: options.abortSignal,
        });
        return { runId: entity.runId, etag: entity.etag };
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw error;
      }
    });
  }

  async listForTarget(lockKey: string, query: { limit: number }, options: CallOptions = {}): Promise<Run[]> {
    if (!LOCK_KEY.test(lockKey)) throw new ValidationError('Invalid target lock key', ['lockKey']);
    if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > 1000) {
      throw new ValidationError('Invalid run history query', ['limit must be an integer from 1 to 1000']);
    }
    const filter = odata`PartitionKey eq ${lockKey} and RowKey ge ${TARGET_ROW_PREFIX} and RowKey lt ${'run/'}`;
    return storageCall('target runs list', async () => {
      const out: Run[] = [];
      for await (const entity of this.table.listEntities<RunEntity>({
        queryOptions: { filter },
        abortSignal: options.abortSignal,
      })) {
        out.push(fromEntity(entity));
      }
      // A target's partition holds its whole history: newest first, then cut.
      return out.sort((a, b) => b.createdOn.getTime() - a.createdOn.getTime()).slice(0, query.limit);
    });
  }

  async get(id: string, options: CallOptions = {}): Promise<Run | undefined> {
    const keys = runKeys(id);
    if (!keys) return undefined;
    return storageCall('run read', async () => {
      try {
        const entity = await this.table.getEntity<RunEntity>(keys.partitionKey, keys.rowKey, {
          abortSignal: options.abortSignal,
        });
        return fromEntity(entity);
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw error;
      }
    });
  }

  async update(run: Run, options: CallOptions = {}): Promise<Run> {
    if (!run.etag) throw new ValidationError('Run update needs the ETag it was read with', ['etag is empty']);
    const entity = toEntity(run);
    const response = await storageCall('run update', () =>
      this.table.updateEntity(entity, 'Replace', { etag: run.etag, abortSignal: options.abortSignal }),
    );
    return { ...run, etag: response.etag ?? '' };
  }

  async list(query: RunQuery, options: CallOptions = {}): Promise<Run[]> {
    const clauses: string[] = [RUN_ROWS];
    if (query.states && query.states.length > 0) {
      clauses.push(`(${query.states.map((state) => odata`state eq ${state}`).join(' or ')})`);
    }
    if (query.kind !== undefined) clauses.push(odata`kind eq ${query.kind}`);
    if (query.leaseExpiredBefore !== undefined) {
      // ISO 8601 strings of one fixed format compare in time order.
      clauses.push(odata`leaseExpiresOn lt ${query.leaseExpiredBefore.toISOString()}`);
    }
    const limit = query.limit ?? 500;
    return storageCall('run list', async () => {
      const out: Run[] = [];
      const entities = this.table.listEntities<RunEntity>({
        queryOptions: { filter: clauses.join(' and ') },
        abortSignal: options.abortSignal,
      });
      for await (const entity of entities) {
        out.push(fromEntity(entity));
        if (out.length >= limit) break;
      }
      return out;
    });
  }

  async addActive(entry: Omit<ActiveRunEntry, 'etag'>, options: CallOptions = {}): Promise<void> {
    if (!runKeys(entry.runId)) throw new ValidationError('Invalid run id', ['runId']);
    await storageCall('active run add', async () => {
      try {
        await this.table.createEntity(
          {
            partitionKey: ACTIVE_PARTITION,
            rowKey: entry.runId,
            kind: entry.kind,
            addedOn: entry.addedOn.toISOString(),
          },
          { abortSignal: options.abortSignal },
        );
      } catch (error) {
        if (statusOf(error) === 409) return;
        throw error;
      }
    });
  }

  async removeActive(runId: string, options: CallOptions & { etag?: string } = {}): Promise<void> {
    if (!runKeys(runId)) return;
    await storageCall('active run remove', async () => {
      try {
        await this.table.deleteEntity(ACTIVE_PARTITION, runId, {
          etag: options.etag ?? '*',
          abortSignal: options.abortSignal,
        });
      } catch (error) {
        const status = statusOf(error);
        if (status === 404 || status === 412) return;
        throw error;
      }
    });
  }

  async listActive(
    query: { after?: string; limit: number },
    options: CallOptions = {},
  ): Promise<{ entries: ActiveRunEntry[]; end: boolean }> {
    const limit = query.limit;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) {
      throw new ValidationError('Invalid active-run listing', ['limit must be an integer from 1 to 100000']);
    }
    let filter = odata`PartitionKey eq ${ACTIVE_PARTITION}`;
    if (query.after !== undefined) filter += ` and ${odata`RowKey gt ${query.after}`}`;
    return storageCall('active run list', async () => {
      const entries: ActiveRunEntry[] = [];
      // One row beyond the limit tells whether the index goes on; pages follow continuation tokens.
      const pages = this.table
        .listEntities<{ kind: string; addedOn: string }>({
          queryOptions: { filter, select: ['RowKey', 'kind', 'addedOn'] },
          abortSignal: options.abortSignal,
        })
        .byPage({ maxPageSize: Math.min(ACTIVE_PAGE_SIZE, limit + 1) });
      for await (const page of pages) {
        for (const row of page as TableEntityResult<{ kind: string; addedOn: string }>[]) {
          entries.push({
            runId: row.rowKey as string,
            kind: row.kind,
            addedOn: new Date(row.addedOn),
            etag: row.etag,
          });
        }
        if (entries.length > limit) break;
      }
      return { entries: entries.slice(0, limit), end: entries.length <= limit };
    });
  }

  async getSweepCursor(options: CallOptions = {}): Promise<string | undefined> {
    return storageCall('sweep cursor read', async () => {
      try {
        const row = await this.table.getEntity<{ cursor?: string }>(SWEEP_PARTITION, SWEEP_CURSOR_ROW, {
          abortSignal: options.abortSignal,
        });
        return row.cursor || undefined;
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw error;
      }
    });
  }

  async setSweepCursor(cursor: string | undefined, options: CallOptions = {}): Promise<void> {
    // Last writer wins: two sweeps at once only make one of them start over or skip ahead.
    await storageCall('sweep cursor write', () =>
      this.table.upsertEntity(
        { partitionKey: SWEEP_PARTITION, rowKey: SWEEP_CURSOR_ROW, cursor: cursor ?? '' },
        'Replace',
        { abortSignal: options.abortSignal },
      ),
    );
  }

  /**
   * Retention: deletes runs in a terminal state (succeeded, failed, cancelled) last updated before
   * `before`, at most `limit` per call. An active run is never deleted, whatever its age. Each
   * delete is conditional on the ETag read, so a run changed meanwhile (412) or gone (404) is
   * skipped. Needs `Storage Table Data Contributor`; transient failures surface as
   * `TransientError` (safe to repeat).
   */
  async purgeFinished(before: Date, options: PurgeOptions = {}): Promise<PurgeResult> {
    const limit = purgeLimit(options);
    const cutoff = validDate(before, 'before').getTime();
    const states = TERMINAL_STATES.map((state) => odata`state eq ${state}`).join(' or ');
    return purgeMatching<Pick<RunEntity, 'state' | 'updatedOn'>>(
      this.table,
      'run purge',
      {
        filter: `${RUN_ROWS} and (${states}) and ${odata`updatedOn lt ${new Date(cutoff).toISOString()}`}`,
        select: ['PartitionKey', 'RowKey', 'state', 'updatedOn'],
        accept: (row) =>
          (row.rowKey === ROW || String(row.rowKey).startsWith(TARGET_ROW_PREFIX)) &&
          TERMINAL_STATES.includes(row.state) &&
          new Date(row.updatedOn).getTime() < cutoff,
      },
      { limit, abortSignal: options.abortSignal },
    );
  }
}

function iso(date: Date | undefined): string | undefined {
  return date?.toISOString();
}

function withDefaults(run: NewRun): Omit<Run, 'etag'> {
  return { ...run, kindVersion: run.kindVersion ?? 1, resumes: run.resumes ?? 0, outbox: run.outbox ?? [] };
}

function toEntity(newRun: NewRun): RunEntity {
  const run = withDefaults(newRun);
  const keys = runKeys(run.id);
  if (!keys) throw new ValidationError(`Run id '${run.id}' cannot be stored`, ['id']);
  // Dates inside steps (startedOn, endedOn, approval times) serialise as ISO text.
  const stepsJson = JSON.stringify(run.steps);
  const chunks = Math.max(1, Math.ceil(stepsJson.length / MAX_STRING_PROPERTY_CHARS));
  if (chunks > MAX_STEP_CHUNKS) {
    throw new ValidationError(`Run ${run.id} is too large to store`, [
      `steps serialise to ${stepsJson.length} characters; at most ${MAX_STEP_CHUNKS * MAX_STRING_PROPERTY_CHARS}`,
    ]);
  }
  const entity: RunEntity = {
    ...keys,
    kind: run.kind,
    kindVersion: run.kindVersion,
    target: run.target,
    state: run.state,
    currentStep: run.currentStep,
    stepChunks: chunks,
    input: JSON.stringify(run.input),
    dryRun: run.dryRun,
    correlationId: run.correlationId,
    actor: run.actor,
    createdOn: run.createdOn.toISOString(),
    updatedOn: run.updatedOn.toISOString(),
    ticket: run.ticket,
    resumes: run.resumes,
  };
  for (let i = 0; i < chunks; i++) {
    entity[`steps${i}`] = stepsJson.slice(i * MAX_STRING_PROPERTY_CHARS, (i + 1) * MAX_STRING_PROPERTY_CHARS);
  }
  if (run.idempotencyKey !== undefined) entity.idempotencyKey = run.idempotencyKey;
  if (run.dueOn) entity.dueOn = iso(run.dueOn);
  if (run.deadline) entity.deadline = iso(run.deadline);
  if (run.resumedOn) entity.resumedOn = iso(run.resumedOn);
  if (run.deferredSince) entity.deferredSince = iso(run.deferredSince);
  if (run.cancelRequest) entity.cancelRequest = JSON.stringify(run.cancelRequest);
  if (run.outbox.length > 0) {
    const outbox = JSON.stringify(run.outbox);
    // The outbox is flushed from here: it must never be cut.
    if (outbox.length > MAX_STRING_PROPERTY_CHARS) {
      throw new ValidationError(`Run ${run.id}: the outbox of one change is too large to store`, [
        `outbox serialises to ${outbox.length} characters; at most ${MAX_STRING_PROPERTY_CHARS}`,
      ]);
    }
    entity.outbox = outbox;
  }
  if (run.lease) {
    entity.leaseOwner = run.lease.owner;
    entity.leaseExpiresOn = run.lease.expiresOn.toISOString();
  }
  if (run.error) {
    entity.errorCode = run.error.code;
    entity.errorMessage = run.error.message;
  }
  return entity;
}

const date = (value: unknown): Date | undefined => (typeof value === 'string' ? new Date(value) : undefined);

function stepFrom(stored: Record<string, unknown>): RunStep {
  const step = { ...stored } as unknown as RunStep;
  step.startedOn = date(stored.startedOn);
  step.endedOn = date(stored.endedOn);
  if (step.startedOn === undefined) delete step.startedOn;
  if (step.endedOn === undefined) delete step.endedOn;
  const approval = stored.approval as Record<string, unknown> | undefined;
  if (approval) {
    step.approval = {
      ...(approval as object),
      requestedOn: date(approval.requestedOn)!,
      expiresOn: date(approval.expiresOn)!,
    } as RunStep['approval'];
    if (approval.decidedOn) step.approval!.decidedOn = date(approval.decidedOn);
  }
  return step;
}

function fromEntity(entity: TableEntityResult<RunEntity>): Run {
  let stepsJson = '';
  for (let i = 0; i < entity.stepChunks; i++) stepsJson += entity[`steps${i}`] ?? '';
  const steps = (JSON.parse(stepsJson) as Array<Record<string, unknown>>).map(stepFrom);
  const id =
    entity.rowKey === ROW ? entity.partitionKey : `${entity.partitionKey}.${String(entity.rowKey).slice(4)}`;
  const run: Run = {
    id,
    kind: entity.kind,
    // Runs stored before kinds had versions follow version 1.
    kindVersion: typeof entity.kindVersion === 'number' ? entity.kindVersion : 1,
    target: entity.target,
    state: entity.state,
    steps,
    currentStep: entity.currentStep,
    input: JSON.parse(entity.input) as Run['input'],
    dryRun: entity.dryRun,
    correlationId: entity.correlationId,
    actor: entity.actor,
    createdOn: new Date(entity.createdOn),
    updatedOn: new Date(entity.updatedOn),
    ticket: entity.ticket,
    resumes: typeof entity.resumes === 'number' ? entity.resumes : 0,
    outbox: entity.outbox ? (JSON.parse(entity.outbox) as OutboxEntry[]) : [],
    etag: entity.etag,
  };
  if (entity.idempotencyKey) run.idempotencyKey = entity.idempotencyKey;
  if (entity.dueOn) run.dueOn = new Date(entity.dueOn);
  if (entity.deadline) run.deadline = new Date(entity.deadline);
  if (entity.resumedOn) run.resumedOn = new Date(entity.resumedOn);
  if (entity.deferredSince) run.deferredSince = new Date(entity.deferredSince);
  if (entity.cancelRequest) {
    const request = JSON.parse(entity.cancelRequest) as CancelRequest & { requestedOn: string };
    run.cancelRequest = { ...request, requestedOn: new Date(request.requestedOn) };
  }
  if (entity.leaseOwner && entity.leaseExpiresOn) {
    run.lease = { owner: entity.leaseOwner, expiresOn: new Date(entity.leaseExpiresOn) };
  }
  if (entity.errorCode) {
    const error: RunError = { code: entity.errorCode, message: entity.errorMessage ?? '' };
    run.error = error;
  }
  return run;
}
