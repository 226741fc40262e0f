import { StorageManagementClient } from '@azure/arm-storage';
import { describe, expect, it } from 'vitest';
import { StorageAccountKeys } from '../../../../src/lib/azure/storageKeys';
import { fixture } from '../../../support/events';
import { ARM, armSandbox, RG, raw, SUB } from './support';

const ACCOUNT = 'stsandboxkeys';
const PATH = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Storage/storageAccounts/${ACCOUNT}`;

function sandbox() {
  return armSandbox({ arm: { storageAccounts: [{ name: ACCOUNT }] } });
}

function client(box: ReturnType<typeof sandbox>) {
  return new StorageManagementClient(box.credential, SUB, { httpClient: box.httpClient });
}

describe('sandbox Storage account keys, through the real @azure/arm-storage client', () => {
  it('lists key1 and key2 in the published shape, values base64 of 64 bytes', async () => {
    // Prepare
    const box = sandbox();
    const published = fixture<{ responses: { 200: { body: { keys: Array<Record<string, string>> } } } }>(
      'rest/storage/StorageAccountListKeys.json',
    );

    // Act
    const listed = await client(box).storageAccounts.listKeys(RG, ACCOUNT);
    const wire = await raw(box, 'POST', `${ARM}${PATH}/listKeys?api-version=2025-06-01&$expand=kerb`);

    // Assess
    expect(listed.keys?.map((k) => k.keyName)).toEqual(['key1', 'key2']);
    const wireKeys = (wire.json as { keys: Array<Record<string, string>> }).keys;
    for (const [i, key] of wireKeys.entries()) {
      for (const field of Object.keys(published.responses[200].body.keys[i]!))
        expect(key).toHaveProperty(field);
      expect(Buffer.from(key.value!, 'base64')).toHaveLength(64);
      expect(key.permissions).toBe('FULL');
    }
  });

  it('regenerates only the named key, synchronously, answering every key', async () => {
    // Prepare
    const box = sandbox();
    const before = await client(box).storageAccounts.listKeys(RG, ACCOUNT);

    // Act
    const answer = await client(box).storageAccounts.regenerateKey(RG, ACCOUNT, { keyName: 'key2' });

    // Assess
    expect(answer.keys?.[0]?.value).toBe(before.keys?.[0]?.value);
    expect(answer.keys?.[1]?.value).not.toBe(before.keys?.[1]?.value);
    expect(await client(box).storageAccounts.listKeys(RG, ACCOUNT)).toEqual(answer);
    expect(box.requests().map((r) => `${r.method} ${r.status}`)).toEqual([
      'POST 200',
      'POST 200',
      'POST 200',
    ]);
  });

  it('refuses a keyName other than key1 / key2 with 400 and changes nothing', async () => {
    // Prepare
    const box = sandbox();
    const before = await client(box).storageAccounts.listKeys(RG, ACCOUNT);

    // Act
    const response = await raw(box, 'POST', `${ARM}${PATH}/regenerateKey?api-version=2025-06-01`, {
      body: { keyName: 'key3' },
    });

    // Assess
    expect(response.status).toBe(400);
    expect(await client(box).storageAccounts.listKeys(RG, ACCOUNT)).toEqual(before);
  });
});

describe('sandbox Blob service, Shared Key authorization', () => {
  it('accepts a request the real @azure/storage-blob client signs with either key, and refuses a regenerated one', async () => {
    // Prepare: the adapter's test call is the real BlobServiceClient, so this checks the sandbox against the SDK's signer.
    const box = sandbox();
    const keys = new StorageAccountKeys(box.credential, { httpClient: box.httpClient });
    const before = await client(box).storageAccounts.listKeys(RG, ACCOUNT);
    const [key1, key2] = before.keys!.map((k) => k.value!);

    // Act
    const first = await keys.testKey(PATH, key1!);
    const second = await keys.testKey(PATH, key2!);
    await client(box).storageAccounts.regenerateKey(RG, ACCOUNT, { keyName: 'key1' });
    const stale = await keys.testKey(PATH, key1!);

    // Assess
    expect(first).toEqual({ accepted: true, status: 200, detail: '200 list containers' });
    expect(second.accepted).toBe(true);
    expect(stale).toEqual({
      accepted: false,
      status: 403,
      detail: '403 AuthenticationFailed: the signature was refused',
    });
    const blob = box.requests().filter((r) => r.service === 'storage-blob');
    expect(blob.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'GET / 200',
      'GET / 200',
      'GET / 403',
    ]);
  });

  it('answers the refused signature in the service words: 403 AuthenticationFailed and the string it signed', async () => {
    // Prepare
    const box = sandbox();
    const date = new Date().toUTCString();

    // Act
    const response = await raw(box, 'GET', `https://${ACCOUNT}.blob.core.windows.net/?comp=list`, {
      authorization: `SharedKey ${ACCOUNT}:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=`,
      headers: { 'x-ms-date': date, 'x-ms-version': '2025-11-05' },
    });
    const anonymous = await raw(box, 'GET', `https://${ACCOUNT}.blob.core.windows.net/?comp=list`, {
      scope: null,
    });

    // Assess
    expect(response.status).toBe(403);
    expect(response.headers['x-ms-error-code']).toBe('AuthenticationFailed');
    expect(response.text).toContain('<Code>AuthenticationFailed</Code>');
    expect(response.text).toContain(
      `Server used following string to sign: 'GET\n\n\n\n\napplication/json\n\n\n\n\n\n\nx-ms-date:${date}\nx-ms-version:2025-11-05\n/${ACCOUNT}/\ncomp:list'.`,
    );
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['x-ms-error-code']).toBe('NoAuthenticationInformation');
  });
});
