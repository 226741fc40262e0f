// The Event Grid custom topic the app publishes its CloudEvents to (policy channels of type
// eventGrid), with local (key) auth off: the app's identity sends with EventGrid Data Sender.

import { roles } from 'types.bicep'

param location string
param tags object
param topicName string
param appPrincipalId string

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  name: topicName
  location: location
  tags: tags
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
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
output topicId string = topic.id
