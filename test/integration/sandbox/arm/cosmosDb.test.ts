import { CosmosDBManagementClient } from '@azure/arm-cosmosdb';
import { describe, expect, it } from 'vitest';
import { cosmosMasterAuthorization, cosmosPayload } from '../../../../src/local/sandbox/arm/cosmosDb';
import { fixture } from '../../../support/events';
import { ARM, armSandbox, RG, raw, SUB } from './support';

const ACCOUNT = 'cosmos-keys';
const PATH = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.DocumentDB/databaseAccounts/${ACCOUNT}`;

function sandbox(pollsBeforeDone = 0) {
  return armSandbox({ arm: { operations: { pollsBeforeDone }, cosmosDbAccounts: [{ name: ACCOUNT }] } });
}

function client(box: ReturnType<typeof sandbox>) {
  return new CosmosDBManagementClient(box.credential, SUB, { httpClient: box.httpClient });
}

/** GET https://{account}.documents.azure.com/ signed with `key` (date: now, as clients sign). */
async function readAccount(box: ReturnType<typeof sandbox>, key: string | undefined, date = new Date()) {
  const utc = date.toUTCString();
  return raw(box, 'GET', `https://${ACCOUNT}.documents.azure.com/`, {
    authorization:
      key === undefined ? undefined : cosmosMasterAuthorization(key, cosmosPayload('GET', '', '', utc)),
    scope: key === undefined ? null : undefined,
    headers: { 'x-ms-date': utc, 'x-ms-version': '2018-12-31' },
  });
}

describe('sandbox Cosmos DB keys, through the real @azure/arm-cosmosdb client', () => {
  it('lists the four keys with the published property names, as base64 of 64 bytes', async () => {
    // Prepare
    const box = sandbox();
    const published = fixture<{ responses: { 200: { body: Record<string, string> } } }>(
      'rest/cosmosdb/CosmosDBDatabaseAccountListKeys.json',
    );

    // Act
    const keys = await client(box).databaseAccounts.listKeys(RG, ACCOUNT);
    const readOnly = await client(box).databaseAccounts.listReadOnlyKeys(RG, ACCOUNT);

    // Assess
    const wire = await raw(box, 'POST', `${ARM}${PATH}/listKeys?api-version=2025-10-15`);
    expect(Object.keys(wire.json as object).sort()).toEqual(
      Object.keys(published.responses[200].body).sort(),
    );
    for (const value of Object.values(wire.json as Record<string, string>)) {
      expect(Buffer.from(value, 'base64')).toHaveLength(64);
    }
    expect(readOnly).toEqual({
      primaryReadonlyMasterKey: keys.primaryReadonlyMasterKey,
      secondaryReadonlyMasterKey: keys.secondaryReadonlyMasterKey,
    });
  });

  it('regenerates one key kind as a long-running operation the SDK polls to completion', async () => {
    // Prepare
    const box = sandbox(2);
    const before = await client(box).databaseAccounts.listKeys(RG, ACCOUNT);

    // Act
    await client(box).databaseAccounts.regenerateKey(
      RG,
      ACCOUNT,
      { keyKind: 'secondary' },
      { updateIntervalInMs: 0 },
    );

    // Assess
    const after = await client(box).databaseAccounts.listKeys(RG, ACCOUNT);
    expect(after.secondaryMasterKey).not.toBe(before.secondaryMasterKey);
    expect(after.primaryMasterKey).toBe(before.primaryMasterKey);
    expect(after.primaryReadonlyMasterKey).toBe(before.primaryReadonlyMasterKey);
    const polls = box.requests().filter((r) => r.path.includes('/operationsStatus/'));
    // Two answers InProgress, then Succeeded, then the SDK's final GET of Location (the same URL).
    expect(polls.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(box.estate().arm.regenerations).toEqual([
      { resourceId: `${PATH}`, keyName: 'secondaryMasterKey', at: '2026-01-01T00:00:00.000Z' },
    ]);
  });

  it('answers regenerateKey 202 with Location and Azure-AsyncOperation naming the status resource, then its status', async () => {
    // Prepare
    const box = sandbox(1);
    const published = fixture<{ responses: { 202: { headers: Record<string, string> } } }>(
      'rest/cosmosdb/CosmosDBDatabaseAccountRegenerateKey.json',
    );

    // Act
    const accepted = await raw(box, 'POST', `${ARM}${PATH}/regenerateKey?api-version=2025-10-15`, {
      body: { keyKind: 'primaryReadonly' },
    });
    const statusUrl = accepted.headers['azure-asyncoperation']!;
    const first = await raw(box, 'GET', statusUrl);
    const second = await raw(box, 'GET', statusUrl);

    // Assess
    expect(accepted.status).toBe(202);
    expect(
      Object.keys(published.responses[202].headers)
        .map((h) => h.toLowerCase())
        .sort(),
    ).toEqual(['azure-asyncoperation', 'location']);
    expect(accepted.headers.location).toBe(statusUrl);
    expect(accepted.headers['retry-after']).toBe('0');
    expect(statusUrl).toMatch(
      new RegExp(
        `^https://management\\.azure\\.com/subscriptions/${SUB}/providers/Microsoft\\.DocumentDB/locations/westeurope/operationsStatus/[0-9a-f-]{36}\\?api-version=2025-10-15$`,
      ),
    );
    expect(first.json).toMatchObject({ status: 'InProgress', startTime: '2026-01-01T00:00:00.000Z' });
    expect(second.json).toMatchObject({ status: 'Succeeded', endTime: '2026-01-01T00:00:00.000Z' });
  });

  it('refuses an unknown keyKind with 400 and changes no key', async () => {
    // Prepare
    const box = sandbox();
    const before = await client(box).databaseAccounts.listKeys(RG, ACCOUNT);

    // Act
    const response = await raw(box, 'POST', `${ARM}${PATH}/regenerateKey?api-version=2025-10-15`, {
      body: { keyKind: 'tertiary' },
    });

    // Assess
    expect(response.status).toBe(400);
    expect(await client(box).databaseAccounts.listKeys(RG, ACCOUNT)).toEqual(before);
  });
});

describe('sandbox Cosmos DB data plane, master-key authorization', () => {
  it('signs as the published example of the Cosmos DB REST access-control page', () => {
    // Prepare (key, date and expected token of learn.microsoft.com/rest/api/cosmos-db/access-control-on-cosmosdb-resources)
    const key = 'dsZQi3KtZmCv1ljt3VNWNm7sQUF1y5rJfC6kv5JiwvW0EndXdDku/dkKBp8/ufDToSxLzR4y+O/0H/t4bQtVNw==';

    // Act
    const header = cosmosMasterAuthorization(
      key,
      cosmosPayload('GET', 'dbs', 'dbs/ToDoList', 'Thu, 27 Apr 2017 00:51:12 GMT'),
    );

    // Assess
    expect(header.toLowerCase()).toBe(
      'type%3dmaster%26ver%3d1.0%26sig%3dc09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu%2bc%2bc%3d'.toLowerCase(),
    );
  });

  it('serves the database account to each of the four keys, and refuses a key once regenerated', async () => {
    // Prepare
    const box = sandbox();
    const keys = await client(box).databaseAccounts.listKeys(RG, ACCOUNT);

    // Act
    const reads = await Promise.all(Object.values(keys).map((key) => readAccount(box, key as string)));
    await client(box).databaseAccounts.regenerateKey(
      RG,
      ACCOUNT,
      { keyKind: 'primary' },
      { updateIntervalInMs: 0 },
    );
    const old = await readAccount(box, keys.primaryMasterKey);
    const untouched = await readAccount(box, keys.secondaryMasterKey);

    // Assess
    expect(reads.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(reads[0]!.json).toMatchObject({ id: ACCOUNT, _dbs: '//dbs/' });
    expect(old.status).toBe(401);
    expect((old.json as { code: string; message: string }).code).toBe('Unauthorized');
    expect((old.json as { message: string }).message).toMatch(
      /^The input authorization token can't serve the request\. The wrong key is being used .* Server used the following payload to sign: 'get\n\n\n[a-z]{3}, \d\d [a-z]{3} \d{4} \d\d:\d\d:\d\d gmt\n\n'\r\nActivityId: /,
    );
    expect(untouched.status).toBe(200);
  });

  it('refuses a request without authorization, and one dated more than 15 minutes away', async () => {
    // Prepare
    const box = sandbox();
    const keys = await client(box).databaseAccounts.listKeys(RG, ACCOUNT);

    // Act
    const anonymous = await readAccount(box, undefined);
    const stale = await readAccount(box, keys.primaryMasterKey, new Date(Date.now() - 20 * 60 * 1000));

    // Assess
    expect(anonymous.status).toBe(401);
    expect((anonymous.json as { message: string }).message).toMatch(
      /^Required Header authorization is missing/,
    );
    expect(stale.status).toBe(403);
    expect((stale.json as { message: string }).message).toMatch(
      /^The authorization token is not valid at the current time/,
    );
  });

  it('gives an account that is not in the scenario no DNS name', async () => {
    // Prepare
    const box = sandbox();

    // Act
    const error = await raw(box, 'GET', 'https://no-such-account.documents.azure.com/', { scope: null }).then(
      () => undefined,
      (e: { code?: string }) => e,
    );

    // Assess
    expect(error?.code).toBe('ENOTFOUND');
  });
});
