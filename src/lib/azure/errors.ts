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
  cause?: unknown;
  details?: { errorCode?: string; error?: { code?: string } };
}

/**
 * Codes of a request that never got an answer. `@azure/core-rest-pipeline`'s node client rejects
 * with a `RestError` whose `code` is the socket error's (`ECONNREFUSED`...) or, when the socket
 * error has none, `RestError.REQUEST_SEND_ERROR` (`'REQUEST_SEND_ERROR'`, spelled out here so that
 * this module does not load the SDK: see `src/lib/app/deps.ts`).
 */
const NETWORK_CODES = new Set<string>([
  'REQUEST_SEND_ERROR',
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/** Longest part of an SDK message kept in ours: enough to diagnose, too short to carry a payload. */
const MAX_DETAIL = 300;

/**
 * Whether a failure without an HTTP status is the network's (connection refused / reset, DNS,
 * socket timeout) or an abort (the SDK's request timeout aborts the request): a retry may succeed.
 * Anything else without a status (a `TypeError`, a bug, a refused insecure URL) is not transient.
 */
export function isTransientTransportError(error: unknown): boolean {
  const e = (error ?? {}) as RestErrorLike;
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return true;
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  // Node's fetch (undici) wraps the socket error: `TypeError: fetch failed` with the code on `cause`.
  const cause = (e.cause ?? {}) as RestErrorLike;
  return typeof cause.code === 'string' && NETWORK_CODES.has(cause.code);
}

/**
 * Translates an Azure SDK error into the project's error types at the adapter boundary:
 * 404 -> `NotFoundError`; 401 / 403 -> `ForbiddenError`; 408 / 429 / 5xx -> `TransientError`
 * (retryable); other statuses -> non-retryable `DependencyError`. Without a status: network errors
 * and aborts / timeouts -> `TransientError`, anything else -> non-retryable `DependencyError`.
 * The new message says what was being done; only the first line of the SDK's message is kept,
 * redacted and shortened, and the original error is the (non-enumerable) `cause`.
 */
export function fromAzureError(
  error: unknown,
  doing: string,
  metadata: ErrorMetadata = {},
): StampkeeperError {
  if (error instanceof StampkeeperError) return error;
  const e = (error ?? {}) as RestErrorLike;
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const code = e.code ?? e.details?.errorCode ?? e.details?.error?.code;
  const meta = { ...metadata, status: status ?? null, azureCode: code ?? null };
  const detail = detailOf(e.message);
  const options = { cause: error, metadata: meta };

  if (status === undefined) {
    if (e.name === 'AbortError' || e.name === 'TimeoutError')
      return new TransientError(`${doing} was aborted or timed out`, options);
    if (isTransientTransportError(error)) {
      const networkCode = code ?? (e.cause as RestErrorLike | undefined)?.code;
      return new TransientError(
        `${doing} failed: network error${networkCode ? ` ${networkCode}` : ''}${detail}`,
        {
          ...options,
          metadata: { ...meta, azureCode: networkCode ?? null },
        },
      );
    }
    return new DependencyError(`${doing} failed${code ? ` (${code})` : ''}${detail}`, {
      ...options,
      retryable: false,
    });
  }
  if (status === 404) return new NotFoundError(`${doing}: not found${detail}`, options);
  if (status === 401 || status === 403) {
    return new ForbiddenError(
      `${doing}: access denied (${status}${code ? ` ${code}` : ''})${detail}`,
      options,
    );
  }
  if (status === 408 || status === 429 || status >= 500)
    return new TransientError(`${doing} failed with ${status}${detail}`, options);
  return new DependencyError(`${doing} failed with ${status}${code ? ` ${code}` : ''}${detail}`, {
    ...options,
    retryable: false,
  });
}

/** `: <first line of the SDK message>`, redacted before it is cut so a secret is never half kept. */
function detailOf(message: unknown): string {
  if (typeof message !== 'string' || message.trim() === '') return '';
  const line = redactText(message).split(/\r?\n/)[0]?.trim() ?? '';
  if (line === '') return '';
  return `: ${line.length > MAX_DETAIL ? `${line.slice(0, MAX_DETAIL)}...` : line}`;
}
