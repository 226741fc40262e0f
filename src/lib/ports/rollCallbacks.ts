/**
 * Where the completions of callback webhooks are kept (a consumer rolled by a pipeline that calls
 * the app back when it is done), as a port. One record per roll: the hash of the roll's callback
 * token (never the token), and what the callback reported. Every change is conditional on what
 * was read (ETag), so two callbacks racing for one roll record one report.
 */
export type RollCallbackStatus = 'Succeeded' | 'Failed';

export interface RollCallbackRecord {
  /** Derived from the run and the consumer: names the roll in the callback URL. */
  callbackId: string;
  /** SHA-256 (hex) of the roll's token. */
  tokenHash: string;
  /** `pending` until the callback arrives (once: a token is good for one report). */
  status: 'pending' | RollCallbackStatus;
  /** What the callback said (redacted, bounded), if anything. */
  reason?: string;
  registeredOn: Date;
  reportedOn?: Date;
  /** Retention removes the record after this (the token is worthless after the rotation's deadline). */
  expiresOn: Date;
  /** Concurrency token of the record as read. */
  etag?: string;
}

export interface RollCallbackCallOptions {
  abortSignal?: AbortSignal;
}

export interface RollCallbackStore {
  /**
   * Registers the roll's callback, pending, before the webhook is called. Replaces an earlier
   * registration of the same roll (a roll started again gets a new token; the old one stops working).
   */
  register(
    record: Omit<RollCallbackRecord, 'status' | 'reason' | 'reportedOn' | 'etag'>,
    options?: RollCallbackCallOptions,
  ): Promise<void>;
  /** The roll's record, or `undefined`. */
  get(callbackId: string, options?: RollCallbackCallOptions): Promise<RollCallbackRecord | undefined>;
  /**
   * Records the report on the record as read (its ETag). `false` when the record changed since
   * (another report, or a new registration): read it again and decide again.
   */
  report(
    record: RollCallbackRecord,
    report: { status: RollCallbackStatus; reason?: string; reportedOn: Date },
    options?: RollCallbackCallOptions,
  ): Promise<boolean>;
}
