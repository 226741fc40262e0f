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

/**
 * A logger writing one JSON line per entry through the invocation context (or the console),
 * redacting registered secret values and secret-looking keys on the way out.
 */
export function createLogger(sink: LogSink = console, base: LogFields = {}): Logger {
  const write = (level: LogLevel, message: string, fields?: LogFields) => {
    const entry = redact({ level, message: redactText(message), ...base, ...fields });
    sink[level](JSON.stringify(entry, jsonReplacer));
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
  if (value instanceof Error) return { name: value.name, message: value.message };
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

/** A loggable description of an error: name, code and redacted message (placeholder until the cause chain lands). */
export function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: redactText(String(error)) };
  const code = (error as { code?: unknown }).code;
  return {
    name: error.name,
    ...(typeof code === 'string' ? { code } : {}),
    message: redactText(error.message),
  };
}
