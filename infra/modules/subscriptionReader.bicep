// The custom inspection role (subscription-scope reads of the maintenance checks: restorable Cosmos
// DB accounts, a region's Kubernetes versions, quotas) assigned to the app in one subscription the
// policy names. The role itself is defined once, in the deployment's subscription (main.bicep).

targetScope = 'subscription'

param roleDefinitionId string
param appPrincipalId string

// The role is the environment's own (its id names the environment): one assignment per subscription.
resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'stampkeeper app: subscription-scope reads of the maintenance checks (read-only)'
  }
}
