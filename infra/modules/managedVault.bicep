// One managed vault, deployed in the vault's own resource group: the role the policy's secrets
// need (derived by `npm run infra:params`), the vault's Event Grid system topic, and (once the
// code is deployed) the subscription that delivers the secret events to the keyVaultEvents function.

import { roles, vaultRole } from 'types.bicep'

param vaultName string
param role vaultRole
param appPrincipalId string
param systemTopicName string
param tags object
param eventsIdentityId string
@description('Event subscription name: one per stampkeeper environment, so two environments may watch one vault.')
param subscriptionName string
@description('Whether to create the event subscription (the function must exist: after the first `azd deploy`).')
param subscribe bool
@description('The keyVaultEvents function: <function app id>/functions/<name>.')
param functionResourceId string
param eventTypes string[]
param deadLetterStorageId string
param deadLetterContainerName string
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int

resource vault 'Microsoft.KeyVault/vaults@2026-02-01' existing = {
  name: vaultName
}

var roleReasons = {
  keyVaultReader: 'read secret metadata (expiry, versions) of the policy\'s secrets; never their values'
  keyVaultSecretsOfficer: 'rotate the policy\'s secrets (set new versions, update attributes)'
}

resource appRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, roles[role])
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles[role])
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'stampkeeper app: ${roleReasons[role]}'
  }
}

// A module, so that the topic's location can be the vault's (known only at deployment time).
module events 'vaultEvents.bicep' = {
  params: {
    location: vault.location
    systemTopicName: systemTopicName
    tags: tags
    vaultId: vault.id
    eventsIdentityId: eventsIdentityId
    subscriptionName: subscriptionName
    subscribe: subscribe
    functionResourceId: functionResourceId
    eventTypes: eventTypes
    deadLetterStorageId: deadLetterStorageId
    deadLetterContainerName: deadLetterContainerName
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
}

output vaultUri string = vault.properties.vaultUri
output systemTopicId string = events.outputs.systemTopicId
