// One role an alert playbook needs, assigned to the app on exactly its target, in the target's own
// resource group (issue 10): the Cosmos DB container or database whose throughput settings it
// changes (the settings are a child of it), the Service Bus namespace whose messaging units it
// changes, the Container App whose max replicas it changes, the AKS cluster whose run command scales
// a deployment (or its KEDA ScaledObject). docs/deploy.md says why each role is needed.

@description('The resource type, as infra/policy.targets.json names it: one of those below.')
param resourceType string
@description('The resource\'s names, outermost first (account, database, container).')
param names string[]
@description('GUID of the role definition (defined by remediationRoles.bicep).')
param roleGuid string
param appPrincipalId string
@description('What the role is for (its description in the policy targets).')
param purpose string

var first = names[0]
var database = length(names) > 1 ? names[1] : ''
var container = length(names) > 2 ? names[2] : ''
var roleDefinitionId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleGuid)
var assignmentDescription = 'stampkeeper app: ${purpose}'
var isDatabase = resourceType == 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases'
var isContainer = resourceType == 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers'

resource account 'Microsoft.DocumentDB/databaseAccounts@2025-10-15' existing = if (isDatabase || isContainer) {
  name: first

  resource sqlDatabase 'sqlDatabases' existing = if (isDatabase || isContainer) {
    name: database

    resource sqlContainer 'containers' existing = if (isContainer) {
      name: container
    }
  }
}

resource busNamespace 'Microsoft.ServiceBus/namespaces@2026-01-01' existing = if (resourceType == 'Microsoft.ServiceBus/namespaces') {
  name: first
}

resource containerApp 'Microsoft.App/containerApps@2025-01-01' existing = if (resourceType == 'Microsoft.App/containerApps') {
  name: first
}

resource cluster 'Microsoft.ContainerService/managedClusters@2025-05-01' existing = if (resourceType == 'Microsoft.ContainerService/managedClusters') {
  name: first
}

resource onDatabase 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (isDatabase) {
  name: guid(account::sqlDatabase.id, appPrincipalId, roleGuid)
  scope: account::sqlDatabase
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}

resource onContainer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (isContainer) {
  name: guid(account::sqlDatabase::sqlContainer.id, appPrincipalId, roleGuid)
  scope: account::sqlDatabase::sqlContainer
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}

resource onNamespace 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (resourceType == 'Microsoft.ServiceBus/namespaces') {
  name: guid(busNamespace.id, appPrincipalId, roleGuid)
  scope: busNamespace
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}

resource onContainerApp 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (resourceType == 'Microsoft.App/containerApps') {
  name: guid(containerApp.id, appPrincipalId, roleGuid)
  scope: containerApp
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}

resource onCluster 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (resourceType == 'Microsoft.ContainerService/managedClusters') {
  name: guid(cluster.id, appPrincipalId, roleGuid)
  scope: cluster
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}
