/**
 * The ARM reads of the maintenance checks, through the real management clients on the sandbox:
 * Cosmos DB backup policies, restorable accounts and the name check, `disableLocalAuth` on the data
 * plane, AKS versions and upgrade profiles, and the Quota API's usages and limits. Shapes are checked
 * against the published examples in test/fixtures.
 */

import { ContainerServiceClient } from '@azure/arm-containerservice';
import { CosmosDBManagementClient } from '@azure/arm-cosmosdb';
import { AzureQuotaExtensionAPI } from '@azure/arm-quota';
import { describe, expect, it } from 'vitest';
import { cosmosMasterAuthorization, cosmosPayload } from '../../../../src/local/sandbox/arm/cosmosDb';
import { fixture } from '../../../support/events';
import { ARM, armSandbox, failureOf, RG, raw, SUB } from './support';

const DAY = 86_400_000;
const START_MS = Date.parse('2026-01-01T00:00:00.000Z');

function estate() {
  return armSandbox({
    arm: {
      cosmosDbAccounts: [
        { name: 'cosmos-periodic' },
        {
          name: 'cosmos-pitr',
          location: 'northeurope',
          backup: { type: 'Continuous', tier: 'Continuous7Days' },
          createdInDays: -3,
          disableLocalAuth: true,
        },
        {
          name: 'cosmos-tuned',
          backup: { type: 'Periodic', intervalMinutes: 60, retentionHours: 720, redundancy: 'Zone' },
        },
      ],
      aksClusters: [{ name: 'aks-old', kubernetesVersion: '1.32.7', nodeVersion: '1.31.13' }],
      kubernetesVersions: {
        northeurope: [
          { version: '1.33', patches: ['1.33.5', '1.33.3'], isDefault: true },
          { version: '1.34', patches: ['1.34.1'], isPreview: true },
        ],
      },
      quotas: [
        { name: 'standardDSv3Family', displayName: 'Standard DSv3 Family vCPUs', usage: 44, limit: 50 },
        { name: 'availabilitySets', usage: 2, limit: 2500, adjustable: false },
        { provider: 'Microsoft.Network', name: 'PublicIPAddresses', usage: 3, limit: 20 },
      ],
    },
  } as never);
}

describe('sandbox Cosmos DB backup and restore reads, through @azure/arm-cosmosdb', () => {
  it("answers each account's backup policy in the published shape", async () => {
    // Prepare
    const box = estate();
    const client = new CosmosDBManagementClient(box.credential, SUB, { httpClient: box.httpClient });
    const published = fixture<{ responses: { 200: { body: { properties: Record<string, unknown> } } } }>(
      'rest/cosmosdb/CosmosDBDatabaseAccountGet.json',
    ).responses[200].body.properties;

    // Act
    const periodic = await client.databaseAccounts.get(RG, 'cosmos-periodic');
    const pitr = await client.databaseAccounts.get(RG, 'cosmos-pitr');
    const tuned = await client.databaseAccounts.get(RG, 'cosmos-tuned');
    const wire = await raw(
      box,
      'GET',
      `${ARM}/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-periodic?api-version=2025-10-15`,
    );

    // Assess
    const wireBackup = (wire.json as { properties: { backupPolicy: Record<string, unknown> } }).properties
      .backupPolicy;
    const { migrationState: _notEmulated, ...publishedPeriodic } = published.backupPolicy as Record<
      string,
      unknown
    >;
    expect(Object.keys(wireBackup).sort()).toEqual(Object.keys(publishedPeriodic).sort());
    expect(wireBackup).toEqual(publishedPeriodic); // Azure's defaults are the example's values
    expect(periodic.backupPolicy).toMatchObject({
      type: 'Periodic',
      periodicModeProperties: {
        backupIntervalInMinutes: 240,
        backupRetentionIntervalInHours: 8,
        backupStorageRedundancy: 'Geo',
      },
    });
    expect(tuned.backupPolicy).toMatchObject({
      periodicModeProperties: {
        backupIntervalInMinutes: 60,
        backupRetentionIntervalInHours: 720,
        backupStorageRedundancy: 'Zone',
      },
    });
    expect(pitr.backupPolicy).toMatchObject({
      type: 'Continuous',
      continuousModeProperties: { tier: 'Continuous7Days' },
    });
    expect(pitr.disableLocalAuth).toBe(true);
    expect(periodic.disableLocalAuth).toBe(false);
    expect(pitr.instanceId).toMatch(/^[0-9a-f-]{36}$/);
    expect(pitr.instanceId).not.toBe(periodic.instanceId);
  });

  it('lists and reads restorable accounts (continuous only) with their oldest restorable time, as published', async () => {
    // Prepare
    const box = estate();
    const client = new CosmosDBManagementClient(box.credential, SUB, { httpClient: box.httpClient });
    const instanceId = (await client.databaseAccounts.get(RG, 'cosmos-pitr')).instanceId!;
    const published = fixture<{ responses: { 200: { body: Record<string, unknown> } } }>(
      'rest/cosmosdb/CosmosDBRestorableDatabaseAccountGet.json',
    ).responses[200].body;

    // Act
    const all = [];
    for await (const account of client.restorableDatabaseAccounts.list()) all.push(account);
    const inWestEurope = [];
    for await (const account of client.restorableDatabaseAccounts.listByLocation('westeurope'))
      inWestEurope.push(account);
    const one = await client.restorableDatabaseAccounts.getByLocation('North Europe', instanceId);
    const wire = await raw(
      box,
      'GET',
      `${ARM}/subscriptions/${SUB}/providers/Microsoft.DocumentDB/locations/northeurope/restorableDatabaseAccounts/${instanceId}?api-version=2025-10-15`,
    );
    await box.advance({ days: 10 });
    const later = await client.restorableDatabaseAccounts.getByLocation('northeurope', instanceId);
    const missing = await failureOf(
      client.restorableDatabaseAccounts.getByLocation('northeurope', '00000000-0000-4000-8000-000000000000'),
    );

    // Assess
    expect(all.map((a) => a.accountName)).toEqual(['cosmos-pitr']);
    expect(inWestEurope).toEqual([]);
    const body = wire.json as Record<string, unknown> & { properties: Record<string, unknown> };
    expect(Object.keys(body).sort()).toEqual(Object.keys(published).sort());
    expect(Object.keys(body.properties).sort()).toEqual(
      Object.keys(published.properties as object)
        .filter((k) => k !== 'deletionTime')
        .sort(),
    );
    // The location's display name, its space unencoded in the id, as the published example.
    expect(body.id).toBe(
      `/subscriptions/${SUB}/providers/Microsoft.DocumentDB/locations/North Europe/restorableDatabaseAccounts/${instanceId}`,
    );
    expect(one.apiType).toBe('Sql');
    // Created 3 days before the start: the window reaches back to the creation.
    expect(one.creationTime?.toISOString()).toBe(new Date(START_MS - 3 * DAY).toISOString());
    expect(one.oldestRestorableTime?.toISOString()).toBe(new Date(START_MS - 3 * DAY).toISOString());
    // Ten days later, a 7-day tier reaches back 7 days only.
    expect(later.oldestRestorableTime?.toISOString()).toBe(new Date(START_MS + 3 * DAY).toISOString());
    expect(one.restorableLocations?.map((l) => l.locationName)).toEqual(['North Europe']);
    expect(missing.statusCode).toBe(404);
  });

  it('checks whether an account name is taken (HEAD at tenant level): 200 taken, 404 free', async () => {
    // Prepare
    const box = estate();
    const client = new CosmosDBManagementClient(box.credential, SUB, { httpClient: box.httpClient });

    // Act
    const taken = await client.databaseAccounts.checkNameExists('cosmos-pitr');
    const free = await client.databaseAccounts.checkNameExists('cosmos-pitr-restored');
    const wire = await raw(
      box,
      'HEAD',
      `${ARM}/providers/Microsoft.DocumentDB/databaseAccountNames/cosmos-pitr-restored?api-version=2025-10-15`,
    );

    // Assess
    expect(taken.body).toBe(true);
    expect(free.body).toBe(false);
    expect(wire.status).toBe(404);
    expect(wire.text).toBe('');
  });

  it('refuses master keys on the data plane of an account with local auth disabled, as Cosmos DB words it', async () => {
    // Prepare
    const box = estate();
    const client = new CosmosDBManagementClient(box.credential, SUB, { httpClient: box.httpClient });
    const keys = await client.databaseAccounts.listKeys(RG, 'cosmos-pitr');
    const date = new Date().toUTCString();

    // Act
    const answer = await raw(box, 'GET', 'https://cosmos-pitr.documents.azure.com/', {
      authorization: cosmosMasterAuthorization(keys.primaryMasterKey!, cosmosPayload('GET', '', '', date)),
      headers: { 'x-ms-date': date },
    });

    // Assess
    expect(answer.status).toBe(401);
    expect((answer.json as { message: string }).message).toMatch(
      /^Local Authorization is disabled\. Use an AAD token to authorize all requests\./,
    );
  });
});

describe('sandbox AKS versions, through @azure/arm-containerservice', () => {
  it("answers the cluster's versions and its upgrade profile from the location's catalog, as published", async () => {
    // Prepare
    const box = estate();
    const client = new ContainerServiceClient(box.credential, SUB, { httpClient: box.httpClient });
    const published = fixture<{ responses: { 200: { body: Record<string, unknown> } } }>(
      'rest/aks/ManagedClustersGetUpgradeProfile.json',
    ).responses[200].body;

    // Act
    const cluster = await client.managedClusters.get(RG, 'aks-old');
    const profile = await client.managedClusters.getUpgradeProfile(RG, 'aks-old');
    const wire = await raw(
      box,
      'GET',
      `${ARM}/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ContainerService/managedClusters/aks-old/upgradeProfiles/default?api-version=2025-10-01`,
    );

    // Assess
    expect(cluster.currentKubernetesVersion).toBe('1.32.7');
    expect(cluster.agentPoolProfiles?.[0]?.currentOrchestratorVersion).toBe('1.31.13');
    expect(Object.keys(wire.json as object).sort()).toEqual(Object.keys(published).sort());
    expect((wire.json as { id: string }).id).toBe(
      `/subscriptions/${SUB}/resourcegroups/${RG}/providers/Microsoft.ContainerService/managedClusters/aks-old/upgradeprofiles/default`,
    );
    // westeurope has no entry in the scenario: the default catalog (1.31 to 1.35).
    expect(profile.controlPlaneProfile.upgrades?.map((u) => u.kubernetesVersion)).toEqual([
      '1.32.9',
      '1.33.3',
      '1.33.5',
    ]);
    expect(profile.agentPoolProfiles[0]?.kubernetesVersion).toBe('1.31.13');
    expect(profile.agentPoolProfiles[0]?.upgrades?.map((u) => u.kubernetesVersion)).toEqual([
      '1.32.7',
      '1.32.9',
    ]);
  });

  it("lists a location's Kubernetes versions with their patches, upgrades and support plans, as published", async () => {
    // Prepare
    const box = estate();
    const client = new ContainerServiceClient(box.credential, SUB, { httpClient: box.httpClient });
    const published = fixture<{ responses: { 200: { body: { values: Array<Record<string, unknown>> } } } }>(
      'rest/aks/KubernetesVersions_List.json',
    ).responses[200].body;

    // Act
    const versions = await client.managedClusters.listKubernetesVersions('northeurope');
    const wire = await raw(
      box,
      'GET',
      `${ARM}/subscriptions/${SUB}/providers/Microsoft.ContainerService/locations/northeurope/kubernetesVersions?api-version=2025-10-01`,
    );

    // Assess
    const values = (wire.json as { values: Array<Record<string, unknown>> }).values;
    expect(Object.keys(values[0]!).sort()).toEqual(Object.keys(published.values[1]!).sort()); // with isDefault
    expect(Object.keys(values[1]!).sort()).toEqual(Object.keys(published.values[3]!).sort()); // with isPreview
    expect(versions.values?.map((v) => v.version)).toEqual(['1.33', '1.34']);
    expect(values[0]!.patchVersions).toEqual({
      '1.33.3': { upgrades: ['1.33.5', '1.34.1'] },
      '1.33.5': { upgrades: ['1.34.1'] },
    });
    expect(versions.values?.[1]?.isPreview).toBe(true);
    expect(versions.values?.[0]?.capabilities?.supportPlan).toEqual(['KubernetesOfficial']);
  });
});

describe('sandbox Quota API, through @azure/arm-quota', () => {
  const computeScope = `subscriptions/${SUB}/providers/Microsoft.Compute/locations/westeurope`;

  it('lists and reads usages and limits at a location scope, as published', async () => {
    // Prepare
    const box = estate();
    const client = new AzureQuotaExtensionAPI(box.credential, { httpClient: box.httpClient });
    const publishedUsage = fixture<{ responses: { 200: { body: Record<string, unknown> } } }>(
      'rest/quota/Usages_Get_Quotas_Usages_Request_For_Compute.json',
    ).responses[200].body;
    const publishedQuota = fixture<{ responses: { 200: { body: Record<string, unknown> } } }>(
      'rest/quota/Quota_Get_Quotas_Get_Request_For_Compute.json',
    ).responses[200].body;

    // Act
    const usages = [];
    for await (const usage of client.usages.list(computeScope)) usages.push(usage);
    const quota = await client.quota.get('standardDSv3Family', computeScope);
    const wireUsage = await raw(
      box,
      'GET',
      `${ARM}/${computeScope}/providers/Microsoft.Quota/usages/standardDSv3Family?api-version=2025-03-01`,
    );
    const wireQuota = await raw(
      box,
      'GET',
      `${ARM}/${computeScope}/providers/Microsoft.Quota/quotas/standardDSv3Family?api-version=2025-03-01`,
    );
    const network = [];
    for await (const usage of client.usages.list(
      `subscriptions/${SUB}/providers/Microsoft.Network/locations/westeurope`,
    ))
      network.push(usage);

    // Assess
    expect(JSON.stringify(Object.keys(wireUsage.json as object).sort())).toBe(
      JSON.stringify(Object.keys(publishedUsage).sort()),
    );
    const props = (b: unknown) => Object.keys((b as { properties: object }).properties).sort();
    expect(props(wireUsage.json)).toEqual(props(publishedUsage));
    expect(props(wireQuota.json)).toEqual(props(publishedQuota));
    expect(usages.map((u) => [u.name, u.properties?.usages?.value, u.properties?.isQuotaApplicable])).toEqual(
      [
        ['standardDSv3Family', 44, true],
        ['availabilitySets', 2, false],
      ],
    );
    expect(quota.properties?.limit).toMatchObject({ limitObjectType: 'LimitValue', value: 50 });
    expect(quota.properties?.name?.localizedValue).toBe('Standard DSv3 Family vCPUs');
    expect(network.map((u) => u.name)).toEqual(['PublicIPAddresses']);
  });

  it('refuses a name the scope does not have, and a scope of another subscription', async () => {
    // Prepare
    const box = estate();
    const client = new AzureQuotaExtensionAPI(box.credential, { httpClient: box.httpClient });

    // Act
    const unknown = await failureOf(client.usages.get('standardNDSFamily', computeScope));
    const otherSubscription = await failureOf(
      client.quota.get(
        'standardDSv3Family',
        'subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.Compute/locations/westeurope',
      ),
    );

    // Assess
    expect(unknown.statusCode).toBe(400);
    expect(unknown.code).toBe('InvalidResourceName');
    expect(unknown.message).toBe('Name standardNDSFamily is not valid resource name.');
    expect(otherSubscription.statusCode).toBe(404);
    expect(otherSubscription.code).toBe('SubscriptionNotFound');
  });
});

describe('the scenario sections of these reads', () => {
  it('reports every bad backup policy, version and quota with its path, and builds nothing', () => {
    // Prepare
    const scenario = {
      arm: {
        cosmosDbAccounts: [
          { name: 'cosmos-a', backup: { type: 'Hourly' } },
          { name: 'cosmos-b', backup: { type: 'Periodic', intervalMinutes: 30, redundancy: 'Cold' } },
          { name: 'cosmos-c', backup: { type: 'Continuous', tier: 'Continuous90Days' }, createdInDays: 5 },
        ],
        aksClusters: [{ name: 'aks-a', kubernetesVersion: '1.33' }],
        kubernetesVersions: { westeurope: [{ version: '1.33', patches: ['1.34.1'] }] },
        quotas: [{ name: 'standardDSv3Family', usage: -1, limit: 10 }, { name: 'cores' }],
      },
    };

    // Act
    let problems: string[] = [];
    try {
      armSandbox(scenario as never);
    } catch (error) {
      problems = (error as { problems: string[] }).problems;
    }

    // Assess
    expect(problems).toEqual(
      expect.arrayContaining([
        'arm.cosmosDbAccounts[0].backup.type: must be Periodic or Continuous',
        'arm.cosmosDbAccounts[1].backup.intervalMinutes: must be an integer from 60 to 1440',
        'arm.cosmosDbAccounts[1].backup.redundancy: must be one of Geo, Local, Zone',
        'arm.cosmosDbAccounts[2].backup.tier: must be one of Continuous7Days, Continuous30Days',
        'arm.cosmosDbAccounts[2].createdInDays: must be a number of days from -3650 to 0',
        "arm.aksClusters[0].kubernetesVersion: '1.33' is not a Kubernetes patch version (1.33.2)",
        'arm.kubernetesVersions.westeurope[0].patches: a non-empty list of patch versions of 1.33 (1.33.1)',
        'arm.quotas[0].usage: must be a whole number from 0',
        'arm.quotas[1]: usage and limit are required',
      ]),
    );
  });
});
