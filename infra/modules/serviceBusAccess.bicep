// One Service Bus namespace of the policy's dead-letter entities, deployed in the namespace's own
// resource group: the app identity's data roles on exactly the entities the policy names (derived
// by `npm run infra:params`), and the namespace's host name for the triggers' identity-based
// connections (`<connection>__fullyQualifiedNamespace`).

import { roles, serviceBusRole } from 'types.bicep'

param namespaceName string
param appPrincipalId string
@description('Queues and the role the app needs on each.')
param queueRoles { queue: string, role: serviceBusRole }[]
@description('Topics and the role the app needs on each.')
param topicRoles { topic: string, role: serviceBusRole }[]
@description('Topic subscriptions and the role the app needs on each.')
param subscriptionRoles { topic: string, subscription: string, role: serviceBusRole }[]
@description('Monitoring Reader on the namespace (the depth report reads DeadletteredMessages per entity).')
param metricsReader bool

resource namespace 'Microsoft.ServiceBus/namespaces@2026-01-01' existing = {
  name: namespaceName
}

var roleReasons = {
  serviceBusDataReceiver: 'receive and peek dead letters, read subscription rules (stampkeeper dead letters)'
  serviceBusDataSender: 'replay archived dead letters (stampkeeper dead letters)'
}

resource queues 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' existing = [
  for q in queueRoles: {
    parent: namespace
    name: q.queue
  }
]

resource queueAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (q, i) in queueRoles: {
    name: guid(queues[i].id, appPrincipalId, roles[q.role])
    scope: queues[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles[q.role])
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      description: 'stampkeeper app: ${roleReasons[q.role]}'
    }
  }
]

resource topics 'Microsoft.ServiceBus/namespaces/topics@2026-01-01' existing = [
  for t in topicRoles: {
    parent: namespace
    name: t.topic
  }
]

resource topicAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (t, i) in topicRoles: {
    name: guid(topics[i].id, appPrincipalId, roles[t.role])
    scope: topics[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles[t.role])
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      description: 'stampkeeper app: ${roleReasons[t.role]}'
    }
  }
]

resource subscriptions 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2026-01-01' existing = [
  for s in subscriptionRoles: {
    name: '${namespace.name}/${s.topic}/${s.subscription}'
  }
]

resource subscriptionAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (s, i) in subscriptionRoles: {
    name: guid(subscriptions[i].id, appPrincipalId, roles[s.role])
    scope: subscriptions[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles[s.role])
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      description: 'stampkeeper app: ${roleReasons[s.role]}'
    }
  }
]

// Metrics are read at the namespace (the EntityName dimension tells the entities apart): the
// narrowest built-in role that reads them is Monitoring Reader, on this namespace only.
resource metricsAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (metricsReader) {
  name: guid(namespace.id, appPrincipalId, roles.monitoringReader)
  scope: namespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringReader)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'stampkeeper app: read the dead-letter metrics of the namespace (stampkeeper dead letters)'
  }
}

@description('The namespace\'s host name (<namespace>.servicebus.windows.net, or the cloud\'s suffix).')
output fullyQualifiedNamespace string = split(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':')[0]
