/**
 * The inventory adapters of the maintenance checks (Cosmos DB, AKS, Quota API) over their real SDK
 * clients on the sandbox: what they read, what they make of a missing resource, and that bad input
 * never reaches Azure.
 */
import { describe, expect, it } from 'vitest';
import { AzureKubernetesInventory } from '../../../src/lib/azure/aksInventory';
import { AzureCosmosDbInventory } from '../../../src/lib/azure/cosmosDbInventory';
import { AzureQuotaReader } from '../../../src/lib/azure/quotaReader';
import { NotFoundError, ValidationError } from '../../../src/lib/core/errors';
import { createSandbox } from '../../../src/local/sandbox';

const SUB = '00000000-0000-0000-0000-000000000000';
const RG = 'rg-stampkeeper-sandbox';
const cosmosId = (name: string) =>
  `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.DocumentDB/databaseAccounts/${name}`;
const aksId = (name: string) =>
  `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ContainerService/managedClusters/${name}`;

function estate() {
  const sandbox = createSandbox({
    scenario: {
      seed: 'inventory',
      clock: { start: '2026-01-01T00:00:00Z' },
      azure: { resourceGroup: RG },
      arm: {
        cosmosDbAccounts: [
          {
            name: 'cosmos-periodic',
            backup: { type: 'Periodic', intervalMinutes: 1440, retentionHours: 48 },
          },
          {
            name: 'cosmos-pitr',
            backup: { type: 'Continuous' },
            createdInDays: -100,
            disableLocalAuth: true,
          },
        ],
        aksClusters: [{ name: 'aks-a', kubernetesVersion: '1.32.9' }],
        quotas: [
          { name: 'standardDSv3Family', displayName: 'Standard DSv3 Family vCPUs', usage: 44, limit: 50 },
          { name: 'availabilitySets', usage: 2, limit: 2500, adjustable: false },
        ],
      },
    } as never,
  });
  const options = { httpClient: sandbox.httpClient };
  return {
    sandbox,
    cosmos: new AzureCosmosDbInventory(sandbox.credential, options),
    aks: new AzureKubernetesInventory(sandbox.credential, options),
    quotas: new AzureQuotaReader(sandbox.credential, options),
  };
}

describe('AzureCosmosDbInventory on the sandbox', () => {
  it("reads an account's backup policy, instance and key authentication, and its restorable account", async () => {
    // Prepare
    const { cosmos } = estate();

    // Act
    const periodic = await cosmos.getAccount(cosmosId('cosmos-periodic'));
    const pitr = await cosmos.getAccount(cosmosId('cosmos-pitr'));
    const restorable = await cosmos.getRestorableAccount(SUB, pitr.location, pitr.instanceId!);
    const none = await cosmos.getRestorableAccount(SUB, periodic.location, periodic.instanceId!);

    // Assess
    expect(periodic.backup).toEqual({
      type: 'Periodic',
      intervalMinutes: 1440,
      retentionHours: 48,
      redundancy: 'Geo',
    });
    expect(periodic.disableLocalAuth).toBe(false);
    expect(pitr.backup).toEqual({ type: 'Continuous', tier: 'Continuous30Days' });
    expect(pitr.disableLocalAuth).toBe(true);
    expect(restorable).toMatchObject({
      instanceId: pitr.instanceId,
      accountName: 'cosmos-pitr',
      location: 'West Europe',
      apiType: 'Sql',
      oldestRestorableTime: new Date('2025-12-02T00:00:00Z'),
      restorableLocations: [{ location: 'West Europe' }],
    });
    expect(restorable!.sourceId).toBe(
      `/subscriptions/${SUB}/providers/Microsoft.DocumentDB/locations/West Europe/restorableDatabaseAccounts/${pitr.instanceId}`,
    );
    // A periodic account has no restorable account: Cosmos DB answers 404, the port says undefined.
    expect(none).toBeUndefined();
  });

  it('says whether a name is taken, and answers NotFoundError for an account that does not exist', async () => {
    // Prepare
    const { cosmos, sandbox } = estate();

    // Act
    const taken = await cosmos.accountNameExists(SUB, 'cosmos-pitr');
    const free = await cosmos.accountNameExists(SUB, 'cosmos-pitr-drill');
    const missing = await cosmos.getAccount(cosmosId('cosmos-gone')).catch((e: unknown) => e);
    const before = sandbox.requests().length;
    const bad = await cosmos.accountNameExists(SUB, 'Not_A_Name').catch((e: unknown) => e);

    // Assess
    expect(taken).toBe(true);
    expect(free).toBe(false);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as Error).message).toContain('cosmos-gone');
    expect(bad).toBeInstanceOf(ValidationError);
    expect(sandbox.requests().length).toBe(before);
  });
});

describe('AzureKubernetesInventory on the sandbox', () => {
  it("reads a cluster's versions, its upgrade profile and the region's versions", async () => {
    // Prepare
    const { aks } = estate();

    // Act
    const cluster = await aks.getCluster(aksId('aks-a'));
    const profile = await aks.getUpgradeProfile(aksId('aks-a'));
    const versions = await aks.listVersions(SUB, cluster.location);

    // Assess
    expect(cluster).toMatchObject({
      name: 'aks-a',
      location: 'westeurope',
      version: '1.32.9',
      nodePools: [{ name: 'nodepool1', version: '1.32.9' }],
    });
    expect(profile.controlPlane).toEqual({
      version: '1.32.9',
      upgrades: [
        { version: '1.33.3', isPreview: false },
        { version: '1.33.5', isPreview: false },
      ],
    });
    expect(versions.map((v) => [v.minor, v.isPreview, v.supportPlans.join('+')])).toEqual([
      ['1.31', false, 'AKSLongTermSupport'],
      ['1.32', false, 'KubernetesOfficial+AKSLongTermSupport'],
      ['1.33', false, 'KubernetesOfficial'],
      ['1.34', false, 'KubernetesOfficial'],
      ['1.35', true, 'KubernetesOfficial'],
    ]);
    expect(versions[2]!.patches).toEqual(['1.33.3', '1.33.5']);
  });

  it('answers NotFoundError for a cluster that does not exist', async () => {
    // Prepare
    const { aks } = estate();

    // Act
    const missing = await aks.getUpgradeProfile(aksId('aks-gone')).catch((e: unknown) => e);

    // Assess
    expect(missing).toBeInstanceOf(NotFoundError);
  });
});

describe('AzureQuotaReader on the sandbox', () => {
  it('joins usages and limits by name, with whether an increase can be requested', async () => {
    // Prepare
    const { quotas } = estate();

    // Act
    const compute = await quotas.listQuotas({
      subscriptionId: SUB,
      provider: 'Microsoft.Compute',
      location: 'westeurope',
    });
    const elsewhere = await quotas.listQuotas({
      subscriptionId: SUB,
      provider: 'Microsoft.Compute',
      location: 'northeurope',
    });

    // Assess
    expect(compute).toEqual([
      {
        name: 'standardDSv3Family',
        displayName: 'Standard DSv3 Family vCPUs',
        usage: 44,
        limit: 50,
        unit: 'Count',
        adjustable: true,
      },
      {
        name: 'availabilitySets',
        displayName: 'availabilitySets',
        usage: 2,
        limit: 2500,
        unit: 'Count',
        adjustable: false,
      },
    ]);
    expect(elsewhere).toEqual([]);
  });

  it('refuses a malformed scope before any call', async () => {
    // Prepare
    const { quotas, sandbox } = estate();

    // Act
    const bad = await quotas
      .listQuotas({ subscriptionId: SUB, provider: 'Microsoft.Compute/../x', location: 'West Europe' })
      .catch((e: unknown) => e);

    // Assess
    expect(bad).toBeInstanceOf(ValidationError);
    expect((bad as ValidationError).problems).toHaveLength(2);
    expect(sandbox.requests()).toEqual([]);
  });
});
