// A rotation role the app needs at a subscription (issue 8): Cosmos DB keeps the status of a key
// regeneration (a long-running operation) under /subscriptions/{id}/providers/Microsoft.DocumentDB/
// locations/{region}/operationsStatus, outside the account, and the SDK polls it. The role holds
// that one read action and nothing else (rotationRoles.bicep).

targetScope = 'subscription'

param roleGuid string
param appPrincipalId string
param purpose string

resource grant 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, appPrincipalId, roleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleGuid)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'stampkeeper app: ${purpose}'
  }
}
