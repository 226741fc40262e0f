import { RestError } from '@azure/core-rest-pipeline';
import { describe, expect, it } from 'vitest';
import { fromAzureError, isTransientTransportError } from '../../../src/lib/azure/errors';
import {
  ConflictError,
  DependencyError,
  ForbiddenError,
  NotFoundError,
  TransientError,
} from '../../../src/lib/core/errors';
import { registerSecret } from '../../../src/lib/core/redact';

const DOING = 'reading secret db-password in kv-test.vault.azure.net';

function restError(
  statusCode: number | undefined,
  code?: string,
  message = 'the service said no',
): RestError {
  return new RestError(message, { statusCode, code });
}

describe('fromAzureError: statuses', () => {
  it.each([
    [404, 'SecretNotFound', NotFoundError, false],
    [401, 'Unauthorized', ForbiddenError, false],
    [403, 'Forbidden', ForbiddenError, false],
    [408, undefined, TransientError, true],
    [429, 'TooManyRequests', TransientError, true],
    [500, 'InternalServerError', TransientError, true],
    [503, 'ServiceUnavailable', TransientError, true],
    [400, 'BadParameter', DependencyError, false],
    [409, 'Conflict', DependencyError, false],
  ] as const)('maps %i %s to %o (retryable: %s)', (status, code, type, retryable) => {
    // Prepare
    const error = restError(status, code);

    // Act
    const mapped = fromAzureError(error, DOING, { target: 'db-password' });

    // Assess
    expect(mapped).toBeInstanceOf(type);
    expect(mapped.retryable).toBe(retryable);
    expect(mapped.message.startsWith(DOING)).toBe(true);
    expect(mapped.cause).toBe(error);
    expect(mapped.metadata).toMatchObject({ target: 'db-password', status, azureCode: code ?? null });
  });

  it('names the status and the service code of a non-retryable answer', () => {
    // Prepare
    const error = restError(400, 'BadParameter', 'Property value is required.');

    // Act
    const mapped = fromAzureError(error, DOING);

    // Assess
    expect(mapped.message).toBe(`${DOING} failed with 400 BadParameter: Property value is required.`);
  });
});

describe('fromAzureError: failures without a status', () => {
  it.each([
    RestError.REQUEST_SEND_ERROR,
    'ECONNRESET',
    'ECONNREFUSED',
    'ETIMEDOUT',
    'ENOTFOUND',
    'EAI_AGAIN',
    'ESOCKETTIMEDOUT',
  ])('maps the network code %s to a retryable TransientError', (code) => {
    // Prepare
    const error = restError(undefined, code, `connect ${code} 10.0.0.1:443`);

    // Act
    const mapped = fromAzureError(error, DOING);

    // Assess
    expect(mapped).toBeInstanceOf(TransientError);
    expect(mapped.retryable).toBe(true);
    expect(mapped.message).toContain(`network error ${code}`);
    expect(mapped.metadata).toMatchObject({ status: null, azureCode: code });
  });

  it('maps a fetch failure whose cause carries a network code to a TransientError', () => {
    // Prepare
    const error = new TypeError('fetch failed', {
      cause: Object.assign(new Error('socket'), { code: 'ECONNRESET' }),
    });

    // Act
    const mapped = fromAzureError(error, DOING);

    // Assess
    expect(mapped).toBeInstanceOf(TransientError);
    expect(mapped.metadata.azureCode).toBe('ECONNRESET');
  });

  it.each([
    ['AbortError', new DOMException('The operation was aborted.', 'AbortError')],
    ['TimeoutError', new DOMException('The operation timed out.', 'TimeoutError')],
    [
      'an SDK AbortError',
      Object.assign(new Error('Rejecting from abort signal callback'), { name: 'AbortError' }),
    ],
  ])('maps %s to a retryable TransientError', (_name, error) => {
    // Act
    const mapped = fromAzureError(error, DOING);

    // Assess
    expect(mapped).toBeInstanceOf(TransientError);
    expect(mapped.retryable).toBe(true);
    expect(mapped.message).toBe(`${DOING} was aborted or timed out`);
  });

  it('maps a programming TypeError to a non-retryable DependencyError', () => {
    // Prepare
    const error = new TypeError("Cannot read properties of undefined (reading 'value')");

    // Act
    const mapped = fromAzureError(error, DOING);

    // Assess
    expect(mapped).toBeInstanceOf(DependencyError);
    expect(mapped.retryable).toBe(false);
    expect(mapped.message).toBe(`${DOING} failed: Cannot read properties of undefined (reading 'value')`);
  });

  it.each([
    [
      'a RestError that failed to parse the answer',
      restError(undefined, RestError.PARSE_ERROR, 'Unexpected token <'),
    ],
    ['an unknown code', restError(undefined, 'ERR_TLS_CERT_ALTNAME_INVALID', 'bad certificate')],
    ['a thrown string', 'something odd'],
    ['undefined', undefined],
  ])('maps %s to a non-retryable DependencyError', (_name, error) => {
    // Act
    const mapped = fromAzureError(error, DOING);

    // Assess
    expect(mapped).toBeInstanceOf(DependencyError);
    expect(mapped.retryable).toBe(false);
  });

  it('keeps a project error as it is', () => {
    // Prepare
    const error = new ConflictError('etag mismatch');

    // Act
    const mapped = fromAzureError(error, DOING);

    // Assess
    expect(mapped).toBe(error);
  });

  it('tells transport failures from other status-less errors', () => {
    // Act
    const verdicts = [
      isTransientTransportError(restError(undefined, 'ECONNREFUSED')),
      isTransientTransportError(new DOMException('aborted', 'AbortError')),
      isTransientTransportError(new TypeError('x is not a function')),
      isTransientTransportError(
        new Error('Cannot connect to http://x while allowInsecureConnection is false.'),
      ),
      isTransientTransportError(null),
    ];

    // Assess
    expect(verdicts).toEqual([true, true, false, false, false]);
  });
});

describe('fromAzureError: secrets in the SDK message', () => {
  it('redacts a registered secret value quoted by the SDK message', () => {
    // Prepare
    const secret = 'Quoted-Secret-Value-7f3a91';
    registerSecret(secret);
    const error = restError(400, 'BadParameter', `The value '${secret}' is not valid.`);

    // Act
    const mapped = fromAzureError(error, DOING);

    // Assess
    expect(mapped.message).not.toContain(secret);
    expect(mapped.message).toContain('[REDACTED]');
    expect(JSON.stringify(mapped)).not.toContain(secret);
  });

  it('redacts a signature quoted in a network error, and keeps only the first line', () => {
    // Prepare
    const error = restError(
      undefined,
      'ENOTFOUND',
      'getaddrinfo ENOTFOUND hooks.example.com?sig=SECRETSIG123\nrequest body: {"value":"line-two-secret"}',
    );

    // Act
    const mapped = fromAzureError(error, DOING);

    // Assess
    expect(mapped).toBeInstanceOf(TransientError);
    expect(mapped.message).not.toContain('SECRETSIG123');
    expect(mapped.message).not.toContain('line-two-secret');
    expect(mapped.message).not.toContain('\n');
  });

  it('cuts a very long SDK message short', () => {
    // Prepare
    const error = restError(500, 'InternalServerError', 'x'.repeat(5000));

    // Act
    const mapped = fromAzureError(error, DOING);

    // Assess
    expect(mapped.message.length).toBeLessThan(DOING.length + 400);
  });
});
