/**
 * The Service Bus messaging-unit and Container Apps replica adapters over the real
 * `@azure/arm-servicebus` and `@azure/arm-appcontainers` clients, on the sandbox's emulation.
 */
import { describe, expect, it } from 'vitest';
import { ContainerAppScaleAdapter } from '../../../src/lib/azure/containerAppScale';
import { ServiceBusCapacityAdapter } from '../../../src/lib/azure/serviceBusCapacity';
import { DependencyError, ValidationError } from '../../../src/lib/core/errors';
import { createSandbox, type Sandbox } from '../../../src/local/sandbox';

const SUB = '00000000-0000-0000-0000-000000000000';
const RG = 'rg-stampkeeper-sandbox';
const providers = `/subscriptions/${SUB}/resourceGroups/${RG}/providers`;
const PREMIUM = `${providers}/Microsoft.ServiceBus/namespaces/sb-premium-1`;
const PARTITIONED = `${providers}/Microsoft.ServiceBus/namespaces/sb-partitioned-1`;
const STANDARD = `${providers}/Microsoft.ServiceBus/namespaces/sb-standard-1`;
const APP = `${providers}/Microsoft.App/containerApps/ca-worker`;

function estate() {
  const sandbox = createSandbox({
    scenario: {
      clock: { start: '2026-01-01T00:00:00Z' },
      arm: {
        operations: { pollsBeforeDone: 1 },
        serviceBusNamespaces: [
          { name: 'sb-premium-1', sku: { tier: 'Premium', capacity: 1 } },
          { name: 'sb-partitioned-1', sku: { tier: 'Premium', capacity: 2, partitions: 2 } },
          { name: 'sb-standard-1' },
        ],
        containerApps: [{ name: 'ca-worker', scale: { minReplicas: 1, maxReplicas: 4 } }],
      },
    },
  });
  const options = { httpClient: sandbox.httpClient, pollIntervalMs: 0 };
  return {
    sandbox,
    serviceBus: new ServiceBusCapacityAdapter(sandbox.credential, options),
    apps: new ContainerAppScaleAdapter(sandbox.credential, options),
  };
}

const calls = (sandbox: Sandbox, from = 0) =>
  sandbox
    .requests()
    .slice(from)
    .map((r) => `${r.method} ${r.path.replace(/^.*\/providers\//, '').replace(/\/[0-9a-f-]{36}$/, '/{id}')}`);

describe('Service Bus messaging units on the sandbox, through @azure/arm-servicebus', () => {
  it('reads tier, units and partitions (asking the API version that reports partitions)', async () => {
    // Prepare
    const { sandbox, serviceBus } = estate();

    // Act
    const premium = await serviceBus.read(PREMIUM);
    const partitioned = await serviceBus.read(PARTITIONED);
    const standard = await serviceBus.read(STANDARD);

    // Assess
    expect(premium).toEqual({ sku: 'Premium', capacity: 1, partitions: 1, provisioningState: 'Succeeded' });
    expect(partitioned).toMatchObject({ capacity: 2, partitions: 2 });
    expect(standard).toMatchObject({ sku: 'Standard', capacity: 0 });
    expect(calls(sandbox)).toEqual([
      'GET Microsoft.ServiceBus/namespaces/sb-premium-1',
      'GET Microsoft.ServiceBus/namespaces/sb-partitioned-1',
      'GET Microsoft.ServiceBus/namespaces/sb-standard-1',
    ]);
  });

  it('changes the units with one PATCH; the namespace is Updating on the sandbox clock, then Succeeded', async () => {
    // Prepare
    const { sandbox, serviceBus } = estate();
    const before = sandbox.requests().length;

    // Act
    const changed = await serviceBus.setCapacity(PREMIUM, 2);
    const conflict = await serviceBus.setCapacity(PREMIUM, 4).catch((e: unknown) => e);
    await sandbox.advance({ minutes: 5 });
    const settled = await serviceBus.read(PREMIUM);

    // Assess
    expect(changed).toEqual({ sku: 'Premium', capacity: 2, partitions: 1, provisioningState: 'Updating' });
    expect(calls(sandbox, before)[0]).toBe('PATCH Microsoft.ServiceBus/namespaces/sb-premium-1');
    expect(conflict).toBeInstanceOf(DependencyError);
    expect(settled).toMatchObject({ capacity: 2, provisioningState: 'Succeeded' });
  });

  it('refuses units a partitioned namespace does not take, and validates before any call', async () => {
    // Prepare
    const { sandbox, serviceBus } = estate();

    // Act
    const refused = await serviceBus.setCapacity(PARTITIONED, 3).catch((e: unknown) => e);
    const before = sandbox.requests().length;
    const invalid = await serviceBus.setCapacity(PREMIUM, 0).catch((e: unknown) => e);

    // Assess
    expect((refused as Error).message).toMatch(/use 2, 4, 8, 16, 32/);
    expect(invalid).toBeInstanceOf(ValidationError);
    expect(sandbox.requests().length).toBe(before);
  });
});

describe('Container Apps max replicas on the sandbox, through @azure/arm-appcontainers', () => {
  it('reads the replica range of the app template', async () => {
    // Prepare
    const { apps } = estate();

    // Act
    const range = await apps.read(APP);

    // Assess
    expect(range).toMatchObject({ minReplicas: 1, maxReplicas: 4, provisioningState: 'Succeeded' });
    expect(range.latestRevision).toMatch(/^ca-worker--[0-9a-f]{7}$/);
  });

  it('changes the max with a merge PATCH followed to its end; a new revision serves', async () => {
    // Prepare
    const { sandbox, apps } = estate();
    const before = await apps.read(APP);
    const from = sandbox.requests().length;

    // Act
    const after = await apps.setMaxReplicas(APP, 8);

    // Assess
    expect(after).toMatchObject({ minReplicas: 1, maxReplicas: 8 });
    expect(after.latestRevision).not.toBe(before.latestRevision);
    expect(calls(sandbox, from)).toEqual([
      'GET Microsoft.App/containerApps/ca-worker',
      'PATCH Microsoft.App/containerApps/ca-worker',
      'GET Microsoft.App/locations/westeurope/containerappOperationStatuses/{id}',
      'GET Microsoft.App/locations/westeurope/containerappOperationStatuses/{id}',
      'GET Microsoft.App/locations/westeurope/containerappOperationResults/{id}',
      'GET Microsoft.App/containerApps/ca-worker',
    ]);
  });

  it('takes up to 1000 replicas (the service limit) and refuses more before any call', async () => {
    // Prepare
    const { sandbox, apps } = estate();

    // Act
    const most = await apps.setMaxReplicas(APP, 1000);
    const before = sandbox.requests().length;
    const tooMany = await apps.setMaxReplicas(APP, 1001).catch((e: unknown) => e);

    // Assess
    expect(most.maxReplicas).toBe(1000);
    expect(tooMany).toBeInstanceOf(ValidationError);
    expect(sandbox.requests().length).toBe(before);
  });
});
