import { CosmosDBManagementClient } from '@azure/arm-cosmosdb';
import { describe, expect, it } from 'vitest';
import { CosmosDbKeys } from '../../../src/lib/azure/cosmosDbKeys';
import { NotFoundError, ValidationError } from '../../../src/lib/core/errors';
import { redactText } from '../../../src/lib/core/redact';
import { keyFingerprint } from '../../../src/lib/ports/keys';
import { createSandbox, type Sandbox } from '../../../src/local/sandbox';

const SUB = '00000000-0000-0000-0000-000000000000';
const RG = 'rg-stampkeeper-sandbox';
const ACCOUNT = 'cosmos-adapter';
const ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.DocumentDB/databaseAccounts/${ACCOUNT}`;

function estate(pair: 'readWrite' | 'readOnly' = 'readWrite') {
  const sandbox = createSandbox({
    scenario: {
      clock: { start: '2026-01-01T00:00:00Z' },
      arm: { operations: { pollsBeforeDone: 1 }, cosmosDbAccounts: [{ name: ACCOUNT }] },
    },
  });
  const keys = new CosmosDbKeys(sandbox.credential, {
    httpClient: sandbox.httpClient,
    pollIntervalMs: 0,
    pair,
  });
  const sdk = new CosmosDBManagementClient(sandbox.credential, SUB, { httpClient: sandbox.httpClient });
  return { sandbox, keys, sdk };
}

const calls = (sandbox: Sandbox) =>
  sandbox.requests().map((r) => `${r.service} ${r.method} ${r.path.replace(/^.*\/providers\//, '')}`);

describe('CosmosDbKeys over the real @azure/arm-cosmosdb client on the sandbox', () => {
  it('lists the read-write pair by name and fingerprint, values only when asked, and masks them from logs', async () => {
    // Prepare
    const { keys, sdk } = estate();
    const truth = await sdk.databaseAccounts.listKeys(RG, ACCOUNT);

    // Act
    const bare = await keys.listKeys(ID);
    const full = await keys.listKeys(ID, { withValues: true });

    // Assess
    expect(bare).toEqual({
      kind: 'cosmosDb',
      resourceId: ID,
      primary: {
        slot: 'primary',
        name: 'primaryMasterKey',
        fingerprint: keyFingerprint(truth.primaryMasterKey!),
      },
      secondary: {
        slot: 'secondary',
        name: 'secondaryMasterKey',
        fingerprint: keyFingerprint(truth.secondaryMasterKey!),
      },
    });
    expect(full.primary.value).toBe(truth.primaryMasterKey);
    expect(full.secondary.value).toBe(truth.secondaryMasterKey);
    expect(redactText(`key=${truth.primaryMasterKey} ro=${truth.secondaryReadonlyMasterKey}`)).toBe(
      'key=[REDACTED] ro=[REDACTED]',
    );
  });

  it('regenerates the standby key: a new value the data plane accepts, the old one refused, the other key untouched', async () => {
    // Prepare
    const { sandbox, keys } = estate();
    const before = await keys.listKeys(ID, { withValues: true });

    // Act
    const fresh = await keys.regenerateKey(ID, 'secondary');
    const newTest = await keys.testKey(ID, fresh.value);
    const oldTest = await keys.testKey(ID, before.secondary.value!);
    const activeTest = await keys.testKey(ID, before.primary.value!);

    // Assess
    expect(fresh).toMatchObject({
      slot: 'secondary',
      name: 'secondaryMasterKey',
      fingerprint: keyFingerprint(fresh.value),
    });
    expect(fresh.value).not.toBe(before.secondary.value);
    expect(newTest).toEqual({ accepted: true, status: 200, detail: '200 database account read' });
    expect(oldTest).toMatchObject({ accepted: false, status: 401 });
    expect(oldTest.detail).toMatch(
      /^401 \{"code":"Unauthorized","message":"The input authorization token can't serve the request/,
    );
    expect(activeTest.accepted).toBe(true);
    expect(calls(sandbox)).toEqual([
      'arm POST Microsoft.DocumentDB/databaseAccounts/cosmos-adapter/listKeys',
      'arm POST Microsoft.DocumentDB/databaseAccounts/cosmos-adapter/regenerateKey',
      expect.stringMatching(/^arm GET Microsoft\.DocumentDB\/locations\/westeurope\/operationsStatus\//),
      expect.stringMatching(/^arm GET Microsoft\.DocumentDB\/locations\/westeurope\/operationsStatus\//),
      expect.stringMatching(/^arm GET Microsoft\.DocumentDB\/locations\/westeurope\/operationsStatus\//),
      'arm POST Microsoft.DocumentDB/databaseAccounts/cosmos-adapter/listKeys',
      'cosmosdb GET /',
      'cosmosdb GET /',
      'cosmosdb GET /',
    ]);
  });

  it('manages the read-only pair through the read-only listing and keyKind primaryReadonly', async () => {
    // Prepare
    const { sandbox, keys, sdk } = estate('readOnly');
    const before = await sdk.databaseAccounts.listKeys(RG, ACCOUNT);

    // Act
    const listed = await keys.listKeys(ID);
    const fresh = await keys.regenerateKey(ID, 'primary');

    // Assess
    expect(listed.kind).toBe('cosmosDbReadOnly');
    expect(listed.primary).toMatchObject({
      name: 'primaryReadonlyMasterKey',
      fingerprint: keyFingerprint(before.primaryReadonlyMasterKey!),
    });
    expect(fresh.name).toBe('primaryReadonlyMasterKey');
    const after = await sdk.databaseAccounts.listKeys(RG, ACCOUNT);
    expect(after.primaryReadonlyMasterKey).toBe(fresh.value);
    expect(after.primaryMasterKey).toBe(before.primaryMasterKey);
    expect(sandbox.requests().filter((r) => r.path.endsWith('/readonlykeys'))).not.toHaveLength(0);
    expect((await keys.testKey(ID, fresh.value)).accepted).toBe(true);
  });

  it('refuses a malformed or foreign resource id before any call, and says NotFound for a missing account', async () => {
    // Prepare
    const { sandbox, keys } = estate();
    const storageId = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Storage/storageAccounts/x`;

    // Act
    const malformed = await keys.listKeys('cosmos-adapter').catch((e: unknown) => e);
    const foreign = await keys.regenerateKey(storageId, 'primary').catch((e: unknown) => e);
    const before = sandbox.requests().length;
    const missing = await keys.listKeys(ID.replace(ACCOUNT, 'cosmos-missing')).catch((e: unknown) => e);

    // Assess
    expect(malformed).toBeInstanceOf(ValidationError);
    expect(foreign).toBeInstanceOf(ValidationError);
    expect((foreign as Error).message).toContain(storageId);
    expect(before).toBe(0);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as Error).message).toContain('cosmos-missing');
  });

  it('formats the connection string the portal shows', () => {
    // Prepare
    const { keys } = estate();

    // Act
    const text = keys.connectionString(ID, 'a2V5');

    // Assess
    expect(text).toBe(`AccountEndpoint=https://${ACCOUNT}.documents.azure.com:443/;AccountKey=a2V5;`);
  });
});
