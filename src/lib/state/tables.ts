/**
 * Storage plumbing shared by the state adapters: clients from one connection string, the names of
 * the tables and queues, their idempotent creation, and the one place where Storage SDK errors
 * become the project's errors.
 */
import type { TokenCredential } from '@azure/core-auth';
import { TableClient } from '@azure/data-tables';
import { type QueueClient, QueueServiceClient } from '@azure/storage-queue';
import {
  ConfigurationError,
  ConflictError,
  DependencyError,
  NotFoundError,
  StampkeeperError,
  TransientError,
} from '../core/errors';
import { redactText } from '../core/redact';

export const DEFAULT_TABLE_PREFIX = 'stampkeeper';
export const DEFAULT_WORK_QUEUE = 'stampkeeper-work';

export interface StateNames {
  runs: string;
  audit: string;
  idempotency: string;
  leases: string;
  /** Rejected inputs counted per hour, source and reason (`TableRejectionLog`). */
  rejections: string;
  /** The dead-letter archive: messages, hour counters, alert windows (`TableDeadLetterArchive`). */
  deadLetters: string;
  /** Revisions of archived dead letters. */
  deadLetterRevisions: string;
  /** Reports of the scheduled maintenance checks (`TableReportStore`). */
  reports: string;
  workQueue: string;
  poisonQueue: string;
}

const TABLE_NAME = /^[A-Za-z][A-Za-z0-9]{2,62}$/;
const QUEUE_NAME = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/;

/**
 * The table and queue names for a table prefix and a work queue name. A bad name is a configuration
 * mistake: it throws `ConfigurationError` naming the rule it breaks.
 */
export function stateNames(
  tablePrefix = DEFAULT_TABLE_PREFIX,
  workQueueName = DEFAULT_WORK_QUEUE,
): StateNames {
  const names: StateNames = {
    runs: `${tablePrefix}Runs`,
    audit: `${tablePrefix}Audit`,
    idempotency: `${tablePrefix}Idempotency`,
    leases: `${tablePrefix}Leases`,
    rejections: `${tablePrefix}Rejections`,
    deadLetters: `${tablePrefix}DeadLetters`,
    deadLetterRevisions: `${tablePrefix}DeadLetterRevisions`,
    reports: `${tablePrefix}Reports`,
    workQueue: workQueueName,
    poisonQueue: `${workQueueName}-poison`,
  };
  for (const table of tableNames(names)) {
    if (!TABLE_NAME.test(table)) {
      throw new ConfigurationError(
        `Table name '${table}' is invalid: a table prefix must start with a letter, use only letters and digits, and keep names within 63 characters`,
      );
    }
  }
  for (const queue of [names.workQueue, names.poisonQueue]) {
    if (!QUEUE_NAME.test(queue)) {
      throw new ConfigurationError(
        `Queue name '${queue}' is invalid: use 3-63 lowercase letters, digits and single dashes (not first or last)`,
      );
    }
  }
  return names;
}

/** Every table of the state layer. */
export function tableNames(names: StateNames): string[] {
  return [
    names.runs,
    names.audit,
    names.idempotency,
    names.leases,
    names.rejections,
    names.reports,
    names.deadLetters,
    names.deadLetterRevisions,
  ];
}

/**
 * How to reach the storage account: a connection string (Azurite, `UseDevelopmentStorage=true`,
 * or an account key), or service URLs with a token credential (managed identity in Azure, where
 * the app holds no keys).
 */
export type StorageAccess =
  | {
      connectionString: string;
      /**
       * Allow http:// endpoints (Azurite). Defaults to true when the connection string is the
       * development shortcut or names an http endpoint, false otherwise.
       */
      allowInsecureConnection?: boolean;
    }
  | {
      /** `https://{account}.table.core.windows.net` */
      tableServiceUrl: string;
      /** `https://{account}.queue.core.windows.net` */
      queueServiceUrl: string;
      /** `https://{account}.blob.core.windows.net`: large dead-letter bodies. */
      blobServiceUrl?: string;
      credential: TokenCredential;
    };

/** Whether a connection string points at plain http (Azurite / the development shortcut). */
export function isInsecureConnectionString(connectionString: string): boolean {
  return (
    /UseDevelopmentStorage=true/i.test(connectionString) ||
    /DefaultEndpointsProtocol=http(;|$)/i.test(connectionString) ||
    /Endpoint=http:\/\//i.test(connectionString)
  );
}

function asAccess(access: StorageAccess | string): StorageAccess {
  return typeof access === 'string' ? { connectionString: access } : access;
}

/** A TableClient for one table. `UseDevelopmentStorage=true` is understood by the SDK itself. */
export function createTableClient(access: StorageAccess | string, tableName: string): TableClient {
  const a = asAccess(access);
  if ('connectionString' in a) {
    return TableClient.fromConnectionString(a.connectionString, tableName, {
      allowInsecureConnection: a.allowInsecureConnection ?? isInsecureConnectionString(a.connectionString),
    });
  }
  return new TableClient(a.tableServiceUrl, tableName, a.credential);
}

/** A QueueClient for one queue (the queue SDK accepts http endpoints on its own). */
export function createQueueClient(access: StorageAccess | string, queueName: string): QueueClient {
  const a = asAccess(access);
  const service =
    'connectionString' in a
      ? QueueServiceClient.fromConnectionString(a.connectionString)
      : new QueueServiceClient(a.queueServiceUrl, a.credential);
  return service.getQueueClient(queueName);
}

/**
 * Creates the tables, the work queue and its poison queue if they do not exist. Safe to call
 * on every start. Needs `Storage Table Data Contributor` and `Storage Queue Data Contributor`
 * (or an account key). Errors are mapped by `mapStorageError`; a transient failure may be retried.
 */
export async function ensureStateResources(
  access: StorageAccess | string,
  names: StateNames,
  options: { abortSignal?: AbortSignal } = {},
): Promise<void> {
  const tables = tableNames(names);
  await Promise.all([
    ...tables.map((table) =>
      storageCall(`create table ${table}`, () =>
        createTableClient(access, table).createTable({ abortSignal: options.abortSignal }),
      ),
    ),
    ...[names.workQueue, names.poisonQueue].map((queue) =>
      storageCall(`create queue ${queue}`, () =>
        createQueueClient(access, queue).createIfNotExists({ abortSignal: options.abortSignal }),
      ),
    ),
  ]);
}

interface SdkErrorShape {
  name?: string;
  statusCode?: number;
  code?: string;
  details?: { errorCode?: string; odataError?: { code?: string } };
  message?: string;
}

/** The Storage error code of an SDK error (`EntityAlreadyExists`, `UpdateConditionNotSatisfied`...). */
export function storageErrorCode(error: unknown): string | undefined {
  const e = error as SdkErrorShape | undefined;
  return e?.details?.errorCode ?? e?.details?.odataError?.code ?? e?.code;
}

/** The HTTP status of an SDK error, when it has one. */
export function statusOf(error: unknown): number | undefined {
  const status = (error as SdkErrorShape | undefined)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'REQUEST_SEND_ERROR',
]);

/**
 * Maps an SDK error to the project's errors: 409 / 412 -> `ConflictError`, 404 -> `NotFoundError`,
 * 408 / 429 / 5xx / network -> `TransientError`, anything else -> `DependencyError` (not retryable).
 * Messages name the operation and the Storage error code, never the connection string.
 */
export function mapStorageError(operation: string, error: unknown): StampkeeperError {
  if (error instanceof StampkeeperError) return error;
  if ((error as { name?: string })?.name === 'AbortError') {
    return new DependencyError(`${operation}: aborted`, { cause: error, retryable: false });
  }
  const status = statusOf(error);
  const code = storageErrorCode(error);
  const metadata = { operation, status: status ?? null, storageCode: code ?? null };
  const detail = redactText(`${operation} failed (${status ?? 'no status'}${code ? ` ${code}` : ''})`);
  if (status === 409 || status === 412) return new ConflictError(detail, { cause: error, metadata });
  if (status === 404) return new NotFoundError(detail, { cause: error, metadata });
  if (status === 408 || status === 429 || (status !== undefined && status >= 500)) {
    return new TransientError(detail, { cause: error, metadata });
  }
  if (status === undefined && (code === undefined || NETWORK_CODES.has(code))) {
    return new TransientError(detail, { cause: error, metadata });
  }
  return new DependencyError(detail, { cause: error, metadata, retryable: false });
}

/** Runs one SDK call and maps what it throws. */
export async function storageCall<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw mapStorageError(operation, error);
  }
}

/**
 * A point read: the entity, or `undefined` when it does not exist. Other failures are mapped by
 * `storageCall` (`TransientError`, `DependencyError`...).
 */
export function readEntity<T extends object>(
  table: TableClient,
  partitionKey: string,
  rowKey: string,
  doing: string,
  abortSignal?: AbortSignal,
): Promise<(T & { etag?: string }) | undefined> {
  return storageCall(doing, async () => {
    try {
      return await table.getEntity<T>(partitionKey, rowKey, { abortSignal });
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  });
}

/**
 * Runs a conditional write; `false` when it lost the race (409 on insert, 412 on a stale ETag, and
 * any other status in `lost`), so the caller re-reads and decides again. Other failures are mapped.
 */
export function tryConditionalWrite(
  doing: string,
  write: () => Promise<unknown>,
  lost: readonly number[] = [409, 412],
): Promise<boolean> {
  return storageCall(doing, async () => {
    try {
      await write();
      return true;
    } catch (error) {
      const status = statusOf(error);
      if (status !== undefined && lost.includes(status)) return false;
      throw error;
    }
  });
}
