import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/lib/core/logging';
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
