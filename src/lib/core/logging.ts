import { redact, redactText } from './redact';

/** Structured log fields. `operation`, `runId` and `target` are the ones every log line should carry. */
export interface LogFields {
  operation?: string;
  runId?: string;
  target?: string;
  correlationId?: string;
  [key: string]: unknown;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** The logging port: what use cases and adapters log through. Never pass a secret value. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/** The part of an `InvocationContext` we log through (kept structural so tests need no host). */
export interface LogSink {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** An error as it is logged: everything redacted, the cause chain nested under `cause`. */
export interface ErrorDescription {
  name: string;
  message: string;
  /** The error's `code` (ours, an SDK's, or Node's `ECONNREFUSED`...), when it has one. */
  code?: string | number;
  /** Whether a retry may succeed, when the error says so (project errors). */
  retryable?: boolean;
  /** The HTTP status of an SDK error, when it has one. */
  status?: number;
  /** The project error's non-sensitive metadata (redacted all the same). */
  metadata?: unknown;
  stack?: string;
  cause?: ErrorDescription;
  /** The errors of an `AggregateError` (the first few). */
  errors?: ErrorDescription[];
  /** Set on the deepest description when the chain went on beyond the bound. */
  truncated?: true;
}

/** How many causes below the error are described; a longer (or cyclic) chain is cut with `truncated`. */
const MAX_CAUSE_DEPTH = 5;
const MAX_AGGREGATED = 5;
const MAX_STACK_CHARS = 8_000;
const MAX_MESSAGE_CHARS = 4_000;

/**
 * Describes a thrown value for a log line: `{ name, message, code, stack, cause: {...} }` with the
 * stack and the cause chain (up to 5 causes below the error), every message and stack redacted
 * (registered values and credential fragments masked; SDK request / response objects hanging off
 * an error are not copied). Anything thrown is accepted, not only `Error`s.
 */
export function describeError(error: unknown): ErrorDescription {
  return describe(error, 0, new Set());
}

function describe(error: unknown, depth: number, seen: Set<unknown>): ErrorDescription {
  if (!isErrorLike(error)) {
    return { name: error === null ? 'null' : typeof error, message: bounded(redactText(stringOf(error))) };
  }
  seen.add(error);
  const e = error as Error & {
    code?: unknown;
    retryable?: unknown;
    status?: unknown;
    statusCode?: unknown;
    metadata?: unknown;
    errors?: unknown;
  };
  const out: ErrorDescription = {
    name: redactText(String(e.name ?? 'Error')),
    message: bounded(redactText(String(e.message ?? ''))),
  };
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = redactCode(e.code);
  if (typeof e.retryable === 'boolean') out.retryable = e.retryable;
  const status = typeof e.statusCode === 'number' ? e.statusCode : e.status;
  if (typeof status === 'number') out.status = status;
  if (e.metadata !== undefined && typeof e.metadata === 'object') out.metadata = redact(e.metadata);
  if (typeof e.stack === 'string') {
    const stack = redactText(e.stack);
    out.stack = stack.length > MAX_STACK_CHARS ? `${stack.slice(0, MAX_STACK_CHARS)}...` : stack;
  }
  const below = [
    ...(e.cause !== undefined ? [e.cause] : []),
    ...(Array.isArray(e.errors) ? e.errors.slice(0, MAX_AGGREGATED) : []),
  ];
  if (below.length > 0 && (depth >= MAX_CAUSE_DEPTH || below.some((b) => seen.has(b)))) {
    out.truncated = true;
    return out;
  }
  if (e.cause !== undefined) out.cause = describe(e.cause, depth + 1, seen);
  if (Array.isArray(e.errors))
    out.errors = e.errors.slice(0, MAX_AGGREGATED).map((inner) => describe(inner, depth + 1, seen));
  return out;
}

function isErrorLike(value: unknown): value is Error {
  if (value instanceof Error) return true;
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { message?: unknown }).message === 'string' &&
    (typeof (value as { name?: unknown }).name === 'string' ||
      typeof (value as { stack?: unknown }).stack === 'string')
  );
}

function redactCode(code: string | number): string | number {
  return typeof code === 'number' ? code : redactText(code);
}

function stringOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(redact(value), jsonReplacer) ?? String(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return String(value);
}

function bounded(text: string): string {
  return text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}...` : text;
}

/** Replaces every `Error` in log fields (at any depth) by its description, before redaction. */
function withErrorsDescribed(value: unknown, ancestors: Set<object>): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return describeError(value);
  if (value instanceof Date || ArrayBuffer.isView(value) || ancestors.has(value)) return value;
  ancestors.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => withErrorsDescribed(item, ancestors));
    if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null)
      return value;
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) out[key] = withErrorsDescribed(inner, ancestors);
    return out;
  } finally {
    ancestors.delete(value);
  }
}

/**
 * A logger writing one JSON line per entry through the invocation context (or the console). On
 * the way out every value is redacted (registered secret values, credential fragments, credential
 * fields) and every name is kept; an `Error` in the fields is written as `describeError` gives it
 * (stack and cause chain, redacted). Logging never throws.
 */
export function createLogger(sink: LogSink = console, base: LogFields = {}): Logger {
  const write = (level: LogLevel, message: string, fields?: LogFields) => {
    let line: string;
    try {
      const entry = redact(withErrorsDescribed({ level, message, ...base, ...fields }, new Set()));
      line = JSON.stringify(entry, jsonReplacer);
    } catch {
      line = JSON.stringify({
        level,
        message: redactText(String(message)),
        logError: 'fields could not be written',
      });
    }
    sink[level](line);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger(sink, { ...base, ...fields }),
  };
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** A logger that drops everything (for code paths that must not log). */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
