// A playbook's metric alert rule (issue 10), in its signal resource's own resource group: the
// signal's metric (aggregation, dimensions) above the playbook's threshold over its window, posted
// to the app's action group (infra/modules/alerts.bicep: a secure webhook to POST /api/alerts with
// the common alert schema). The rule's name is the playbook's match.alertRule and its action's
// webhook properties reach the intake as data.customProperties, so the intake's findPlaybook
// matches the alert to the playbook (test/unit/infra/consistency.test.ts checks it on the compiled
// template). A metric alert rule targets one resource type; this one targets one resource.

import { playbookAlertRule } from 'types.bicep'

param rule playbookAlertRule
param actionGroupId string
param tags object

// The durations Azure Monitor takes for metric alerts, as it writes them (PT1H, not PT60M).
var durations = {
  '1': 'PT1M'
  '5': 'PT5M'
  '15': 'PT15M'
  '30': 'PT30M'
  '60': 'PT1H'
  '360': 'PT6H'
  '720': 'PT12H'
  '1440': 'P1D'
}

resource alert 'Microsoft.Insights/metricAlerts@2026-01-01' = {
  name: rule.name
  location: 'global'
  tags: tags
  properties: {
    description: 'stampkeeper playbook ${rule.playbook}: ${rule.metric} (${rule.aggregation}) above ${rule.threshold} over ${rule.windowMinutes} minutes'
    severity: rule.severity
    enabled: true
    scopes: [rule.resourceId]
    evaluationFrequency: durations[string(rule.frequencyMinutes)]
    windowSize: durations[string(rule.windowMinutes)]
    // Resolved once the condition no longer holds: the intake closes the playbook's episode.
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'signal'
          metricNamespace: rule.metricNamespace
          metricName: rule.metric
          dimensions: map(rule.dimensions, d => { name: d.name, operator: 'Include', values: d.values })
          timeAggregation: rule.aggregation
          operator: 'GreaterThan'
          threshold: rule.threshold
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroupId
        webHookProperties: rule.customProperties
      }
    ]
  }
}
