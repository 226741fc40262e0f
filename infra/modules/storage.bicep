// The app's storage account: Functions host storage (AzureWebJobsStorage), the app's state (tables,
// the work queue and its poison queue), the Flex deployment package container and the Event Grid
// dead-letter container. Shared keys are disabled: every caller uses an identity.

import { roles } from 'types.bicep'

param location string
param tags object
param accountName string
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GZRS'])
param skuName string
param deploymentContainerName string
param deadLetterContainerName string
param appPrincipalId string
param eventsPrincipalId string

resource account 'Microsoft.Storage/storageAccounts@2025-06-01' = {
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: skuName }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-06-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 7 }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: { publicAccess: 'None' }
}

// Host storage with an identity needs Blob Data Owner (host locks, keys, timer schedules, the
// deployment package), Queue Data Contributor (queue triggers and their poison queues) and, for
// the app's state, Table Data Contributor. All at account scope: the host and the app create
// their containers, queues and tables at start-up.
var appRoles = [
  { role: roles.storageBlobDataOwner, why: 'Functions host storage (blobs) and the deployment package' }
  { role: roles.storageQueueDataContributor, why: 'the work queue, its poison queue and the queue trigger' }
  { role: roles.storageTableDataContributor, why: 'state tables: audit, idempotency keys, leases, runs' }
]

resource appAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for r in appRoles: {
    name: guid(account.id, appPrincipalId, r.role)
    scope: account
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', r.role)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      description: 'stampkeeper app: ${r.why}'
    }
  }
]

// Event Grid writes undeliverable events here with its own identity, on this container only.
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, eventsPrincipalId, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: eventsPrincipalId
    principalType: 'ServicePrincipal'
    description: 'stampkeeper Event Grid subscriptions: dead-letter undeliverable events'
  }
}

output accountId string = account.id
output accountName string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output deadLetterContainerName string = deadLetterContainer.name
output deploymentContainerName string = deploymentContainer.name
