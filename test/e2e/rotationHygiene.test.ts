/**
 * Secret hygiene end to end, on the bundle, the local host and the sandbox: a rotation revoked on
 * demand (`POST /api/rotations` with `mode: revoke`) and one started by a near-expiry event, whose
 * pipeline completes by callback. Afterwards every value there is (every version of every secret,
 * every key of every resource, read with the real SDK clients) is looked for in everything the app
 * wrote or answered: the logs, the responses of its endpoints (runs, audit), the sandbox's
 * inspection views, the notifications. None may appear; the names always do.
 */
import { CosmosDBManagementClient } from '@azure/arm-cosmosdb';
import { StorageManagementClient } from '@azure/arm-storage';
import { SecretClient } from '@azure/keyvault-secrets';
import { describe, expect, it } from 'vitest';
import { advance, rotationAppHooks, untilRotationEnds, VAULT } from './support/rotationApp';

const hooks = rotationAppHooks();

describe('secret hygiene of rotations on the sandbox, end to end (the bundle)', () => {
  it('revokes on demand with zero downtime, and no value or callback token reaches a log, an audit record, a notification, a response or an inspection view', async () => {
    // Prepare
    const app = await hooks.start();
    const responses: string[] = [];
    const read = async (path: string, init?: RequestInit) => {
      const response = await fetch(`${app.url}${path}`, init);
      const text = await response.text();
      responses.push(text);
      return { status: response.status, body: text ? JSON.parse(text) : undefined };
    };
    await advance(app, { minutes: 5 });

    // Act: the Storage connection string, revoked on demand; the Cosmos DB key on its near-expiry
    // event (its pipeline completes by callback)
    const posted = await read('/api/rotations', {
      method: 'POST',
      body: JSON.stringify({ vault: VAULT, secret: 'storage-account-key', mode: 'revoke' }),
    });
    const storage = await untilRotationEnds(app, 'storage-account-key');
    await advance(app, { days: 16 });
    const cosmos = await untilRotationEnds(app);
    for (const path of [
      `/api/rotations?vault=${VAULT}&secret=storage-account-key`,
      `/api/rotations?vault=${VAULT}&secret=cosmos-primary-key`,
      `/api/rotations/${posted.body.runId}`,
      `/api/rotations/${cosmos.id}`,
      '/api/audit?since=2026-01-01T00:00:00Z&limit=1000',
      '/sandbox/estate',
      '/sandbox/consumers',
      '/sandbox/downtime',
      '/sandbox/requests',
      '/sandbox/events',
      '/sandbox/notifications',
    ])
      await read(path);
    // Every value there is, read with the real SDK clients: the vault's versions, the keys of
    // every resource.
    const box = app.sandbox!;
    const secrets = new SecretClient(`https://${VAULT}.vault.azure.net`, box.credential, {
      httpClient: box.httpClient,
    });
    const values: string[] = [];
    for await (const s of secrets.listPropertiesOfSecrets()) {
      for await (const v of secrets.listPropertiesOfSecretVersions(s.name)) {
        const value = (await secrets.getSecret(s.name, { version: v.version })).value;
        if (value) values.push(value);
      }
    }
    const sub = box.arm.subscriptionId;
    const rg = 'rg-stampkeeper-sandbox';
    const cosmosKeys = await new CosmosDBManagementClient(box.credential, sub, {
      httpClient: box.httpClient,
    }).databaseAccounts.listKeys(rg, 'stampkeeper-sandbox-cosmos');
    const storageKeys = await new StorageManagementClient(box.credential, sub, {
      httpClient: box.httpClient,
    }).storageAccounts.listKeys(rg, 'stampkeepersandbox');
    values.push(
      ...[
        cosmosKeys.primaryMasterKey,
        cosmosKeys.secondaryMasterKey,
        cosmosKeys.primaryReadonlyMasterKey,
        cosmosKeys.secondaryReadonlyMasterKey,
      ].filter((k): k is string => Boolean(k)),
      ...(storageKeys.keys ?? []).map((k) => k.value!).filter(Boolean),
    );

    // Assess
    expect(posted.status).toBe(202);
    expect(storage.id).toBe(posted.body.runId);
    expect(storage.state).toBe('succeeded');
    expect(storage.steps.find((s: { name: string }) => s.name === 'revoke')?.status).toBe('done');
    expect(cosmos.state).toBe('succeeded');
    const regenerated = box
      .estate()
      .arm.regenerations.map((r) => `${r.resourceId.split('/').pop()}:${r.keyName}`);
    expect(regenerated).toEqual([
      'stampkeepersandbox:key2',
      'stampkeepersandbox:key1',
      'stampkeeper-sandbox-cosmos:secondaryMasterKey',
    ]);
    expect(box.downtime().totalMs).toBe(0);
    expect(box.webhookCallbacks().map((c) => c.answered)).toEqual([200]);
    // Two versions of each rotated secret, one of each other secret, the six keys of the resources.
    expect(values.length).toBeGreaterThanOrEqual(12);
    const everything = [
      ...hooks.logs,
      ...responses,
      JSON.stringify(box.eventGrid.published()),
      JSON.stringify(box.webhooks()),
    ].join('\n');
    expect(everything).toContain('storage-account-key');
    expect(everything).toContain('cosmos-primary-key');
    for (const value of values) expect(everything).not.toContain(value);
    // The callback URL's one-time token: redacted wherever a URL with it could be written.
    expect(everything).not.toMatch(/token=[A-Za-z0-9_-]{43}/);
  }, 180_000);
});
