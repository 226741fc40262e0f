import { afterEach, describe, expect, it } from 'vitest';
import { clearRegisteredSecrets, redact, redactText, registerSecret } from '../../../src/lib/core/redact';

describe('redact', () => {
  afterEach(() => clearRegisteredSecrets());

  it('replaces a registered secret value wherever it appears in text', () => {
    // Prepare
    registerSecret('s3cr3t-value-123');
    // Act
    const out = redactText('failed with s3cr3t-value-123 inside, twice: s3cr3t-value-123');
    // Assess
    expect(out).not.toContain('s3cr3t-value-123');
    expect(out).toContain('[REDACTED]');
  });

  it('masks secret-looking keys and connection-string fragments in structured data', () => {
    const out = redact({
      secretValue: 'plain',
      dimension: { name: 'Region', value: 'westeurope' },
      nested: { primaryMasterKey: 'abc', name: 'kept' },
      conn: 'Endpoint=sb://x/;SharedAccessKeyName=root;SharedAccessKey=zzzz==',
      url: 'https://x.blob.core.windows.net/c?sv=1&sig=abcdef',
    });
    expect(out.secretValue).toBe('[REDACTED]');
    expect(out.dimension).toEqual({ name: 'Region', value: 'westeurope' });
    expect(out.nested.primaryMasterKey).toBe('[REDACTED]');
    expect(out.nested.name).toBe('kept');
    expect(out.conn).not.toContain('zzzz');
    expect(out.url).not.toContain('abcdef');
  });
});
