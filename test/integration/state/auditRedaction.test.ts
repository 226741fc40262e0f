import { afterEach, describe, expect, it } from 'vitest';
import { clearRegisteredSecrets, registerSecret } from '../../../src/lib/core/redact';
import { freshStores, TestClock } from './helpers';

describe('TableAuditLog redaction keeps names', () => {
  afterEach(() => clearRegisteredSecrets());

  it('stores the secret, vault and key names of before / after and masks only the values', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T12:00:00.000Z'));
    const { audit } = await freshStores(clock);
    const value = 'Pa55-audit-registered-value';
    registerSecret(value);

    // Act
    await audit.append({
      id: 'rec-names',
      time: new Date('2026-11-27T10:00:00.000Z'),
      actor: 'system:eventgrid',
      action: 'secret.nearExpiry.notify',
      target: 'vaults/kv-prod/secrets/db-password',
      before: {
        Secret: 'db-password',
        secretName: 'db-password',
        Vault: 'kv-prod',
        keyName: 'key1',
        facts: { Secret: 'db-password', 'Key Vault': 'kv-prod' },
      },
      after: {
        channels: [{ channel: 'ops-teams', status: 'failed', error: `rejected ${value}` }],
        listKeys: { keys: [{ keyName: 'key2', value, permissions: 'FULL' }] },
      },
      outcome: 'failed',
      correlationId: 'corr-1',
      reason: `consumer answered with ${value}`,
    });
    const [found] = await audit.query({ since: new Date('2026-11-27T00:00:00.000Z') });

    // Assess
    expect(found).toMatchObject({
      target: 'vaults/kv-prod/secrets/db-password',
      before: {
        Secret: 'db-password',
        secretName: 'db-password',
        Vault: 'kv-prod',
        keyName: 'key1',
        facts: { Secret: 'db-password', 'Key Vault': 'kv-prod' },
      },
      after: {
        channels: [{ channel: 'ops-teams', status: 'failed', error: 'rejected [REDACTED]' }],
        listKeys: { keys: [{ keyName: 'key2', value: '[REDACTED]', permissions: 'FULL' }] },
      },
      reason: 'consumer answered with [REDACTED]',
    });
    expect(JSON.stringify(found)).not.toContain(value);
  });
});
