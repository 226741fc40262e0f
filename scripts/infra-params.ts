/**
 * `npm run infra:params [-- --policy <file>] [--out <file>] [--check]`: turns the operations policy
 * into the parameter the Bicep consumes (`infra/policy.targets.json`, loaded by every
 * `infra/env/*.bicepparam`): the managed vaults with the role each needs, what the notification
 * channels need (the Event Grid topic, the webhook URL settings), and the roles the rotations need
 * on the keys' resources and on the consumers (`rotation`).
 *
 * Roles follow from what the policy asks the app to do, the narrowest built-in role for it
 * (docs/deploy.md justifies each). `--check` changes nothing and fails when the file is out of
 * date; a test does the same, so the committed file cannot drift from the committed policy.
 */
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { playbookAlertRule, type ScalingPlaybook } from '../src/lib/config/playbooks';
import {
  type ConsumerPolicy,
  consumerName,
  type KeyRotationPolicy,
  loadPolicy,
  type Policy,
  type RotationProvider,
} from '../src/lib/config/policy';
import { ConfigurationError } from '../src/lib/core/errors';

/** Vault roles, least first (`infra/modules/types.bicep` `vaultRole`, `roles`). */
export const VAULT_ROLES = ['keyVaultReader', 'keyVaultSecretsOfficer'] as const;
export type VaultRole = (typeof VAULT_ROLES)[number];

/**
 * The role a secret's rotation needs on its vault. `manual`: the app only reads metadata (expiry,
 * versions) and notifies, so Key Vault Reader, which cannot read values. A provider that writes new
 * versions needs Key Vault Secrets Officer. Typed on the policy's provider union: a new provider
 * does not compile until it is given its role here.
 */
export const ROTATION_ROLES: Record<RotationProvider, VaultRole> = {
  manual: 'keyVaultReader',
  cosmosDbKeys: 'keyVaultSecretsOfficer',
  storageAccountKeys: 'keyVaultSecretsOfficer',
  serviceBusSasKeys: 'keyVaultSecretsOfficer',
};

export interface PolicyVault {
  name: string;
  url: string;
  role: VaultRole;
  secrets: string[];
}

/** Service Bus data roles, least first (`infra/modules/types.bicep` `roles`). */
export type ServiceBusRole = 'serviceBusDataReceiver' | 'serviceBusDataSender';

/**
 * A namespace the dead-letter entities live in, and exactly the entities the app needs a role on:
 * Azure Service Bus Data Receiver on each dead-letter entity (its trigger and the peek that reads
 * the batch whole) and on the topic's other subscriptions (their rules are read before a replay
 * through the topic: a rule manager needs Listen only); Data Sender on each replay target (the
 * queue, the subscription's topic, and `replay.targets`).
 */
export interface PolicyServiceBusNamespace {
  id: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  queueRoles: Array<{ queue: string; role: ServiceBusRole }>;
  topicRoles: Array<{ topic: string; role: ServiceBusRole }>;
  subscriptionRoles: Array<{ topic: string; subscription: string; role: ServiceBusRole }>;
  /** Monitoring Reader on the namespace: an entity of it names its region (the depth report reads its metrics). */
  metricsReader: boolean;
}

/**
 * Read-only roles the maintenance checks and the gates need on the resources the policy names
 * (`infra/modules/types.bicep` `inspectionRole`): Reader on a Cosmos DB account or an AKS cluster
 * (their properties, backup policy, upgrade profile; no key listing, which is an action), Monitoring
 * Reader on a gate's metric resource (`Microsoft.Insights/metrics/read`), Log Analytics Reader on a
 * gate's workspace (query and search).
 */
export const INSPECTION_ROLES = ['reader', 'monitoringReader', 'logAnalyticsReader'] as const;
export type InspectionRole = (typeof INSPECTION_ROLES)[number];

/**
 * Resource types the deployment can grant a role on (one typed `existing` resource each in
 * `infra/modules/inspectionReader.bicep`), in Azure's casing. A gate reading the metrics of another
 * type is refused here until that module knows it.
 */
export const INSPECTABLE_TYPES = [
  'Microsoft.ContainerService/managedClusters',
  'Microsoft.DocumentDB/databaseAccounts',
  'Microsoft.Insights/components',
  'Microsoft.OperationalInsights/workspaces',
  'Microsoft.ServiceBus/namespaces',
] as const;

/**
 * Subscription-scope reads, by check: what the adapters' TSDoc names (src/lib/azure/cosmosDbInventory.ts,
 * aksInventory.ts, quotaReader.ts). No built-in role is that narrow (Reader on the subscription would
 * read everything), so they make one custom role.
 */
export const SUBSCRIPTION_ACTIONS = {
  backupReadiness: ['Microsoft.DocumentDB/locations/restorableDatabaseAccounts/read'],
  platformVersions: ['Microsoft.ContainerService/locations/kubernetesVersions/read'],
  quotaHeadroom: ['Microsoft.Quota/quotas/read', 'Microsoft.Quota/usages/read'],
} as const;

/** A role on one resource the policy names, with the parts of its id the Bicep scopes by. */
export interface InspectedResource {
  resourceId: string;
  subscriptionId: string;
  resourceGroup: string;
  type: (typeof INSPECTABLE_TYPES)[number];
  name: string;
  role: InspectionRole;
  /** What reads it (`checks.backupReadiness`, `gates.stamp-health`...), for the assignment's description. */
  readBy: string[];
}

export interface PolicyTargets {
  $comment: string;
  policy: string;
  vaults: PolicyVault[];
  notifications: { eventGridTopic: boolean; urlSettings: string[] };
  serviceBus: {
    namespaces: PolicyServiceBusNamespace[];
    /** Each connection setting prefix of the dead-letter triggers, and the namespace it reaches (index). */
    connections: Array<{ setting: string; namespace: number }>;
  };
  /** What the maintenance checks and the gates read (docs/deploy.md, "Checks and gates"). */
  inspection: {
    resources: InspectedResource[];
    /** Subscriptions where the custom inspection role is assigned, and its actions. */
    subscriptions: string[];
    subscriptionActions: string[];
  };
  rotation: RotationAccess;
  /** What the alert playbooks need: roles on their targets, and their alert rules (issue 10). */
  remediation: RemediationAccess;
}

// --- Rotation: the roles on the keys' resources and on the consumers (issue 8) ---------------

/**
 * A role the rotation needs on a resource: a built-in role when one holds exactly these actions
 * (`builtInRoleId`), else a custom role the deployment defines with exactly these actions. The
 * actions are what the adapter calls (its TSDoc names them; `rotationRbac.test.ts` derives them
 * from the requests the adapters send to the sandbox and holds the two equal).
 */
export interface RotationRole {
  name: RotationRoleName;
  builtInRoleId: string | null;
  description: string;
  actions: string[];
}

/** One role assignment: `role` for the app on `resourceId` (a resource, or a subscription). */
export interface RotationGrant {
  role: RotationRoleName;
  resourceId: string;
  subscriptionId: string;
  /** Empty for a subscription-scope grant. */
  resourceGroup: string;
  /** The resource type (`Microsoft.DocumentDB/databaseAccounts`...), or `subscription`. */
  resourceType: string;
  /** The resource's names, outermost first (namespace, queue, rule). */
  names: string[];
  /** The policy's secrets (vault/secret) this grant serves. */
  secrets: string[];
}

export interface RotationAccess {
  roles: RotationRole[];
  grants: RotationGrant[];
}

/** The Azure built-in "Storage Account Key Operator Service Role": exactly listkeys + regeneratekey. */
export const STORAGE_ACCOUNT_KEY_OPERATOR = '81a9662b-bebf-436f-a333-f67b29880f12';

/**
 * Every role the rotation can need, by name, with the actions of the adapter that uses it
 * (`src/lib/azure/*.ts`, which names them in its TSDoc).
 */
export const ROTATION_ROLE_DEFINITIONS = {
  cosmosDbKeys: {
    builtInRoleId: null,
    description:
      'List and regenerate the read-write keys of a Cosmos DB account (src/lib/azure/cosmosDbKeys.ts)',
    actions: [
      'Microsoft.DocumentDB/databaseAccounts/listKeys/action',
      'Microsoft.DocumentDB/databaseAccounts/regenerateKey/action',
    ],
  },
  cosmosDbReadOnlyKeys: {
    builtInRoleId: null,
    description:
      'List and regenerate the read-only keys of a Cosmos DB account (src/lib/azure/cosmosDbKeys.ts, pair readOnly)',
    actions: [
      'Microsoft.DocumentDB/databaseAccounts/readonlykeys/action',
      'Microsoft.DocumentDB/databaseAccounts/regenerateKey/action',
    ],
  },
  cosmosDbOperationStatus: {
    builtInRoleId: null,
    description:
      "Read the status of Cosmos DB's long-running operations (a key regeneration), which ARM keeps at the subscription (src/lib/azure/cosmosDbKeys.ts)",
    actions: ['Microsoft.DocumentDB/locations/operationsStatus/read'],
  },
  storageAccountKeys: {
    builtInRoleId: STORAGE_ACCOUNT_KEY_OPERATOR,
    description: 'List and regenerate the keys of a Storage account (src/lib/azure/storageKeys.ts)',
    actions: [
      'Microsoft.Storage/storageAccounts/listkeys/action',
      'Microsoft.Storage/storageAccounts/regeneratekey/action',
    ],
  },
  serviceBusNamespaceRuleKeys: {
    builtInRoleId: null,
    description:
      'List and regenerate the keys of a Service Bus namespace SAS rule (src/lib/azure/serviceBusKeys.ts)',
    actions: [
      'Microsoft.ServiceBus/namespaces/authorizationRules/listKeys/action',
      'Microsoft.ServiceBus/namespaces/authorizationRules/regenerateKeys/action',
    ],
  },
  serviceBusQueueRuleKeys: {
    builtInRoleId: null,
    description:
      'List and regenerate the keys of a Service Bus queue SAS rule (src/lib/azure/serviceBusKeys.ts)',
    actions: [
      'Microsoft.ServiceBus/namespaces/queues/authorizationRules/listKeys/action',
      'Microsoft.ServiceBus/namespaces/queues/authorizationRules/regenerateKeys/action',
    ],
  },
  serviceBusTopicRuleKeys: {
    builtInRoleId: null,
    description:
      'List and regenerate the keys of a Service Bus topic SAS rule (src/lib/azure/serviceBusKeys.ts)',
    actions: [
      'Microsoft.ServiceBus/namespaces/topics/authorizationRules/listKeys/action',
      'Microsoft.ServiceBus/namespaces/topics/authorizationRules/regenerateKeys/action',
    ],
  },
  aksRunCommand: {
    builtInRoleId: null,
    description:
      'Restart a deployment through the AKS run command and read its result (src/lib/azure/aksRoller.ts)',
    actions: [
      'Microsoft.ContainerService/managedClusters/runCommand/action',
      'Microsoft.ContainerService/managedClusters/commandResults/read',
    ],
  },
  containerAppRestart: {
    builtInRoleId: null,
    description:
      'Read a Container App, restart its active revision and read the revision (src/lib/azure/containerAppRoller.ts)',
    actions: [
      'Microsoft.App/containerApps/read',
      'Microsoft.App/containerApps/revisions/read',
      'Microsoft.App/containerApps/revisions/restart/action',
    ],
  },
  webAppRestart: {
    builtInRoleId: null,
    description: 'Restart an App Service or Functions app (src/lib/azure/webAppRoller.ts)',
    actions: ['Microsoft.Web/sites/restart/action'],
  },
} as const satisfies Record<string, Omit<RotationRole, 'name' | 'actions'> & { actions: readonly string[] }>;

export type RotationRoleName = keyof typeof ROTATION_ROLE_DEFINITIONS;

/** `/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{type}/{name}]...` split. */
function armParts(resourceId: string): Omit<RotationGrant, 'role' | 'secrets'> {
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/([^/]+)\/(.+)$/i.exec(resourceId);
  const rest = m?.[4]?.split('/') ?? [];
  if (!m || rest.length % 2 !== 0) {
    throw new ConfigurationError(`${resourceId}: not an Azure resource id`, [
      `${resourceId}: not an Azure resource id`,
    ]);
  }
  const types = rest.filter((_, i) => i % 2 === 0);
  const names = rest.filter((_, i) => i % 2 === 1);
  return {
    resourceId,
    subscriptionId: m[1]!,
    resourceGroup: m[2]!,
    resourceType: `${m[3]}/${types.join('/')}`,
    names,
  };
}

/** The role a key provider needs on its resource (the Service Bus rule's shape decides which). */
function keyRole(rotation: KeyRotationPolicy, resourceType: string): RotationRoleName {
  switch (rotation.provider) {
    case 'cosmosDbKeys':
      return rotation.keyPair === 'readOnly' ? 'cosmosDbReadOnlyKeys' : 'cosmosDbKeys';
    case 'storageAccountKeys':
      return 'storageAccountKeys';
    case 'serviceBusSasKeys': {
      const shape = resourceType.toLowerCase();
      if (shape.endsWith('/queues/authorizationrules')) return 'serviceBusQueueRuleKeys';
      if (shape.endsWith('/topics/authorizationrules')) return 'serviceBusTopicRuleKeys';
      return 'serviceBusNamespaceRuleKeys';
    }
  }
}

/** The role a consumer's roll needs and on which resource; undefined for rolls without Azure access. */
function consumerRole(consumer: ConsumerPolicy): { role: RotationRoleName; resourceId: string } | undefined {
  switch (consumer.type) {
    case 'aksDeployment':
      return { role: 'aksRunCommand', resourceId: consumer.clusterId };
    case 'containerApp':
      return { role: 'containerAppRestart', resourceId: consumer.resourceId };
    case 'appService':
      return { role: 'webAppRestart', resourceId: consumer.resourceId };
    case 'webhook':
    case 'waitForReload':
      return undefined; // the webhook's URL carries its own credential; a reload needs nothing
  }
}

/**
 * What the policy's rotations need on Azure resources: per key resource and per consumer, the role
 * of its adapter on exactly that resource; the Cosmos DB operation-status read at the subscription
 * of each Cosmos DB account (ARM keeps the status there, outside the account). Only the roles used
 * are listed. Sorted, one grant per (role, resource).
 */
export function deriveRotationAccess(policy: Policy): RotationAccess {
  const grants = new Map<string, RotationGrant>();
  const add = (role: RotationRoleName, parts: Omit<RotationGrant, 'role' | 'secrets'>, secret: string) => {
    const key = `${role}|${parts.resourceId.toLowerCase()}`;
    const grant = grants.get(key) ?? { role, ...parts, secrets: [] };
    if (!grant.secrets.includes(secret)) grant.secrets.push(secret);
    grants.set(key, grant);
  };
  for (const secret of policy.secrets) {
    if (secret.rotation.provider === 'manual') continue;
    const rotation = secret.rotation;
    const who = `${vaultNameOf(secret.vaultUrl)}/${secret.name}`;
    const target = armParts(rotation.resourceId);
    add(keyRole(rotation, target.resourceType), target, who);
    if (rotation.provider === 'cosmosDbKeys') {
      add(
        'cosmosDbOperationStatus',
        {
          resourceId: `/subscriptions/${target.subscriptionId}`,
          subscriptionId: target.subscriptionId,
          resourceGroup: '',
          resourceType: 'subscription',
          names: [],
        },
        who,
      );
    }
    for (const consumer of rotation.consumers) {
      const needed = consumerRole(consumer);
      if (!needed) continue;
      add(needed.role, armParts(needed.resourceId), `${who} (consumer ${consumerName(consumer)})`);
    }
  }
  const sorted = [...grants.values()]
    .map((g) => ({ ...g, secrets: g.secrets.sort() }))
    .sort((a, b) => a.role.localeCompare(b.role) || a.resourceId.localeCompare(b.resourceId));
  const used = [...new Set(sorted.map((g) => g.role))].sort();
  return {
    roles: used.map((name) => ({
      name,
      builtInRoleId: ROTATION_ROLE_DEFINITIONS[name].builtInRoleId,
      description: ROTATION_ROLE_DEFINITIONS[name].description,
      actions: [...ROTATION_ROLE_DEFINITIONS[name].actions],
    })),
    grants: sorted,
  };
}

// --- Remediation: the roles on the playbooks' targets and their alert rules (issue 10) -------

/**
 * Every role a scaling playbook can need, with exactly the actions of the capacity adapter that
 * uses it (`src/lib/azure/cosmosThroughput.ts`, `serviceBusCapacity.ts`, `containerAppScale.ts`
 * name them; `remediationRbac.test.ts` derives them from the requests the adapters send to the
 * sandbox and holds the two equal). No built-in role is this narrow (Cosmos DB Operator or
 * Contributor roles would also delete, list keys, change the account).
 */
export const REMEDIATION_ROLE_DEFINITIONS = {
  cosmosContainerThroughput: {
    builtInRoleId: null,
    description:
      "Read and change a Cosmos DB container's throughput settings (src/lib/azure/cosmosThroughput.ts)",
    actions: [
      'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/throughputSettings/read',
      'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/throughputSettings/write',
    ],
  },
  cosmosDatabaseThroughput: {
    builtInRoleId: null,
    description:
      "Read and change a Cosmos DB database's shared throughput settings (src/lib/azure/cosmosThroughput.ts)",
    actions: [
      'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/throughputSettings/read',
      'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/throughputSettings/write',
    ],
  },
  cosmosContainerAutoscaleMigration: {
    builtInRoleId: null,
    description:
      "Move a Cosmos DB container's manual throughput to autoscale (src/lib/azure/cosmosThroughput.ts, migrateToAutoscale)",
    actions: [
      'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/throughputSettings/migrateToAutoscale/action',
    ],
  },
  cosmosDatabaseAutoscaleMigration: {
    builtInRoleId: null,
    description:
      "Move a Cosmos DB database's manual shared throughput to autoscale (src/lib/azure/cosmosThroughput.ts, migrateToAutoscale)",
    actions: [
      'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/throughputSettings/migrateToAutoscale/action',
    ],
  },
  cosmosThroughputOperationStatus: {
    builtInRoleId: null,
    description:
      "Read the status of Cosmos DB's long-running operations (a throughput change), which ARM keeps at the subscription (src/lib/azure/cosmosThroughput.ts)",
    actions: ['Microsoft.DocumentDB/locations/operationsStatus/read'],
  },
  serviceBusMessagingUnits: {
    builtInRoleId: null,
    description:
      'Read a Service Bus namespace and change its premium messaging units (src/lib/azure/serviceBusCapacity.ts)',
    actions: ['Microsoft.ServiceBus/namespaces/read', 'Microsoft.ServiceBus/namespaces/write'],
  },
  containerAppReplicas: {
    builtInRoleId: null,
    description: 'Read a Container App and change its max replicas (src/lib/azure/containerAppScale.ts)',
    actions: ['Microsoft.App/containerApps/read', 'Microsoft.App/containerApps/write'],
  },
  containerAppOperationStatus: {
    builtInRoleId: null,
    description:
      'Follow a Container App update (a long-running operation) whose status and result ARM keeps at the subscription (src/lib/azure/containerAppScale.ts)',
    actions: [
      'Microsoft.App/locations/containerappOperationResults/read',
      'Microsoft.App/locations/containerappOperationStatuses/read',
    ],
  },
  aksConsumerScale: {
    builtInRoleId: null,
    description:
      "Run kubectl in an AKS cluster (kubectl get, scale, patch of a ScaledObject) and read its result, to change a deployment's replicas or its KEDA max (src/lib/azure/aksScale.ts)",
    actions: [
      'Microsoft.ContainerService/managedClusters/commandResults/read',
      'Microsoft.ContainerService/managedClusters/runCommand/action',
    ],
  },
} as const satisfies Record<string, { builtInRoleId: null; description: string; actions: readonly string[] }>;

export type RemediationRoleName = keyof typeof REMEDIATION_ROLE_DEFINITIONS;

/** A role the playbooks need (always custom: see REMEDIATION_ROLE_DEFINITIONS). */
export interface RemediationRole {
  name: RemediationRoleName;
  builtInRoleId: null;
  description: string;
  actions: string[];
}

/** One role assignment: `role` for the app on exactly `resourceId` (a playbook's target, or a subscription). */
export interface RemediationGrant extends Omit<RotationGrant, 'role' | 'secrets'> {
  role: RemediationRoleName;
  /** The playbooks this grant serves. */
  playbooks: string[];
}

/**
 * A playbook's metric alert rule (`Microsoft.Insights/metricAlerts`, in the signal resource's own
 * resource group): the signal's metric above `threshold` over the window, sent to the app's action
 * group with `customProperties` as the action's webhook properties (the common alert schema carries
 * them as `data.customProperties`). Its name and properties satisfy the playbook's `match`.
 */
export interface PlaybookAlertRuleTarget {
  playbook: string;
  name: string;
  resourceId: string;
  subscriptionId: string;
  resourceGroup: string;
  /** The signal resource's type, in the id's casing: the rule's metric namespace. */
  metricNamespace: string;
  metric: string;
  aggregation: ScalingPlaybook['signal']['aggregation'];
  threshold: number;
  windowMinutes: number;
  frequencyMinutes: number;
  severity: number;
  dimensions: Array<{ name: string; values: string[] }>;
  customProperties: Record<string, string>;
}

export interface RemediationAccess {
  roles: RemediationRole[];
  grants: RemediationGrant[];
  alertRules: PlaybookAlertRuleTarget[];
}

/** The roles a scaling playbook needs, and on which resource (ARM id, Azure's shape). */
function playbookRoles(playbook: ScalingPlaybook): Array<{ role: RemediationRoleName; resourceId: string }> {
  const target = playbook.target;
  switch (target.kind) {
    case 'cosmosThroughput': {
      // The throughput settings are a child of the container (or database): the narrowest scope
      // an assignment can have that covers them.
      const database = `${target.accountId}/sqlDatabases/${target.database}`;
      const container = target.container ? `${database}/containers/${target.container}` : undefined;
      const subscription = `/subscriptions/${armParts(target.accountId).subscriptionId}`;
      return [
        container
          ? { role: 'cosmosContainerThroughput', resourceId: container }
          : { role: 'cosmosDatabaseThroughput', resourceId: database },
        ...(playbook.migrateToAutoscale
          ? [
              container
                ? { role: 'cosmosContainerAutoscaleMigration' as const, resourceId: container }
                : { role: 'cosmosDatabaseAutoscaleMigration' as const, resourceId: database },
            ]
          : []),
        { role: 'cosmosThroughputOperationStatus', resourceId: subscription },
      ];
    }
    case 'serviceBusNamespace':
      return [{ role: 'serviceBusMessagingUnits', resourceId: target.namespaceId }];
    case 'containerApp':
      return [
        { role: 'containerAppReplicas', resourceId: target.containerAppId },
        {
          role: 'containerAppOperationStatus',
          resourceId: `/subscriptions/${armParts(target.containerAppId).subscriptionId}`,
        },
      ];
    case 'aksDeployment':
      // The run command is an action on the cluster: no narrower ARM scope exists. Kubernetes RBAC
      // narrows it further on an Entra-enabled cluster (docs/deploy.md).
      return [{ role: 'aksConsumerScale', resourceId: target.clusterId }];
  }
}

/**
 * The alert rule of a scaling playbook. Its name is `match.alertRule` (else
 * `stampkeeper-playbook-<name>`), its webhook properties hold `match.customProperty` (its value, or
 * the playbook's name). A `match.resourceType` or `match.metric` the rule cannot send (another
 * resource type or metric than the signal's) is refused: the intake would never match the alert.
 */
export function playbookAlertRuleOf(playbook: ScalingPlaybook): PlaybookAlertRuleTarget {
  const { signal, match } = playbook;
  const parts = armParts(signal.resourceId);
  const where = `playbooks.${playbook.name}`;
  const problems: string[] = [];
  if (
    match.resourceType !== undefined &&
    match.resourceType.toLowerCase() !== parts.resourceType.toLowerCase()
  )
    problems.push(
      `${where}.match.resourceType: ${match.resourceType} is not the type of the signal's resource (${parts.resourceType}), which the alert rule targets`,
    );
  if (match.metric !== undefined && match.metric.toLowerCase() !== signal.metric.toLowerCase())
    problems.push(
      `${where}.match.metric: ${match.metric} is not the signal's metric (${signal.metric}), which the alert rule watches`,
    );
  const rule = playbookAlertRule(signal);
  // The template's parameter types are Bicep's, which has integers only.
  if (!Number.isInteger(rule.threshold))
    problems.push(
      `${where}.signal.alert.threshold: ${rule.threshold} is not a whole number, which the deployment's alert rule needs (set signal.alert.threshold)`,
    );
  if (problems.length > 0)
    throw new ConfigurationError(
      `${where}: the deployment cannot make an alert rule the playbook matches`,
      problems,
    );
  return {
    playbook: playbook.name,
    name: match.alertRule ?? `stampkeeper-playbook-${playbook.name}`,
    resourceId: signal.resourceId,
    subscriptionId: parts.subscriptionId,
    resourceGroup: parts.resourceGroup,
    metricNamespace: parts.resourceType,
    metric: signal.metric,
    aggregation: signal.aggregation,
    threshold: rule.threshold,
    windowMinutes: rule.windowMinutes,
    frequencyMinutes: rule.frequencyMinutes,
    severity: rule.severity,
    dimensions: Object.entries(signal.dimensions)
      .map(([name, value]) => ({ name, values: [value] }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    customProperties: match.customProperty
      ? { [match.customProperty.name]: match.customProperty.value ?? playbook.name }
      : {},
  };
}

/**
 * What the policy's playbooks need: per scaling playbook, the role of its adapter on exactly its
 * target (Cosmos DB container or database, Service Bus namespace, Container App), Cosmos DB's
 * operation status at the target's subscription, and one metric alert rule on its signal.
 * `notify-only` playbooks change nothing and have no signal: they take alerts from rules people
 * already have. Sorted, one grant per (role, resource).
 */
export function deriveRemediation(policy: Policy): RemediationAccess {
  const grants = new Map<string, RemediationGrant>();
  const alertRules: PlaybookAlertRuleTarget[] = [];
  const scaling = policy.playbooks.filter((p): p is ScalingPlaybook => p.action !== 'notify-only');
  for (const playbook of scaling) {
    for (const { role, resourceId } of playbookRoles(playbook)) {
      const key = `${role}|${resourceId.toLowerCase()}`;
      const parts: Omit<RotationGrant, 'role' | 'secrets'> = resourceId.includes('/resourceGroups/')
        ? armParts(resourceId)
        : {
            resourceId,
            subscriptionId: resourceId.split('/')[2]!,
            resourceGroup: '',
            resourceType: 'subscription',
            names: [],
          };
      const grant = grants.get(key) ?? { role, ...parts, playbooks: [] };
      if (!grant.playbooks.includes(playbook.name)) grant.playbooks.push(playbook.name);
      grants.set(key, grant);
    }
    alertRules.push(playbookAlertRuleOf(playbook));
  }
  const names = new Map<string, string>();
  for (const rule of alertRules) {
    // Alert rule names are unique per resource group.
    const key = `${rule.subscriptionId}/${rule.resourceGroup}/${rule.name}`.toLowerCase();
    const other = names.get(key);
    if (other)
      throw new ConfigurationError(`playbooks ${other} and ${rule.playbook}: one alert rule name`, [
        `playbooks.${rule.playbook}: alert rule ${rule.name} in ${rule.resourceGroup} is also playbook ${other}'s`,
      ]);
    names.set(key, rule.playbook);
  }
  const sorted = [...grants.values()]
    .map((g) => ({ ...g, playbooks: g.playbooks.sort() }))
    .sort((a, b) => a.role.localeCompare(b.role) || a.resourceId.localeCompare(b.resourceId));
  const used = [...new Set(sorted.map((g) => g.role))].sort();
  return {
    roles: used.map((name) => ({
      name,
      builtInRoleId: null,
      description: REMEDIATION_ROLE_DEFINITIONS[name].description,
      actions: [...REMEDIATION_ROLE_DEFINITIONS[name].actions],
    })),
    grants: sorted,
    alertRules: alertRules.sort((a, b) => a.playbook.localeCompare(b.playbook)),
  };
}

export const DEFAULT_POLICY = 'policy/stampkeeper.policy.yaml';
export const DEFAULT_OUT = 'infra/policy.targets.json';

/**
 * The vault name Azure knows a vault by: the first DNS label of `https://<name>.vault.<cloud>`.
 * Throws for a URL that is not a Key Vault URL (the policy also accepts other https hosts, which
 * infrastructure cannot target).
 */
export function vaultNameOf(vaultUrl: string): string {
  const host = new URL(vaultUrl).hostname.toLowerCase();
  const m = /^([a-z][a-z0-9-]{1,22}[a-z0-9])\.vault\.[a-z0-9.-]+$/.exec(host);
  if (!m) {
    throw new ConfigurationError(
      `vault ${vaultUrl}: not a Key Vault URL (https://<name>.vault.azure.net): infrastructure cannot target it`,
      [`vault ${vaultUrl}: not a Key Vault URL`],
    );
  }
  return m[1]!;
}

const TOP_LEVEL_ID =
  /^\/subscriptions\/([0-9a-f-]{36})\/resourceGroups\/([^/]+)\/providers\/([^/]+)\/([^/]+)\/([^/]+)$/i;

/** The parts of a top-level resource id of a type the deployment can grant a role on; throws otherwise. */
export function inspectedResourceOf(
  resourceId: string,
  role: InspectionRole,
  readBy: string,
): InspectedResource {
  const m = TOP_LEVEL_ID.exec(resourceId.trim());
  const type = m
    ? INSPECTABLE_TYPES.find((t) => t.toLowerCase() === `${m[3]}/${m[4]}`.toLowerCase())
    : undefined;
  if (!m || !type) {
    throw new ConfigurationError(
      `${readBy}: ${resourceId} is not a resource the deployment can grant ${role} on (a top-level resource of type ${INSPECTABLE_TYPES.join(', ')}; add the type to infra/modules/inspectionReader.bicep and INSPECTABLE_TYPES)`,
      [`${readBy}: ${resourceId}: not an inspectable resource`],
    );
  }
  const subscriptionId = m[1]!.toLowerCase();
  const resourceGroup = m[2]!;
  const name = m[5]!;
  return {
    resourceId: `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/${type}/${name}`,
    subscriptionId,
    resourceGroup,
    type,
    name,
    role,
    readBy: [readBy],
  };
}

/**
 * What the checks and the gates read: a read-only role on each resource the policy names, and the
 * subscription-scope reads some checks make (restorable accounts, a region's Kubernetes versions,
 * quotas). A gate's workspace needs its resource id (the query API takes the workspace id only).
 */
export function deriveInspection(policy: Policy): PolicyTargets['inspection'] {
  const resources = new Map<string, InspectedResource>();
  const subscriptions = new Set<string>();
  const actions = new Set<string>();
  const add = (resourceId: string, role: InspectionRole, readBy: string) => {
    const resource = inspectedResourceOf(resourceId, role, readBy);
    const key = `${resource.resourceId.toLowerCase()}|${role}`;
    const known = resources.get(key);
    if (known) known.readBy = [...new Set([...known.readBy, readBy])].sort();
    else resources.set(key, resource);
    return resource;
  };
  const { backupReadiness, credentialHygiene, platformVersions, quotaHeadroom } = policy.checks;
  for (const account of backupReadiness?.cosmosDbAccounts ?? []) {
    const resource = add(account.resourceId, 'reader', 'checks.backupReadiness');
    subscriptions.add(resource.subscriptionId);
    for (const action of SUBSCRIPTION_ACTIONS.backupReadiness) actions.add(action);
  }
  for (const account of credentialHygiene?.cosmosDbAccounts ?? [])
    add(account.resourceId, 'reader', 'checks.credentialHygiene');
  for (const cluster of platformVersions?.aksClusters ?? []) {
    const resource = add(cluster, 'reader', 'checks.platformVersions');
    subscriptions.add(resource.subscriptionId);
    for (const action of SUBSCRIPTION_ACTIONS.platformVersions) actions.add(action);
  }
  for (const quota of quotaHeadroom?.quotas ?? []) {
    subscriptions.add(quota.subscriptionId.toLowerCase());
    for (const action of SUBSCRIPTION_ACTIONS.quotaHeadroom) actions.add(action);
  }
  for (const gate of policy.gates) {
    for (const condition of gate.conditions) {
      if (condition.type === 'logs') {
        const workspace = policy.monitoring.workspaces.find((w) => w.name === condition.workspace);
        if (!workspace?.resourceId) {
          throw new ConfigurationError(
            `gates.${gate.name}: workspace ${condition.workspace} has no resourceId: the deployment cannot grant Log Analytics Reader on it (set monitoring.workspaces[].resourceId)`,
            [`monitoring.workspaces.${condition.workspace}.resourceId: required to deploy gate ${gate.name}`],
          );
        }
        add(workspace.resourceId, 'logAnalyticsReader', `gates.${gate.name}`);
      } else {
        for (const target of gate.targets) {
          const resourceId = target.resources[condition.resource];
          if (resourceId) add(resourceId, 'monitoringReader', `gates.${gate.name}`);
        }
      }
    }
  }
  // A scaling playbook's verify and scale-back read its signal's metric (metrics:getBatch).
  for (const playbook of policy.playbooks) {
    if (playbook.action === 'notify-only') continue;
    add(playbook.signal.resourceId, 'monitoringReader', `playbooks.${playbook.name}`);
  }
  return {
    resources: [...resources.values()].sort(
      (a, b) => a.resourceId.localeCompare(b.resourceId) || a.role.localeCompare(b.role),
    ),
    subscriptions: [...subscriptions].sort(),
    subscriptionActions: [...actions].sort(),
  };
}

/** What the policy targets, deterministic (sorted) so the committed file diffs cleanly. */
export function derivePolicyTargets(policy: Policy, policyPath: string): PolicyTargets {
  const vaults = new Map<string, PolicyVault>();
  for (const secret of policy.secrets) {
    const name = vaultNameOf(secret.vaultUrl);
    const vault = vaults.get(name) ?? { name, url: secret.vaultUrl, role: 'keyVaultReader', secrets: [] };
    const needed = ROTATION_ROLES[secret.rotation.provider];
    if (VAULT_ROLES.indexOf(needed) > VAULT_ROLES.indexOf(vault.role)) vault.role = needed;
    vault.secrets.push(secret.name);
    vaults.set(name, vault);
  }
  // The credential hygiene check lists a vault's secrets' metadata: Key Vault Reader at least.
  for (const vaultUrl of policy.checks.credentialHygiene?.vaults ?? []) {
    const name = vaultNameOf(vaultUrl);
    if (!vaults.has(name)) vaults.set(name, { name, url: vaultUrl, role: 'keyVaultReader', secrets: [] });
  }
  const urlSettings = new Set<string>();
  let eventGridTopic = false;
  for (const channel of policy.notifications.channels) {
    if (channel.type === 'eventGrid') eventGridTopic = true;
    else urlSettings.add(channel.urlSetting);
  }
  // Rotation consumers' webhook and health URLs are credentials kept the same way (Key Vault references).
  for (const secret of policy.secrets) {
    if (secret.rotation.provider === 'manual') continue;
    for (const consumer of secret.rotation.consumers) {
      if (consumer.type === 'webhook') urlSettings.add(consumer.urlSetting);
      else if (consumer.healthUrlSetting) urlSettings.add(consumer.healthUrlSetting);
    }
  }
  const inspection = deriveInspection(policy);
  return {
    $comment: `Generated by \`npm run infra:params\` from ${policyPath}. Do not edit: a test checks it matches the policy.`,
    policy: policyPath,
    vaults: [...vaults.values()]
      .map((v) => ({ ...v, secrets: [...new Set(v.secrets)].sort() }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    notifications: { eventGridTopic, urlSettings: [...urlSettings].sort() },
    inspection,
    rotation: deriveRotationAccess(policy),
    remediation: deriveRemediation(policy),
    serviceBus: deriveServiceBus(policy, inspection),
  };
}

/**
 * The namespaces of the dead-letter entities, the roles on their entities, and the connections.
 * Monitoring Reader on a namespace that the inspection grants it already (a gate reads its
 * metrics) is left to the inspection: one role assignment per role and scope.
 */
export function deriveServiceBus(
  policy: Policy,
  inspection: PolicyTargets['inspection'] = { resources: [], subscriptions: [], subscriptionActions: [] },
): PolicyTargets['serviceBus'] {
  const inspected = new Set(
    inspection.resources.filter((r) => r.role === 'monitoringReader').map((r) => r.resourceId.toLowerCase()),
  );
  const namespaces = new Map<string, PolicyServiceBusNamespace>();
  const roleSets = new Map<string, Set<string>>();
  const grant = (namespaceId: string, key: string) => {
    const id = namespaceId.toLowerCase();
    let set = roleSets.get(id);
    if (!set) {
      set = new Set();
      roleSets.set(id, set);
      const parts = namespaceId.split('/');
      namespaces.set(id, {
        id: namespaceId,
        subscriptionId: parts[2]!,
        resourceGroup: parts[4]!,
        name: parts[8]!,
        queueRoles: [],
        topicRoles: [],
        subscriptionRoles: [],
        metricsReader: false,
      });
    }
    set.add(key);
  };
  const R: ServiceBusRole = 'serviceBusDataReceiver';
  const S: ServiceBusRole = 'serviceBusDataSender';
  for (const entity of policy.deadLetters) {
    const ns = entity.namespaceId;
    if (entity.region && !inspected.has(ns.toLowerCase())) grant(ns, 'm');
    if ('queue' in entity.source) {
      grant(ns, `q|${entity.source.queue}|${R}`);
      grant(ns, `q|${entity.source.queue}|${S}`);
    } else {
      const { topic, subscription } = entity.source;
      grant(ns, `s|${topic}|${subscription}|${R}`);
      grant(ns, `t|${topic}|${S}`);
      for (const other of entity.topicSubscriptions) grant(ns, `s|${topic}|${other}|${R}`);
    }
    for (const target of entity.replay.targets)
      grant(ns, target.type === 'queue' ? `q|${target.name}|${S}` : `t|${target.name}|${S}`);
  }
  for (const [id, set] of roleSets) {
    const namespace = namespaces.get(id)!;
    for (const key of [...set].sort()) {
      const [kind, a, b, c] = key.split('|') as [string, string, string, string | undefined];
      if (kind === 'm') namespace.metricsReader = true;
      else if (kind === 'q') namespace.queueRoles.push({ queue: a, role: b as ServiceBusRole });
      else if (kind === 't') namespace.topicRoles.push({ topic: a, role: b as ServiceBusRole });
      else namespace.subscriptionRoles.push({ topic: a, subscription: b, role: c as ServiceBusRole });
    }
  }
  const list = [...namespaces.values()].sort((a, b) => a.id.toLowerCase().localeCompare(b.id.toLowerCase()));
  const connections = new Map<string, number>();
  for (const entity of policy.deadLetters) {
    connections.set(
      entity.connection,
      list.findIndex((n) => n.id.toLowerCase() === entity.namespaceId.toLowerCase()),
    );
  }
  return {
    namespaces: list,
    connections: [...connections]
      .map(([setting, namespace]) => ({ setting, namespace }))
      .sort((a, b) => a.setting.localeCompare(b.setting)),
  };
}

/**
 * The file's text, formatted by the repository's formatter (Biome, with biome.json) so that the
 * generated file passes `npm run lint` as written.
 */
export function renderPolicyTargets(targets: PolicyTargets, rootDir: string, outPath: string): string {
  const json = `${JSON.stringify(targets, null, 2)}\n`;
  const biome = require.resolve('@biomejs/biome/bin/biome', { paths: [rootDir] });
  const formatted = spawnSync(
    process.execPath,
    [biome, 'format', `--stdin-file-path=${relative(rootDir, outPath)}`],
    {
      cwd: rootDir,
      input: json,
      encoding: 'utf8',
    },
  );
  if (formatted.status !== 0) throw new Error(`biome format failed: ${formatted.stderr}`);
  return formatted.stdout;
}

export interface InfraParamsOptions {
  rootDir?: string;
  policyPath?: string;
  outPath?: string;
}

/** Reads and validates the policy, returns the parameter file's path and expected text. */
export async function generatePolicyTargets(
  options: InfraParamsOptions = {},
): Promise<{ outPath: string; text: string; targets: PolicyTargets }> {
  const rootDir = resolve(options.rootDir ?? join(__dirname, '..'));
  const policyPath = resolve(rootDir, options.policyPath ?? DEFAULT_POLICY);
  const outPath = resolve(rootDir, options.outPath ?? DEFAULT_OUT);
  const policy = await loadPolicy(policyPath);
  const targets = derivePolicyTargets(policy, relative(rootDir, policyPath).split('\\').join('/'));
  return { outPath, text: renderPolicyTargets(targets, rootDir, outPath), targets };
}

function parseArgs(argv: readonly string[]): InfraParamsOptions & { check: boolean } {
  const options: InfraParamsOptions & { check: boolean } = { check: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--check') options.check = true;
    else if (arg === '--policy' && value) {
      options.policyPath = resolve(value);
      i++;
    } else if (arg === '--out' && value) {
      options.outPath = resolve(value);
      i++;
    } else {
      throw new Error(
        `usage: npm run infra:params [-- --policy <file>] [--out <file>] [--check]; unexpected ${arg}`,
      );
    }
  }
  return options;
}

if (require.main === module) {
  Promise.resolve()
    .then(async () => {
      const options = parseArgs(process.argv.slice(2));
      const { outPath, text, targets } = await generatePolicyTargets(options);
      const current = await readFile(outPath, 'utf8').catch(() => undefined);
      const where = relative(process.cwd(), outPath) || outPath;
      if (options.check) {
        if (current !== text) {
          console.error(`${where} is out of date with the policy: run npm run infra:params`);
          process.exitCode = 1;
        } else console.log(`${where} matches the policy`);
        return;
      }
      if (current !== text) await writeFile(outPath, text);
      console.log(
        `${where}: ${targets.vaults.length} vault(s), event grid topic ${targets.notifications.eventGridTopic ? 'yes' : 'no'}, ` +
          `${targets.notifications.urlSettings.length} URL setting(s), ${targets.serviceBus.namespaces.length} Service Bus namespace(s), ${targets.rotation.grants.length} rotation role assignment(s), ${targets.remediation.alertRules.length} playbook alert rule(s)${current === text ? ' (unchanged)' : ''}`,
      );
    })
    .catch((error: unknown) => {
      if (error instanceof ConfigurationError) {
        console.error(`infra:params: ${error.message}`);
        for (const p of error.problems) console.error(`  ${p}`);
      } else console.error(`infra:params: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    });
}
