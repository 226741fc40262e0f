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

/** The part of an HTTP request `readJsonObject` reads (the Functions `HttpRequest` has it). */
export interface JsonBodySource {
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/**
 * Reads a request body that must be a JSON object of at most `maxBytes` (an empty body is `{}`).
 * A declared length over the bound is refused before the body is read. Throws a `ValidationError`
 * (400) saying what is wrong.
 */
export async function readJsonObject(
  request: JsonBodySource,
  maxBytes: number,
): Promise<Record<string, unknown>> {
  const tooLarge = new ValidationError('The request body is too large', [
    `(body): larger than ${maxBytes} bytes`,
  ]);
  if (Number(request.headers.get('content-length') ?? '0') > maxBytes) throw tooLarge;
  const text = await request.text();
  if (Buffer.byteLength(text) > maxBytes) throw tooLarge;
  let value: unknown;
  try {
    value = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    throw new ValidationError('The request body is not valid JSON', ['(body): not valid JSON']);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ValidationError('The request body must be a JSON object', ['(body): expected an object']);
  return value as Record<string, unknown>;
}
