import type { TableClient } from '@azure/data-tables';
import { ValidationError } from '../core/errors';
import { toTableKey } from '../core/ids';
import type {
  RollCallbackCallOptions,
  RollCallbackRecord,
  RollCallbackStatus,
  RollCallbackStore,
} from '../ports/rollCallbacks';
import { readEntity, storageCall, tryConditionalWrite } from './tables';

/** The row of a roll's callback, apart from the idempotency keys' rows (`key`) in the same table. */
const ROW = 'roll-callback';
const PARTITION_PREFIX = 'rollcb|';
const CALLBACK_ID = /^[0-9a-f]{32}$/;

interface RollCallbackEntity {
  partitionKey: string;
  rowKey: string;
  tokenHash: string;
  status: RollCallbackRecord['status'];
  reason?: string;
  registeredOn: string;
  reportedOn?: string;
  /** ISO: the idempotency table's retention purge (`expiresOn lt now`) removes the row after it. */
  expiresOn: string;
  etag?: string;
}

/**
 * Roll callbacks in the idempotency table (a row per roll, its own RowKey, so that it never meets
 * an idempotency key), whose retention purge removes them once expired. Registration replaces
 * the row unconditionally (the rotation owns it until the webhook is called); a report replaces it
 * if-match on the ETag read. Needs `Storage Table Data Contributor`, as the idempotency keys do.
 */
export class TableRollCallbackStore implements RollCallbackStore {
  constructor(private readonly table: TableClient) {}

  async register(
    record: Omit<RollCallbackRecord, 'status' | 'reason' | 'reportedOn' | 'etag'>,
    options: RollCallbackCallOptions = {},
  ): Promise<void> {
    const entity: RollCallbackEntity = {
      partitionKey: partitionOf(record.callbackId),
      rowKey: ROW,
      tokenHash: record.tokenHash,
      status: 'pending',
      registeredOn: record.registeredOn.toISOString(),
      expiresOn: record.expiresOn.toISOString(),
    };
    await storageCall('roll callback register', () =>
      this.table.upsertEntity(entity, 'Replace', { abortSignal: options.abortSignal }),
    );
  }

  async get(
    callbackId: string,
    options: RollCallbackCallOptions = {},
  ): Promise<RollCallbackRecord | undefined> {
    const entity = await readEntity<RollCallbackEntity>(
      this.table,
      partitionOf(callbackId),
      ROW,
      'roll callback read',
      options.abortSignal,
    );
    if (!entity) return undefined;
    return {
      callbackId,
      tokenHash: entity.tokenHash,
      status: entity.status,
      ...(entity.reason ? { reason: entity.reason } : {}),
      registeredOn: new Date(entity.registeredOn),
      ...(entity.reportedOn ? { reportedOn: new Date(entity.reportedOn) } : {}),
      expiresOn: new Date(entity.expiresOn),
      ...(entity.etag ? { etag: entity.etag } : {}),
    };
  }

  async report(
    record: RollCallbackRecord,
    report: { status: RollCallbackStatus; reason?: string; reportedOn: Date },
    options: RollCallbackCallOptions = {},
  ): Promise<boolean> {
    if (!record.etag) throw new ValidationError('a report needs the record as read', ['record.etag']);
    const entity: RollCallbackEntity = {
      partitionKey: partitionOf(record.callbackId),
      rowKey: ROW,
      tokenHash: record.tokenHash,
      status: report.status,
      ...(report.reason ? { reason: report.reason } : {}),
      registeredOn: record.registeredOn.toISOString(),
      reportedOn: report.reportedOn.toISOString(),
      expiresOn: record.expiresOn.toISOString(),
    };
    // 404: the row went (retention) since it was read; 412: it changed.
    return tryConditionalWrite(
      'roll callback report',
      () =>
        this.table.updateEntity(entity, 'Replace', { etag: record.etag, abortSignal: options.abortSignal }),
      [404, 409, 412],
    );
  }
}

function partitionOf(callbackId: string): string {
  if (!CALLBACK_ID.test(callbackId)) {
    throw new ValidationError('Invalid roll callback id', ['callbackId: 32 lowercase hex digits']);
  }
  return toTableKey(`${PARTITION_PREFIX}${callbackId}`);
}
