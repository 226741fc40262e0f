/**
 * The sandbox's load generator, metric alert rules and action group: load drives the metrics the
 * capacity playbooks watch (against what is provisioned now), a rule fires once per episode and
 * resolves after three evaluations without its condition, and the action group posts common-schema
 * notifications that the app's own parser reads, retrying only what Azure retries, sometimes twice.
 */
import { CosmosDBManagementClient } from '@azure/arm-cosmosdb';
import { MetricsClient } from '@azure/monitor-query-metrics';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/lib/core/errors';
import { parseCommonAlert } from '../../../src/lib/remediation/alert';
import { createSandbox, type Scenario } from '../../../src/local/sandbox';

const SUB = '00000000-0000-0000-0000-000000000000';
const RG = 'rg-load';
const ACCOUNT = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-load`;
const NAMESPACE = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ServiceBus/namespaces/sb-load`;

function scenario(alerting: Record<string, unknown>): Scenario {
  return {
    clock: { start: '2026-05-01T00:00:00Z' },
    azure: { subscriptionId: SUB, resourceGroup: RG },
    arm: {
      cosmosDbAccounts: [
        {
          name: 'cosmos-load',
          databases: [
            { name: 'db', containers: [{ name: 'c1', storageGB: 1, throughput: { autoscaleMax: 1000 } }] },
          ],
        },
      ],
      serviceBusNamespaces: [
        { name: 'sb-load', sku: { tier: 'Premium', capacity: 1 }, queues: [{ name: 'q1' }] },
      ],
    },
    alerting,
  } as Scenario;
}

const cosmosRule = {
  name: 'ru-hot',
  resourceId: ACCOUNT,
  metric: 'NormalizedRUConsumption',
  dimensions: { DatabaseName: 'db', CollectionName: 'c1' },
  aggregation: 'Maximum',
  operator: 'GreaterThan',
  threshold: 90,
  windowMinutes: 5,
  frequencyMinutes: 1,
  customProperties: { team: 'data' },
};

function receiver(statuses: number[] = []) {
  const bodies: Array<Record<string, unknown>> = [];
  return {
    bodies,
    target: {
      async post(body: string) {
        bodies.push(JSON.parse(body));
        return { status: statuses.shift() ?? 202, body: '{"status":"accepted"}' };
      },
    },
  };
}

describe('sandbox alerting: load, metric alert rules, action group', () => {
  it('fires once while the container is throttled, in a payload the intake parses, and resolves after the throughput is raised', async () => {
    // Prepare: 1400 RU/s asked from +10 min of a container with an autoscale max of 1000.
    const { bodies, target } = receiver();
    const sandbox = createSandbox({
      scenario: scenario({
        load: [
          {
            cosmos: { account: 'cosmos-load', database: 'db', container: 'c1' },
            ruPerSecond: [
              { at: '+0m', value: 500 },
              { at: '+10m', value: 1400 },
            ],
          },
        ],
        rules: [cosmosRule],
      }),
      alertTarget: target,
    });

    // Act: throttled for 20 minutes, then raised to 2000 through the real ARM client.
    await sandbox.advance({ minutes: 30 });
    const fired = bodies.length;
    const arm = new CosmosDBManagementClient(sandbox.credential, SUB, { httpClient: sandbox.httpClient });
    await arm.sqlResources.beginUpdateSqlContainerThroughputAndWait(RG, 'cosmos-load', 'db', 'c1', {
      resource: { autoscaleSettings: { maxThroughput: 2000 } },
    });
    await sandbox.advance({ minutes: 12 });
    const metrics = new MetricsClient(sandbox.monitor.metrics.endpoint('westeurope'), sandbox.credential, {
      httpClient: sandbox.httpClient,
      audience: sandbox.monitor.metrics.audience,
    });
    const [result] = await metrics.queryResources(
      [ACCOUNT],
      ['NormalizedRUConsumption'],
      'Microsoft.DocumentDB/databaseAccounts',
      {
        startTime: new Date('2026-05-01T00:00:00Z'),
        endTime: new Date('2026-05-01T00:42:00Z'),
        interval: 'PT1M',
        aggregation: 'Maximum',
      },
    );

    // Assess
    expect(fired).toBe(1);
    const first = parseCommonAlert(bodies[0]);
    expect(first).toMatchObject({ alertRule: 'ru-hot', monitorCondition: 'Fired', severity: 'Sev2' });
    expect(bodies[0]).toMatchObject({
      schemaId: 'azureMonitorCommonAlertSchema',
      data: {
        essentials: { alertTargetIDs: [ACCOUNT.toLowerCase()], signalType: 'Metric' },
        alertContext: {
          conditionType: 'SingleResourceMultipleMetricCriteria',
          condition: {
            windowSize: 'PT5M',
            allOf: [{ metricName: 'NormalizedRUConsumption', metricValue: 100 }],
            // The window the rule read: it ends the ingestion delay before the evaluation.
            windowStartTime: '2026-05-01T00:06:00.000Z',
            windowEndTime: '2026-05-01T00:11:00.000Z',
          },
        },
        customProperties: { team: 'data' },
      },
    });
    // Fired at the first evaluation whose 5-minute window saw a throttled minute: +11 min, plus the
    // 3 minutes platform metrics take to show up (the sandbox's default ingestion delay).
    expect(
      (bodies[0] as { data: { essentials: { firedDateTime: string } } }).data.essentials.firedDateTime,
    ).toBe('2026-05-01T00:14:00.000Z');
    expect(bodies).toHaveLength(2);
    const resolved = parseCommonAlert(bodies[1]);
    expect(resolved.monitorCondition).toBe('Resolved');
    expect(resolved.alertId).toBe(first.alertId);
    const points = result!.metrics[0]!.timeseries[0]!.data!.map((d) => d.maximum);
    expect(points.slice(0, 10)).toEqual(Array(10).fill(50));
    expect(points.slice(10, 30)).toEqual(Array(20).fill(100));
    expect(points.slice(30, 39)).toEqual(Array(9).fill(70));
    expect(sandbox.alerts.rules()).toEqual([
      expect.objectContaining({ name: 'ru-hot', state: 'ok', lastValue: 70 }),
    ]);
  });

  it('grows the backlog while arrivals outpace the messaging units, drains it once doubled, and retries only what Azure retries', async () => {
    // Prepare: 1500 messages a minute against 1000 drained per unit; the first attempt answers 503, the next 400.
    const { bodies, target } = receiver([503, 202, 400]);
    const sandbox = createSandbox({
      scenario: scenario({
        actionGroup: { maxAttempts: 3 },
        load: [
          {
            queue: { namespace: 'sb-load', name: 'q1' },
            incomingPerMinute: [{ at: '+0m', value: 1500 }],
            drainedPerMinutePerUnit: 1000,
          },
        ],
        rules: [
          {
            name: 'backlog',
            resourceId: NAMESPACE,
            metric: 'ActiveMessages',
            dimensions: { EntityName: 'q1' },
            threshold: 2000,
          },
        ],
      }),
      alertTarget: target,
    });

    // Act
    await sandbox.advance({ minutes: 12 });
    const backlogAt12 = backlog(sandbox);
    const afterFire = sandbox.alerts.deliveries();
    const { ServiceBusManagementClient } = await import('@azure/arm-servicebus');
    const sb = new ServiceBusManagementClient(sandbox.credential, SUB, { httpClient: sandbox.httpClient });
    await sb.namespaces.update(RG, 'sb-load', { sku: { name: 'Premium', tier: 'Premium', capacity: 2 } });
    await sandbox.advance({ minutes: 30 });

    // Assess: +500 a minute for 12 minutes (fired at +11: the window [+3, +8) averages 2500 once its
    // data shows up), then -500 a minute once the second unit serves.
    expect(backlogAt12).toBe(6000);
    expect(afterFire.map((d) => [d.monitorCondition, d.attempt, d.status])).toEqual([
      ['Fired', 1, 503],
      ['Fired', 2, 202],
    ]);
    expect(backlog(sandbox)).toBe(0);
    const resolved = sandbox.alerts.deliveries().filter((d) => d.monitorCondition === 'Resolved');
    // 400 is not retried.
    expect(resolved.map((d) => [d.attempt, d.status])).toEqual([[1, 400]]);
    expect(bodies).toHaveLength(3);
  });

  it('fires and resolves at the right minutes inside one long move, without stopping every minute while steady', async () => {
    // Prepare: quiet for a day, throttled for an hour, quiet again.
    const { bodies, target } = receiver();
    const sandbox = createSandbox({
      scenario: scenario({
        load: [
          {
            cosmos: { account: 'cosmos-load', database: 'db', container: 'c1' },
            ruPerSecond: [
              { at: '+0m', value: 500 },
              { at: '+1d', value: 1400 },
              { at: '+1d1h', value: 500 },
            ],
          },
        ],
        rules: [cosmosRule],
      }),
      alertTarget: target,
    });

    // Act: one move of 30 days.
    await sandbox.advance({ days: 30 });

    // Assess: Fired 1 + 3 minutes after the step; Resolved 3 evaluations after the windows are clear.
    const essentials = bodies.map(
      (b) => (b as { data: { essentials: Record<string, string> } }).data.essentials,
    );
    expect(essentials.map((e) => [e.monitorCondition, e.firedDateTime, e.resolvedDateTime])).toEqual([
      ['Fired', '2026-05-02T00:04:00.000Z', undefined],
      ['Resolved', '2026-05-02T00:04:00.000Z', '2026-05-02T01:10:00.000Z'],
    ]);
    expect(sandbox.alerts.rules()[0]!.lastEvaluatedAt).not.toBe(sandbox.clock.now().toISOString());
  });

  it('delivers some notifications twice, with the same alert id and condition', async () => {
    // Prepare
    const { bodies, target } = receiver();
    const sandbox = createSandbox({
      scenario: scenario({
        actionGroup: { duplicateProbability: 1 },
        load: [
          {
            cosmos: { account: 'cosmos-load', database: 'db', container: 'c1' },
            ruPerSecond: [{ at: '+0m', value: 5000 }],
          },
        ],
        rules: [cosmosRule],
      }),
      alertTarget: target,
    });

    // Act
    await sandbox.advance({ minutes: 5 });

    // Assess
    expect(bodies).toHaveLength(2);
    expect(bodies[1]).toEqual(bodies[0]);
    expect(sandbox.alerts.deliveries().map((d) => [d.duplicate, d.actionGroup])).toEqual([
      [false, 'ag-stampkeeper'],
      [true, 'ag-stampkeeper'],
    ]);
  });

  it('refuses a bad alerting section with every problem and its path', () => {
    // Act
    let error: unknown;
    try {
      createSandbox({
        scenario: scenario({
          actionGroup: { duplicateProbability: 2 },
          load: [{ queue: { namespace: 'sb-load', name: 'q1' }, incomingPerMinute: [] }],
          rules: [{ ...cosmosRule, operator: 'Above', windowMinutes: 7, threshold: 'high' }],
        }),
      });
    } catch (e) {
      error = e;
    }

    // Assess
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).problems).toEqual(
      expect.arrayContaining([
        'alerting.actionGroup.duplicateProbability: a number from 0 to 1',
        'alerting.load[0].incomingPerMinute: a list of 1 to 1000 steps { at, value }',
        'alerting.load[0].drainedPerMinutePerUnit: an integer from 1 to 10000000',
        'alerting.rules[0].operator: one of GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual',
        'alerting.rules[0].threshold: a number',
        expect.stringMatching(/^alerting\.rules\[0\]\.windowMinutes: one of 1, 5/),
      ]),
    );
  });

  it('refuses a load on a container the estate does not have', () => {
    expect(() =>
      createSandbox({
        scenario: scenario({
          load: [
            {
              cosmos: { account: 'cosmos-load', database: 'db', container: 'nope' },
              ruPerSecond: [{ at: '+0m', value: 1 }],
            },
          ],
        }),
      }),
    ).toThrow(/alerting\.load\[0\]\.cosmos: no container db\/nope/);
  });
});

function backlog(sandbox: ReturnType<typeof createSandbox>): number | undefined {
  const metrics = sandbox.monitor.describe().metrics as {
    resources: Array<{
      id: string;
      sources: Array<{ metric: string; latest?: { values: Array<{ value: number }> } }>;
    }>;
  };
  return metrics.resources.find((r) => r.id === NAMESPACE)?.sources.find((s) => s.metric === 'activemessages')
    ?.latest?.values[0]?.value;
}
