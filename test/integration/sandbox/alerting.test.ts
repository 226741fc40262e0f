/**
 * The sandbox's load generator, metric alert rules and action group: load drives the metrics the
 * capacity playbooks watch (against what is provisioned now), a rule fires once per episode and
 * resolves after three evaluations without its condition, and the action group posts common-schema
 * notifications that the app's own parser reads, retrying only what Azure retries, sometimes twice.
 */
import { ContainerAppsAPIClient } from '@azure/arm-appcontainers';
import { ContainerServiceClient } from '@azure/arm-containerservice';
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

  it('notices arrivals stepping up on an empty queue while the clock is quiet, when a move ends at the step', async () => {
    // Prepare: 500 a minute (drained), then 1500 from +1h against 1000 drained: the backlog grows from +1h.
    const sandbox = createSandbox({
      scenario: scenario({
        load: [
          {
            queue: { namespace: 'sb-load', name: 'q1' },
            incomingPerMinute: [
              { at: '+0m', value: 500 },
              { at: '+1h', value: 1500 },
            ],
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
    });

    // Act: one move that ends exactly at the step, then another.
    await sandbox.advance({ hours: 1 });
    await sandbox.advance({ minutes: 15 });

    // Assess: +500 a minute from +1h; the first window averaging over 2000 is [+1h03, +1h08) (1500 ...
    // 3500), read 3 minutes later.
    expect(backlog(sandbox)).toBe(7500);
    expect(sandbox.alerts.deliveries().map((d) => [d.monitorCondition, d.at])).toEqual([
      ['Fired', '2026-05-01T01:11:00.000Z'],
    ]);
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

describe('sandbox alerting: a queue drained by its consumers', () => {
  /** Queues q1 (a Container App drains it) and q2 (an AKS deployment), each with a backlog rule. */
  function consumerScenario(loads: Array<Record<string, unknown>>): Scenario {
    const base = scenario({
      load: loads,
      rules: ['q1', 'q2'].map((queue) => ({
        name: `backlog-${queue}`,
        resourceId: NAMESPACE,
        metric: 'ActiveMessages',
        dimensions: { EntityName: queue },
        threshold: 2000,
      })),
    }) as Scenario & { arm: Record<string, unknown> };
    return {
      ...base,
      arm: {
        serviceBusNamespaces: [
          {
            name: 'sb-load',
            sku: { tier: 'Premium', capacity: 1 },
            queues: [{ name: 'q1' }, { name: 'q2' }],
          },
        ],
        containerApps: [{ name: 'ca-load', scale: { minReplicas: 1, maxReplicas: 1 } }],
        aksClusters: [
          {
            name: 'aks-load',
            deployments: [
              {
                namespace: 'work',
                name: 'q2-worker',
                replicas: 3,
                scaledObject: { minReplicaCount: 1, maxReplicaCount: 2 },
              },
              { namespace: 'work', name: 'plain', replicas: 1 },
            ],
          },
        ],
      },
    } as Scenario;
  }
  const q1 = { queue: { namespace: 'sb-load', name: 'q1' }, consumers: { containerApp: 'ca-load' } };
  const q2 = (deployment = 'q2-worker') => ({
    queue: { namespace: 'sb-load', name: 'q2' },
    consumers: { aks: { cluster: 'aks-load', namespace: 'work', deployment } },
  });
  const arrivals = (value: number) => [{ at: '+0m', value }];
  const kubectl = async (sandbox: ReturnType<typeof createSandbox>, command: string) => {
    const client = new ContainerServiceClient(sandbox.credential, SUB, { httpClient: sandbox.httpClient });
    return client.managedClusters.beginRunCommandAndWait(
      RG,
      'aks-load',
      { command },
      { updateIntervalInMs: 0 },
    );
  };
  const setMaxReplicas = async (sandbox: ReturnType<typeof createSandbox>, maxReplicas: number) => {
    const client = new ContainerAppsAPIClient(sandbox.credential, SUB, { httpClient: sandbox.httpClient });
    await client.containerApps.beginUpdateAndWait(
      RG,
      'ca-load',
      { location: 'westeurope', template: { scale: { maxReplicas } } },
      { updateIntervalInMs: 0 },
    );
  };
  const conditions = (sandbox: ReturnType<typeof createSandbox>) =>
    sandbox.alerts
      .deliveries()
      .filter((d) => !d.duplicate)
      .map((d) => [d.rule, d.monitorCondition]);

  it("drains a queue at the Container App's max replicas, and faster from the minute after they are raised", async () => {
    // Prepare: 1500 a minute against 1 replica draining 1000.
    const sandbox = createSandbox({
      scenario: consumerScenario([
        { ...q1, incomingPerMinute: arrivals(1500), drainedPerMinutePerReplica: 1000 },
      ]),
    });

    // Act
    await sandbox.advance({ minutes: 12 });
    const at12 = backlog(sandbox, 'q1');
    await setMaxReplicas(sandbox, 2);
    await sandbox.advance({ minutes: 30 });

    // Assess: +500 a minute for 12 minutes, then -500 a minute.
    expect(at12).toBe(6000);
    expect(backlog(sandbox, 'q1')).toBe(0);
    expect(conditions(sandbox)).toEqual([
      ['backlog-q1', 'Fired'],
      ['backlog-q1', 'Resolved'],
    ]);
  });

  it("drains at a ScaledObject's maxReplicaCount (not the deployment's replicas) and recovers once it is patched through run command", async () => {
    // Prepare: 1500 a minute; 400 per replica; the ScaledObject's max is 2 (the deployment says 3).
    const sandbox = createSandbox({
      scenario: consumerScenario([
        { ...q2(), incomingPerMinute: arrivals(1500), drainedPerMinutePerReplica: 400 },
      ]),
    });

    // Act
    await sandbox.advance({ minutes: 12 });
    const at12 = backlog(sandbox, 'q2');
    const patched = await kubectl(
      sandbox,
      `kubectl patch scaledobject/q2-worker -n work --type=merge -p '{"spec":{"maxReplicaCount":8}}'`,
    );
    await sandbox.advance({ minutes: 30 });

    // Assess: 1500 - 2 x 400 = +700 a minute; then 1500 - 8 x 400 = -1700 a minute.
    expect(patched.exitCode).toBe(0);
    expect(at12).toBe(8400);
    expect(backlog(sandbox, 'q2')).toBe(0);
    expect(conditions(sandbox)).toEqual([
      ['backlog-q2', 'Fired'],
      ['backlog-q2', 'Resolved'],
    ]);
  });

  it("drains at a deployment's replicas without a ScaledObject, capped by the messaging units when both rates are given", async () => {
    // Prepare: the plain deployment runs 1 replica draining 1000; the namespace's one unit caps it at 1200.
    const sandbox = createSandbox({
      scenario: consumerScenario([
        {
          ...q2('plain'),
          incomingPerMinute: arrivals(1500),
          drainedPerMinutePerReplica: 1000,
          drainedPerMinutePerUnit: 1200,
        },
      ]),
    });

    // Act
    await sandbox.advance({ minutes: 10 });
    const at10 = backlog(sandbox, 'q2');
    await kubectl(sandbox, 'kubectl scale deployment/plain -n work --replicas=3');
    await sandbox.advance({ minutes: 10 });
    const capped = backlog(sandbox, 'q2');

    // Assess: +500 a minute with one replica; three replicas would drain 3000, the unit caps them at 1200.
    expect(at10).toBe(5000);
    expect(capped).toBe(8000);
  });

  it.each([
    ['the replicas', true],
    ['the messaging units', false],
  ])(
    'wakes a quiet clock when %s are scaled back, and counts the change from then, not over the quiet past',
    async (_what, byReplicas) => {
      // Prepare: 1500 a minute against 2000 drained (2 replicas, or 2 units, draining 1000 each): no
      // backlog, the ticker goes quiet.
      const load = byReplicas
        ? { ...q1, incomingPerMinute: arrivals(1500), drainedPerMinutePerReplica: 1000 }
        : { queue: q1.queue, incomingPerMinute: arrivals(1500), drainedPerMinutePerUnit: 1000 };
      const sandbox = createSandbox({ scenario: consumerScenario([load]) });
      const { ServiceBusManagementClient } = await import('@azure/arm-servicebus');
      const sb = new ServiceBusManagementClient(sandbox.credential, SUB, { httpClient: sandbox.httpClient });
      const setUnits = (capacity: number) =>
        sb.namespaces.update(RG, 'sb-load', { sku: { name: 'Premium', tier: 'Premium', capacity } });
      await (byReplicas ? setMaxReplicas(sandbox, 2) : setUnits(2));
      await sandbox.advance({ hours: 2, seconds: 30 });

      // Act: scaled back to 1 (+500 a minute from now), then one long move.
      await (byReplicas ? setMaxReplicas(sandbox, 1) : setUnits(1));
      await sandbox.advance({ days: 1 });

      // Assess: the backlog grows from the scale-back (02:00:30) at 500 a minute: 250 at 02:01, 750 at
      // 02:02 ... The first window averaging over 2000 is [02:03, 02:08) (1250 ... 3250: 2250), read 3
      // minutes later, at 02:11. Counted over the quiet past, it would have fired minutes earlier.
      const fired = sandbox.alerts.deliveries().find((d) => d.monitorCondition === 'Fired');
      expect(fired?.at).toBe('2026-05-01T02:11:00.000Z');
      expect(fired?.rule).toBe('backlog-q1');
    },
  );

  it('refuses consumers the estate lacks and loads without a rate, with their paths', () => {
    // Act
    const missingApp = () =>
      createSandbox({
        scenario: consumerScenario([
          {
            ...q1,
            consumers: { containerApp: 'ca-nope' },
            incomingPerMinute: arrivals(1),
            drainedPerMinutePerReplica: 1,
          },
        ]),
      });
    const missingDeployment = () =>
      createSandbox({
        scenario: consumerScenario([
          { ...q2('nope'), incomingPerMinute: arrivals(1), drainedPerMinutePerReplica: 1 },
        ]),
      });
    let error: unknown;
    try {
      createSandbox({
        scenario: consumerScenario([
          { ...q1, incomingPerMinute: arrivals(1) },
          { queue: q1.queue, incomingPerMinute: arrivals(1), drainedPerMinutePerReplica: 5 },
          {
            ...q1,
            consumers: { containerApp: 'ca-load', aks: {} },
            incomingPerMinute: arrivals(1),
            drainedPerMinutePerReplica: 0,
          },
          { ...q1, consumers: { vm: 'x' }, incomingPerMinute: arrivals(1), drainedPerMinutePerReplica: 1 },
        ]),
      });
    } catch (e) {
      error = e;
    }

    // Assess
    expect(missingApp).toThrow(
      /^alerting\.load\[0\]\.consumers\.containerApp: no container app 'ca-nope' in arm\.containerApps$/,
    );
    expect(missingDeployment).toThrow(
      /^alerting\.load\[0\]\.consumers\.aks: no deployment work\/nope in arm\.aksClusters 'aks-load'$/,
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).problems).toEqual(
      expect.arrayContaining([
        'alerting.load[0]: with consumers, give drainedPerMinutePerReplica, drainedPerMinutePerUnit or both',
        'alerting.load[1].drainedPerMinutePerUnit: an integer from 1 to 10000000',
        'alerting.load[1].drainedPerMinutePerReplica: needs consumers (a containerApp or an aks deployment)',
        'alerting.load[2].consumers: either containerApp or aks, not both',
        'alerting.load[2].drainedPerMinutePerReplica: an integer from 1 to 10000000',
        expect.stringMatching(/^alerting\.load\[3\]\.consumers\.vm: unknown key/),
      ]),
    );
  });
});

function backlog(sandbox: ReturnType<typeof createSandbox>, queue?: string): number | undefined {
  const metrics = sandbox.monitor.describe().metrics as {
    resources: Array<{
      id: string;
      sources: Array<{
        metric: string;
        latest?: {
          values: Array<{ dimensions: Map<string, string> | Record<string, string>; value: number }>;
        };
      }>;
    }>;
  };
  const values = metrics.resources
    .find((r) => r.id === NAMESPACE)
    ?.sources.find((s) => s.metric === 'activemessages')?.latest?.values;
  if (queue === undefined) return values?.[0]?.value;
  const entity = (d: Map<string, string> | Record<string, string>) =>
    d instanceof Map ? [...d.values()][0] : Object.values(d)[0];
  return values?.find((v) => entity(v.dimensions) === queue)?.value;
}
