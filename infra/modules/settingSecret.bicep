// An app setting whose value (a webhook URL: a credential) lives in a Key Vault secret, read by
// the platform through a Key Vault reference with the app's identity: the role, scoped to that
// one secret, not to the vault.

import { roles } from 'types.bicep'

param vaultName string
param secretName string
param appPrincipalId string
param settingName string

resource vault 'Microsoft.KeyVault/vaults@2026-02-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2026-02-01' existing = {
  parent: vault
  name: secretName
}

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(secret.id, appPrincipalId, roles.keyVaultSecretsUser)
  scope: secret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'stampkeeper app: read app setting ${settingName} through a Key Vault reference'
  }
}
