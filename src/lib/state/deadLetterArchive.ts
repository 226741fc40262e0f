import { odata, type TableClient, type TableEntityResult, type TransactionAction } from '@azure/data-tables';
import { ConflictError, NotFoundError, StampkeeperError, ValidationError } from '../core/errors';
import { stableHash } from '../core/ids';
import type { Clock } from '../ports/clock';
import type {
  AlertWindow,
  ArchiveResult,
  CallOptions,
  DeadLetterArchive,
  DeadLetterClassification,
  DeadLetterCount,
  DeadLetterFilter,
  DeadLetterMessage,
  DeadLetterPage,
  DeadLetterRecord,
  DeadLetterState,
  MessageRevision,
  NewDeadLetter,
  ReasonClass,
  ReplayAttempt,
  ReplayMark,
  RevisionChange,
  StoredBody,
} from '../ports/deadLetters';
import type { BusMessageBody } from '../ports/messageBus';
import type { BlobBodies } from './deadLetterBlobs';
import {
  bodyBytes,
  bodyFromBytes,
  deadLetterId,
  decodeProperties,
  encodeProperties,
  idOfKeys,
  keysOfId,
  sha256Of,
} from './deadLetterCodec';
import { mapStorageError, readEntity, statusOf, storageCall } from './tables';

/** Bodies up to this size live in the row (an Edm.Binary property holds 64 KiB); larger ones in a blob. */
export const INLINE_BODY_BYTES = 48 * 1024;
/** Property sets whose JSON is longer go to a blob with the body (a string property holds 32 Ki characters). */
const INLINE_PROPERTIES_CHARS = 30_000;
/** An entity-group transaction holds at most 100 operations and 4 MiB; stay under both. */
const MAX_TRANSACTION_OPS = 100;
const MAX_TRANSACTION_BYTES = 3 * 1024 * 1024;
/** Lost races (a concurrent archiver, a counter bumped meanwhile) re-read and try again this often. */
const MAX_ROUNDS = 8;
const BLOB_WRITES_IN_PARALLEL = 8;
const DELETES_IN_PARALLEL = 8;
const MAX_TEXT = 4096;
const MAX_LABEL = 120;
const MAX_REASONS_IN_WINDOW = 50;
const ALERT_ROW = 'a';
const HOUR_MS = 3_600_000;
const MAX_COUNT_WINDOW_HOURS = 24 * 31;
const MAX_LIST_LIMIT = 1000;
const DEFAULT_MAX_SCAN = 5000;

/** The columns of a message row but its inline body: what listings read. */
const SUMMARY_COLUMNS = [
  'PartitionKey',
  'RowKey',
  'path',
  'messageId',
  'sequenceNumber',
  'enqueuedTime',
  'expiresAt',
  'timeToLiveMs',
  'deliveryCount',
  'contentType',
  'correlationId',
  'sessionId',
  'replyToSessionId',
  'subject',
  'to',
  'replyTo',
  'sbPartitionKey',
  'props',
  'propsInBlob',
  'deadLetterReason',
  'deadLetterErrorDescription',
  'deadLetterSource',
  'deadLetteredAt',
  'bodyType',
  'bodySize',
  'bodySha256',
  'bodyLocation',
  'classification',
  'replayCount',
  'originalMessageId',
  'state',
  'stateReason',
  'revisions',
  'replays',
  'lastReplay',
  'updatedOn',
];

interface MessageRow {
  partitionKey: string;
  rowKey: string;
  path: string;
  messageId: string;
  sequenceNumber: string;
  enqueuedTime: string;
  expiresAt?: string;
  timeToLiveMs?: number;
  deliveryCount: number;
  contentType?: string;
  correlationId?: string;
  sessionId?: string;
  replyToSessionId?: string;
  subject?: string;
  to?: string;
  replyTo?: string;
  sbPartitionKey?: string;
  props?: string;
  propsInBlob?: boolean;
  deadLetterReason?: string;
  deadLetterErrorDescription?: string;
  deadLetterSource?: string;
  deadLetteredAt: string;
  bodyType: BusMessageBody['type'];
  bodySize: number;
  bodySha256: string;
  bodyLocation: 'table' | 'blob';
  body?: Uint8Array;
  classification: string;
  replayCount: number;
  originalMessageId: string;
  state: DeadLetterState;
  stateReason?: string;
  revisions: number;
  replays: number;
  lastReplay?: string;
  updatedOn: string;
  etag?: string;
}

interface CounterRow {
  partitionKey: string;
  rowKey: string;
  hour: string;
  reason: string;
  reasonClass: ReasonClass;
  count: number;
  etag?: string;
}

interface AlertRow {
  partitionKey: string;
  rowKey: string;
  lastAlertOn?: string;
  pendingTotal: number;
  pendingByReason: string;
  pendingSince?: string;
  claimedId?: string;
  claimedOn?: string;
  claimedTotal?: number;
  claimedByReason?: string;
  claimedSince?: string;
  etag?: string;
}

interface RevisionRow {
  partitionKey: string;
  rowKey: string;
  message: string;
  bodyType: BusMessageBody['type'];
  bodySize: number;
  bodySha256: string;
  bodyLocation: 'table' | 'blob';
  body?: Uint8Array;
  actor: string;
  reason?: string;
  createdOn: string;
}

/** UTC hour `yyyy-mm-ddThh` of a time. */
function hourOf(time: Date): string {
  return time.toISOString().slice(0, 13);
}

function label(text: string | undefined): string {
  const clean = (text ?? '').trim().replace(/[^\w .:@/()-]/g, '_');
  return clean.slice(0, MAX_LABEL) || 'unknown';
}

function counterKey(hour: string, reason: string): string {
  return `c.${hour}.${stableHash('reason', reason).slice(0, 16)}`;
}

function clip(text: string | undefined, max = MAX_TEXT): string | undefined {
  return text === undefined ? undefined : text.slice(0, max);
}

function revisionKey(revision: number): string {
  return `r${String(revision).padStart(4, '0')}`;
}

function blobName(record: { entity: string; id: string }, what: string): string {
  return `${record.entity}/${record.id}/${what}`;
}

/**
 * The dead-letter archive on Table storage (`{prefix}DeadLetters`, one partition per entity: its
 * messages, hour counters and alert window; `{prefix}DeadLetterRevisions`, one partition per
 * record) and a blob container for bodies over 48 KiB. Every change is ETag-conditional; a new
 * record and its counts go in one entity-group transaction. Needs Storage Table Data Contributor
 * and Storage Blob Data Contributor.
 */
export class TableDeadLetterArchive implements DeadLetterArchive {
  constructor(
    private readonly table: TableClient,
    private readonly revisionsTable: TableClient,
    private readonly blobs: BlobBodies,
    private readonly clock: Clock,
  ) {}

  async archive(
    entity: string,
    arrivals: NewDeadLetter[],
    options: CallOptions = {},
  ): Promise<ArchiveResult> {
    const result: ArchiveResult = { created: [], existing: [], conflicts: [] };
    if (arrivals.length === 0) return result;
    // One row per message: a batch that carries a message twice archives it once.
    const byKey = new Map<string, { arrival: NewDeadLetter; id: string; rowKey: string }>();
    for (const arrival of arrivals) {
      const m = arrival.message;
      const id = deadLetterId(entity, m.sequenceNumber, m.messageId, m.enqueuedTime);
      const rowKey = keysOfId(id)!.rowKey;
      if (!byKey.has(rowKey)) byKey.set(rowKey, { arrival, id, rowKey });
    }
    let pending = [...byKey.values()].sort((a, b) => (a.rowKey < b.rowKey ? -1 : 1));
    const settle = async (keys: string[]) => {
      const existing = await this.readRange(entity, keys, options);
      const still: typeof pending = [];
      for (const item of pending) {
        const row = existing.get(item.rowKey);
        if (!row) {
          still.push(item);
          continue;
        }
        const m = item.arrival.message;
        if (row.messageId === m.messageId && row.enqueuedTime === m.enqueuedTime.toISOString()) {
          result.existing.push(toRecord(row));
        } else {
          result.conflicts.push({
            id: item.id,
            messageId: m.messageId,
            problem: `archive id ${item.id} holds message ${row.messageId} enqueued ${row.enqueuedTime}, not ${m.messageId} enqueued ${m.enqueuedTime.toISOString()}`,
          });
        }
      }
      pending = still;
    };
    await settle(pending.map((p) => p.rowKey));
    if (pending.length === 0) return result;

    // Bodies and oversized property sets first: a record never points at a blob that is not there.
    const rows = new Map<string, MessageRow>();
    const uploads: Array<() => Promise<void>> = [];
    for (const item of pending) {
      const { row, blobs } = newRow(entity, item.rowKey, item.arrival, this.clock.now());
      rows.set(item.rowKey, row);
      for (const [what, bytes] of blobs)
        uploads.push(() => this.blobs.put(blobName({ entity, id: item.id }, what), bytes, options));
    }
    await inParallel(uploads, BLOB_WRITES_IN_PARALLEL);

    for (let round = 0; pending.length > 0; round++) {
      if (round >= MAX_ROUNDS) {
        throw new ConflictError(`archiving dead letters of ${entity}: the partition is contended; retried`, {
          metadata: { entity },
        });
      }
      const counters = await this.readCounters(
        entity,
        pending.map((p) => p.arrival),
        options,
      );
      const alert = await this.readAlert(entity, options);
      try {
        const chunked = chunks(
          pending,
          (p) => rowSize(rows.get(p.rowKey)!),
          (p) => counterKey(hourOf(p.arrival.deadLetteredAt), label(p.arrival.message.deadLetterReason)),
        );
        for (const chunk of chunked) {
          const created = await this.commitChunk(entity, chunk, rows, counters, alert, options);
          result.created.push(...created);
          const done = new Set(chunk.map((c) => c.rowKey));
          pending = pending.filter((p) => !done.has(p.rowKey));
        }
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        // Another archiver won a race (a record, a counter or the window): re-read and go on.
        await settle(pending.map((p) => p.rowKey));
      }
    }
    return result;
  }

  /** One transaction: the chunk's records, its counters and the alert window (etags chained in memory). */
  private async commitChunk(
    entity: string,
    chunk: Array<{ arrival: NewDeadLetter; id: string; rowKey: string }>,
    rows: Map<string, MessageRow>,
    counters: Map<string, CounterRow>,
    alert: AlertRow,
    options: CallOptions,
  ): Promise<DeadLetterRecord[]> {
    const actions: TransactionAction[] = [];
    const touched = new Map<string, CounterRow>();
    const byReason: Record<string, number> = {};
    let since: string | undefined;
    for (const item of chunk) {
      actions.push(['create', { ...rows.get(item.rowKey)! }]);
      const reason = label(item.arrival.message.deadLetterReason);
      const key = counterKey(hourOf(item.arrival.deadLetteredAt), reason);
      const counter =
        touched.get(key) ??
        ({
          ...(counters.get(key) ?? {
            partitionKey: entity,
            rowKey: key,
            hour: hourOf(item.arrival.deadLetteredAt),
            reason,
            reasonClass: item.arrival.classification.reasonClass,
            count: 0,
          }),
        } as CounterRow);
      counter.count += 1;
      touched.set(key, counter);
      byReason[reason] = (byReason[reason] ?? 0) + 1;
      const at = item.arrival.deadLetteredAt.toISOString();
      if (since === undefined || at < since) since = at;
    }
    for (const counter of touched.values()) {
      const { etag, ...entityValue } = counter;
      actions.push(etag ? ['update', entityValue, 'Replace', { etag }] : ['create', entityValue]);
    }
    const window = addToWindow(alert, byReason, chunk.length, since!);
    const { etag: alertEtag, ...alertValue } = window;
    actions.push(alertEtag ? ['update', alertValue, 'Replace', { etag: alertEtag }] : ['create', alertValue]);

    const response = await this.submit(`archive dead letters of ${entity}`, actions, options);
    // Sub-responses come back in the order of the operations.
    const etags = response?.subResponses.map((r) => r.etag) ?? [];
    let index = chunk.length;
    for (const counter of touched.values()) {
      const etag = etags[index++];
      if (etag) counters.set(counter.rowKey, { ...counter, etag });
      else counters.delete(counter.rowKey); // read again when a later chunk needs it
    }
    Object.assign(alert, window, { etag: etags[index] });
    if (!alert.etag) Object.assign(alert, await this.readAlert(entity, options));
    const created = chunk.map((item, i) => toRecord({ ...rows.get(item.rowKey)!, etag: etags[i] ?? '' }));
    return this.withEtags(entity, created, options);
  }

  /** Records whose etag a response did not carry, read again (a later change must be conditional on it). */
  private async withEtags(
    entity: string,
    records: DeadLetterRecord[],
    options: CallOptions,
  ): Promise<DeadLetterRecord[]> {
    const missing = records.filter((r) => !r.etag).map((r) => keysOfId(r.id)!.rowKey);
    if (missing.length === 0) return records;
    const rows = await this.readRange(entity, missing, options);
    return records.map((r) => (r.etag ? r : toRecord(rows.get(keysOfId(r.id)!.rowKey)!)));
  }

  private async submit(
    doing: string,
    actions: TransactionAction[],
    options: CallOptions,
  ): Promise<Awaited<ReturnType<TableClient['submitTransaction']>> | undefined> {
    try {
      return await this.table.submitTransaction(actions, { abortSignal: options.abortSignal });
    } catch (error) {
      const status = statusOf(error);
      if (status === 409 || status === 412) {
        throw new ConflictError(`${doing}: lost a race (${status})`, { cause: error });
      }
      throw mapStorageError(doing, error);
    }
  }

  /** Existing message rows among `rowKeys` (one range query, body left out). */
  private async readRange(
    entity: string,
    rowKeys: string[],
    options: CallOptions,
  ): Promise<Map<string, MessageRow>> {
    const found = new Map<string, MessageRow>();
    if (rowKeys.length === 0) return found;
    const wanted = new Set(rowKeys);
    const sorted = [...rowKeys].sort();
    const filter = odata`PartitionKey eq ${entity} and RowKey ge ${sorted[0]!} and RowKey le ${sorted.at(-1)!}`;
    await storageCall(`read dead letters of ${entity}`, async () => {
      for await (const row of this.table.listEntities<MessageRow>({
        queryOptions: { filter, select: SUMMARY_COLUMNS },
        abortSignal: options.abortSignal,
      })) {
        if (wanted.has(row.rowKey)) found.set(row.rowKey, row);
      }
    });
    return found;
  }

  private async readCounters(
    entity: string,
    arrivals: NewDeadLetter[],
    options: CallOptions,
  ): Promise<Map<string, CounterRow>> {
    const keys = new Set(
      arrivals.map((a) => counterKey(hourOf(a.deadLetteredAt), label(a.message.deadLetterReason))),
    );
    const out = new Map<string, CounterRow>();
    await Promise.all(
      [...keys].map(async (key) => {
        const row = await readEntity<CounterRow>(
          this.table,
          entity,
          key,
          'read dead-letter counter',
          options.abortSignal,
        );
        if (row) out.set(key, row);
      }),
    );
    return out;
  }

  private async readAlert(entity: string, options: CallOptions): Promise<AlertRow> {
    const row = await readEntity<AlertRow>(
      this.table,
      entity,
      ALERT_ROW,
      'read dead-letter alert window',
      options.abortSignal,
    );
    return row ?? { partitionKey: entity, rowKey: ALERT_ROW, pendingTotal: 0, pendingByReason: '{}' };
  }

  async get(id: string, options: CallOptions = {}): Promise<DeadLetterRecord | undefined> {
    const keys = keysOfId(id);
    if (!keys) return undefined;
    const row = await readEntity<MessageRow>(
      this.table,
      keys.partitionKey,
      keys.rowKey,
      'read dead letter',
      options.abortSignal,
    );
    return row ? toRecord(row) : undefined;
  }

  async body(record: DeadLetterRecord, revision = 0, options: CallOptions = {}): Promise<BusMessageBody> {
    return (await this.revision(record, revision, options)).body;
  }

  async revisions(record: DeadLetterRecord, options: CallOptions = {}): Promise<MessageRevision[]> {
    const out: MessageRevision[] = [await this.original(record, options)];
    if (record.revisions === 0) return out;
    await storageCall(`read revisions of ${record.id}`, async () => {
      for await (const row of this.revisionsTable.listEntities<RevisionRow>({
        queryOptions: {
          filter: odata`PartitionKey eq ${record.id}`,
          select: [
            'RowKey',
            'message',
            'bodyType',
            'bodySize',
            'bodySha256',
            'bodyLocation',
            'actor',
            'reason',
            'createdOn',
          ],
        },
        abortSignal: options.abortSignal,
      })) {
        out.push(revisionOf(row));
      }
    });
    return out.sort((a, b) => a.revision - b.revision);
  }

  async revision(
    record: DeadLetterRecord,
    revision: number,
    options: CallOptions = {},
  ): Promise<{ revision: MessageRevision; body: BusMessageBody }> {
    if (!Number.isInteger(revision) || revision < 0 || revision > record.revisions) {
      throw new NotFoundError(
        `dead letter ${record.id} has no revision ${revision} (revisions: 0 to ${record.revisions})`,
      );
    }
    if (revision === 0) {
      const keys = keysOfId(record.id)!;
      const row = await readEntity<MessageRow>(
        this.table,
        keys.partitionKey,
        keys.rowKey,
        'read dead letter',
        options.abortSignal,
      );
      if (!row) throw new NotFoundError(`dead letter ${record.id} does not exist`);
      const original = await this.original(toRecord(row), options);
      const bytes =
        row.bodyLocation === 'table'
          ? (row.body ?? new Uint8Array())
          : await this.blobs.get(blobName(record, 'body'), options);
      return { revision: original, body: bodyFromBytes(row.bodyType, bytes) };
    }
    const row = await readEntity<RevisionRow>(
      this.revisionsTable,
      record.id,
      revisionKey(revision),
      'read dead-letter revision',
      options.abortSignal,
    );
    if (!row) throw new NotFoundError(`dead letter ${record.id} has no revision ${revision}`);
    const bytes =
      row.bodyLocation === 'table'
        ? (row.body ?? new Uint8Array())
        : await this.blobs.get(blobName(record, revisionKey(revision)), options);
    return { revision: revisionOf(row), body: bodyFromBytes(row.bodyType, bytes) };
  }

  /** Revision 0: the message as it arrived (its properties from the blob when they were too many for the row). */
  private async original(record: DeadLetterRecord, options: CallOptions): Promise<MessageRevision> {
    let message = messageOf(record);
    if (record.applicationProperties === OVERSIZED) {
      const bytes = await this.blobs.get(blobName(record, 'properties'), options);
      message = { ...message, applicationProperties: decodeProperties(Buffer.from(bytes).toString('utf8')) };
    }
    return { revision: 0, message, body: record.body, createdOn: record.deadLetteredAt };
  }

  async addRevision(
    record: DeadLetterRecord,
    change: RevisionChange,
    by: { actor: string; reason?: string; now: Date },
    options: CallOptions = {},
  ): Promise<{ record: DeadLetterRecord; revision: number }> {
    const latest = await this.revision(record, record.revisions, options);
    const message: DeadLetterMessage = { ...latest.revision.message };
    for (const key of ['contentType', 'correlationId', 'subject', 'sessionId', 'timeToLiveMs'] as const) {
      const value = change[key];
      if (value === undefined) continue;
      if (value === null) delete message[key];
      else (message as unknown as Record<string, unknown>)[key] = value;
    }
    if (change.applicationProperties) {
      const properties = { ...message.applicationProperties };
      for (const [k, v] of Object.entries(change.applicationProperties)) {
        if (v === null) delete properties[k];
        else properties[k] = v;
      }
      message.applicationProperties = properties;
    }
    const body = change.body ?? latest.body;
    const bytes = bodyBytes(body);
    const revision = record.revisions + 1;
    const stored: StoredBody = {
      type: body.type,
      size: bytes.byteLength,
      sha256: sha256Of(bytes),
      location: bytes.byteLength <= INLINE_BODY_BYTES ? 'table' : 'blob',
    };
    const messageJson = JSON.stringify({
      ...message,
      enqueuedTime: message.enqueuedTime.toISOString(),
      expiresAt: message.expiresAt?.toISOString(),
      applicationProperties: encodeProperties(message.applicationProperties),
    });
    if (messageJson.length > INLINE_PROPERTIES_CHARS) {
      throw new ValidationError('the revised message carries too many properties to keep', [
        `applicationProperties: at most ${INLINE_PROPERTIES_CHARS} characters of JSON in a revision`,
      ]);
    }
    if (stored.location === 'blob')
      await this.blobs.put(blobName(record, revisionKey(revision)), bytes, options);
    const row: RevisionRow = {
      partitionKey: record.id,
      rowKey: revisionKey(revision),
      message: messageJson,
      bodyType: stored.type,
      bodySize: stored.size,
      bodySha256: stored.sha256,
      bodyLocation: stored.location,
      ...(stored.location === 'table' ? { body: bytes } : {}),
      actor: by.actor,
      ...(by.reason ? { reason: clip(by.reason, 1000) } : {}),
      createdOn: by.now.toISOString(),
    };
    // The revision row first (a retry that finds it written goes on), then the record's count, conditionally.
    await storageCall(`write revision ${revision} of ${record.id}`, async () => {
      try {
        await this.revisionsTable.createEntity(row, { abortSignal: options.abortSignal });
      } catch (error) {
        if (statusOf(error) !== 409) throw error;
        await this.revisionsTable.updateEntity(row, 'Replace', { abortSignal: options.abortSignal });
      }
    });
    const updated = await this.update(
      record,
      { revisions: revision, updatedOn: by.now.toISOString() },
      options,
    );
    return { record: updated, revision };
  }

  async markReplays(marks: ReplayMark[], options: CallOptions = {}): Promise<DeadLetterRecord[]> {
    if (marks.length === 0) return [];
    const entity = marks[0]!.record.entity;
    if (marks.some((m) => m.record.entity !== entity))
      throw new ValidationError('markReplays: the records of one entity at a time');
    const out: DeadLetterRecord[] = [];
    for (let i = 0; i < marks.length; i += MAX_TRANSACTION_OPS) {
      const slice = marks.slice(i, i + MAX_TRANSACTION_OPS);
      const patches = slice.map((m) => replayPatch(m.record, m.attempt));
      const actions: TransactionAction[] = slice.map((m, j) => [
        'update',
        { partitionKey: entity, rowKey: keysOfId(m.record.id)!.rowKey, ...patches[j] },
        'Merge',
        { etag: m.record.etag },
      ]);
      const response =
        actions.length === 1 ? undefined : await this.submit(`record replays of ${entity}`, actions, options);
      if (actions.length === 1) {
        out.push(await this.update(slice[0]!.record, patches[0]!, options));
        continue;
      }
      const updated = slice.map((m, j) =>
        applyPatch(m.record, patches[j]!, response?.subResponses[j]?.etag ?? ''),
      );
      out.push(...(await this.withEtags(entity, updated, options)));
    }
    return out;
  }

  async setState(
    record: DeadLetterRecord,
    state: DeadLetterState,
    reason: string,
    now: Date,
    options: CallOptions = {},
  ): Promise<DeadLetterRecord> {
    return this.update(
      record,
      { state, stateReason: clip(reason, 1000)!, updatedOn: now.toISOString() },
      options,
    );
  }

  /** A Merge conditional on the record's etag: `ConflictError` when it changed since it was read. */
  private async update(
    record: DeadLetterRecord,
    patch: Partial<MessageRow>,
    options: CallOptions,
  ): Promise<DeadLetterRecord> {
    const keys = keysOfId(record.id)!;
    try {
      const response = await this.table.updateEntity(
        { partitionKey: keys.partitionKey, rowKey: keys.rowKey, ...patch },
        'Merge',
        { etag: record.etag, abortSignal: options.abortSignal },
      );
      return applyPatch(record, patch, response.etag ?? '');
    } catch (error) {
      const status = statusOf(error);
      if (status === 412 || status === 409)
        throw new ConflictError(`dead letter ${record.id} changed meanwhile: read it again`, {
          cause: error,
        });
      if (status === 404)
        throw new NotFoundError(`dead letter ${record.id} does not exist`, { cause: error });
      throw mapStorageError(`update dead letter ${record.id}`, error);
    }
  }

  async list(
    filter: DeadLetterFilter,
    page: { limit: number; continuation?: string; maxScan?: number },
    options: CallOptions = {},
  ): Promise<DeadLetterPage> {
    if (!Number.isInteger(page.limit) || page.limit < 1 || page.limit > MAX_LIST_LIMIT)
      throw new ValidationError('invalid listing', [`limit: an integer from 1 to ${MAX_LIST_LIMIT}`]);
    const maxScan = page.maxScan ?? DEFAULT_MAX_SCAN;
    const after = page.continuation === undefined ? undefined : parseContinuation(page.continuation);
    const parts: string[] = [odata`RowKey ge ${'m.'} and RowKey lt ${'m/'}`];
    if (filter.entity !== undefined) parts.push(odata`PartitionKey eq ${filter.entity}`);
    if (filter.reason !== undefined) parts.push(odata`deadLetterReason eq ${filter.reason}`);
    if (filter.state !== undefined) parts.push(odata`state eq ${filter.state}`);
    if (filter.from !== undefined) parts.push(odata`deadLetteredAt ge ${filter.from.toISOString()}`);
    if (filter.to !== undefined) parts.push(odata`deadLetteredAt lt ${filter.to.toISOString()}`);
    if (after)
      parts.push(
        odata`(PartitionKey gt ${after.p} or (PartitionKey eq ${after.p} and RowKey gt ${after.r}))`,
      );
    const text = filter.q?.toLowerCase();
    const records: DeadLetterRecord[] = [];
    let scanned = 0;
    let last: { p: string; r: string } | undefined;
    let more = false;
    await storageCall('list dead letters', async () => {
      for await (const row of this.table.listEntities<MessageRow>({
        queryOptions: { filter: parts.join(' and '), select: SUMMARY_COLUMNS },
        abortSignal: options.abortSignal,
      })) {
        if (records.length >= page.limit || scanned >= maxScan) {
          more = true;
          break;
        }
        scanned += 1;
        last = { p: row.partitionKey, r: row.rowKey };
        const record = toRecord(row);
        if (text === undefined || matchesText(record, text)) records.push(record);
      }
    });
    return {
      records,
      scanned,
      ...(more && last ? { continuation: Buffer.from(JSON.stringify(last)).toString('base64url') } : {}),
    };
  }

  async remove(records: DeadLetterRecord[], options: CallOptions = {}): Promise<number> {
    let deleted = 0;
    await inParallel(
      records.map((record) => async () => {
        const keys = keysOfId(record.id)!;
        if (record.revisions > 0) {
          await storageCall(`delete revisions of ${record.id}`, async () => {
            for await (const row of this.revisionsTable.listEntities<RevisionRow>({
              queryOptions: {
                filter: odata`PartitionKey eq ${record.id}`,
                select: ['PartitionKey', 'RowKey'],
              },
            })) {
              await this.revisionsTable.deleteEntity(row.partitionKey, row.rowKey).catch((error: unknown) => {
                if (statusOf(error) !== 404) throw error;
              });
            }
          });
        }
        if (
          record.body.location === 'blob' ||
          record.applicationProperties === OVERSIZED ||
          record.revisions > 0
        )
          await this.blobs.deleteUnder(`${record.entity}/${record.id}/`, options);
        const gone = await storageCall(`delete dead letter ${record.id}`, async () => {
          try {
            await this.table.deleteEntity(keys.partitionKey, keys.rowKey, {
              etag: record.etag,
              abortSignal: options.abortSignal,
            });
            return true;
          } catch (error) {
            // Removed meanwhile (404): nothing to do; changed meanwhile (412): left for a person.
            if (statusOf(error) === 404 || statusOf(error) === 412) return false;
            throw error;
          }
        });
        if (gone) deleted += 1;
      }),
      DELETES_IN_PARALLEL,
    );
    return deleted;
  }

  async counts(
    query: { entity?: string; since: Date; until: Date },
    options: CallOptions = {},
  ): Promise<DeadLetterCount[]> {
    if (query.until.getTime() < query.since.getTime())
      throw new ValidationError('invalid count window', ['since must not be after until']);
    if (query.until.getTime() - query.since.getTime() > MAX_COUNT_WINDOW_HOURS * HOUR_MS)
      throw new ValidationError('invalid count window', [`at most ${MAX_COUNT_WINDOW_HOURS / 24} days`]);
    const parts = [
      odata`RowKey ge ${`c.${hourOf(query.since)}`} and RowKey lt ${`c.${hourOf(query.until)}/`}`,
    ];
    if (query.entity !== undefined) parts.push(odata`PartitionKey eq ${query.entity}`);
    const out: DeadLetterCount[] = [];
    await storageCall('read dead-letter counts', async () => {
      for await (const row of this.table.listEntities<CounterRow>({
        queryOptions: { filter: parts.join(' and ') },
        abortSignal: options.abortSignal,
      })) {
        out.push({
          entity: row.partitionKey,
          hour: `${row.hour}:00:00.000Z`,
          reason: row.reason,
          reasonClass: row.reasonClass,
          count: row.count,
        });
      }
    });
    return out.sort((a, b) => a.hour.localeCompare(b.hour) || a.entity.localeCompare(b.entity));
  }

  async alertWindow(entity: string, options: CallOptions = {}): Promise<AlertWindow> {
    return windowOf(await this.readAlert(entity, options));
  }

  async claimAlert(
    window: AlertWindow,
    id: string,
    now: Date,
    options: CallOptions = {},
  ): Promise<AlertWindow | undefined> {
    const row: AlertRow = {
      partitionKey: window.entity,
      rowKey: ALERT_ROW,
      ...(window.lastAlertOn ? { lastAlertOn: window.lastAlertOn.toISOString() } : {}),
      pendingTotal: 0,
      pendingByReason: '{}',
      claimedId: id,
      claimedOn: now.toISOString(),
      claimedTotal: window.pending.total,
      claimedByReason: JSON.stringify(window.pending.byReason),
      claimedSince: (window.pending.since ?? now).toISOString(),
    };
    const written = await this.writeAlert(row, window.etag, options);
    return written ? windowOf({ ...row, etag: written }) : undefined;
  }

  async alertSent(window: AlertWindow, now: Date, options: CallOptions = {}): Promise<void> {
    const row: AlertRow = {
      partitionKey: window.entity,
      rowKey: ALERT_ROW,
      lastAlertOn: now.toISOString(),
      pendingTotal: window.pending.total,
      pendingByReason: JSON.stringify(window.pending.byReason),
      ...(window.pending.since ? { pendingSince: window.pending.since.toISOString() } : {}),
    };
    // Arrivals since the claim are kept (they moved the etag): re-read and keep them.
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const current = await this.readAlert(window.entity, options);
      if (current.claimedId !== window.claimed?.id) return; // recorded already
      const next: AlertRow = {
        ...row,
        pendingTotal: current.pendingTotal,
        pendingByReason: current.pendingByReason,
        ...(current.pendingSince ? { pendingSince: current.pendingSince } : {}),
      };
      if (await this.writeAlert(next, current.etag, options)) return;
    }
    throw new ConflictError(`recording the alert of ${window.entity}: the window is contended`);
  }

  private async writeAlert(
    row: AlertRow,
    etag: string | undefined,
    options: CallOptions,
  ): Promise<string | undefined> {
    return storageCall(`write dead-letter alert window of ${row.partitionKey}`, async () => {
      try {
        const { etag: _ignored, ...value } = row;
        const response = etag
          ? await this.table.updateEntity(value, 'Replace', { etag, abortSignal: options.abortSignal })
          : await this.table.createEntity(value, { abortSignal: options.abortSignal });
        return response.etag ?? (await this.readAlert(row.partitionKey, options)).etag ?? 'written';
      } catch (error) {
        const status = statusOf(error);
        if (status === 409 || status === 412) return undefined;
        throw error;
      }
    });
  }
}

/** Marks a record whose application properties live in a blob (too many for its row). */
const OVERSIZED: Record<string, never> = Object.freeze({}) as Record<string, never>;

function newRow(
  entity: string,
  rowKey: string,
  arrival: NewDeadLetter,
  now: Date,
): { row: MessageRow; blobs: Array<[string, Uint8Array]> } {
  const m = arrival.message;
  const bytes = bodyBytes(arrival.body);
  const blobs: Array<[string, Uint8Array]> = [];
  const inline = bytes.byteLength <= INLINE_BODY_BYTES;
  if (!inline) blobs.push(['body', bytes]);
  let props: string | undefined = encodeProperties(m.applicationProperties);
  let propsInBlob = false;
  if (props.length > INLINE_PROPERTIES_CHARS) {
    blobs.push(['properties', new Uint8Array(Buffer.from(props, 'utf8'))]);
    props = undefined;
    propsInBlob = true;
  }
  const row: MessageRow = {
    partitionKey: entity,
    rowKey,
    path: arrival.path,
    messageId: m.messageId,
    sequenceNumber: m.sequenceNumber,
    enqueuedTime: m.enqueuedTime.toISOString(),
    deliveryCount: m.deliveryCount,
    deadLetteredAt: arrival.deadLetteredAt.toISOString(),
    bodyType: arrival.body.type,
    bodySize: bytes.byteLength,
    bodySha256: sha256Of(bytes),
    bodyLocation: inline ? 'table' : 'blob',
    classification: JSON.stringify(arrival.classification),
    replayCount: arrival.replayCount,
    originalMessageId: arrival.originalMessageId,
    state: arrival.replay ? 'replaying' : 'parked',
    ...(arrival.replay
      ? {
          stateReason: `automatic replay ${arrival.replay.attempt} to ${arrival.replay.target}`,
          lastReplay: JSON.stringify(arrival.replay),
        }
      : { stateReason: arrival.classification.why }),
    revisions: 0,
    replays: 0,
    updatedOn: now.toISOString(),
  };
  const optional: Array<[keyof MessageRow, unknown]> = [
    ['expiresAt', m.expiresAt?.toISOString()],
    ['timeToLiveMs', m.timeToLiveMs],
    ['contentType', clip(m.contentType, 1024)],
    ['correlationId', clip(m.correlationId, 1024)],
    ['sessionId', m.sessionId],
    ['replyToSessionId', m.replyToSessionId],
    ['subject', clip(m.subject, 1024)],
    ['to', clip(m.to, 1024)],
    ['replyTo', clip(m.replyTo, 1024)],
    ['sbPartitionKey', m.partitionKey],
    ['props', props],
    ['propsInBlob', propsInBlob ? true : undefined],
    ['deadLetterReason', clip(m.deadLetterReason)],
    ['deadLetterErrorDescription', clip(m.deadLetterErrorDescription)],
    ['deadLetterSource', m.deadLetterSource],
    ['body', inline ? bytes : undefined],
  ];
  for (const [key, value] of optional) {
    if (value !== undefined) (row as unknown as Record<string, unknown>)[key] = value;
  }
  return { row, blobs };
}

function rowSize(row: MessageRow): number {
  return (row.body?.byteLength ?? 0) * 1.4 + (row.props?.length ?? 0) * 2 + 4096;
}

/**
 * Transactions of at most 100 operations (the records, one per counter they touch, the alert
 * window) and about 3 MiB.
 */
function* chunks<T>(items: T[], size: (item: T) => number, counter: (item: T) => string): Generator<T[]> {
  let current: T[] = [];
  let counters = new Set<string>();
  let bytes = 0;
  for (const item of items) {
    const s = size(item);
    const key = counter(item);
    const ops = current.length + 1 + counters.size + (counters.has(key) ? 0 : 1) + 1;
    if (current.length > 0 && (ops > MAX_TRANSACTION_OPS || bytes + s > MAX_TRANSACTION_BYTES)) {
      yield current;
      current = [];
      counters = new Set();
      bytes = 0;
    }
    current.push(item);
    counters.add(key);
    bytes += s;
  }
  if (current.length > 0) yield current;
}

function addToWindow(
  alert: AlertRow,
  byReason: Record<string, number>,
  count: number,
  since: string,
): AlertRow {
  const pending = JSON.parse(alert.pendingByReason || '{}') as Record<string, number>;
  for (const [reason, n] of Object.entries(byReason)) {
    if (reason in pending || Object.keys(pending).length < MAX_REASONS_IN_WINDOW)
      pending[reason] = (pending[reason] ?? 0) + n;
    else pending.other = (pending.other ?? 0) + n;
  }
  return {
    ...alert,
    pendingTotal: (alert.pendingTotal ?? 0) + count,
    pendingByReason: JSON.stringify(pending),
    pendingSince: alert.pendingSince && alert.pendingSince < since ? alert.pendingSince : since,
  };
}

function windowOf(row: AlertRow): AlertWindow {
  return {
    entity: row.partitionKey,
    ...(row.lastAlertOn ? { lastAlertOn: new Date(row.lastAlertOn) } : {}),
    pending: {
      total: row.pendingTotal ?? 0,
      byReason: JSON.parse(row.pendingByReason || '{}') as Record<string, number>,
      ...(row.pendingSince ? { since: new Date(row.pendingSince) } : {}),
    },
    ...(row.claimedId
      ? {
          claimed: {
            id: row.claimedId,
            on: new Date(row.claimedOn!),
            total: row.claimedTotal ?? 0,
            byReason: JSON.parse(row.claimedByReason || '{}') as Record<string, number>,
            since: new Date(row.claimedSince ?? row.claimedOn!),
          },
        }
      : {}),
    ...(row.etag ? { etag: row.etag } : {}),
  };
}

function replayPatch(record: DeadLetterRecord, attempt: ReplayAttempt): Partial<MessageRow> {
  return {
    state: attempt.status === 'sent' ? 'replayed' : 'replaying',
    stateReason:
      attempt.status === 'sent'
        ? `replayed to ${attempt.target} as ${attempt.messageId}${attempt.scheduledFor ? ` for ${attempt.scheduledFor.toISOString()}` : ''}`
        : `replay ${attempt.attempt} to ${attempt.target} in progress`,
    replays: attempt.status === 'sent' ? Math.max(record.replays, attempt.attempt) : record.replays,
    lastReplay: JSON.stringify(attempt),
    updatedOn: (attempt.sentOn ?? attempt.requestedOn).toISOString(),
  };
}

function applyPatch(record: DeadLetterRecord, patch: Partial<MessageRow>, etag: string): DeadLetterRecord {
  const next: DeadLetterRecord = { ...record, etag };
  if (patch.state !== undefined) next.state = patch.state;
  if (patch.stateReason !== undefined) next.stateReason = patch.stateReason;
  if (patch.replays !== undefined) next.replays = patch.replays;
  if (patch.revisions !== undefined) next.revisions = patch.revisions;
  if (patch.lastReplay !== undefined) next.lastReplay = parseReplay(patch.lastReplay);
  if (patch.updatedOn !== undefined) next.updatedOn = new Date(patch.updatedOn);
  return next;
}

function parseReplay(text: string | undefined): ReplayAttempt | undefined {
  if (!text) return undefined;
  const raw = JSON.parse(text) as Record<string, unknown>;
  return {
    ...(raw as unknown as ReplayAttempt),
    requestedOn: new Date(raw.requestedOn as string),
    ...(raw.sentOn ? { sentOn: new Date(raw.sentOn as string) } : {}),
    ...(raw.scheduledFor ? { scheduledFor: new Date(raw.scheduledFor as string) } : {}),
  };
}

function toRecord(row: TableEntityResult<MessageRow> | MessageRow): DeadLetterRecord {
  const record: DeadLetterRecord = {
    id: idOfKeys(row.partitionKey, row.rowKey),
    entity: row.partitionKey,
    path: row.path,
    messageId: row.messageId,
    sequenceNumber: row.sequenceNumber,
    enqueuedTime: new Date(row.enqueuedTime),
    deliveryCount: row.deliveryCount,
    applicationProperties: row.propsInBlob ? OVERSIZED : decodeProperties(row.props),
    deadLetteredAt: new Date(row.deadLetteredAt),
    body: { type: row.bodyType, size: row.bodySize, sha256: row.bodySha256, location: row.bodyLocation },
    classification: JSON.parse(row.classification) as DeadLetterClassification,
    replayCount: row.replayCount,
    originalMessageId: row.originalMessageId,
    state: row.state,
    revisions: row.revisions ?? 0,
    replays: row.replays ?? 0,
    updatedOn: new Date(row.updatedOn),
    etag: row.etag ?? '',
  };
  const optional: Array<[keyof DeadLetterRecord, unknown]> = [
    ['expiresAt', row.expiresAt ? new Date(row.expiresAt) : undefined],
    ['timeToLiveMs', row.timeToLiveMs],
    ['contentType', row.contentType],
    ['correlationId', row.correlationId],
    ['sessionId', row.sessionId],
    ['replyToSessionId', row.replyToSessionId],
    ['subject', row.subject],
    ['to', row.to],
    ['replyTo', row.replyTo],
    ['partitionKey', row.sbPartitionKey],
    ['deadLetterReason', row.deadLetterReason],
    ['deadLetterErrorDescription', row.deadLetterErrorDescription],
    ['deadLetterSource', row.deadLetterSource],
    ['stateReason', row.stateReason],
    ['lastReplay', parseReplay(row.lastReplay)],
  ];
  for (const [key, value] of optional) {
    if (value !== undefined && value !== null) (record as unknown as Record<string, unknown>)[key] = value;
  }
  return record;
}

/** The message part of a record. */
export function messageOf(record: DeadLetterRecord): DeadLetterMessage {
  const {
    id: _id,
    entity: _entity,
    path: _path,
    deadLetteredAt: _at,
    body: _body,
    classification: _classification,
    replayCount: _replayCount,
    originalMessageId: _original,
    state: _state,
    stateReason: _reason,
    revisions: _revisions,
    replays: _replays,
    lastReplay: _last,
    updatedOn: _updated,
    etag: _etag,
    ...message
  } = record;
  return message;
}

function revisionOf(row: RevisionRow): MessageRevision {
  const raw = JSON.parse(row.message) as Record<string, unknown>;
  const message = {
    ...raw,
    enqueuedTime: new Date(raw.enqueuedTime as string),
    ...(raw.expiresAt ? { expiresAt: new Date(raw.expiresAt as string) } : {}),
    applicationProperties: decodeProperties(raw.applicationProperties as string),
  } as unknown as DeadLetterMessage;
  return {
    revision: Number(row.rowKey.slice(1)),
    message,
    body: { type: row.bodyType, size: row.bodySize, sha256: row.bodySha256, location: row.bodyLocation },
    actor: row.actor,
    ...(row.reason ? { reason: row.reason } : {}),
    createdOn: new Date(row.createdOn),
  };
}

function matchesText(record: DeadLetterRecord, text: string): boolean {
  return [record.id, record.messageId, record.subject, record.correlationId, record.originalMessageId].some(
    (value) => value?.toLowerCase().includes(text) === true,
  );
}

function parseContinuation(text: string): { p: string; r: string } {
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as { p?: unknown; r?: unknown };
    if (typeof value.p === 'string' && typeof value.r === 'string') return { p: value.p, r: value.r };
  } catch {
    // reported below
  }
  throw new ValidationError('invalid continuation', ['continuation: the value a previous page answered']);
}

async function inParallel(work: Array<() => Promise<void>>, width: number): Promise<void> {
  let next = 0;
  let failure: unknown;
  const lane = async () => {
    while (next < work.length && failure === undefined) {
      const item = work[next++]!;
      try {
        await item();
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, work.length) }, lane));
  if (failure !== undefined)
    throw failure instanceof StampkeeperError ? failure : mapStorageError('dead-letter blobs', failure);
}
