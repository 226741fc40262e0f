import { afterEach, describe, expect, it } from 'vitest';
import { DependencyError } from '../../../src/lib/core/errors';
import {
  createLogger,
  describeError,
  type ErrorDescription,
  type LogSink,
} from '../../../src/lib/core/logging';
import { clearRegisteredSecrets, registerSecret } from '../../../src/lib/core/redact';

describe('createLogger', () => {
  afterEach(() => clearRegisteredSecrets());

  it('writes one JSON line with the base fields and never a registered secret value', () => {
    // Prepare
    const lines: string[] = [];
    const sink = {
      debug: () => {},
      info: (l: unknown) => lines.push(String(l)),
      warn: () => {},
      error: () => {},
    };
    registerSecret('hunter2-the-value');
    const logger = createLogger(sink, { operation: 'rotate' }).child({ runId: 'r-1' });
    // Act
    logger.info('got hunter2-the-value back', {
      target: 'kv/s',
      detail: { note: 'hunter2-the-value' },
      password: 'p',
    });
    // Assess
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({
      level: 'info',
      operation: 'rotate',
      runId: 'r-1',
      target: 'kv/s',
      password: '[REDACTED]',
    });
    expect(lines[0]).not.toContain('hunter2-the-value');
  });
});

describe('createLogger: names shown, values masked, errors with their stack and cause chain', () => {
  afterEach(() => clearRegisteredSecrets());

  const VALUE = 'Zx9-registered-secret-value-Qw7';
  const ACCOUNT_KEY = 'YWNjb3VudC1rZXktbm90LXRvLWxlYWs=';
  const CONNECTION = `DefaultEndpointsProtocol=https;AccountName=stprod;AccountKey=${ACCOUNT_KEY};EndpointSuffix=core.windows.net`;

  function capture(): { lines: string[]; sink: LogSink } {
    const lines: string[] = [];
    const push = (line: unknown) => lines.push(String(line));
    return { lines, sink: { debug: push, info: push, warn: push, error: push } };
  }

  it('shows the secret, vault and resource names and masks the values logged with them', () => {
    // Prepare
    const { lines, sink } = capture();
    registerSecret(VALUE);
    const logger = createLogger(sink, { operation: 'secret.nearExpiry' });

    // Act
    logger.info(`rotating db-password in kv-prod (was ${VALUE})`, {
      target: 'vaults/kv-prod/secrets/db-password',
      Secret: 'db-password',
      Vault: 'kv-prod',
      secretName: 'db-password',
      keyName: 'key1',
      idempotencyKey: 'secret.nearExpiry|kv-prod|db-password|v1',
      consumer: { app: 'orders-api', setting: CONNECTION },
    });

    // Assess
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toEqual({
      level: 'info',
      message: 'rotating db-password in kv-prod (was [REDACTED])',
      operation: 'secret.nearExpiry',
      target: 'vaults/kv-prod/secrets/db-password',
      Secret: 'db-password',
      Vault: 'kv-prod',
      secretName: 'db-password',
      keyName: 'key1',
      idempotencyKey: 'secret.nearExpiry|kv-prod|db-password|v1',
      consumer: {
        app: 'orders-api',
        setting:
          'DefaultEndpointsProtocol=https;AccountName=stprod;AccountKey=[REDACTED];EndpointSuffix=core.windows.net',
      },
    });
  });

  it('writes an Error as name, message, code, stack and the whole cause chain, all redacted', () => {
    // Prepare
    const { lines, sink } = capture();
    registerSecret(VALUE);
    const root = new Error(`storage answered 403 for ${CONNECTION}`);
    const parse = new TypeError(`cannot parse ${VALUE}`, { cause: root });
    const error = new DependencyError('publishing to ops-topic failed', {
      cause: parse,
      metadata: { channel: 'ops-topic', secretName: 'db-password' },
    });

    // Act
    createLogger(sink).error('notification failed', { target: 'vaults/kv-prod/secrets/db-password', error });

    // Assess
    const entry = JSON.parse(lines[0]!);
    expect(entry.error).toMatchObject({
      name: 'DependencyError',
      message: 'publishing to ops-topic failed',
      code: 'DependencyFailed',
      retryable: false,
      metadata: { channel: 'ops-topic', secretName: 'db-password' },
      cause: {
        name: 'TypeError',
        message: 'cannot parse [REDACTED]',
        cause: {
          name: 'Error',
          message:
            'storage answered 403 for DefaultEndpointsProtocol=https;AccountName=stprod;AccountKey=[REDACTED];EndpointSuffix=core.windows.net',
        },
      },
    });
    expect(entry.error.stack).toMatch(/^DependencyError: publishing to ops-topic failed\n\s+at /);
    expect(entry.error.cause.stack).toMatch(/^TypeError: cannot parse \[REDACTED\]\n\s+at /);
    expect(entry.error.cause.cause.stack).toContain('AccountName=stprod;AccountKey=[REDACTED]');
    expect(lines[0]).not.toContain(VALUE);
    expect(lines[0]).not.toContain(ACCOUNT_KEY);
  });
});

describe('describeError', () => {
  afterEach(() => clearRegisteredSecrets());

  it('bounds the cause chain at 5 causes and stops on a cycle', () => {
    // Prepare
    let deep: Error = new Error('level 9');
    for (let level = 8; level >= 0; level--) deep = new Error(`level ${level}`, { cause: deep });
    const cyclic = new Error('cyclic') as Error & { cause?: unknown };
    cyclic.cause = cyclic;

    // Act
    const long = describeError(deep);
    const cycle = describeError(cyclic);

    // Assess
    const chain: string[] = [];
    let at: ErrorDescription | undefined = long;
    while (at) {
      chain.push(at.message);
      if (!at.cause) expect(at.truncated).toBe(true);
      at = at.cause;
    }
    expect(chain).toEqual(['level 0', 'level 1', 'level 2', 'level 3', 'level 4', 'level 5']);
    expect(cycle).toMatchObject({ name: 'Error', message: 'cyclic', truncated: true });
    expect(cycle.cause).toBeUndefined();
  });

  it('describes thrown non-errors, Node system errors and AggregateErrors, redacted', () => {
    // Prepare
    registerSecret('thrown-secret-value');
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), { code: 'ECONNREFUSED' });
    const aggregate = new AggregateError([refused, 'thrown-secret-value'], 'every channel failed');

    // Act
    const text = describeError('thrown-secret-value was thrown');
    const object = describeError({ password: 'p@ss-word-1', vault: 'kv-prod' });
    const many = describeError(aggregate);

    // Assess
    expect(text).toEqual({ name: 'string', message: '[REDACTED] was thrown' });
    expect(object).toEqual({ name: 'object', message: '{"password":"[REDACTED]","vault":"kv-prod"}' });
    expect(many).toMatchObject({
      name: 'AggregateError',
      message: 'every channel failed',
      errors: [
        { name: 'Error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:443' },
        { name: 'string', message: '[REDACTED]' },
      ],
    });
  });
});
