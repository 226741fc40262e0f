// An existing Event Grid topic (notificationTopicId) the app publishes to: only the role, in the
// topic's own resource group.

import { roles } from 'types.bicep'

param topicName string
param appPrincipalId string

resource topic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: topicName
}

resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, appPrincipalId, roles.eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'stampkeeper app: publish notifications (policy eventGrid channels)'
  }
}

output endpoint string = topic.properties.endpoint
