/**
 * The Cosmos DB throughput adapter over the real `@azure/arm-cosmosdb` client, on the sandbox's
 * emulation of the throughput settings (shapes and rules from the published samples and the
 * service's documented limits): reads, raises inside and past the instant limit, the minimum rule,
 * migration to autoscale, and the service's refusals as the project's errors.
 */
import { CosmosDBManagementClient } from '@azure/arm-cosmosdb';
import { describe, expect, it } from 'vitest';
import { CosmosThroughputAdapter } from '../../../src/lib/azure/cosmosThroughput';
import { DependencyError, NotFoundError, ValidationError } from '../../../src/lib/core/errors';
import { createSandbox, type Sandbox } from '../../../src/local/sandbox';
import { fixture } from '../../support/events';

const SUB = '00000000-0000-0000-0000-000000000000';
const RG = 'rg-stampkeeper-sandbox';
const ACCOUNT = 'cosmos-throughput';
const ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.DocumentDB/databaseAccounts/${ACCOUNT}`;

function estate() {
  const sandbox = createSandbox({
    scenario: {
      clock: { start: '2026-01-01T00:00:00Z' },
      arm: {
        operations: { pollsBeforeDone: 1 },
        cosmosDbAccounts: [
          {
            name: ACCOUNT,
            databases: [
              {
                name: 'orders',
                containers: [
                  { name: 'orders', storageGB: 5, throughput: { autoscaleMax: 4000 } },
                  // 250 GB and a highest max of 30000: the minimum is 3000 RU/s.
                  { name: 'history', storageGB: 250, throughput: { autoscaleMax: 8000, highest: 30000 } },
                  { name: 'legacy', throughput: { manual: 800 } },
                ],
              },
              {
                name: 'shared',
                throughput: { autoscaleMax: 2000 },
                containers: [{ name: 'a' }, { name: 'b' }],
              },
            ],
          },
        ],
      },
    },
  });
  const adapter = new CosmosThroughputAdapter(sandbox.credential, {
    httpClient: sandbox.httpClient,
    pollIntervalMs: 0,
  });
  const sdk = new CosmosDBManagementClient(sandbox.credential, SUB, { httpClient: sandbox.httpClient });
  return { sandbox, adapter, sdk };
}

const calls = (sandbox: Sandbox) =>
  sandbox
    .requests()
    .map((r) => `${r.method} ${r.path.replace(/^.*\/providers\/Microsoft\.DocumentDB\//, '')}`);

describe('Cosmos DB throughput on the sandbox, through @azure/arm-cosmosdb', () => {
  it('answers the published shape: numbers as strings where the sample has strings, ids with sqlContainers', async () => {
    // Prepare
    const { sdk } = estate();
    const published = fixture<{
      responses: { 200: { body: { properties: { resource: Record<string, unknown> } } } };
    }>('rest/cosmosdb/CosmosDBSqlContainerThroughputGet.json').responses[200].body;

    // Act
    const sdkView = await sdk.sqlResources.getSqlContainerThroughput(RG, ACCOUNT, 'orders', 'orders');

    // Assess
    expect(Object.keys(sdkView.resource!).sort()).toEqual(
      expect.arrayContaining(['throughput', 'autoscaleSettings', 'minimumThroughput', 'offerReplacePending']),
    );
    for (const key of [
      'minimumThroughput',
      'offerReplacePending',
      'instantMaximumThroughput',
      'softAllowedMaximumThroughput',
    ])
      expect(typeof (sdkView.resource as Record<string, unknown>)[key]).toBe(
        typeof published.properties.resource[key],
      );
    expect(sdkView.id).toBe(`${ID}/sqlDatabases/orders/sqlContainers/orders/throughputSettings/default`);
    expect(sdkView.name).toBe('default');
  });

  it('reads autoscale and manual throughput with the service minimum and instant limit', async () => {
    // Prepare
    const { adapter } = estate();

    // Act
    const orders = await adapter.read({ accountId: ID, database: 'orders', container: 'orders' });
    const history = await adapter.read({ accountId: ID, database: 'orders', container: 'history' });
    const legacy = await adapter.read({ accountId: ID, database: 'orders', container: 'legacy' });
    const shared = await adapter.read({ accountId: ID, database: 'shared' });

    // Assess
    expect(orders).toEqual({
      mode: 'autoscale',
      value: 4000,
      minimum: 1000,
      instantMaximum: 10000,
      softMaximum: 1_000_000,
      pending: false,
      pendingValue: undefined,
    });
    // MAX(1000, 30000 / 10, 250 GB x 10) = 3000; 250 GB take five physical partitions (50 GB each).
    expect(history).toMatchObject({ value: 8000, minimum: 3000, instantMaximum: 50000 });
    expect(legacy).toMatchObject({ mode: 'manual', value: 800, minimum: 400 });
    expect(shared).toMatchObject({ mode: 'autoscale', value: 2000, minimum: 1000 });
  });

  it('raises within the instant limit at once: one PUT, its status poll(s) and the final read', async () => {
    // Prepare
    const { sandbox, adapter } = estate();
    const ref = { accountId: ID, database: 'orders', container: 'orders' };
    const before = sandbox.requests().length;

    // Act
    const after = await adapter.setAutoscaleMax(ref, 6000);

    // Assess
    expect(after).toMatchObject({ value: 6000, pending: false, minimum: 1000 });
    expect(calls(sandbox).slice(before)).toEqual([
      'PUT databaseAccounts/cosmos-throughput/sqlDatabases/orders/containers/orders/throughputSettings/default',
      'GET locations/westeurope/operationsStatus/' + sandbox.requests()[before + 1]!.path.split('/').pop(),
      'GET locations/westeurope/operationsStatus/' + sandbox.requests()[before + 1]!.path.split('/').pop(),
      'GET databaseAccounts/cosmos-throughput/sqlDatabases/orders/containers/orders/throughputSettings/default',
      'GET databaseAccounts/cosmos-throughput/sqlDatabases/orders/containers/orders/throughputSettings/default',
    ]);
  });

  it('keeps a raise past the instant limit pending for hours on the sandbox clock, then splits partitions', async () => {
    // Prepare
    const { sandbox, adapter } = estate();
    const ref = { accountId: ID, database: 'orders', container: 'orders' };

    // Act
    const accepted = await adapter.setAutoscaleMax(ref, 20000);
    const refused = await adapter.setAutoscaleMax(ref, 5000).catch((e: unknown) => e);
    await sandbox.advance({ hours: 3 });
    const stillPending = await adapter.read(ref);
    await sandbox.advance({ hours: 1 });
    const done = await adapter.read(ref);

    // Assess
    expect(accepted).toMatchObject({ value: 4000, pending: true, pendingValue: 20000 });
    expect(refused).toBeInstanceOf(DependencyError);
    expect(String((refused as Error).message)).toMatch(/offer replace is pending/);
    expect(stillPending).toMatchObject({ value: 4000, pending: true });
    expect(done).toMatchObject({ value: 20000, pending: false, instantMaximum: 20000, minimum: 2000 });
  });

  it('never goes below the minimum: the service refuses it in the operation, with its words', async () => {
    // Prepare
    const { adapter } = estate();
    const ref = { accountId: ID, database: 'orders', container: 'history' };

    // Act
    const error = await adapter.setAutoscaleMax(ref, 2000).catch((e: unknown) => e);
    const after = await adapter.read(ref);

    // Assess
    expect(error).toBeInstanceOf(DependencyError);
    expect((error as Error).message).toMatch(
      /The offer should have valid throughput values between 3000 and 1000000 inclusive in increments of 1000/,
    );
    expect((error as DependencyError).retryable).toBe(false);
    expect(after.value).toBe(8000);
  });

  it('migrates manual throughput to autoscale (the service picks the max), and refuses autoscale on manual without it', async () => {
    // Prepare
    const { adapter } = estate();
    const ref = { accountId: ID, database: 'orders', container: 'legacy' };

    // Act
    const refused = await adapter.setAutoscaleMax(ref, 4000).catch((e: unknown) => e);
    const migrated = await adapter.migrateToAutoscale(ref);

    // Assess
    expect((refused as Error).message).toMatch(/Updating offer to autoscale throughput is not allowed/);
    expect(migrated).toMatchObject({ mode: 'autoscale', value: 1000 });
  });

  it('answers 404 for a container without throughput of its own, and validates before any call', async () => {
    // Prepare
    const { sandbox, adapter } = estate();

    // Act
    const shared = await adapter
      .read({ accountId: ID, database: 'shared', container: 'a' })
      .catch((e: unknown) => e);
    const missing = await adapter.read({ accountId: ID, database: 'nope' }).catch((e: unknown) => e);
    const before = sandbox.requests().length;
    const bad = await adapter
      .setAutoscaleMax({ accountId: ID, database: 'orders', container: 'orders' }, 4500)
      .catch((e: unknown) => e);
    const badName = await adapter.read({ accountId: ID, database: 'a/b' }).catch((e: unknown) => e);

    // Assess
    expect(shared).toBeInstanceOf(NotFoundError);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(bad).toBeInstanceOf(ValidationError);
    expect(badName).toBeInstanceOf(ValidationError);
    expect(sandbox.requests().length).toBe(before);
  });
});
