import { odata, type TableClient, type TableEntityResult } from '@azure/data-tables';
import { ValidationError } from '../core/errors';
import type { CallOptions, RunQuery, RunStore } from '../ports/runs';
import {
  type NewRun,
  type Run,
  type RunError,
  type RunState,
  type RunStep,
  TERMINAL_STATES,
} from '../runs/types';
import { MAX_STRING_PROPERTY_CHARS } from './limits';
import { type PurgeOptions, type PurgeResult, purgeLimit, purgeMatching, validDate } from './purge';
import { storageCall } from './tables';

const ROW = 'run';
/** Steps JSON is split over `steps0..stepsN` properties of 32 Ki characters (64 KiB) each; 12 keep the entity under 1 MiB. */
const MAX_STEP_CHUNKS = 12;

interface RunEntity {
  partitionKey: string;
  rowKey: string;
  kind: string;
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
  leaseOwner?: string;
  leaseExpiresOn?: string;
  ticket: number;
  errorCode?: string;
  errorMessage?: string;
  [chunk: `steps${number}`]: string;
}

interface StoredStep extends Omit<RunStep, 'startedOn' | 'endedOn'> {
  startedOn?: string;
  endedOn?: string;
}

/**
 * Runs on a Table: PartitionKey = run id (point reads and writes, no hot partition), one row per
 * run. `create` inserts (409 -> `ConflictError`), `update` replaces if-match on the run's ETag
 * (412 -> `ConflictError`). Lists filter on `state` across partitions, which is a scan: fine for
 * the hundreds of active runs this app has; terminal runs can be pruned by age. Needs
 * `Storage Table Data Contributor`.
 */
export class TableRunStore implements RunStore {
  constructor(private readonly table: TableClient) {}

  async create(run: NewRun, options: CallOptions = {}): Promise<Run> {
    const entity = toEntity(run);
    const response = await storageCall('run create', () =>
      this.table.createEntity(entity, { abortSignal: options.abortSignal }),
    );
    return { ...run, etag: response.etag ?? '' };
  }

  async get(id: string, options: CallOptions = {}): Promise<Run | undefined> {
    if (typeof id !== 'string' || id === '' || /[/\\#?]/.test(id)) return undefined;
    return storageCall('run read', async () => {
      try {
        const entity = await this.table.getEntity<RunEntity>(id, ROW, { abortSignal: options.abortSignal });
        return fromEntity(entity);
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 404) return undefined;
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
    const clauses: string[] = [`RowKey eq '${ROW}'`];
    if (query.states && query.states.length > 0) {
      clauses.push(`(${query.states.map((state) => odata`state eq ${state}`).join(' or ')})`);
    }
    if (query.kind !== undefined) clauses.push(odata`kind eq ${query.kind}`);
    if (query.leaseExpiredBefore !== undefined) {
      // ISO 8601 strings of one fixed format compare in time order.
      clauses.push(odata`leaseExpiresOn lt ${query.leaseExpiredBefore.toISOString()}`);
    }
    if (query.maybeStalled !== undefined) {
      const now = query.maybeStalled.now;
      const cutoff = new Date(now.getTime() - query.maybeStalled.thresholdMs);
      // Rows without the property never match a comparison, so leaseless runs fall to the dueOn test.
      clauses.push(
        `(${odata`leaseExpiresOn le ${now.toISOString()}`} or ${odata`dueOn lt ${cutoff.toISOString()}`})`,
      );
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
        filter: `RowKey eq '${ROW}' and (${states}) and ${odata`updatedOn lt ${new Date(cutoff).toISOString()}`}`,
        select: ['PartitionKey', 'RowKey', 'state', 'updatedOn'],
        accept: (row) => TERMINAL_STATES.includes(row.state) && new Date(row.updatedOn).getTime() < cutoff,
      },
      { limit, abortSignal: options.abortSignal },
    );
  }
}

function toEntity(run: NewRun): RunEntity {
  const steps: StoredStep[] = run.steps.map((step) => ({
    ...step,
    startedOn: step.startedOn?.toISOString(),
    endedOn: step.endedOn?.toISOString(),
  }));
  const stepsJson = JSON.stringify(steps);
  const chunks = Math.max(1, Math.ceil(stepsJson.length / MAX_STRING_PROPERTY_CHARS));
  if (chunks > MAX_STEP_CHUNKS) {
    throw new ValidationError(`Run ${run.id} is too large to store`, [
      `steps serialise to ${stepsJson.length} characters; at most ${MAX_STEP_CHUNKS * MAX_STRING_PROPERTY_CHARS}`,
    ]);
  }
  const entity: RunEntity = {
    partitionKey: run.id,
    rowKey: ROW,
    kind: run.kind,
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
  };
  for (let i = 0; i < chunks; i++) {
    entity[`steps${i}`] = stepsJson.slice(i * MAX_STRING_PROPERTY_CHARS, (i + 1) * MAX_STRING_PROPERTY_CHARS);
  }
  if (run.idempotencyKey !== undefined) entity.idempotencyKey = run.idempotencyKey;
  if (run.dueOn) entity.dueOn = run.dueOn.toISOString();
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

function fromEntity(entity: TableEntityResult<RunEntity>): Run {
  let stepsJson = '';
  for (let i = 0; i < entity.stepChunks; i++) stepsJson += entity[`steps${i}`] ?? '';
  const steps = (JSON.parse(stepsJson) as StoredStep[]).map(
    (step): RunStep => ({
      ...step,
      startedOn: step.startedOn ? new Date(step.startedOn) : undefined,
      endedOn: step.endedOn ? new Date(step.endedOn) : undefined,
    }),
  );
  const run: Run = {
    id: entity.partitionKey,
    kind: entity.kind,
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
    etag: entity.etag,
  };
  if (entity.idempotencyKey) run.idempotencyKey = entity.idempotencyKey;
  if (entity.dueOn) run.dueOn = new Date(entity.dueOn);
  if (entity.leaseOwner && entity.leaseExpiresOn) {
    run.lease = { owner: entity.leaseOwner, expiresOn: new Date(entity.leaseExpiresOn) };
  }
  if (entity.errorCode) {
    const error: RunError = { code: entity.errorCode, message: entity.errorMessage ?? '' };
    run.error = error;
  }
  return run;
}
