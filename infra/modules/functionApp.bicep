// The Function App on a Flex Consumption plan: Node 22, the app's user-assigned identity for
// everything (host storage, deployment package, Key Vault references, the app's SDK clients),
// no publishing credentials, and built-in authentication with Microsoft Entra in front of it.

param location string
param tags object
param planName string
param siteName string
@description('azd service name this app is deployed as (azure.yaml services.<name>).')
param serviceName string
param appIdentityId string
param appClientId string
param storageAccountName string
param deploymentContainerName string
param appInsightsName string
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int
@allowed([512, 2048, 4096])
param instanceMemoryMB int
@description('App settings of the app itself (STAMPKEEPER_*, channel URL settings). Host settings are added here.')
param appSettings object
@description('The dead-letter triggers\' Service Bus connection setting prefixes, each with the index of its namespace in serviceBusHosts.')
param serviceBusConnections { setting: string, namespace: int }[] = []
@description('Host names of the Service Bus namespaces (<namespace>.servicebus.windows.net).')
param serviceBusHosts string[] = []
@description('Client (application) id of the Entra app registration whose tokens built-in authentication accepts.')
param authClientId string
@description('Paths built-in authentication lets through without a token: what the platform itself calls.')
param authExcludedPaths string[]

// Identity-based Service Bus connections, as the Functions host reads a trigger's `connection`: the
// namespace, and the app's user-assigned identity (the app's own clients use AZURE_CLIENT_ID).
var serviceBusSettings = reduce(
  serviceBusConnections,
  {},
  (all, c) =>
    union(all, {
      '${c.setting}__fullyQualifiedNamespace': serviceBusHosts[c.namespace]
      '${c.setting}__credential': 'managedidentity'
      '${c.setting}__clientId': appClientId
    })
)

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2025-03-01' = {
  name: siteName
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${appIdentityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: appIdentityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: appIdentityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

// Read by the Functions host, not by the app: identity-based AzureWebJobsStorage with a
// user-assigned identity (`__credential` + `__clientId`; `__accountName` is read by both) and
// Application Insights with Entra auth.
var hostSettings = {
  AzureWebJobsStorage__accountName: storage.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: appClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${appClientId};Authorization=AAD'
}

resource settings 'Microsoft.Web/sites/config@2025-03-01' = {
  parent: site
  name: 'appsettings'
  properties: union(appSettings, serviceBusSettings, hostSettings, { AZURE_CLIENT_ID: appClientId })
}

// Built-in authentication (Easy Auth) with Microsoft Entra: every request needs a token issued by
// this tenant for the app registration, else 401 (an API, no login redirect). The platform then
// injects the caller's principal (X-MS-CLIENT-PRINCIPAL*) and sets WEBSITE_AUTH_ENABLED, and the
// app checks its app roles (src/lib/app/auth.ts). No client secret: the app only validates tokens.
// Excluded: the anonymous health probe and Event Grid's AzureFunction delivery to the runtime's
// webhook (which the eventgrid_extension system key protects). The action group is not excluded:
// it calls as a secure webhook, with an Entra token (alerts.bicep).
resource authSettings 'Microsoft.Web/sites/config@2025-03-01' = {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: authExcludedPaths
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          // The client id itself is always an allowed audience (v2 tokens); the identifier URI
          // is the audience of v1 tokens.
          allowedAudiences: ['api://${authClientId}']
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

output siteId string = site.id
output siteName string = site.name
output defaultHostName string = site.properties.defaultHostName
