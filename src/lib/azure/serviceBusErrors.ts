import { isServiceBusError } from '@azure/service-bus';
import {
  ConflictError,
  DependencyError,
  type ErrorMetadata,
  ForbiddenError,
  InProgressError,
  NotFoundError,
  StampkeeperError,
  TransientError,
  ValidationError,
} from '../core/errors';
import { redactText } from '../core/redact';
import { isTransientTransportError } from './errors';

/** Longest part of an SDK message kept in ours. */
const MAX_DETAIL = 300;
/**
 * Socket errors the SDK reports inside its message (`ECONNREFUSED: connect ECONNREFUSED ...`) on
 * a `MessagingError` coded `GeneralError` and not marked retryable: the network's, so transient.
 */
const NETWORK_MESSAGE =
  /^(ECONNREFUSED|ECONNRESET|ECONNABORTED|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EPIPE|EHOSTUNREACH|ENETUNREACH|ENETDOWN)\b/;

/**
 * Translates an `@azure/service-bus` error into the project's errors at the adapter boundary, by
 * `ServiceBusError.code` (the SDK's `ServiceBusErrorCode`):
 *
 * | code | error |
 * | --- | --- |
 * | `ServiceBusy`, `ServiceTimeout`, `ServiceCommunicationProblem`, `QuotaExceeded` | `TransientError` (the entity may drain, the service recover) |
 * | `GeneralError` | `TransientError` when the SDK marks it `retryable` (an internal server error), else a non-retryable `DependencyError` (an argument the service refused) |
 * | `MessagingEntityNotFound`, `MessageNotFound` | `NotFoundError` |
 * | `MessageLockLost`, `SessionLockLost` | `ConflictError`, retryable: the message is delivered again, a retry receives it anew |
 * | `SessionCannotBeLocked` | `InProgressError`: another receiver holds the session |
 * | `MessagingEntityAlreadyExists` | `ConflictError`, not retryable (a rule of that name exists) |
 * | `MessageSizeExceeded` | `ValidationError`: the message is too large for the entity |
 * | `UnauthorizedAccess` | `ForbiddenError` |
 * | `MessagingEntityDisabled` | `DependencyError`, not retryable |
 *
 * A socket error (the SDK reports `ECONNREFUSED: ...` as a non-retryable `GeneralError`) is
 * transient. Without a Service Bus code: network failures and aborts are transient, anything
 * else a non-retryable `DependencyError`. Only the first line of the SDK's message is kept, redacted.
 */
export function fromServiceBusError(
  error: unknown,
  doing: string,
  metadata: ErrorMetadata = {},
): StampkeeperError {
  if (error instanceof StampkeeperError) return error;
  const message = (error as { message?: unknown } | undefined)?.message;
  const detail = detailOf(message);
  if (typeof message === 'string' && NETWORK_MESSAGE.test(message)) {
    return new TransientError(`${doing} failed: network error${detail}`, {
      cause: error,
      metadata: { ...metadata, serviceBusCode: (error as { code?: string }).code ?? null },
    });
  }
  if (isServiceBusError(error)) {
    const code = error.code;
    const options = { cause: error, metadata: { ...metadata, serviceBusCode: code } };
    switch (code) {
      case 'ServiceBusy':
      case 'ServiceTimeout':
      case 'ServiceCommunicationProblem':
      case 'QuotaExceeded':
        return new TransientError(`${doing} failed (${code})${detail}`, options);
      case 'MessagingEntityNotFound':
      case 'MessageNotFound':
        return new NotFoundError(`${doing}: not found (${code})${detail}`, options);
      case 'MessageLockLost':
      case 'SessionLockLost':
        return new ConflictError(`${doing}: the lock was lost (${code})${detail}`, {
          ...options,
          retryable: true,
        });
      case 'SessionCannotBeLocked':
        return new InProgressError(`${doing}: the session is locked by another receiver${detail}`, options);
      case 'MessagingEntityAlreadyExists':
        return new ConflictError(`${doing}: it already exists${detail}`, { ...options, retryable: false });
      case 'MessageSizeExceeded':
        return new ValidationError(
          `${doing}: the message is larger than the entity accepts${detail}`,
          [],
          options,
        );
      case 'UnauthorizedAccess':
        return new ForbiddenError(`${doing}: access denied${detail}`, options);
      case 'MessagingEntityDisabled':
        return new DependencyError(`${doing}: the entity is disabled${detail}`, {
          ...options,
          retryable: false,
        });
      default:
        return error.retryable
          ? new TransientError(`${doing} failed (${code})${detail}`, options)
          : new DependencyError(`${doing} failed (${code})${detail}`, { ...options, retryable: false });
    }
  }
  const options = { cause: error, metadata: { ...metadata, serviceBusCode: null } };
  const name = (error as { name?: unknown } | undefined)?.name;
  if (name === 'AbortError' || name === 'TimeoutError')
    return new TransientError(`${doing} was aborted or timed out`, options);
  if (isTransientTransportError(error))
    return new TransientError(`${doing} failed: network error${detail}`, options);
  return new DependencyError(`${doing} failed${detail}`, { ...options, retryable: false });
}

function detailOf(message: unknown): string {
  if (typeof message !== 'string' || message.trim() === '') return '';
  const line = redactText(message).split(/\r?\n/)[0]?.trim() ?? '';
  if (line === '') return '';
  return `: ${line.length > MAX_DETAIL ? `${line.slice(0, MAX_DETAIL)}...` : line}`;
}
