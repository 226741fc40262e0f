import { StorageManagementClient } from '@azure/arm-storage';
import { describe, expect, it } from 'vitest';
import { StorageAccountKeys } from '../../../src/lib/azure/storageKeys';
import { NotFoundError, ValidationError } from '../../../src/lib/core/errors';
import { redactText } from '../../../src/lib/core/redact';
import { keyFingerprint } from '../../../src/lib/ports/keys';
import { createSandbox } from '../../../src/local/sandbox';

const SUB = '00000000-0000-0000-0000-000000000000';
const RG = 'rg-stampkeeper-sandbox';
const ACCOUNT = 'stadapterkeys';
const ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Storage/storageAccounts/${ACCOUNT}`;

function estate() {
  const sandbox = createSandbox({
    scenario: { clock: { start: '2026-01-01T00:00:00Z' }, arm: { storageAccounts: [{ name: ACCOUNT }] } },
  });
  return {
    sandbox,
    keys: new StorageAccountKeys(sandbox.credential, { httpClient: sandbox.httpClient }),
    sdk: new StorageManagementClient(sandbox.credential, SUB, { httpClient: sandbox.httpClient }),
  };
}

describe('StorageAccountKeys over the real @azure/arm-storage and @azure/storage-blob clients on the sandbox', () => {
  it('lists key1 as primary and key2 as secondary, by fingerprint, values only when asked, masked from logs', async () => {
    // Prepare
    const { keys, sdk } = estate();
    const truth = (await sdk.storageAccounts.listKeys(RG, ACCOUNT)).keys!;

    // Act
    const bare = await keys.listKeys(ID);
    const full = await keys.listKeys(ID, { withValues: true });

    // Assess
    expect(bare).toEqual({
      kind: 'storage',
      resourceId: ID,
      primary: { slot: 'primary', name: 'key1', fingerprint: keyFingerprint(truth[0]!.value!) },
      secondary: { slot: 'secondary', name: 'key2', fingerprint: keyFingerprint(truth[1]!.value!) },
    });
    expect(full.secondary.value).toBe(truth[1]!.value);
    expect(redactText(truth[0]!.value!)).toBe('[REDACTED]');
  });

  it('regenerates key2 in one call; the new key passes the test, the old one is refused, key1 still passes', async () => {
    // Prepare
    const { sandbox, keys } = estate();
    const before = await keys.listKeys(ID, { withValues: true });
    const mark = sandbox.requests().length;

    // Act
    const fresh = await keys.regenerateKey(ID, 'secondary');
    const calls = sandbox.requests().slice(mark);
    const tests = await Promise.all(
      [fresh.value, before.secondary.value!, before.primary.value!].map((v) => keys.testKey(ID, v)),
    );

    // Assess
    expect(fresh).toMatchObject({
      slot: 'secondary',
      name: 'key2',
      fingerprint: keyFingerprint(fresh.value),
    });
    expect(fresh.value).not.toBe(before.secondary.value);
    expect(calls.map((r) => `${r.service} ${r.method} ${r.path.split('/').pop()}`)).toEqual([
      'arm POST regenerateKey',
    ]);
    expect(tests.map((t) => t.accepted)).toEqual([true, false, true]);
  });

  it('refuses a foreign resource id before any call; a missing account is NotFound', async () => {
    // Prepare
    const { sandbox, keys } = estate();

    // Act
    const foreign = await keys
      .listKeys(ID.replace('Microsoft.Storage/storageAccounts', 'Microsoft.DocumentDB/databaseAccounts'))
      .catch((e: unknown) => e);
    const calls = sandbox.requests().length;
    const missing = await keys
      .regenerateKey(ID.replace(ACCOUNT, 'stmissing'), 'primary')
      .catch((e: unknown) => e);

    // Assess
    expect(foreign).toBeInstanceOf(ValidationError);
    expect(calls).toBe(0);
    expect(missing).toBeInstanceOf(NotFoundError);
  });

  it('formats the connection string the portal shows', () => {
    // Prepare
    const { keys } = estate();

    // Act
    const text = keys.connectionString(ID, 'a2V5');

    // Assess
    expect(text).toBe(
      `DefaultEndpointsProtocol=https;AccountName=${ACCOUNT};AccountKey=a2V5;EndpointSuffix=core.windows.net`,
    );
  });
});
