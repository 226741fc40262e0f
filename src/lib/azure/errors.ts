import {
  DependencyError,
  type ErrorMetadata,
  ForbiddenError,
  NotFoundError,
  StampkeeperError,
  TransientError,
} from '../core/errors';
import { redactText } from '../core/redact';

interface RestErrorLike {
  name?: string;
  statusCode?: number;
  code?: string;
  message?: string;
  details?: { errorCode?: string; error?: { code?: string } };
}

/**
 * Translates an Azure SDK error into the project's error types at the adapter boundary. The SDK's
 * message is kept (redacted) as the cause; the new message says what was being done.
 */
export function fromAzureError(
  error: unknown,
  doing: string,
  metadata: ErrorMetadata = {},
): StampkeeperError {
  if (error instanceof StampkeeperError) return error;
  const e = (error ?? {}) as RestErrorLike;
  const status = e.statusCode;
  const code = e.code ?? e.details?.errorCode ?? e.details?.error?.code;
  const meta = { ...metadata, status: status ?? null, azureCode: code ?? null };
  const detail = e.message ? `: ${redactText(e.message).split('\n')[0]}` : '';
  if (e.name === 'AbortError')
    return new TransientError(`${doing} was aborted`, { cause: error, metadata: meta });
  if (status === 404)
    return new NotFoundError(`${doing}: not found${detail}`, { cause: error, metadata: meta });
  if (status === 401 || status === 403) {
    return new ForbiddenError(`${doing}: access denied (${status}${code ? ` ${code}` : ''})${detail}`, {
      cause: error,
      metadata: meta,
    });
  }
  if (status === 408 || status === 429 || (status !== undefined && status >= 500) || status === undefined) {
    return new TransientError(`${doing} failed${status ? ` with ${status}` : ''}${detail}`, {
      cause: error,
      metadata: meta,
    });
  }
  return new DependencyError(`${doing} failed with ${status}${code ? ` ${code}` : ''}${detail}`, {
    cause: error,
    metadata: meta,
    retryable: false,
  });
}
