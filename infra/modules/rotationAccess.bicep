// One role the policy's rotations need, assigned to the app on exactly one resource, in that
// resource's own resource group (issue 8): the resource whose keys rotate (Cosmos DB account,
// Storage account, Service Bus SAS rule) or a consumer the rotation rolls (AKS cluster, Container
// App, App Service). docs/deploy.md says why each role is needed.

@description('The resource type, as infra/policy.targets.json names it: one of those below.')
param resourceType string
@description('The resource\'s names, outermost first (namespace, queue, rule).')
param names string[]
@description('GUID of the role definition (built-in, or defined by rotationRoles.bicep).')
param roleGuid string
param appPrincipalId string
@description('What the role is for (its description in the policy targets).')
param purpose string

var first = names[0]
var middle = length(names) > 2 ? names[1] : ''
var rule = names[length(names) - 1]
var roleDefinitionId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleGuid)
var assignmentDescription = 'stampkeeper app: ${purpose}'

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2025-10-15' existing = if (resourceType == 'Microsoft.DocumentDB/databaseAccounts') {
  name: first
}

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = if (resourceType == 'Microsoft.Storage/storageAccounts') {
  name: first
}

resource busNamespace 'Microsoft.ServiceBus/namespaces@2026-01-01' existing = if (startsWith(resourceType, 'Microsoft.ServiceBus/')) {
  name: first

  resource namespaceRule 'authorizationRules' existing = if (resourceType == 'Microsoft.ServiceBus/namespaces/authorizationRules') {
    name: rule
  }

  resource queue 'queues' existing = if (resourceType == 'Microsoft.ServiceBus/namespaces/queues/authorizationRules') {
    name: middle

    resource queueRule 'authorizationRules' existing = if (resourceType == 'Microsoft.ServiceBus/namespaces/queues/authorizationRules') {
      name: rule
    }
  }

  resource topic 'topics' existing = if (resourceType == 'Microsoft.ServiceBus/namespaces/topics/authorizationRules') {
    name: middle

    resource topicRule 'authorizationRules' existing = if (resourceType == 'Microsoft.ServiceBus/namespaces/topics/authorizationRules') {
      name: rule
    }
  }
}

resource cluster 'Microsoft.ContainerService/managedClusters@2025-05-01' existing = if (resourceType == 'Microsoft.ContainerService/managedClusters') {
  name: first
}

resource containerApp 'Microsoft.App/containerApps@2025-01-01' existing = if (resourceType == 'Microsoft.App/containerApps') {
  name: first
}

resource site 'Microsoft.Web/sites@2025-03-01' existing = if (resourceType == 'Microsoft.Web/sites') {
  name: first
}

resource onCosmos 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (resourceType == 'Microsoft.DocumentDB/databaseAccounts') {
  name: guid(cosmos.id, appPrincipalId, roleGuid)
  scope: cosmos
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}

resource onStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (resourceType == 'Microsoft.Storage/storageAccounts') {
  name: guid(storage.id, appPrincipalId, roleGuid)
  scope: storage
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}

resource onNamespaceRule 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (resourceType == 'Microsoft.ServiceBus/namespaces/authorizationRules') {
  name: guid(busNamespace::namespaceRule.id, appPrincipalId, roleGuid)
  scope: busNamespace::namespaceRule
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}

resource onQueueRule 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (resourceType == 'Microsoft.ServiceBus/namespaces/queues/authorizationRules') {
  name: guid(busNamespace::queue::queueRule.id, appPrincipalId, roleGuid)
  scope: busNamespace::queue::queueRule
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}

resource onTopicRule 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (resourceType == 'Microsoft.ServiceBus/namespaces/topics/authorizationRules') {
  name: guid(busNamespace::topic::topicRule.id, appPrincipalId, roleGuid)
  scope: busNamespace::topic::topicRule
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

resource onSite 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (resourceType == 'Microsoft.Web/sites') {
  name: guid(site.id, appPrincipalId, roleGuid)
  scope: site
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}
