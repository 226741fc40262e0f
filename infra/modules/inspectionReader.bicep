// A read-only role for the app on one resource a maintenance check or a gate reads, deployed in the
// resource's own resource group (scripts/infra-params.ts derives the list from the policy). A role
// assignment's scope must be a typed resource symbol: one conditional `existing` resource per type
// the deployment knows (INSPECTABLE_TYPES in scripts/infra-params.ts), exactly one of which applies.

import { inspectedResource, roles } from 'types.bicep'

param resource inspectedResource
param appPrincipalId string

var roleId = roles[resource.role]
var roleDefinitionId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
var description = 'stampkeeper app: ${resource.role} (read-only) for ${join(resource.readBy, ', ')}'

resource cosmosDb 'Microsoft.DocumentDB/databaseAccounts@2026-03-15' existing = if (resource.type == 'Microsoft.DocumentDB/databaseAccounts') {
  name: resource.name
}

resource cosmosDbRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (resource.type == 'Microsoft.DocumentDB/databaseAccounts') {
  name: guid(cosmosDb.id, appPrincipalId, roleId)
  scope: cosmosDb
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: description
  }
}

resource cluster 'Microsoft.ContainerService/managedClusters@2025-05-01' existing = if (resource.type == 'Microsoft.ContainerService/managedClusters') {
  name: resource.name
}

resource clusterRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (resource.type == 'Microsoft.ContainerService/managedClusters') {
  name: guid(cluster.id, appPrincipalId, roleId)
  scope: cluster
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: description
  }
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-07-01' existing = if (resource.type == 'Microsoft.OperationalInsights/workspaces') {
  name: resource.name
}

resource workspaceRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (resource.type == 'Microsoft.OperationalInsights/workspaces') {
  name: guid(workspace.id, appPrincipalId, roleId)
  scope: workspace
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: description
  }
}

resource component 'Microsoft.Insights/components@2020-02-02' existing = if (resource.type == 'Microsoft.Insights/components') {
  name: resource.name
}

resource componentRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (resource.type == 'Microsoft.Insights/components') {
  name: guid(component.id, appPrincipalId, roleId)
  scope: component
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: description
  }
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2026-01-01' existing = if (resource.type == 'Microsoft.ServiceBus/namespaces') {
  name: resource.name
}

resource serviceBusRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (resource.type == 'Microsoft.ServiceBus/namespaces') {
  name: guid(serviceBus.id, appPrincipalId, roleId)
  scope: serviceBus
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: description
  }
}
