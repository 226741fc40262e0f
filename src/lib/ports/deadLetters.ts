/**
 * The dead-letter archive, as a port: every dead-lettered message kept durably with its body and
 * every property, its triage (counts per entity, reason and hour; the alert window), its edits as
 * revisions (the original is never changed) and its replays. Sequence numbers are decimal strings.
 */
import type { ApplicationPropertyValue, BusMessageBody } from './messageBus';

/**
 * Where an archived message stands:
 * - `parked`: waiting for a person (no automatic replay applies);
 * - `replaying`: a replay attempt was recorded and its send may or may not have happened (a retry
 *   sends it again under the same message id);
 * - `replayed`: the replay was sent (or scheduled, for automatic replays: `replay.scheduledFor`);
 * - `discarded`: a person discarded it, with a reason.
 */
export type DeadLetterState = 'parked' | 'replaying' | 'replayed' | 'discarded';
export const DEAD_LETTER_STATES: readonly DeadLetterState[] = [
  'parked',
  'replaying',
  'replayed',
  'discarded',
];

/** What kind of failure a dead-letter reason says (the system reasons of Service Bus, else the application's). */
export type ReasonClass =
  | 'delivery-exhausted'
  | 'expired'
  | 'header-size'
  | 'session-missing'
  | 'hop-count'
  | 'application'
  | 'unknown';

/** How an arrival was classified, and what was decided for it. */
export interface DeadLetterClassification {
  reasonClass: ReasonClass;
  /** The message's type: its subject, else a `MessageType` / `type` property, else its content type. */
  messageType: string;
  /** `auto-replay` (a replay rule matched), or `park` (a person decides). */
  decision: 'auto-replay' | 'park';
  /** Why, in words (the rule that matched, or why none applies). */
  why: string;
  /** Index of the replay rule that matched. */
  rule?: number;
}

/** One replay of an archived message (the last attempt is kept on the record; every attempt is audited). */
export interface ReplayAttempt {
  /** 1 for the first replay of this archived message. */
  attempt: number;
  /** Deterministic per attempt: a retried send is the same message, a new attempt a new one. */
  messageId: string;
  /** Where it was sent: a queue or topic path. */
  target: string;
  /** A topic replay meant for one subscription carries it in `StampkeeperReplayTo`. */
  replayTo?: string;
  revision: number;
  status: 'sending' | 'sent';
  /** The archive's clock when the attempt was recorded, and when it was sent. */
  requestedOn: Date;
  sentOn?: Date;
  /** Automatic replays are scheduled messages. */
  scheduledFor?: Date;
  actor: string;
  /** The bulk replay run it belongs to. */
  runId?: string;
}

/** The message as it arrived in the dead-letter queue, every system and application property. */
export interface DeadLetterMessage {
  messageId: string;
  sequenceNumber: string;
  enqueuedTime: Date;
  expiresAt?: Date;
  timeToLiveMs?: number;
  /** Attempts before it was dead-lettered, as the AMQP header counts them (the JS SDK's `deliveryCount`). */
  deliveryCount: number;
  contentType?: string;
  correlationId?: string;
  sessionId?: string;
  replyToSessionId?: string;
  subject?: string;
  to?: string;
  replyTo?: string;
  partitionKey?: string;
  applicationProperties: Record<string, ApplicationPropertyValue>;
  deadLetterReason?: string;
  deadLetterErrorDescription?: string;
  deadLetterSource?: string;
}

/** What the archive keeps about a body (the bytes are read with `body()`). */
export interface StoredBody {
  type: BusMessageBody['type'];
  /** Bytes of a data body; the JSON length of a value or sequence body. */
  size: number;
  sha256: string;
  /** Where it lives: inline in the table row, or a blob (large bodies). */
  location: 'table' | 'blob';
}

/** An archived dead letter. */
export interface DeadLetterRecord extends DeadLetterMessage {
  /** `{entity}.{sequenceNumber}.{fingerprint}`: stable, readable, unique per message. */
  id: string;
  /** The policy entity's name. */
  entity: string;
  /** The Service Bus path it was dead-lettered from (`orders`, `events/Subscriptions/billing`). */
  path: string;
  /**
   * When the app took it from the dead-letter queue. Service Bus stamps no time on dead-lettering:
   * the arrival is the closest the archive can say.
   */
  deadLetteredAt: Date;
  body: StoredBody;
  classification: DeadLetterClassification;
  /** Replays of the original message before it dead-lettered this time (`StampkeeperReplayCount`). */
  replayCount: number;
  /** The id of the first message of its lineage (`StampkeeperOriginalMessageId`, else its own). */
  originalMessageId: string;
  state: DeadLetterState;
  /** Why it is in that state (a discard's reason, a park's cause). */
  stateReason?: string;
  /** Revisions made by people (0: the original only). */
  revisions: number;
  /** Replays made from the archive. */
  replays: number;
  lastReplay?: ReplayAttempt;
  updatedOn: Date;
  etag: string;
}

/** An arrival to archive: the message, its body, and what triage decided. */
export interface NewDeadLetter {
  /** The Service Bus path it was dead-lettered from. */
  path: string;
  message: DeadLetterMessage;
  body: BusMessageBody;
  classification: DeadLetterClassification;
  replayCount: number;
  originalMessageId: string;
  deadLetteredAt: Date;
  /** An automatic replay decided at arrival: the record is created `replaying` with this attempt. */
  replay?: ReplayAttempt;
}

/** What the archive did with a batch of arrivals. */
export interface ArchiveResult {
  /** Newly archived (counted in their hour and in the alert window). */
  created: DeadLetterRecord[];
  /** Archived before (a redelivery): not counted again. */
  existing: DeadLetterRecord[];
  /**
   * Arrivals whose id is taken by another message (same sequence number and fingerprint prefix but
   * another message id or enqueued time): not archived; the caller must not complete them.
   */
  conflicts: Array<{ id: string; messageId: string; problem: string }>;
}

/** A revision: what a person changed, over the previous revision. */
export interface RevisionChange {
  body?: BusMessageBody;
  contentType?: string | null;
  correlationId?: string | null;
  subject?: string | null;
  sessionId?: string | null;
  timeToLiveMs?: number | null;
  /** Properties to set; `null` removes one. */
  applicationProperties?: Record<string, ApplicationPropertyValue>;
}

/** The message as one revision has it (revision 0: the original). */
export interface MessageRevision {
  revision: number;
  message: DeadLetterMessage;
  body: StoredBody;
  actor?: string;
  reason?: string;
  createdOn: Date;
}

/** A filter over the archive (every field optional; all given ones must match). */
export interface DeadLetterFilter {
  entity?: string;
  reason?: string;
  /** `deadLetteredAt` from (inclusive) / to (exclusive). */
  from?: Date;
  to?: Date;
  /** Case-insensitive text in the subject, the message id, the correlation id or the archive id. */
  q?: string;
  state?: DeadLetterState;
}

export interface DeadLetterPage {
  records: DeadLetterRecord[];
  /** Opaque; absent when the listing is complete. */
  continuation?: string;
  /** Rows looked at for this page (the text filter is applied after reading). */
  scanned: number;
}

/** The counter of one (entity, hour, reason) bucket. */
export interface DeadLetterCount {
  entity: string;
  /** Start of the UTC hour, ISO. */
  hour: string;
  reason: string;
  reasonClass: ReasonClass;
  count: number;
}

/** An entity's alert window: what arrived since its last alert. */
export interface AlertWindow {
  entity: string;
  /** When the last alert was sent (undefined: never). */
  lastAlertOn?: Date;
  /** Arrivals since then, per reason. */
  pending: { total: number; byReason: Record<string, number>; since?: Date };
  /** An alert claimed (its counts taken) and not yet recorded as sent: a retry sends it. */
  claimed?: { id: string; on: Date; total: number; byReason: Record<string, number>; since: Date };
  etag?: string;
}

/** A replay step to record on a record (conditional on the record's etag). */
export interface ReplayMark {
  record: DeadLetterRecord;
  attempt: ReplayAttempt;
}

export interface CallOptions {
  abortSignal?: AbortSignal;
}

export interface DeadLetterArchive {
  /**
   * Archives arrivals of one entity, idempotently: an arrival archived before is returned as
   * `existing` and not counted again. New records, their hour counters and the entity's alert
   * window are written in entity-group transactions (one partition per entity), so a count is
   * never separated from its record. Large bodies go to blob storage first.
   */
  archive(entity: string, arrivals: NewDeadLetter[], options?: CallOptions): Promise<ArchiveResult>;
  get(id: string, options?: CallOptions): Promise<DeadLetterRecord | undefined>;
  /** The bytes of a revision's body (0: the original). */
  body(record: DeadLetterRecord, revision?: number, options?: CallOptions): Promise<BusMessageBody>;
  /** Every revision's message (0 first). */
  revisions(record: DeadLetterRecord, options?: CallOptions): Promise<MessageRevision[]>;
  /** One revision's message and body. */
  revision(
    record: DeadLetterRecord,
    revision: number,
    options?: CallOptions,
  ): Promise<{ revision: MessageRevision; body: BusMessageBody }>;
  /** Adds a revision (conditional on the record's etag): the new revision's number. */
  addRevision(
    record: DeadLetterRecord,
    change: RevisionChange,
    by: { actor: string; reason?: string; now: Date },
    options?: CallOptions,
  ): Promise<{ record: DeadLetterRecord; revision: number }>;
  /**
   * Records replay attempts of records of one entity and the state they put them in (`sending`:
   * `replaying`, `sent`: `replayed`), each conditional on its record's etag, in transactions of up
   * to 100. A record changed since it was read fails the call with a `ConflictError`.
   */
  markReplays(marks: ReplayMark[], options?: CallOptions): Promise<DeadLetterRecord[]>;
  /** Changes a record's state (discard, park), conditional on its etag. */
  setState(
    record: DeadLetterRecord,
    state: DeadLetterState,
    reason: string,
    now: Date,
    options?: CallOptions,
  ): Promise<DeadLetterRecord>;
  /** A page of records matching the filter, in entity then sequence order. */
  list(
    filter: DeadLetterFilter,
    page: { limit: number; continuation?: string; maxScan?: number },
    options?: CallOptions,
  ): Promise<DeadLetterPage>;
  /** Deletes records (their revisions and blobs too); the number deleted. */
  remove(records: DeadLetterRecord[], options?: CallOptions): Promise<number>;
  /** Hour counters of an entity (or every entity) in a window. */
  counts(
    query: { entity?: string; since: Date; until: Date },
    options?: CallOptions,
  ): Promise<DeadLetterCount[]>;
  alertWindow(entity: string, options?: CallOptions): Promise<AlertWindow>;
  /**
   * Claims the pending counts of an entity's alert window for one alert (conditional on the
   * window's etag): `undefined` when someone else changed it first.
   */
  claimAlert(
    window: AlertWindow,
    id: string,
    now: Date,
    options?: CallOptions,
  ): Promise<AlertWindow | undefined>;
  /** Records the claimed alert as sent. */
  alertSent(window: AlertWindow, now: Date, options?: CallOptions): Promise<void>;
}
