// Shared types and the built-in roles the deployment assigns. Role ids are Azure's built-in role
// definition ids (the same in every tenant); docs/deploy.md justifies each one.

@export()
@description('Built-in roles by the key the policy targets and the modules use.')
var roles = {
  keyVaultReader: '21090545-7ca7-4776-b22c-e363652d74d2'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
  monitoringReader: '43d0d8ad-25c7-4714-9337-8ba259a9fe05'
  logAnalyticsReader: '73c42c96-874c-492b-b04d-ab87d138a893'
}

@export()
@description('Service Bus data role the app needs on an entity, as `npm run infra:params` derives it from the policy.')
type serviceBusRole = 'serviceBusDataReceiver' | 'serviceBusDataSender'

@export()
@description('A Service Bus namespace of the policy\'s dead-letter entities, with the roles on its entities.')
type policyServiceBusNamespace = {
  @description('ARM id of the namespace.')
  id: string
  subscriptionId: string
  resourceGroup: string
  name: string
  queueRoles: { queue: string, role: serviceBusRole }[]
  topicRoles: { topic: string, role: serviceBusRole }[]
  subscriptionRoles: { topic: string, subscription: string, role: serviceBusRole }[]
  @description('Monitoring Reader on the namespace: the depth report reads its DeadletteredMessages metric.')
  metricsReader: bool
}

@export()
@description('Role the app needs on a managed vault, as `npm run infra:params` derives it from the policy.')
type vaultRole = 'keyVaultReader' | 'keyVaultSecretsOfficer'

@export()
@description('A vault the policy manages (generated into infra/policy.targets.json).')
type policyVault = {
  @description('Vault name (the first label of its URL).')
  name: string
  @description('Normalised vault URL, as the app compares it.')
  url: string
  role: vaultRole
  @description('Managed secrets in this vault.')
  secrets: string[]
}

@export()
@description('Read-only role the checks or the gates need on a resource the policy names (scripts/infra-params.ts INSPECTION_ROLES).')
type inspectionRole = 'reader' | 'monitoringReader' | 'logAnalyticsReader'

@export()
@description('A resource a check or a gate reads (generated into infra/policy.targets.json).')
type inspectedResource = {
  resourceId: string
  subscriptionId: string
  resourceGroup: string
  @description('Resource type, one of those infra/modules/inspectionReader.bicep can scope a role to.')
  type:
    | 'Microsoft.ContainerService/managedClusters'
    | 'Microsoft.DocumentDB/databaseAccounts'
    | 'Microsoft.Insights/components'
    | 'Microsoft.OperationalInsights/workspaces'
    | 'Microsoft.ServiceBus/namespaces'
  name: string
  role: inspectionRole
  @description('What reads it (checks.<name>, gates.<name>).')
  readBy: string[]
}

@export()
@description('What the operations policy targets: the parameter `npm run infra:params` writes.')
type policyTargets = {
  @description('Provenance note written by the generator.')
  '$comment': string
  @description('The policy file the targets were derived from.')
  policy: string
  vaults: policyVault[]
  notifications: {
    @description('Whether a channel publishes to the Event Grid topic (STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT).')
    eventGridTopic: bool
    @description('App settings holding webhook URLs (teams / webhook channels).')
    urlSettings: string[]
  }
  serviceBus: {
    namespaces: policyServiceBusNamespace[]
    @description('The dead-letter triggers\' connection setting prefixes, each with the index of its namespace.')
    connections: { setting: string, namespace: int }[]
  }
  @description('What the maintenance checks and the gates read: a read-only role per resource, and a custom role of subscription-scope reads.')
  inspection: {
    resources: inspectedResource[]
    @description('Subscriptions where the custom inspection role is assigned.')
    subscriptions: string[]
    @description('Its actions (the adapters\' TSDoc names each).')
    subscriptionActions: string[]
  }
  @description('Roles the rotations need on the keys\' resources and on the consumers.')
  rotation: rotationAccess
  @description('Roles the alert playbooks need on their targets, and their metric alert rules.')
  remediation: remediationAccess
}

@export()
@description('Where a managed vault lives. The policy names vaults only; each environment says where they are.')
type vaultPlacement = {
  @description('Resource group of the vault.')
  resourceGroup: string
  @description('Subscription of the vault. Default: the deployment subscription.')
  subscriptionId: string?
  @description('Name of the vault\'s Event Grid system topic. Azure allows one per vault: give the existing one\'s name if the vault already has a system topic.')
  systemTopicName: string?
}

@export()
@description('A Key Vault secret holding an app setting\'s value (a webhook URL), read through a Key Vault reference.')
type settingSource = {
  vaultName: string
  secretName: string
  resourceGroup: string
  subscriptionId: string?
}

@export()
@description('Alert thresholds.')
type alertThresholds = {
  @description('Cosmos DB requests answered 429 in 5 minutes.')
  cosmosThrottledRequests: int
  @description('Cosmos DB NormalizedRUConsumption (percent, maximum over 5 minutes).')
  cosmosNormalizedRuPercent: int
  @description('Service Bus active messages (maximum over 15 minutes) per namespace.')
  serviceBusActiveMessages: int
  @description('Service Bus dead-lettered messages (maximum over 5 minutes) per namespace.')
  serviceBusDeadletteredMessages: int
  @description('Failed function invocations (App Insights requests/failed) in 5 minutes.')
  appFailedRequests: int
}

@export()
@description('A role the policy\'s rotations need (generated into infra/policy.targets.json): built-in when one holds exactly these actions, else defined by the deployment with exactly these actions.')
type rotationRole = {
  @description('Role key (scripts/infra-params.ts ROTATION_ROLE_DEFINITIONS).')
  name: string
  @description('Id of the built-in role holding exactly these actions, or null: a custom role is defined.')
  builtInRoleId: string?
  description: string
  @description('What the adapter calls (its TSDoc names them).')
  actions: string[]
}

@export()
@description('One role assignment the policy\'s rotations need: the role, on exactly that resource (or subscription).')
type rotationGrant = {
  role: string
  resourceId: string
  subscriptionId: string
  @description('Empty for a subscription-scope grant.')
  resourceGroup: string
  @description('Resource type (Microsoft.DocumentDB/databaseAccounts...), or subscription.')
  resourceType: string
  @description('The resource\'s names, outermost first.')
  names: string[]
  @description('The policy secrets (vault/secret) this grant serves.')
  secrets: string[]
}

@export()
@description('What the policy\'s rotations need on Azure resources.')
type rotationAccess = {
  roles: rotationRole[]
  grants: rotationGrant[]
}

@export()
@description('One role assignment the policy\'s playbooks need: the role, on exactly that resource (or subscription).')
type remediationGrant = {
  @description('Role key (scripts/infra-params.ts REMEDIATION_ROLE_DEFINITIONS).')
  role: string
  resourceId: string
  subscriptionId: string
  @description('Empty for a subscription-scope grant.')
  resourceGroup: string
  @description('Resource type (Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers...), or subscription.')
  resourceType: string
  @description('The resource\'s names, outermost first (account, database, container).')
  names: string[]
  @description('The playbooks this grant serves.')
  playbooks: string[]
}

@export()
@description('A playbook\'s metric alert rule: the signal\'s metric above the threshold over the window, posted to the app\'s action group.')
type playbookAlertRule = {
  playbook: string
  @description('The rule name (the playbook\'s match.alertRule, else stampkeeper-playbook-<name>).')
  name: string
  @description('The signal\'s resource: the rule\'s only scope.')
  resourceId: string
  subscriptionId: string
  resourceGroup: string
  metricNamespace: string
  metric: string
  aggregation: 'Average' | 'Maximum' | 'Minimum' | 'Total' | 'Count'
  threshold: int
  windowMinutes: int
  frequencyMinutes: int
  severity: int
  dimensions: { name: string, values: string[] }[]
  @description('Webhook properties of the rule\'s action: the common alert schema\'s data.customProperties (match.customProperty).')
  customProperties: { *: string }
}

@export()
@description('What the policy\'s playbooks need on Azure resources.')
type remediationAccess = {
  @description('Custom roles, each with exactly the actions of a capacity adapter.')
  roles: rotationRole[]
  grants: remediationGrant[]
  alertRules: playbookAlertRule[]
}
