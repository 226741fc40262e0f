import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ContainerAppsAPIClient } from '@azure/arm-appcontainers';
import { CosmosDBManagementClient } from '@azure/arm-cosmosdb';
import { ServiceBusManagementClient } from '@azure/arm-servicebus';
import { StorageManagementClient } from '@azure/arm-storage';
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../src/lib/core/errors';
import { createSandbox, loadScenario, type Sandbox, type Scenario } from '../../../../src/local/sandbox';
import { RG, raw, SUB } from './support';

function problemsOf(scenario: unknown): string[] {
  try {
    createSandbox({ scenario: scenario as Scenario });
  } catch (err) {
    if (err instanceof ValidationError) return err.problems;
    throw err;
  }
  throw new Error('expected a ValidationError');
}

const estate: Scenario = {
  seed: 'scenario-arm',
  clock: { start: '2026-01-01T00:00:00Z' },
  keyVault: {
    vaults: [
      {
        name: 'kv-estate',
        secrets: [
          { name: 'cosmos', valueFrom: { resource: 'cosmosDb/cosmos-estate', key: 'primaryMasterKey' } },
          {
            name: 'storage',
            valueFrom: { resource: 'storage/stestate', key: 'key2', format: 'connectionString' },
          },
          {
            name: 'bus',
            valueFrom: {
              resource: 'serviceBus/sb-estate-one/queues/orders/orders-send',
              key: 'secondaryKey',
            },
          },
        ],
      },
    ],
  },
  arm: {
    cosmosDbAccounts: [{ name: 'cosmos-estate' }],
    storageAccounts: [{ name: 'stestate', resourceGroup: 'rg-storage' }],
    serviceBusNamespaces: [
      {
        name: 'sb-estate-one',
        queues: [{ name: 'orders', authorizationRules: [{ name: 'orders-send', rights: ['Send'] }] }],
      },
    ],
    containerApps: [{ name: 'ca-estate' }],
  },
  consumers: [
    {
      name: 'ca-consumer',
      kind: 'containerApp',
      app: 'ca-estate',
      credential: { vault: 'kv-estate', secret: 'cosmos', resource: 'cosmosDb/cosmos-estate' },
    },
  ],
};

describe('sandbox scenario: the arm and consumers sections', () => {
  it('seeds Key Vault secrets with the resource keys their valueFrom names, as a key or a connection string', async () => {
    // Prepare
    const box = createSandbox({ scenario: estate });
    const cosmos = await new CosmosDBManagementClient(box.credential, SUB, {
      httpClient: box.httpClient,
    }).databaseAccounts.listKeys(RG, 'cosmos-estate');
    const storage = await new StorageManagementClient(box.credential, SUB, {
      httpClient: box.httpClient,
    }).storageAccounts.listKeys('rg-storage', 'stestate');
    const bus = await new ServiceBusManagementClient(box.credential, SUB, {
      httpClient: box.httpClient,
    }).queues.listKeys(RG, 'sb-estate-one', 'orders', 'orders-send');
    const { SecretClient } = await import('@azure/keyvault-secrets');
    const secrets = new SecretClient(box.keyVault.vaultUrl('kv-estate'), box.credential, {
      httpClient: box.httpClient,
    });

    // Act
    const [c, s, b] = await Promise.all(['cosmos', 'storage', 'bus'].map((n) => secrets.getSecret(n)));

    // Assess
    expect(c!.value).toBe(cosmos.primaryMasterKey);
    expect(s!.value).toBe(
      `DefaultEndpointsProtocol=https;AccountName=stestate;AccountKey=${storage.keys![1]!.value};EndpointSuffix=core.windows.net`,
    );
    expect(b!.value).toBe(bus.secondaryKey);
  });

  it('reports every problem of the arm, consumers and valueFrom sections at once, with its path', () => {
    // Prepare
    const bad = {
      keyVault: {
        vaults: [
          {
            name: 'kv-bad',
            secrets: [
              {
                name: 'a',
                value: 'literal-value',
                valueFrom: { resource: 'cosmosDb/cosmos-ok', key: 'primaryMasterKey' },
              },
              { name: 'b', valueFrom: { resource: 'cosmosDb/cosmos-missing', key: 'primaryMasterKey' } },
              { name: 'c', valueFrom: { resource: 'cosmosDb/cosmos-ok', key: 'key1' } },
            ],
          },
        ],
      },
      arm: {
        cosmosDbAccounts: [{ name: 'cosmos-ok' }, { name: 'Cosmos_Bad' }, { name: 'cosmos-ok' }],
        storageAccounts: [{ name: 'st', extra: true }],
        serviceBusNamespaces: [
          { name: 'sb-namespace', authorizationRules: [{ name: 'r', rights: ['Manage'] }] },
        ],
        aksClusters: [{ name: 'aks-one', deployments: [{ namespace: 'Bad_NS', name: 'api' }] }],
        webApps: [{ name: 'web-one', kind: 'container' }],
        virtualMachines: [],
      },
      consumers: [
        {
          name: 'c1',
          kind: 'aksDeployment',
          cluster: 'aks-missing',
          namespace: 'orders',
          deployment: 'api',
          credential: { vault: 'kv-bad', secret: 'a', resource: 'cosmosDb/cosmos-ok' },
        },
        {
          name: 'c2',
          kind: 'webhook',
          url: 'https://hooks.management.azure.com/x',
          credential: { vault: 'kv-bad', secret: 'zzz', resource: 'cosmosDb/cosmos-ok' },
        },
        {
          name: 'c3',
          kind: 'reload',
          credential: { vault: 'kv-bad', secret: 'a', resource: 'storage/nowhere' },
          roll: { outcome: 'explode' },
        },
        { name: 'c1', kind: 'teleport' },
      ],
    };

    // Act
    const problems = problemsOf(bad);

    // Assess
    expect(problems).toEqual(
      expect.arrayContaining([
        'keyVault.vaults[0].secrets[0].valueFrom: give either value or valueFrom, not both',
        expect.stringMatching(
          /^keyVault\.vaults\[0\]\.secrets\[1\]\.valueFrom\.resource: 'cosmosDb\/cosmos-missing' is not a credential resource/,
        ),
        'keyVault.vaults[0].secrets[2].valueFrom.key: must be one of primaryMasterKey, secondaryMasterKey, primaryReadonlyMasterKey, secondaryReadonlyMasterKey',
        expect.stringMatching(/^arm\.virtualMachines: unknown key/),
        expect.stringMatching(/^arm\.cosmosDbAccounts\[1\]\.name: 'Cosmos_Bad' is not a valid name/),
        "arm.cosmosDbAccounts[2].name: 'cosmos-ok' is already used by arm.cosmosDbAccounts[0]",
        expect.stringMatching(/^arm\.storageAccounts\[0\]\.extra: unknown key/),
        expect.stringMatching(/^arm\.storageAccounts\[0\]\.name: 'st' is not a valid name/),
        'arm.serviceBusNamespaces[0].authorizationRules[0].rights: Manage requires Send and Listen too, as Service Bus requires',
        expect.stringMatching(
          /^arm\.aksClusters\[0\]\.deployments\[0\]\.namespace: 'Bad_NS' is not a valid name/,
        ),
        'arm.webApps[0].kind: must be app or functionapp',
        "consumers[0].cluster: 'aks-missing' is not one of the scenario's arm.aksClusters",
        expect.stringMatching(
          /^consumers\[1\]\.url: 'hooks\.management\.azure\.com' cannot be a consumer's host/,
        ),
        "consumers[1].credential.secret: 'zzz' is not a secret of vault 'kv-bad'",
        'consumers[2].reloadMinutes: is required for a reload consumer',
        "consumers[2].credential.resource: 'storage/nowhere' is not a credential resource of this scenario",
        'consumers[2].roll.outcome: must be one of succeed, fail, hang',
        "consumers[3].name: duplicate consumer 'c1'",
        'consumers[3].kind: must be one of aksDeployment, containerApp, webApp, webhook, reload',
      ]),
    );
  });

  it('derives the ids it invents (revisions, operations, commands, rolls) from the seed', async () => {
    // Prepare
    const run = async (seed: string) => {
      const box = createSandbox({ scenario: { ...estate, seed } });
      const apps = new ContainerAppsAPIClient(box.credential, SUB, { httpClient: box.httpClient });
      const app = await apps.containerApps.get(RG, 'ca-estate');
      await apps.containerAppsRevisions.restartRevision(RG, 'ca-estate', app.latestReadyRevisionName!);
      const op = await raw(
        box,
        'POST',
        `https://management.azure.com/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-estate/regenerateKey?api-version=2025-10-15`,
        {
          body: { keyKind: 'secondary' },
        },
      );
      return {
        revision: app.latestReadyRevisionName,
        operation: op.headers.location,
        roll: box.consumers()[0]!.rolls[0]!.id,
      };
    };

    // Act
    const first = await run('seed-a');
    const again = await run('seed-a');
    const other = await run('seed-b');

    // Assess
    expect(again).toEqual(first);
    expect(other.revision).not.toBe(first.revision);
    expect(other.operation).not.toBe(first.operation);
    expect(other.roll).not.toBe(first.roll);
  });

  it('accepts the default scenario of npm start with its Resource Manager estate and consumers', () => {
    // Prepare
    const scenario = loadScenario('sandbox/default.scenario.yaml');

    // Act
    const box = createSandbox({ scenario });

    // Assess
    expect(box.consumers().length).toBeGreaterThan(0);
    expect(box.downtime().totalMs).toBe(0);
  });
});

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function serve(box: Sandbox): Promise<string> {
  server = createServer((req, res) => {
    box.handleHttp(req, res).then((handled) => {
      if (!handled) {
        res.writeHead(418);
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

describe('sandbox inspection of the Resource Manager estate', () => {
  it('serves /sandbox/downtime, /sandbox/consumers, /sandbox/requests and the estate, none holding a key value', async () => {
    // Prepare
    const box = createSandbox({ scenario: estate });
    const base = await serve(box);
    const cosmos = new CosmosDBManagementClient(box.credential, SUB, { httpClient: box.httpClient });
    const before = await cosmos.databaseAccounts.listKeys(RG, 'cosmos-estate');
    await cosmos.databaseAccounts.regenerateKey(
      RG,
      'cosmos-estate',
      { keyKind: 'primary' },
      { updateIntervalInMs: 0 },
    );
    const after = await cosmos.databaseAccounts.listKeys(RG, 'cosmos-estate');
    await box.advance({ minutes: 3 });
    const values = [...Object.values(before), ...Object.values(after)] as string[];

    // Act
    const views = await Promise.all(
      ['/sandbox/downtime', '/sandbox/consumers', '/sandbox/requests', '/sandbox/estate', '/sandbox'].map(
        async (path) => {
          const response = await fetch(`${base}${path}`);
          return { path, status: response.status, text: await response.text() };
        },
      ),
    );

    // Assess
    for (const view of views) {
      expect(view.status, view.path).toBe(200);
      for (const value of values) expect(view.text, view.path).not.toContain(value);
    }
    const downtime = JSON.parse(views[0]!.text);
    expect(downtime).toMatchObject({
      totalMs: 180_000,
      consumers: [
        {
          name: 'ca-consumer',
          kind: 'containerApp',
          intervals: [{ from: '2026-01-01T00:00:00.000Z', to: null, durationMs: 180_000 }],
        },
      ],
    });
    expect(JSON.parse(views[2]!.text).requests.map((r: { service: string }) => r.service)).toEqual([
      'arm',
      'arm',
      'arm',
      'arm',
      'arm',
    ]);
    expect(JSON.parse(views[3]!.text).arm.regenerations).toEqual([
      expect.objectContaining({ keyName: 'primaryMasterKey', at: '2026-01-01T00:00:00.000Z' }),
    ]);
    expect(JSON.parse(views[4]!.text).links).toMatchObject({
      downtime: '/sandbox/downtime',
      consumers: '/sandbox/consumers',
      requests: '/sandbox/requests',
    });
    const post = await fetch(`${base}/sandbox/downtime`, { method: 'POST' });
    expect(post.status).toBe(405);
  });
});
