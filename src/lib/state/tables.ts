/**
 * Storage plumbing shared by the state adapters: clients from one connection string, the names of
 * the tables and queues, their idempotent creation, and the one place where Storage SDK errors
 * become the project's errors.
 */
import { TableClient, TableServiceClient } from '@azure/data-tables';
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
    workQueue: workQueueName,
    poisonQueue: `${workQueueName}-poison`,
  };
  for (const table of [names.runs, names.audit, names.idempotency, names.leases]) {
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

export interface StorageClientOptions {
  /**
   * Allow http:// endpoints (Azurite). Defaults to true when the connection string is the
   * development shortcut or names an http endpoint, false otherwise.
   */
  allowInsecureConnection?: boolean;
}

/** Whether a connection string points at plain http (Azurite / the development shortcut). */
export function isInsecureConnectionString(connectionString: string): boolean {
  return (
    /UseDevelopmentStorage=true/i.test(connectionString) ||
    /DefaultEndpointsProtocol=http(;|$)/i.test(connectionString) ||
    /Endpoint=http:\/\//i.test(connectionString)
  );
}

/** A TableClient for one table. `UseDevelopmentStorage=true` is understood by the SDK itself. */
export function createTableClient(
  connectionString: string,
  tableName: string,
  options: StorageClientOptions = {},
): TableClient {
  return TableClient.fromConnectionString(connectionString, tableName, {
    allowInsecureConnection: options.allowInsecureConnection ?? isInsecureConnectionString(connectionString),
  });
}

export function createTableServiceClient(
  connectionString: string,
  options: StorageClientOptions = {},
): TableServiceClient {
  return TableServiceClient.fromConnectionString(connectionString, {
    allowInsecureConnection: options.allowInsecureConnection ?? isInsecureConnectionString(connectionString),
  });
}

/** A QueueClient for one queue (the queue SDK accepts http endpoints on its own). */
export function createQueueClient(connectionString: string, queueName: string): QueueClient {
  return QueueServiceClient.fromConnectionString(connectionString).getQueueClient(queueName);
}

/**
 * Creates the four tables, the work queue and its poison queue if they do not exist. Safe to call
 * on every start. Needs `Storage Table Data Contributor` and `Storage Queue Data Contributor`
 * (or an account key). Errors are mapped by `mapStorageError`; a transient failure may be retried.
 */
export async function ensureStateResources(
  connectionString: string,
  names: StateNames,
  options: StorageClientOptions & { abortSignal?: AbortSignal } = {},
): Promise<void> {
  const tables = [names.runs, names.audit, names.idempotency, names.leases];
  await Promise.all([
    ...tables.map((table) =>
      storageCall(`create table ${table}`, () =>
        createTableClient(connectionString, table, options).createTable({ abortSignal: options.abortSignal }),
      ),
    ),
    ...[names.workQueue, names.poisonQueue].map((queue) =>
      storageCall(`create queue ${queue}`, () =>
        createQueueClient(connectionString, queue).createIfNotExists({ abortSignal: options.abortSignal }),
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
