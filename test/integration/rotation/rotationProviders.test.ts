/**
 * Each key provider and each roll method, end to end on the sandbox: the real rotation run rotates
 * the key pair of the resource the policy names, tests the new key on the data plane, publishes it
 * (or its connection string) as a new Key Vault version, and rolls the consumers onto it, with zero
 * downtime. Each test pairs one provider with one or two roll methods, so that every provider and
 * every roll method runs once.
 */
import { describe, expect, it } from 'vitest';
import { KeyVaultSecretVault } from '../../../src/lib/azure/keyVaultSecrets';
import { ServiceBusKeys } from '../../../src/lib/azure/serviceBusKeys';
import { StorageAccountKeys } from '../../../src/lib/azure/storageKeys';
import {
  APP_ID,
  BUS_ID,
  CLUSTER_ID,
  COSMOS_ID,
  type RotationWorld,
  rotationTags,
  rotationWorld,
  SITE_ID,
  STORAGE_ID,
  stepsOf,
  VAULT,
  VAULT_URL,
} from './support';

const ROTATED = [
  ['plan', 'done'],
  ['regenerate', 'done'],
  ['test', 'done'],
  ['publish', 'done'],
  ['roll', 'done'],
  ['verify', 'done'],
  ['revoke', 'skipped'],
  ['finish', 'done'],
];

/** Every consumer holds only the current version, which its resource accepts. */
async function consumersOnCurrent(world: RotationWorld, secret: string) {
  const versions = await world.versions(secret);
  const current = versions[versions.length - 1]!.version;
  return world.sandbox.consumers().map((c) => ({
    name: c.name,
    onCurrent: c.holds.length === 1 && c.holds[0]!.version === current && c.holds[0]!.accepted,
  }));
}

describe('rotation per key provider and roll method (sandbox, real SDK clients, real engine)', () => {
  it('Cosmos DB read-write keys, rolled through the AKS run command', async () => {
    // Prepare
    const world = await rotationWorld({
      secrets: [
        {
          name: 'cosmos-key',
          valueFrom: { resource: 'cosmosDb/cosmos-rot', key: 'primaryMasterKey' },
          expiresInDays: 20,
          tags: rotationTags('cosmosDbKeys', COSMOS_ID, 'primary'),
        },
      ],
      consumers: [
        {
          name: 'orders-api',
          kind: 'aksDeployment',
          cluster: 'aks-rot',
          namespace: 'orders',
          deployment: 'orders-api',
          credential: { vault: VAULT, secret: 'cosmos-key', resource: 'cosmosDb/cosmos-rot' },
          roll: { seconds: 90 },
        },
      ],
      policy: `
  - vault: ${VAULT}
    name: cosmos-key
    owner: team-data
    rotation:
      provider: cosmosDbKeys
      resourceId: ${COSMOS_ID}
      validityDays: 30
      consumers:
        - { type: aksDeployment, clusterId: ${CLUSTER_ID}, namespace: orders, deployment: orders-api }`,
    });
    const [before] = await world.versions('cosmos-key');

    // Act
    const run = await world.drive(await world.started('cosmos-key'));
    const versions = await world.versions('cosmos-key');
    const published = await new KeyVaultSecretVault(world.sandbox.credential, {
      httpClient: world.sandbox.httpClient,
    }).getSecretProperties(VAULT_URL, 'cosmos-key');

    // Assess
    expect(run.error).toBeUndefined();
    expect(stepsOf(run)).toEqual(ROTATED);
    expect(world.regenerations(COSMOS_ID)).toEqual(['secondaryMasterKey']);
    expect(versions.map((v) => v.version)).toEqual([before!.version, published!.version]);
    expect(published!.tags).toMatchObject({
      'stampkeeper-provider': 'cosmosDbKeys',
      'stampkeeper-resource': COSMOS_ID,
      'stampkeeper-key': 'secondary',
      'stampkeeper-run': run.id,
      'stampkeeper-rolled': expect.any(String),
    });
    // Expiry: validityDays after the publication.
    expect(published!.expiresOn!.getTime() - published!.createdOn!.getTime()).toBe(30 * 86_400_000);
    expect(world.sandbox.consumers()[0]!.rolls.map((r) => [r.trigger, r.status])).toEqual([
      ['aksRunCommand', 'succeeded'],
    ]);
    expect(await consumersOnCurrent(world, 'cosmos-key')).toEqual([{ name: 'orders-api', onCurrent: true }]);
    expect(world.sandbox.downtime().totalMs).toBe(0);
    expect(world.channel.sent.map((n) => n.type)).toEqual(['com.stampkeeper.rotation.completed']);
  });

  it('Cosmos DB read-only keys, rolled by restarting a Container App revision', async () => {
    // Prepare: the read-only pair, its primary in the vault
    const world = await rotationWorld({
      secrets: [
        {
          name: 'cosmos-readonly',
          valueFrom: { resource: 'cosmosDb/cosmos-rot', key: 'primaryReadonlyMasterKey' },
          expiresInDays: 20,
          tags: rotationTags('cosmosDbKeys', COSMOS_ID, 'primary'),
        },
      ],
      consumers: [
        {
          name: 'reports',
          kind: 'containerApp',
          app: 'ca-rot',
          credential: { vault: VAULT, secret: 'cosmos-readonly', resource: 'cosmosDb/cosmos-rot' },
          roll: { seconds: 45 },
        },
      ],
      policy: `
  - vault: ${VAULT}
    name: cosmos-readonly
    owner: team-data
    rotation:
      provider: cosmosDbKeys
      keyPair: readOnly
      resourceId: ${COSMOS_ID}
      consumers:
        - { type: containerApp, resourceId: ${APP_ID} }`,
    });

    // Act
    const run = await world.drive(await world.started('cosmos-readonly'));

    // Assess: only the read-only pair moved
    expect(run.error).toBeUndefined();
    expect(stepsOf(run)).toEqual(ROTATED);
    expect(world.regenerations(COSMOS_ID)).toEqual(['secondaryReadonlyMasterKey']);
    expect(world.sandbox.consumers()[0]!.rolls.map((r) => [r.trigger, r.status])).toEqual([
      ['containerAppRestart', 'succeeded'],
    ]);
    expect(await consumersOnCurrent(world, 'cosmos-readonly')).toEqual([
      { name: 'reports', onCurrent: true },
    ]);
    expect(world.sandbox.downtime().totalMs).toBe(0);
  });

  it('Storage account keys published as a connection string, rolled by an App Service restart and a CSI reload', async () => {
    // Prepare
    const world = await rotationWorld({
      secrets: [
        {
          name: 'storage-conn',
          valueFrom: { resource: 'storage/strotation', key: 'key1', format: 'connectionString' },
          expiresInDays: 20,
          tags: rotationTags('storageAccountKeys', STORAGE_ID, 'primary'),
        },
      ],
      consumers: [
        {
          name: 'jobs',
          kind: 'webApp',
          site: 'app-rot',
          credential: { vault: VAULT, secret: 'storage-conn', resource: 'storage/strotation' },
          roll: { seconds: 30 },
        },
        {
          name: 'batch',
          kind: 'reload',
          reloadMinutes: 2,
          credential: { vault: VAULT, secret: 'storage-conn', resource: 'storage/strotation' },
        },
      ],
      policy: `
  - vault: ${VAULT}
    name: storage-conn
    owner: team-platform
    rotation:
      provider: storageAccountKeys
      resourceId: ${STORAGE_ID}
      publish: connectionString
      consumers:
        - { type: appService, resourceId: ${SITE_ID} }
        - { type: waitForReload, name: batch, waitMinutes: 3 }`,
    });
    const vault = new KeyVaultSecretVault(world.sandbox.credential, { httpClient: world.sandbox.httpClient });
    const storage = new StorageAccountKeys(world.sandbox.credential, {
      httpClient: world.sandbox.httpClient,
    });

    // Act
    const run = await world.drive(await world.started('storage-conn'));
    const published = await vault.getSecret(VAULT_URL, 'storage-conn');
    const keys = await storage.listKeys(STORAGE_ID, { withValues: true });

    // Assess: the portal's connection-string format, holding key2
    expect(run.error).toBeUndefined();
    expect(stepsOf(run)).toEqual(ROTATED);
    expect(world.regenerations(STORAGE_ID)).toEqual(['key2']);
    expect(published.value).toBe(
      `DefaultEndpointsProtocol=https;AccountName=strotation;AccountKey=${keys.secondary.value};EndpointSuffix=core.windows.net`,
    );
    expect(published.properties.contentType).toBe('connection-string');
    expect(world.sandbox.consumers().map((c) => [c.name, c.rolls.map((r) => r.trigger)])).toEqual([
      ['jobs', ['webAppRestart']],
      ['batch', []],
    ]);
    expect(world.sandbox.consumers()[1]!.reloads.length).toBeGreaterThan(0);
    expect(await consumersOnCurrent(world, 'storage-conn')).toEqual([
      { name: 'jobs', onCurrent: true },
      { name: 'batch', onCurrent: true },
    ]);
    expect(world.sandbox.downtime().totalMs).toBe(0);
  });

  it('Service Bus namespace SAS rule, rolled by a pipeline webhook polled for its status', async () => {
    // Prepare
    const rule = `${BUS_ID}/authorizationRules/RootManageSharedAccessKey`;
    const world = await rotationWorld({
      secrets: [
        {
          name: 'bus-root',
          valueFrom: { resource: 'serviceBus/sb-rotation-ns/RootManageSharedAccessKey', key: 'primaryKey' },
          expiresInDays: 20,
          tags: rotationTags('serviceBusSasKeys', rule, 'primary'),
        },
      ],
      consumers: [
        {
          name: 'legacy',
          kind: 'webhook',
          url: 'https://ci.rotation.example/hooks/legacy',
          credential: {
            vault: VAULT,
            secret: 'bus-root',
            resource: 'serviceBus/sb-rotation-ns/RootManageSharedAccessKey',
          },
          roll: { seconds: 300 },
        },
      ],
      settings: { LEGACY_HOOK: 'https://ci.rotation.example/hooks/legacy' },
      policy: `
  - vault: ${VAULT}
    name: bus-root
    owner: team-messaging
    rotation:
      provider: serviceBusSasKeys
      resourceId: ${rule}
      consumers:
        - { type: webhook, name: legacy, urlSetting: LEGACY_HOOK, completion: poll }`,
    });

    // Act
    const run = await world.drive(await world.started('bus-root'));
    const statusReads = world.sandbox
      .requests()
      .filter((r) => r.service === 'consumer' && r.method === 'GET' && r.path.includes('/runs/'));

    // Assess
    expect(run.error).toBeUndefined();
    expect(stepsOf(run)).toEqual(ROTATED);
    expect(world.regenerations(rule)).toEqual(['secondaryKey']);
    expect(world.sandbox.consumers()[0]!.rolls.map((r) => [r.trigger, r.status])).toEqual([
      ['webhook', 'succeeded'],
    ]);
    expect(statusReads.length).toBeGreaterThan(1);
    expect(await consumersOnCurrent(world, 'bus-root')).toEqual([{ name: 'legacy', onCurrent: true }]);
    expect(world.sandbox.downtime().totalMs).toBe(0);
    // The webhook URL is a credential: never in the run.
    expect(JSON.stringify(run)).not.toContain('ci.rotation.example');
  });

  it('Service Bus queue SAS rule, consumers that reload by themselves, checked on their health URL', async () => {
    // Prepare
    const rule = `${BUS_ID}/queues/orders/authorizationRules/orders-send`;
    const world = await rotationWorld({
      secrets: [
        {
          name: 'orders-send',
          valueFrom: {
            resource: 'serviceBus/sb-rotation-ns/queues/orders/orders-send',
            key: 'primaryKey',
            format: 'connectionString',
          },
          expiresInDays: 20,
          tags: rotationTags('serviceBusSasKeys', rule, 'primary'),
        },
      ],
      consumers: [
        {
          name: 'senders',
          kind: 'reload',
          reloadMinutes: 2,
          credential: {
            vault: VAULT,
            secret: 'orders-send',
            resource: 'serviceBus/sb-rotation-ns/queues/orders/orders-send',
          },
          healthUrl: 'https://senders.rotation.example/healthz',
        },
      ],
      settings: { SENDERS_HEALTH: 'https://senders.rotation.example/healthz' },
      policy: `
  - vault: ${VAULT}
    name: orders-send
    owner: team-messaging
    rotation:
      provider: serviceBusSasKeys
      resourceId: ${rule}
      publish: connectionString
      consumers:
        - { type: waitForReload, name: senders, waitMinutes: 3, healthUrlSetting: SENDERS_HEALTH }`,
    });
    const bus = new ServiceBusKeys(world.sandbox.credential, { httpClient: world.sandbox.httpClient });

    // Act
    const run = await world.drive(await world.started('orders-send'));
    const published = await new KeyVaultSecretVault(world.sandbox.credential, {
      httpClient: world.sandbox.httpClient,
    }).getSecret(VAULT_URL, 'orders-send');
    const keys = await bus.listKeys(rule, { withValues: true });
    const healthChecks = world.sandbox
      .requests()
      .filter((r) => r.service === 'consumer' && r.path === '/healthz');

    // Assess
    expect(run.error).toBeUndefined();
    expect(stepsOf(run)).toEqual(ROTATED);
    expect(world.regenerations(rule)).toEqual(['secondaryKey']);
    expect(published.value).toBe(
      `Endpoint=sb://sb-rotation-ns.servicebus.windows.net/;SharedAccessKeyName=orders-send;SharedAccessKey=${keys.secondary.value};EntityPath=orders`,
    );
    expect(healthChecks.map((r) => r.status)).toContain(200);
    expect(await consumersOnCurrent(world, 'orders-send')).toEqual([{ name: 'senders', onCurrent: true }]);
    expect(world.sandbox.downtime().totalMs).toBe(0);
  });
});
