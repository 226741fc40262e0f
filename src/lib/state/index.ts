/**
 * State on Azure Table Storage and the work queue: the composition entry point.
 */
import { type Clock, systemClock } from '../ports/clock';
import { TableAuditLog } from './auditLog';
import { TableDeadLetterArchive } from './deadLetterArchive';
import { deadLetterContainerName, StorageBlobBodies } from './deadLetterBlobs';
import { TableIdempotencyStore } from './idempotencyStore';
import { TableLeaseStore } from './leaseStore';
import { TableRejectionLog } from './rejectionLog';
import { TableReportStore } from './reportStore';
import { TableRollCallbackStore } from './rollCallbackStore';
import { TableRunStore } from './runStore';
import {
  createQueueClient,
  createTableClient,
  DEFAULT_TABLE_PREFIX,
  DEFAULT_WORK_QUEUE,
  ensureStateResources,
  type StateNames,
  type StorageAccess,
  stateNames,
  storageCall,
} from './tables';
import { type MessageEncoding, StorageWorkQueue } from './workQueue';

export { TableAuditLog } from './auditLog';
export { TableDeadLetterArchive } from './deadLetterArchive';
export { TableIdempotencyStore } from './idempotencyStore';
export { TableLeaseStore } from './leaseStore';
export { DEFAULT_PURGE_LIMIT, type PurgeOptions, type PurgeResult } from './purge';
export { TableRejectionLog } from './rejectionLog';
export { TableReportStore } from './reportStore';
export { TableRollCallbackStore } from './rollCallbackStore';
export { TableRunStore } from './runStore';
export { ensureStateResources, mapStorageError, type StorageAccess, stateNames } from './tables';
export { StorageWorkQueue } from './workQueue';

export type StateStoreSettings = StorageAccess & {
  /** Prefix of the four table names (letters and digits); default `stampkeeper`. */
  tablePrefix?: string;
  /** Name of the work queue; its poison queue is `${workQueueName}-poison`. */
  workQueueName?: string;
  clock?: Clock;
  /** Work message encoding; `base64` (default) matches the Functions queue trigger's default. */
  messageEncoding?: MessageEncoding;
};

export interface StateStores {
  names: StateNames;
  audit: TableAuditLog;
  idempotency: TableIdempotencyStore;
  runs: TableRunStore;
  workQueue: StorageWorkQueue;
  leases: TableLeaseStore;
  rejections: TableRejectionLog;
  /** Reports of the scheduled maintenance checks. */
  reports: TableReportStore;
  /** Completions of callback webhooks (rotation rolls), in the idempotency table. */
  rollCallbacks: TableRollCallbackStore;
  /** The dead-letter archive (its blob container is created on the first large body). */
  deadLetters: TableDeadLetterArchive;
  /** Creates the tables and queues if missing (idempotent; call once at start-up). */
  ensure(options?: { abortSignal?: AbortSignal }): Promise<void>;
  /**
   * Two cheap calls proving the runs table and the work queue answer (for the health endpoint).
   * Throws a mapped error: `NotFoundError` when they were never created, `TransientError` when
   * storage is unreachable.
   */
  ping(options?: { abortSignal?: AbortSignal }): Promise<void>;
}

/**
 * Builds every state adapter over one storage account, from a connection string or from service
 * URLs and a token credential (managed identity: grant `Storage Table Data Contributor` and
 * `Storage Queue Data Contributor`). Throws `ConfigurationError` for a bad prefix or queue name;
 * makes no network call until a store is used.
 */
export function createStateStores(settings: StateStoreSettings): StateStores {
  const names = stateNames(
    settings.tablePrefix ?? DEFAULT_TABLE_PREFIX,
    settings.workQueueName ?? DEFAULT_WORK_QUEUE,
  );
  const clock = settings.clock ?? systemClock;
  const table = (name: string) => createTableClient(settings, name);
  const runsTable = table(names.runs);
  const audit = new TableAuditLog(table(names.audit), clock);
  const idempotencyTable = table(names.idempotency);
  const workQueueClient = createQueueClient(settings, names.workQueue);
  return {
    names,
    audit,
    idempotency: new TableIdempotencyStore(idempotencyTable, clock),
    rollCallbacks: new TableRollCallbackStore(idempotencyTable),
    runs: new TableRunStore(runsTable),
    workQueue: new StorageWorkQueue(workQueueClient, settings.messageEncoding ?? 'base64'),
    leases: new TableLeaseStore(table(names.leases), clock),
    rejections: new TableRejectionLog(table(names.rejections), audit),
    deadLetters: new TableDeadLetterArchive(
      table(names.deadLetters),
      table(names.deadLetterRevisions),
      new StorageBlobBodies(settings, deadLetterContainerName(settings.tablePrefix ?? DEFAULT_TABLE_PREFIX)),
      clock,
    ),
    reports: new TableReportStore(table(names.reports)),
    ensure: (options = {}) => ensureStateResources(settings, names, options),
    ping: async (options = {}) => {
      await Promise.all([
        // A point read of a key that never exists: a 404 for the entity proves the table answers.
        storageCall('storage ping (table)', async () => {
          try {
            await runsTable.getEntity('ping', 'ping', { abortSignal: options.abortSignal });
          } catch (error) {
            if ((error as { statusCode?: number }).statusCode === 404 && !isTableMissing(error)) return;
            throw error;
          }
        }),
        storageCall('storage ping (queue)', () =>
          workQueueClient.getProperties({ abortSignal: options.abortSignal }),
        ),
      ]);
    },
  };
}

function isTableMissing(error: unknown): boolean {
  const e = error as { details?: { errorCode?: string }; code?: string; message?: string };
  return (
    e.details?.errorCode === 'TableNotFound' ||
    e.code === 'TableNotFound' ||
    /TableNotFound/.test(String(e.message))
  );
}
