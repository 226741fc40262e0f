/**
 * The one error hierarchy of stampkeeper.
 *
 * Every error carries a stable `code`, whether a retry may succeed (`retryable`), the underlying
 * `cause`, and `metadata` that is safe to log (never a secret value). Adapters translate SDK errors
 * into these types at the boundary; HTTP mapping happens in `src/lib/core/http.ts` only.
 */
export type ErrorMetadata = Record<string, string | number | boolean | undefined | null | string[]>;

export interface StampkeeperErrorOptions {
  retryable?: boolean;
  cause?: unknown;
  metadata?: ErrorMetadata;
}

export class StampkeeperError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly metadata: ErrorMetadata;
  /** The HTTP status this error maps to when it reaches an HTTP response. */
  readonly status: number = 500;

  constructor(code: string, message: string, options: StampkeeperErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.metadata = options.metadata ?? {};
  }
}

/** Input that does not satisfy its contract: a bad request body, a malformed event. Never retryable. */
export class ValidationError extends StampkeeperError {
  override readonly status = 400;
  readonly problems: string[];
  constructor(
    message: string,
    problems: string[] = [],
    options: Omit<StampkeeperErrorOptions, 'retryable'> = {},
  ) {
    super('ValidationFailed', message, { ...options, retryable: false });
    this.problems = problems;
  }
}

/** A setting or the policy file is wrong; start-up stops with this. */
export class ConfigurationError extends StampkeeperError {
  readonly problems: string[];
  constructor(
    message: string,
    problems: string[] = [],
    options: Omit<StampkeeperErrorOptions, 'retryable'> = {},
  ) {
    super('ConfigurationInvalid', message, { ...options, retryable: false });
    this.problems = problems;
  }
}

export class NotFoundError extends StampkeeperError {
  override readonly status = 404;
  constructor(message: string, options: Omit<StampkeeperErrorOptions, 'retryable'> = {}) {
    super('NotFound', message, { ...options, retryable: false });
  }
}

/** An ETag-conditional write lost the race (someone changed the row since it was read). Retryable. */
export class ConflictError extends StampkeeperError {
  override readonly status = 409;
  constructor(message: string, options: StampkeeperErrorOptions = {}) {
    super('Conflict', message, { retryable: true, ...options });
  }
}

/**
 * The work is being done by another attempt right now (a live claim or lease held by someone
 * else). Retryable: once that attempt finishes, a retry finds it done (or free, if it gave up).
 */
export class InProgressError extends StampkeeperError {
  override readonly status = 409;
  constructor(message: string, options: Omit<StampkeeperErrorOptions, 'retryable'> = {}) {
    super('InProgressElsewhere', message, { ...options, retryable: true });
  }
}

/** The work was already done and recorded (by this or another attempt): nothing to do, not an outage. */
export class AlreadyDoneError extends StampkeeperError {
  override readonly status = 409;
  constructor(message: string, options: Omit<StampkeeperErrorOptions, 'retryable'> = {}) {
    super('AlreadyDone', message, { ...options, retryable: false });
  }
}

/**
 * The work was done but recording it failed: the claim is kept (never released for a redo), and a
 * retry records it without doing the work again. Retryable.
 */
export class CompletionPendingError extends StampkeeperError {
  override readonly status = 503;
  constructor(message: string, options: Omit<StampkeeperErrorOptions, 'retryable'> = {}) {
    super('CompletionPending', message, { ...options, retryable: true });
  }
}

/** The caller may not do this (authorization, protected resource, policy forbids it). */
export class ForbiddenError extends StampkeeperError {
  override readonly status = 403;
  constructor(message: string, options: Omit<StampkeeperErrorOptions, 'retryable'> = {}) {
    super('Forbidden', message, { ...options, retryable: false });
  }
}

/** A remote dependency failed (Azure service, webhook). `retryable` says whether to try again. */
export class DependencyError extends StampkeeperError {
  override readonly status = 502;
  constructor(message: string, options: StampkeeperErrorOptions = {}) {
    super('DependencyFailed', message, options);
  }
}

/** A remote dependency throttled us or is temporarily unavailable. Always retryable. */
export class TransientError extends StampkeeperError {
  override readonly status = 503;
  constructor(message: string, options: Omit<StampkeeperErrorOptions, 'retryable'> = {}) {
    super('TransientFailure', message, { ...options, retryable: true });
  }
}

export function isStampkeeperError(error: unknown): error is StampkeeperError {
  return error instanceof StampkeeperError;
}

/**
 * Whether the host should retry after this error: only the project's errors that say so. Adapters
 * translate every SDK and network failure at the boundary, so anything else (a `TypeError`, a
 * `RangeError`, a library's own error) is a programming error that no retry mends: it is recorded
 * and settled once, not redelivered by Event Grid for 24 hours.
 */
export function isRetryable(error: unknown): boolean {
  return isStampkeeperError(error) ? error.retryable : false;
}
