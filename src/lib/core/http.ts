import { isStampkeeperError, ValidationError } from './errors';
import type { Logger } from './logging';
import { redactText } from './redact';

/** The JSON error body every HTTP endpoint answers with. Never a stack trace, never a secret. */
export interface ErrorBody {
  error: { code: string; message: string; problems?: string[] };
  correlationId: string;
}

export interface HttpResult {
  status: number;
  jsonBody: unknown;
  headers: Record<string, string>;
}

/**
 * Maps any error to an HTTP response: the project's errors keep their status and code, anything
 * else is a 500 with a generic message (the detail goes to the log, redacted).
 */
export function errorResponse(error: unknown, correlationId: string, logger?: Logger): HttpResult {
  const headers = { 'x-correlation-id': correlationId, 'content-type': 'application/json' };
  if (isStampkeeperError(error)) {
    if (error.status >= 500)
      logger?.error('request failed', { correlationId, code: error.code, error: error.message });
    const body: ErrorBody = {
      error: {
        code: error.code,
        message: redactText(error.message),
        ...(error instanceof ValidationError && error.problems.length > 0
          ? { problems: error.problems.map(redactText) }
          : {}),
      },
      correlationId,
    };
    if (error.retryable) (headers as Record<string, string>)['retry-after'] = '5';
    return { status: error.status, jsonBody: body, headers };
  }
  logger?.error('unexpected error', {
    correlationId,
    error: error instanceof Error ? error.message : String(error),
  });
  return {
    status: 500,
    jsonBody: { error: { code: 'InternalError', message: 'an unexpected error occurred' }, correlationId },
    headers,
  };
}

/** A JSON success response carrying the correlation id. */
export function jsonResponse(status: number, body: unknown, correlationId: string): HttpResult {
  return {
    status,
    jsonBody: body,
    headers: { 'x-correlation-id': correlationId, 'content-type': 'application/json' },
  };
}
