import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/lib/core/errors';
import { ALERT_LIMITS, parseCommonAlert } from '../../../src/lib/remediation/alert';
import {
  commonAlert,
  fromAlertContextFragment,
  monitorSampleFiles,
  payloadOf,
  sampleAlert,
} from './alertFactory';

// biome-ignore lint/suspicious/noExplicitAny: published payloads are edited freely in these tests
type Json = Record<string, any>;

function problemsOf(raw: unknown): string[] {
  try {
    parseCommonAlert(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).problems;
  }
  throw new Error('expected a ValidationError');
}

describe('parseCommonAlert: the published samples', () => {
  const files = monitorSampleFiles();

  it('finds the published Monitor samples', () => {
    // Assess: the loop below would pass vacuously on an empty folder
    expect(files.length).toBeGreaterThanOrEqual(7);
  });

  it.each(files)('parses %s', (file) => {
    // Prepare
    const payload = payloadOf(file);
    const essentials = (payload.data as Json).essentials as Json;

    // Act
    const alert = parseCommonAlert(payload);

    // Assess
    expect(alert.alertId).toBe(essentials.alertId);
    expect(alert.alertRule).toBe(essentials.alertRule);
    expect(alert.severity).toBe(essentials.severity);
    expect(alert.monitorCondition).toBe(essentials.monitorCondition);
    expect(alert.targetResourceIds).toEqual(essentials.alertTargetIDs);
    expect(alert.firedDateTime.toISOString()).toBe(new Date(essentials.firedDateTime).toISOString());
  });

  it('normalizes the Resolved static-threshold metric sample (alertTargetIDs, threshold as a string)', () => {
    // Act
    const alert = parseCommonAlert(sampleAlert('common-schema-sample-metric-static-resolved.json'));

    // Assess
    expect(alert).toMatchObject({
      severity: 'Sev3',
      signalType: 'Metric',
      monitorCondition: 'Resolved',
      monitoringService: 'Platform',
      targetResourceIds: [
        '/subscriptions/<subscription ID>/resourcegroups/pipelinealertrg/providers/microsoft.compute/virtualmachines/wcus-r2-gen2',
      ],
      targetResourceCount: 1,
      conditionType: 'SingleResourceMultipleMetricCriteria',
      windowSize: 'PT5M',
      customProperties: { Key1: 'Value1', Key2: 'Value2' },
    });
    expect(alert.resolvedDateTime?.toISOString()).toBe('2019-03-22T14:03:16.224Z');
    expect(alert.description).toBeUndefined();
    expect(alert.conditions).toEqual([
      {
        kind: 'metric',
        metricName: 'Percentage CPU',
        metricNamespace: 'Microsoft.Compute/virtualMachines',
        operator: 'GreaterThan',
        threshold: 25,
        metricValue: 7.727,
        timeAggregation: 'Average',
        dimensions: [{ name: 'ResourceId', value: '3efad9dc-3d50-4eac-9c87-8b3fd6f97e4e' }],
      },
    ]);
  });

  it('reads a dynamic threshold ("0.3") as a number, with the window and custom properties', () => {
    // Act
    const alert = parseCommonAlert(sampleAlert('test-action-metric-dynamic-threshold.json'));

    // Assess
    expect(alert.conditions[0]).toMatchObject({
      metricName: 'Transactions',
      threshold: 0.3,
      metricValue: 78.09,
    });
    expect(alert.conditionType).toBe('DynamicThresholdCriteria');
    expect(alert.windowStartTime?.toISOString()).toBe('2021-12-15T01:04:11.719Z');
    expect(alert.customProperties).toEqual({ customKey1: 'value1', customKey2: 'value2' });
  });

  it('wraps the alertContext-only samples into a full payload and reads their conditions', () => {
    // Act
    const staticAlert = parseCommonAlert(
      fromAlertContextFragment('payload-samples-metric-static.alertContext.json'),
    );
    const dynamic = parseCommonAlert(
      fromAlertContextFragment('payload-samples-metric-dynamic.alertContext.json'),
    );

    // Assess
    expect(staticAlert.conditions[0]).toMatchObject({ threshold: 25, metricValue: 31.1105 });
    expect(dynamic.conditions[0]).toMatchObject({
      metricName: 'Egress',
      threshold: 47658,
      metricValue: 50101,
      dimensions: [],
    });
    expect(dynamic.windowEndTime?.toISOString()).toBe('2021-07-20T05:12:26.363Z');
  });

  it('reads the PascalCase Log Alerts V1 context without keeping the search results', () => {
    // Act
    const alert = parseCommonAlert(sampleAlert('test-action-log-alerts-v1-numresults.json'));

    // Assess
    expect(alert.signalType).toBe('Log');
    expect(alert.conditions).toEqual([
      {
        kind: 'logQuery',
        operator: 'GreaterThan',
        threshold: 0,
        metricValue: 1,
        searchQuery: 'Heartbeat',
        dimensions: [],
      },
    ]);
    expect(alert.log).toMatchObject({
      alertType: 'Number of results',
      workspaceId: 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb',
      searchIntervalEndTimeUtc: '2021-11-16T15:15:24Z',
      includedSearchResults: true,
    });
    expect(JSON.stringify(alert)).not.toContain('PrimaryResult');
  });

  it('reads a Log Alerts V2 criterion (threshold "0", dimensions) and its custom properties', () => {
    // Act
    const alert = parseCommonAlert(sampleAlert('test-action-log-alerts-v2.json'));

    // Assess
    expect(alert.conditions[0]).toMatchObject({
      kind: 'logQuery',
      searchQuery: 'Heartbeat',
      operator: 'GreaterThan',
      threshold: 0,
      metricValue: 3,
      dimensions: [{ name: 'Computer', value: 'test-computer' }],
    });
    expect(alert.customProperties).toEqual({ customKey1: 'value1', customKey2: 'value2' });
  });

  it('reads an activity log alert: a key with spaces, claims as a JSON string dropped', () => {
    // Prepare
    const payload = sampleAlert('test-action-activity-log-administrative.json') as Json;
    payload.data.alertContext['Activity Log Event Description'] = 'VM restarted by the on-call engineer';
    payload.data.alertContext.claims = JSON.stringify({ upn: 'someone@contoso.com', oid: 'abc' });

    // Act
    const alert = parseCommonAlert(payload);

    // Assess
    expect(alert.signalType).toBe('Activity Log');
    expect(alert.activityLog).toMatchObject({
      operationName: 'Microsoft.Compute/virtualMachines/restart/action',
      status: 'Succeeded',
      eventSource: 'Administrative',
      level: 'Informational',
      description: 'VM restarted by the on-call engineer',
    });
    expect(alert.conditions).toEqual([]);
    // The event's own `properties` are not custom properties.
    expect(alert.customProperties).toEqual({});
    expect(JSON.stringify(alert)).not.toContain('someone@contoso.com');
  });

  it('accepts claims that are not JSON and numbers where strings are usual (service health)', () => {
    // Prepare
    const payload = sampleAlert('test-action-activity-log-administrative.json') as Json;
    payload.data.alertContext.claims = '{not json';
    payload.data.alertContext.level = 3;
    payload.data.alertContext.eventSource = 2;

    // Act
    const alert = parseCommonAlert(payload);

    // Assess
    expect(alert.activityLog).toMatchObject({ level: '3', eventSource: '2' });
  });
});

describe('parseCommonAlert: tolerated variants', () => {
  it('takes the targets from alertTargetIds (the spelling of the docs table) too', () => {
    // Prepare
    const payload = commonAlert() as Json;
    payload.data.essentials.alertTargetIds = payload.data.essentials.alertTargetIDs;
    delete payload.data.essentials.alertTargetIDs;

    // Act
    const alert = parseCommonAlert(payload);

    // Assess
    expect(alert.targetResourceIds).toHaveLength(1);
    expect(alert.targetResourceIds[0]).toMatch(/virtualmachines\/wcus-r2-gen2$/);
  });

  it('accepts enum values in another case and a null alertContext', () => {
    // Prepare
    const payload = commonAlert(
      { severity: 'sev1', monitorCondition: 'Fired', signalType: 'activity log' },
      null,
    );

    // Act
    const alert = parseCommonAlert(payload);

    // Assess
    expect(alert).toMatchObject({ severity: 'Sev1', signalType: 'Activity Log', monitorCondition: 'Fired' });
    expect(alert.conditions).toEqual([]);
    expect(alert.resolvedDateTime).toBeUndefined();
  });

  it('accepts a context it has no reader for (the documented Prometheus sample) with no conditions', () => {
    // Prepare: alertContext as published in the common schema article (Prometheus alerts)
    const payload = commonAlert(
      { monitorCondition: 'Fired' },
      {
        interval: 'PT1M',
        expression: 'sql_up > 0',
        expressionValue: '0',
        for: 'PT2M',
        labels: { Environment: 'Prod', cluster: 'myCluster1' },
        annotations: { summary: 'alert on SQL availability' },
        ruleGroup:
          '/subscriptions/s/resourceGroups/rg/providers/Microsoft.AlertsManagement/prometheusRuleGroups/g',
      },
    );

    // Act
    const alert = parseCommonAlert(payload);

    // Assess
    expect(alert.conditions).toEqual([]);
    expect(alert.customProperties).toEqual({ Key1: 'Value1', Key2: 'Value2' });
  });

  it('bounds what it keeps: targets, conditions, description', () => {
    // Prepare
    const targets = Array.from(
      { length: 1000 },
      (_, i) => `/subscriptions/s/resourceGroups/rg/providers/x/y/r${i}`,
    );
    const criterion = {
      metricName: 'm',
      operator: 'GreaterThan',
      threshold: '1',
      metricValue: 2,
      dimensions: [],
    };
    const payload = commonAlert(
      { targets, description: 'd'.repeat(100_000) },
      {
        conditionType: 'SingleResourceMultipleMetricCriteria',
        condition: { allOf: Array(500).fill(criterion) },
      },
    );

    // Act
    const alert = parseCommonAlert(payload);

    // Assess
    expect(alert.targetResourceIds).toHaveLength(ALERT_LIMITS.targets);
    expect(alert.targetResourceCount).toBe(1000);
    expect(alert.conditions).toHaveLength(ALERT_LIMITS.conditions);
    expect(alert.description).toHaveLength(ALERT_LIMITS.text);
  });
});

describe('parseCommonAlert: bad input', () => {
  it.each([
    ['a string', 'not an alert'],
    ['an array', [1, 2]],
    ['null', null],
  ])('rejects %s', (_label, raw) => {
    expect(problemsOf(raw)).toEqual(['(body): expected a JSON object']);
  });

  it('rejects a payload that is not in the common schema, saying how to fix it', () => {
    // Prepare
    const payload = { schemaId: 'AzureMonitorMetricAlert', data: { status: 'Activated', context: {} } };

    // Act
    const problems = problemsOf(payload);

    // Assess
    expect(problems).toContain(
      "schemaId: 'AzureMonitorMetricAlert' is not 'azureMonitorCommonAlertSchema' (enable the common alert schema on the action group's webhook)",
    );
    expect(problems).toContain('data.essentials: required object');
  });

  it('lists every problem of the essentials and conditions at once, with their paths', () => {
    // Prepare
    const payload = commonAlert(
      {},
      {
        conditionType: 'SingleResourceMultipleMetricCriteria',
        condition: {
          allOf: [{ metricName: 'm', threshold: 'high', metricValue: 'n/a', dimensions: 'x' }, 7],
        },
      },
    ) as Json;
    Object.assign(payload.data.essentials, {
      alertId: '',
      severity: 'Sev9',
      signalType: 'Trace',
      monitorCondition: 'Open',
      firedDateTime: '3/22/2019 1:36:31 PM',
      alertTargetIDs: 'one-id',
    });
    delete payload.data.essentials.alertRule;

    // Act
    const problems = problemsOf(payload);

    // Assess
    expect(problems).toEqual(
      expect.arrayContaining([
        'data.essentials.alertId: required',
        'data.essentials.alertRule: required',
        "data.essentials.severity: 'Sev9' is not one of Sev0, Sev1, Sev2, Sev3, Sev4",
        "data.essentials.signalType: 'Trace' is not one of Metric, Log, Activity Log",
        "data.essentials.monitorCondition: 'Open' is not one of Fired, Resolved",
        'data.essentials.alertTargetIDs: expected an array of strings',
        'data.essentials.firedDateTime: must be an ISO 8601 time with a zone (e.g. 2021-11-16T08:29:01.29Z)',
        'data.alertContext.condition.allOf[0].threshold: expected a number (or a numeric string)',
        'data.alertContext.condition.allOf[0].metricValue: expected a number (or a numeric string)',
        'data.alertContext.condition.allOf[0].dimensions: expected an array of { name, value }',
        'data.alertContext.condition.allOf[1]: expected an object',
      ]),
    );
    expect(problems).toHaveLength(11);
  });

  it('rejects a Fired alert that carries a resolvedDateTime', () => {
    // Prepare
    const payload = commonAlert({ monitorCondition: 'Fired', resolvedDateTime: '2019-03-22T14:03:16Z' });

    // Act / Assess
    expect(problemsOf(payload)).toEqual([
      'data.essentials.resolvedDateTime: must be absent while monitorCondition is Fired',
    ]);
  });

  it('caps the problem list of a huge bad payload', () => {
    // Prepare
    const payload = commonAlert(
      {},
      { condition: { allOf: Array(500).fill({ threshold: 'x', metricValue: 'y', dimensions: 'z' }) } },
    );

    // Act
    const problems = problemsOf(payload);

    // Assess
    expect(problems).toHaveLength(ALERT_LIMITS.problems + 1);
    expect(problems.at(-1)).toMatch(/^\(and \d+ more problems\)$/);
  });
});
