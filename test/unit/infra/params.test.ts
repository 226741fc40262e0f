/**
 * `npm run infra:params`: the policy's targets as the Bicep's parameter. The committed file must be
 * what the script makes of the committed policy, so the two cannot drift.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_OUT,
  deriveInspection,
  derivePolicyTargets,
  deriveRemediation,
  deriveRotationAccess,
  generatePolicyTargets,
  ROTATION_ROLES,
  vaultNameOf,
} from '../../../scripts/infra-params';
import { findPlaybook, type ScalingPlaybook } from '../../../src/lib/config/playbooks';
import { loadPolicy, validatePolicy } from '../../../src/lib/config/policy';
import { ConfigurationError } from '../../../src/lib/core/errors';
import { ROOT } from './bicep';

describe('npm run infra:params', () => {
  it('has committed exactly what the script makes of the committed policy', async () => {
    // Act
    const { outPath, text } = await generatePolicyTargets({ rootDir: ROOT });
    const committed = await readFile(outPath, 'utf8');

    // Assess
    expect(outPath).toBe(join(ROOT, DEFAULT_OUT));
    expect(committed, 'infra/policy.targets.json is out of date: run npm run infra:params').toBe(text);
  });

  it('lists each vault once with its secrets and the role their rotation needs, and what the channels need', async () => {
    // Prepare
    const policy = await loadPolicy(join(ROOT, 'policy/examples/full.policy.yaml'));

    // Act
    const targets = derivePolicyTargets(policy, 'policy/examples/full.policy.yaml');

    // Assess
    expect(targets.vaults).toEqual([
      {
        // Key rotations publish new versions here: the strongest role any of its secrets needs.
        name: 'contoso-kv',
        url: 'https://contoso-kv.vault.azure.net',
        role: 'keyVaultSecretsOfficer',
        secrets: ['cosmos-primary-key', 'legacy-api-key', 'manual-api-key', 'storage-key'],
      },
      {
        name: 'contoso-payments-kv',
        url: 'https://contoso-payments-kv.vault.azure.net',
        role: 'keyVaultSecretsOfficer',
        secrets: ['servicebus-send-sas'],
      },
    ]);
    expect(targets.notifications).toEqual({
      eventGridTopic: true,
      // Channels' webhook URLs, and the rotation consumers' (a webhook roll's URL, a consumer's health
      // URL: credentials too), of every consumer type.
      urlSettings: [
        'ORDERS_ADMIN_HEALTH_URL',
        'PAGER_WEBHOOK_URL',
        'REPORTING_ROLL_WEBHOOK_URL',
        'TEAMS_WEBHOOK_URL',
      ],
    });
    expect(targets.policy).toBe('policy/examples/full.policy.yaml');
  });

  it('gives the dead-letter entities exactly the Service Bus roles they need, per namespace and connection', async () => {
    // Prepare: a queue with a replay target and a region; a topic subscription with two others.
    const policy = await loadPolicy(join(ROOT, 'policy/examples/full.policy.yaml'));

    // Act
    const { serviceBus } = derivePolicyTargets(policy, 'policy/examples/full.policy.yaml');

    // Assess
    const ns =
      '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-msg/providers/Microsoft.ServiceBus/namespaces/contoso-sb';
    expect(serviceBus).toEqual({
      namespaces: [
        {
          id: ns,
          subscriptionId: '00000000-0000-0000-0000-000000000000',
          resourceGroup: 'rg-msg',
          name: 'contoso-sb',
          queueRoles: [
            { queue: 'payments-retry', role: 'serviceBusDataSender' },
            { queue: 'payments', role: 'serviceBusDataReceiver' },
            { queue: 'payments', role: 'serviceBusDataSender' },
          ],
          // Replays of a subscription's dead letters go through its topic.
          topicRoles: [{ topic: 'events', role: 'serviceBusDataSender' }],
          // Its own dead letters, and the other subscriptions' rules (read before a topic replay).
          subscriptionRoles: [
            { topic: 'events', subscription: 'audit', role: 'serviceBusDataReceiver' },
            { topic: 'events', subscription: 'billing', role: 'serviceBusDataReceiver' },
            { topic: 'events', subscription: 'shipping', role: 'serviceBusDataReceiver' },
          ],
          // payments names its region: the depth report reads the namespace's metrics.
          metricsReader: true,
        },
      ],
      connections: [{ setting: 'STAMPKEEPER_SERVICEBUS', namespace: 0 }],
    });
  });

  it('needs no topic and no setting for a policy without channels', () => {
    // Prepare
    const validation = validatePolicy(
      'version: 1\nsecrets:\n  - { vault: kv-one, name: a, owner: o }\n',
      'inline',
    );
    if (!validation.ok) throw new Error(validation.problems.join('; '));

    // Act
    const targets = derivePolicyTargets(validation.policy, 'inline');

    // Assess
    expect(targets.notifications).toEqual({ eventGridTopic: false, urlSettings: [] });
    expect(targets.vaults.map((v) => v.name)).toEqual(['kv-one']);
  });

  it('gives each rotated resource and each consumer the role of its adapter on exactly that resource', async () => {
    // Prepare
    const policy = await loadPolicy(join(ROOT, 'policy/examples/full.policy.yaml'));
    const sub = '/subscriptions/00000000-0000-0000-0000-000000000000';

    // Act
    const access = deriveRotationAccess(policy);

    // Assess
    expect(access.grants.map((g) => [g.role, g.resourceId, g.resourceType, g.names])).toEqual([
      [
        'aksRunCommand',
        `${sub}/resourceGroups/rg-stamp1/providers/Microsoft.ContainerService/managedClusters/aks-stamp1`,
        'Microsoft.ContainerService/managedClusters',
        ['aks-stamp1'],
      ],
      [
        'containerAppRestart',
        `${sub}/resourceGroups/rg-stamp2/providers/Microsoft.App/containerApps/orders-api`,
        'Microsoft.App/containerApps',
        ['orders-api'],
      ],
      [
        'cosmosDbKeys',
        `${sub}/resourceGroups/rg-data/providers/Microsoft.DocumentDB/databaseAccounts/contoso-cosmos`,
        'Microsoft.DocumentDB/databaseAccounts',
        ['contoso-cosmos'],
      ],
      // Cosmos DB keeps the status of a regeneration at the subscription: that read only.
      ['cosmosDbOperationStatus', sub, 'subscription', []],
      [
        'serviceBusQueueRuleKeys',
        `${sub}/resourceGroups/rg-msg/providers/Microsoft.ServiceBus/namespaces/contoso-sb/queues/payments/authorizationRules/send`,
        'Microsoft.ServiceBus/namespaces/queues/authorizationRules',
        ['contoso-sb', 'payments', 'send'],
      ],
      [
        'storageAccountKeys',
        `${sub}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/contosodata`,
        'Microsoft.Storage/storageAccounts',
        ['contosodata'],
      ],
      [
        'webAppRestart',
        `${sub}/resourceGroups/rg-ops/providers/Microsoft.Web/sites/orders-admin`,
        'Microsoft.Web/sites',
        ['orders-admin'],
      ],
    ]);
    // Only the roles used; the Storage keys through the built-in role that holds exactly them.
    expect(access.roles.map((r) => [r.name, r.builtInRoleId])).toEqual([
      ['aksRunCommand', null],
      ['containerAppRestart', null],
      ['cosmosDbKeys', null],
      ['cosmosDbOperationStatus', null],
      ['serviceBusQueueRuleKeys', null],
      ['storageAccountKeys', '81a9662b-bebf-436f-a333-f67b29880f12'],
      ['webAppRestart', null],
    ]);
    expect(access.roles.find((r) => r.name === 'serviceBusQueueRuleKeys')!.actions).toEqual([
      'Microsoft.ServiceBus/namespaces/queues/authorizationRules/listKeys/action',
      'Microsoft.ServiceBus/namespaces/queues/authorizationRules/regenerateKeys/action',
    ]);
    // The webhook and reload consumers need no Azure role.
    expect(access.grants.some((g) => /csi|reporting/i.test(g.secrets.join()))).toBe(false);
  });

  it('gives a Cosmos DB read-only pair the read-only listing, and needs nothing for a manual rotation', () => {
    // Prepare
    const validation = validatePolicy(
      [
        'version: 1',
        'secrets:',
        '  - vault: kv-one',
        '    name: ro',
        '    owner: o',
        '    rotation:',
        '      provider: cosmosDbKeys',
        '      keyPair: readOnly',
        '      resourceId: /subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.DocumentDB/databaseAccounts/acct',
        '  - { vault: kv-one, name: m, owner: o, rotation: { provider: manual } }',
        '',
      ].join('\n'),
      'inline',
    );
    if (!validation.ok) throw new Error(validation.problems.join('; '));

    // Act
    const access = deriveRotationAccess(validation.policy);

    // Assess
    expect(access.grants.map((g) => [g.role, g.resourceId])).toEqual([
      ['cosmosDbOperationStatus', '/subscriptions/00000000-0000-0000-0000-000000000001'],
      [
        'cosmosDbReadOnlyKeys',
        '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.DocumentDB/databaseAccounts/acct',
      ],
    ]);
    expect(access.roles.find((r) => r.name === 'cosmosDbReadOnlyKeys')!.actions).toEqual([
      'Microsoft.DocumentDB/databaseAccounts/readonlykeys/action',
      'Microsoft.DocumentDB/databaseAccounts/regenerateKey/action',
    ]);
  });

  it('gives manual rotation the read-only Key Vault Reader role', () => {
    expect(ROTATION_ROLES.manual).toBe('keyVaultReader');
  });

  it('names vaults by their URL, and refuses a URL that is not a Key Vault', () => {
    expect(vaultNameOf('https://contoso-kv.vault.azure.net')).toBe('contoso-kv');
    expect(vaultNameOf('https://Contoso-KV.vault.azure.cn/')).toBe('contoso-kv');
    expect(() => vaultNameOf('https://127.0.0.1:8443')).toThrow(ConfigurationError);
    expect(() => vaultNameOf('https://example.com')).toThrow(/not a Key Vault URL/);
  });

  it('grants read-only roles on exactly what the checks and the gates read, and refuses what it cannot scope', async () => {
    // Prepare
    const policy = await loadPolicy(join(ROOT, 'policy/examples/full.policy.yaml'));
    const sub = '00000000-0000-0000-0000-000000000000';
    const noWorkspaceId = {
      ...policy,
      monitoring: { workspaces: policy.monitoring.workspaces.map((w) => ({ ...w, resourceId: undefined })) },
    };
    const otherType = {
      ...policy,
      gates: policy.gates.map((g) => ({
        ...g,
        targets: g.targets.map((t) => ({
          ...t,
          resources: {
            serviceBus: `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.Web/sites/app`,
          },
        })),
      })),
    };

    // Act
    const inspection = deriveInspection(policy);
    const targets = derivePolicyTargets(policy, 'policy/examples/full.policy.yaml');

    // Assess
    expect(inspection.resources.map((r) => [r.type, r.name, r.role, r.readBy.join(' ')])).toEqual([
      [
        'Microsoft.DocumentDB/databaseAccounts',
        'contoso-cosmos',
        'reader',
        'checks.backupReadiness checks.credentialHygiene',
      ],
      // A scaling playbook's verify and scale-back read its signal's metric.
      [
        'Microsoft.DocumentDB/databaseAccounts',
        'contoso-data',
        'monitoringReader',
        'playbooks.orders-container-ru',
      ],
      [
        'Microsoft.ServiceBus/namespaces',
        'contoso-payments-sb',
        'monitoringReader',
        'playbooks.payments-consumers playbooks.payments-messaging-units playbooks.shipments-consumers',
      ],
      ['Microsoft.OperationalInsights/workspaces', 'law-stamps', 'logAnalyticsReader', 'gates.stamp-health'],
      ['Microsoft.ServiceBus/namespaces', 'sb-stamp-weu-2', 'monitoringReader', 'gates.stamp-health'],
      ['Microsoft.ContainerService/managedClusters', 'aks-stamp1', 'reader', 'checks.platformVersions'],
    ]);
    expect(inspection.subscriptions).toEqual([sub]);
    expect(inspection.subscriptionActions).toEqual([
      'Microsoft.ContainerService/locations/kubernetesVersions/read',
      'Microsoft.DocumentDB/locations/restorableDatabaseAccounts/read',
      'Microsoft.Quota/quotas/read',
      'Microsoft.Quota/usages/read',
    ]);
    // The credential hygiene check's vaults are read (Key Vault Reader at least), never more than rotation needs.
    expect(targets.vaults.map((v) => [v.name, v.role])).toEqual([
      ['contoso-kv', 'keyVaultSecretsOfficer'],
      ['contoso-payments-kv', 'keyVaultSecretsOfficer'],
    ]);
    expect(() => deriveInspection(noWorkspaceId)).toThrow(/workspace law-stamps has no resourceId/);
    expect(() => deriveInspection(otherType)).toThrow(
      /Microsoft.Web\/sites\/app is not a resource the deployment can grant monitoringReader on/,
    );
  });

  it('gives a vault only the credential hygiene check reads Key Vault Reader', () => {
    // Prepare
    const validation = validatePolicy(
      'version: 1\nsecrets:\n  - { vault: kv-one, name: a, owner: o }\nchecks:\n  credentialHygiene:\n    vaults: [kv-two]\n',
      'inline',
    );
    if (!validation.ok) throw new Error(validation.problems.join('; '));

    // Act
    const targets = derivePolicyTargets(validation.policy, 'inline');

    // Assess
    expect(targets.vaults.map((v) => [v.name, v.role, v.secrets])).toEqual([
      ['kv-one', 'keyVaultReader', ['a']],
      ['kv-two', 'keyVaultReader', []],
    ]);
    expect(targets.inspection).toEqual({ resources: [], subscriptions: [], subscriptionActions: [] });
  });
});

describe('npm run infra:params: the playbooks (issue 10)', () => {
  const FULL = join(ROOT, 'policy/examples/full.policy.yaml');
  const sub = '00000000-0000-0000-0000-000000000000';
  const rg = `/subscriptions/${sub}/resourceGroups/rg-data/providers`;

  it("gives each scaling playbook its adapter's role on exactly its target, and nothing to notify-only", async () => {
    // Prepare
    const policy = await loadPolicy(FULL);

    // Act
    const { roles, grants } = deriveRemediation(policy);

    // Assess
    expect(grants.map((g) => [g.role, g.resourceId, g.playbooks.join(' ')])).toEqual([
      // An AKS deployment (here its KEDA ScaledObject) is scaled by kubectl through the cluster's run command.
      [
        'aksConsumerScale',
        '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-compute/providers/Microsoft.ContainerService/managedClusters/aks-stamp-weu',
        'shipments-consumers',
      ],
      // A Container App's update is a long-running operation whose status ARM keeps at the subscription.
      ['containerAppOperationStatus', `/subscriptions/${sub}`, 'payments-consumers'],
      ['containerAppReplicas', `${rg}/Microsoft.App/containerApps/ca-payments-worker`, 'payments-consumers'],
      // migrateToAutoscale: true adds the migration, on the same container only.
      [
        'cosmosContainerAutoscaleMigration',
        `${rg}/Microsoft.DocumentDB/databaseAccounts/contoso-data/sqlDatabases/orders/containers/orders`,
        'orders-container-ru',
      ],
      [
        'cosmosContainerThroughput',
        `${rg}/Microsoft.DocumentDB/databaseAccounts/contoso-data/sqlDatabases/orders/containers/orders`,
        'orders-container-ru',
      ],
      ['cosmosThroughputOperationStatus', `/subscriptions/${sub}`, 'orders-container-ru'],
      [
        'serviceBusMessagingUnits',
        `${rg}/Microsoft.ServiceBus/namespaces/contoso-payments-sb`,
        'payments-messaging-units',
      ],
    ]);
    expect(grants.map((g) => g.resourceType)).toEqual([
      'Microsoft.ContainerService/managedClusters',
      'subscription',
      'Microsoft.App/containerApps',
      'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers',
      'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers',
      'subscription',
      'Microsoft.ServiceBus/namespaces',
    ]);
    expect(grants[0]!.names).toEqual(['aks-stamp-weu']);
    expect(grants[3]!.names).toEqual(['contoso-data', 'orders', 'orders']);
    // Only the roles used, each custom, with exactly its adapter's actions.
    expect(roles.map((r) => r.name)).toEqual(grants.map((g) => g.role));
    expect(roles.every((r) => r.builtInRoleId === null)).toBe(true);
    expect(roles.find((r) => r.name === 'serviceBusMessagingUnits')!.actions).toEqual([
      'Microsoft.ServiceBus/namespaces/read',
      'Microsoft.ServiceBus/namespaces/write',
    ]);
  });

  it('scopes a playbook on shared database throughput to the database, without migration when not asked', async () => {
    // Prepare
    const policy = await loadPolicy(FULL);
    const shared = {
      ...policy,
      playbooks: policy.playbooks.map((p) =>
        p.action === 'cosmos-raise-autoscale-max' && p.target.kind === 'cosmosThroughput'
          ? { ...p, migrateToAutoscale: false, target: { ...p.target, container: undefined } }
          : p,
      ),
    };

    // Act
    const { grants } = deriveRemediation(shared);

    // Assess
    expect(grants.filter((g) => g.role.startsWith('cosmos')).map((g) => [g.role, g.resourceType])).toEqual([
      ['cosmosDatabaseThroughput', 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases'],
      ['cosmosThroughputOperationStatus', 'subscription'],
    ]);
  });

  it("makes each scaling playbook a metric alert rule that the intake's findPlaybook matches to it", async () => {
    // Prepare
    const policy = await loadPolicy(FULL);

    // Act
    const { alertRules } = deriveRemediation(policy);
    // What Azure Monitor sends for each rule (common alert schema): its name, its scope, its
    // condition's metric, its action's webhook properties.
    const matched = alertRules.map(
      (rule) =>
        findPlaybook(policy.playbooks, {
          alertRule: rule.name,
          targetResourceIds: [rule.resourceId],
          conditions: [{ metricName: rule.metric }],
          customProperties: rule.customProperties,
        })?.name,
    );

    // Assess
    expect(alertRules.map((r) => r.playbook)).toEqual([
      'orders-container-ru',
      'payments-consumers',
      'payments-messaging-units',
      'shipments-consumers',
    ]);
    expect(matched).toEqual(alertRules.map((r) => r.playbook));
    expect(alertRules[0]).toEqual({
      playbook: 'orders-container-ru',
      name: 'cosmos-ru-orders',
      resourceId: `${rg}/Microsoft.DocumentDB/databaseAccounts/contoso-data`,
      subscriptionId: sub,
      resourceGroup: 'rg-data',
      metricNamespace: 'Microsoft.DocumentDB/databaseAccounts',
      metric: 'NormalizedRUConsumption',
      aggregation: 'Maximum',
      threshold: 95,
      windowMinutes: 5,
      frequencyMinutes: 1,
      severity: 2,
      dimensions: [
        { name: 'CollectionName', values: ['orders'] },
        { name: 'DatabaseName', values: ['orders'] },
      ],
      customProperties: { 'stampkeeper-playbook': 'orders-container-ru' },
    });
    // Defaults: above what counts as recovered, over 5 minutes, each minute.
    expect(alertRules[2]).toMatchObject({
      threshold: 1000,
      windowMinutes: 5,
      frequencyMinutes: 1,
      severity: 2,
    });
  });

  it('refuses a playbook whose match no rule on its signal can satisfy, or a threshold Bicep cannot carry', async () => {
    // Prepare
    const policy = await loadPolicy(FULL);
    const withPlaybook = (change: (p: ScalingPlaybook) => ScalingPlaybook) => ({
      ...policy,
      playbooks: policy.playbooks.map((p) =>
        p.name === 'orders-container-ru' ? change(p as ScalingPlaybook) : p,
      ),
    });

    // Act
    const problems = (change: (p: ScalingPlaybook) => ScalingPlaybook) => {
      try {
        deriveRemediation(withPlaybook(change));
        return [];
      } catch (error) {
        return error instanceof ConfigurationError ? error.problems : [String(error)];
      }
    };

    // Assess
    expect(
      problems((p) => ({ ...p, match: { ...p.match, resourceType: 'Microsoft.ServiceBus/namespaces' } })),
    ).toEqual([
      expect.stringMatching(
        /^playbooks\.orders-container-ru\.match\.resourceType: .* is not the type of the signal's resource/,
      ),
    ]);
    expect(problems((p) => ({ ...p, match: { ...p.match, metric: 'TotalRequests' } }))).toEqual([
      expect.stringMatching(
        /^playbooks\.orders-container-ru\.match\.metric: TotalRequests is not the signal's metric/,
      ),
    ]);
    expect(
      problems((p) => ({ ...p, signal: { ...p.signal, alert: { ...p.signal.alert!, threshold: 95.5 } } })),
    ).toEqual([expect.stringMatching(/signal\.alert\.threshold: 95\.5 is not a whole number/)]);
    // Two playbooks whose rules would share one name in one resource group.
    expect(() =>
      deriveRemediation({
        ...policy,
        playbooks: policy.playbooks.map((p) =>
          p.name === 'payments-consumers' ? { ...p, match: { alertRule: 'sb-backlog-payments' } } : p,
        ),
      }),
    ).toThrow(/one alert rule name/);
  });
});
