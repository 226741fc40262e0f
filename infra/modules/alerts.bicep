// Alert wiring: the action group that posts to the app's alert intake (POST /api/alerts, common
// alert schema) as a secure webhook, and the alert rules as code. Deployed once the code is (the
// webhook needs the `alerts` function's key, which exists only after `azd deploy`).

import { alertThresholds } from 'types.bicep'

param location string
param tags object
param environmentName string
param siteName string
param defaultHostName string
@description('Function that takes the alerts (authLevel function).')
param alertsFunctionName string
param appInsightsId string
param workQueueName string
param cosmosDbAccountIds string[]
param serviceBusNamespaceIds string[]
param thresholds alertThresholds
@description('Client id of the app registration built-in authentication accepts tokens for.')
param authClientId string
@description('Object id of that app registration (the secure webhook needs it).')
param authAppObjectId string

resource alertsFunction 'Microsoft.Web/sites/functions@2025-03-01' existing = {
  name: '${siteName}/${alertsFunctionName}'
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-stampkeeper-${environmentName}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: take('stampkpr${environmentName}', 12)
    enabled: true
    webhookReceivers: [
      {
        name: 'stampkeeper-alert-intake'
        // A secure webhook: Azure Monitor calls with an Entra token for the app registration,
        // issued to its "AZNS AAD Webhook" service principal, which holds the app role
        // ActionGroupsSecureWebhook (docs/deploy.md). Built-in authentication validates the token
        // and the app checks the role, so the function key in the URI (the intake stays authLevel
        // function) is no longer enough on its own to post an alert.
        serviceUri: 'https://${defaultHostName}/api/alerts?code=${alertsFunction.listKeys().default}'
        useCommonAlertSchema: true
        useAadAuth: true
        objectId: authAppObjectId
        identifierUri: 'api://${authClientId}'
        tenantId: tenant().tenantId
      }
    ]
  }
}

var metricCriteria = 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
var actions = [{ actionGroupId: actionGroup.id }]

resource cosmosThrottled 'Microsoft.Insights/metricAlerts@2026-01-01' = [
  for id in cosmosDbAccountIds: {
    name: 'stampkeeper-${environmentName}-cosmos-429-${last(split(id, '/'))}'
    location: 'global'
    tags: tags
    properties: {
      description: 'Cosmos DB requests throttled (429) on ${last(split(id, '/'))}'
      severity: 2
      enabled: true
      scopes: [id]
      evaluationFrequency: 'PT1M'
      windowSize: 'PT5M'
      autoMitigate: true
      criteria: {
        'odata.type': metricCriteria
        allOf: [
          {
            criterionType: 'StaticThresholdCriterion'
            name: 'throttled'
            metricNamespace: 'Microsoft.DocumentDB/databaseAccounts'
            metricName: 'TotalRequests'
            dimensions: [{ name: 'StatusCode', operator: 'Include', values: ['429'] }]
            timeAggregation: 'Count'
            operator: 'GreaterThan'
            threshold: thresholds.cosmosThrottledRequests
          }
        ]
      }
      actions: actions
    }
  }
]

resource cosmosRu 'Microsoft.Insights/metricAlerts@2026-01-01' = [
  for id in cosmosDbAccountIds: {
    name: 'stampkeeper-${environmentName}-cosmos-ru-${last(split(id, '/'))}'
    location: 'global'
    tags: tags
    properties: {
      description: 'Cosmos DB normalized RU consumption high on ${last(split(id, '/'))}'
      severity: 2
      enabled: true
      scopes: [id]
      evaluationFrequency: 'PT1M'
      windowSize: 'PT5M'
      autoMitigate: true
      criteria: {
        'odata.type': metricCriteria
        allOf: [
          {
            criterionType: 'StaticThresholdCriterion'
            name: 'normalizedRu'
            metricNamespace: 'Microsoft.DocumentDB/databaseAccounts'
            metricName: 'NormalizedRUConsumption'
            timeAggregation: 'Maximum'
            operator: 'GreaterThan'
            threshold: thresholds.cosmosNormalizedRuPercent
          }
        ]
      }
      actions: actions
    }
  }
]

resource serviceBusActive 'Microsoft.Insights/metricAlerts@2026-01-01' = [
  for id in serviceBusNamespaceIds: {
    name: 'stampkeeper-${environmentName}-sb-active-${last(split(id, '/'))}'
    location: 'global'
    tags: tags
    properties: {
      description: 'Service Bus backlog (active messages) per entity on ${last(split(id, '/'))}'
      severity: 3
      enabled: true
      scopes: [id]
      evaluationFrequency: 'PT5M'
      windowSize: 'PT15M'
      autoMitigate: true
      criteria: {
        'odata.type': metricCriteria
        allOf: [
          {
            criterionType: 'StaticThresholdCriterion'
            name: 'activeMessages'
            metricNamespace: 'Microsoft.ServiceBus/namespaces'
            metricName: 'ActiveMessages'
            dimensions: [{ name: 'EntityName', operator: 'Include', values: ['*'] }]
            timeAggregation: 'Maximum'
            operator: 'GreaterThan'
            threshold: thresholds.serviceBusActiveMessages
          }
        ]
      }
      actions: actions
    }
  }
]

resource serviceBusDeadLettered 'Microsoft.Insights/metricAlerts@2026-01-01' = [
  for id in serviceBusNamespaceIds: {
    name: 'stampkeeper-${environmentName}-sb-deadletter-${last(split(id, '/'))}'
    location: 'global'
    tags: tags
    properties: {
      description: 'Service Bus dead-lettered messages per entity on ${last(split(id, '/'))}'
      severity: 2
      enabled: true
      scopes: [id]
      evaluationFrequency: 'PT1M'
      windowSize: 'PT5M'
      autoMitigate: true
      criteria: {
        'odata.type': metricCriteria
        allOf: [
          {
            criterionType: 'StaticThresholdCriterion'
            name: 'deadLettered'
            metricNamespace: 'Microsoft.ServiceBus/namespaces'
            metricName: 'DeadletteredMessages'
            dimensions: [{ name: 'EntityName', operator: 'Include', values: ['*'] }]
            timeAggregation: 'Maximum'
            operator: 'GreaterThan'
            threshold: thresholds.serviceBusDeadletteredMessages
          }
        ]
      }
      actions: actions
    }
  }
]

// The app's own failures: every function invocation (HTTP or not) is a request in Application Insights.
resource appFailures 'Microsoft.Insights/metricAlerts@2026-01-01' = {
  name: 'stampkeeper-${environmentName}-app-failures'
  location: 'global'
  tags: tags
  properties: {
    description: 'stampkeeper function invocations failed'
    severity: 1
    enabled: true
    scopes: [appInsightsId]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    autoMitigate: true
    criteria: {
      'odata.type': metricCriteria
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'failedRequests'
          metricNamespace: 'Microsoft.Insights/components'
          metricName: 'requests/failed'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: thresholds.appFailedRequests
        }
      ]
    }
    actions: actions
  }
}

// The host moves a run message to `<queue>-poison` after maxDequeueCount failures and logs the
// WebJobs SDK QueueProcessor warning "Message has reached MaxDequeueCount of N. Moving message to
// queue '<queue>-poison'." Storage has no per-queue metric, so this is a log alert on that line.
resource poisonQueue 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = {
  name: 'stampkeeper-${environmentName}-poison-queue'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'stampkeeper ${environmentName}: run messages moved to ${workQueueName}-poison'
    description: 'A run step failed maxDequeueCount times; its message is in the poison queue.'
    severity: 1
    enabled: true
    scopes: [appInsightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: false
    criteria: {
      allOf: [
        {
          query: 'traces | where message has "MaxDequeueCount" and message contains "\'${workQueueName}-poison\'"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [actionGroup.id]
    }
  }
}

output actionGroupId string = actionGroup.id
