import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findPlaybook, playbookTarget, resourceTypeOf } from '../../../src/lib/config/playbooks';
import { loadPolicy, parsePolicy, validatePolicy } from '../../../src/lib/config/policy';

const FULL = join(__dirname, '..', '..', '..', 'policy', 'examples', 'full.policy.yaml');
const SUB = '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers';
const ACCOUNT = `${SUB}/Microsoft.DocumentDB/databaseAccounts/acct-1`;
const NAMESPACE = `${SUB}/Microsoft.ServiceBus/namespaces/sb-stamp-1`;

function policyWith(playbooks: string): string {
  return `version: 1
playbooks:
${playbooks}
notifications:
  defaults: [ops]
  channels:
    - { name: ops, type: eventGrid }
    - { name: pager, type: webhook, urlSetting: PAGER_URL }
`;
}

function problemsOf(text: string): string[] {
  const result = validatePolicy(text, 'test.yaml');
  if (result.ok) throw new Error('expected the policy to be invalid');
  return result.problems;
}

const COSMOS = `  - name: orders-ru
    action: cosmos-raise-autoscale-max
    match: { alertRule: cosmos-ru-orders }
    target: { accountId: ${ACCOUNT}, database: orders, container: orders }
    bounds: { floor: 1000, ceiling: 8000 }
    signal: { region: westeurope, metric: NormalizedRUConsumption, recoveredBelow: 90 }`;

describe('policy playbooks', () => {
  it('fills in the defaults of a minimal scaling playbook', () => {
    // Act
    const policy = parsePolicy(policyWith(COSMOS), 'test.yaml');

    // Assess
    expect(policy.playbooks).toEqual([
      {
        name: 'orders-ru',
        action: 'cosmos-raise-autoscale-max',
        match: { alertRule: 'cosmos-ru-orders' },
        target: { kind: 'cosmosThroughput', accountId: ACCOUNT, database: 'orders', container: 'orders' },
        bounds: { floor: 1000, ceiling: 8000 },
        step: 1000,
        cooldownMinutes: 30,
        maxActionsPerDay: 6,
        dryRun: false,
        migrateToAutoscale: false,
        asyncScale: false,
        signal: {
          resourceId: ACCOUNT,
          region: 'westeurope',
          metric: 'NormalizedRUConsumption',
          aggregation: 'Maximum',
          dimensions: {},
          recoveredBelow: 90,
          verifyMinutes: 30,
          // The deployment's alert rule: above what counts as recovered, over 5 minutes, each minute.
          alert: { threshold: 90, windowMinutes: 5, frequencyMinutes: 1, severity: 2 },
        },
      },
    ]);
    expect(policy.schedules.remediationScaleBack).toBe('0 */5 * * * *');
  });

  it('accepts the full example, every option of every action', async () => {
    // Act
    const policy = await loadPolicy(FULL);

    // Assess
    expect(policy.playbooks.map((p) => [p.name, p.action])).toEqual([
      ['orders-container-ru', 'cosmos-raise-autoscale-max'],
      ['payments-messaging-units', 'servicebus-scale-messaging-units'],
      ['payments-consumers', 'scale-consumers'],
      ['shipments-consumers', 'scale-consumers'],
      ['payments-page', 'notify-only'],
    ]);
    expect(policy.playbooks[3]).toMatchObject({
      target: {
        kind: 'aksDeployment',
        clusterId: expect.stringMatching(/managedClusters\/aks-stamp-weu$/),
        namespace: 'shipping',
        deployment: 'shipments-worker',
        scaledObject: 'shipments-worker',
      },
      bounds: { floor: 4, ceiling: 40 },
      step: 4,
    });
    expect(policy.playbooks[0]).toMatchObject({
      step: 2000,
      approvalAbove: 12000,
      migrateToAutoscale: true,
      scaleBack: { below: 50, forMinutes: 120 },
      notify: ['ops-teams', 'pager'],
    });
    expect(policy.playbooks[1]).toMatchObject({
      step: 1,
      signal: { resourceId: expect.stringContaining('contoso-payments-sb') },
    });
  });

  it('reports every problem of the playbooks with its path, and starts nothing', () => {
    // Prepare
    const text = policyWith(`${COSMOS}
  - name: orders-ru
    action: cosmos-raise-autoscale-max
    match: {}
    target: { accountId: ${ACCOUNT.toUpperCase().replace('/SUBSCRIPTIONS', '/subscriptions').replace('/RESOURCEGROUPS', '/resourceGroups').replace('/PROVIDERS/MICROSOFT.DOCUMENTDB/DATABASEACCOUNTS/ACCT-1', '/providers/Microsoft.DocumentDB/databaseAccounts/acct-1')}, database: orders, container: orders }
    bounds: { floor: 9000, ceiling: 8500 }
    step: 1500
    approvalAbove: 9000
    signal: { region: westeurope, metric: NormalizedRUConsumption, recoveredBelow: 90 }
    scaleBack: { below: 95, forMinutes: 60 }
    notify: [nobody]
  - name: sb-units
    action: servicebus-scale-messaging-units
    match: { metric: ActiveMessages }
    target: { namespaceId: ${NAMESPACE} }
    bounds: { floor: 1, ceiling: 4 }
    step: 2
    signal:
      { region: westeurope, metric: ActiveMessages, recoveredBelow: 100, alert: { threshold: 50, frequencyMinutes: 15 } }
  - name: consumers
    action: scale-consumers
    match: { metric: ActiveMessages }
    target: { containerAppId: ${SUB}/Microsoft.App/containerApps/ca-worker }
    bounds: { floor: 1, ceiling: 10 }
    signal: { region: westeurope, metric: ActiveMessages, recoveredBelow: 100, alert: { windowMinutes: 10 } }
  - name: page
    action: notify-only
    match: { alertRule: x }
    bounds: { floor: 1, ceiling: 2 }
  - name: aks-a
    action: scale-consumers
    match: { alertRule: a }
    target: { clusterId: ${SUB}/Microsoft.ContainerService/managedClusters/aks-1, namespace: shipping, deployment: worker }
    bounds: { floor: 1, ceiling: 10 }
    signal: { resourceId: ${NAMESPACE}, region: westeurope, metric: ActiveMessages, recoveredBelow: 100 }
  - name: aks-b
    action: scale-consumers
    match: { alertRule: b }
    target: { clusterId: ${SUB}/Microsoft.ContainerService/managedClusters/AKS-1, namespace: shipping, deployment: worker, scaledObject: worker }
    bounds: { floor: 1, ceiling: 10 }
    signal: { resourceId: ${NAMESPACE}, region: westeurope, metric: ActiveMessages, recoveredBelow: 100 }
  - name: aks-c
    action: scale-consumers
    match: { alertRule: c }
    target: { clusterId: ${SUB}/Microsoft.ContainerService/managedClusters/aks-1, namespace: Shipping, deployment: "worker;rm", scaledObject: "$(x)" }
    bounds: { floor: 1, ceiling: 10 }
    signal: { resourceId: ${NAMESPACE}, region: westeurope, metric: ActiveMessages, recoveredBelow: 100 }`);

    // Act
    const problems = problemsOf(text);

    // Assess
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^playbooks\[1\]\.match: must give at least one of alertRule/),
        expect.stringMatching(
          /^playbooks\[1\]\.name: duplicate playbook name "orders-ru" \(playbooks\[0\]\)/,
        ),
        expect.stringMatching(/^playbooks\[1\]\.notify\[0\]: unknown channel "nobody"/),
        expect.stringMatching(/^playbooks\[1\]\.bounds: floor \(9000\) is above ceiling \(8500\)/),
        expect.stringMatching(
          /^playbooks\[1\]\.bounds\.ceiling: autoscale max RU\/s go in steps of 1000: 8500/,
        ),
        expect.stringMatching(/^playbooks\[1\]\.step: must be a multiple of 1000 RU\/s/),
        expect.stringMatching(/^playbooks\[1\]\.approvalAbove: must be from floor/),
        expect.stringMatching(/^playbooks\[1\]\.scaleBack\.below: must not be above signal\.recoveredBelow/),
        expect.stringMatching(/^playbooks\[1\]\.target: changes the same resource as playbooks\[0\]/),
        expect.stringMatching(/^playbooks\[2\]\.step: does not apply: messaging units/),
        // The deployment's alert rule: never firing on a recovered value; a frequency Azure accepts.
        expect.stringMatching(
          /^playbooks\[2\]\.signal\.alert\.threshold: must not be below signal\.recoveredBelow \(100\)/,
        ),
        expect.stringMatching(
          /^playbooks\[2\]\.signal\.alert\.frequencyMinutes: must not be above the window \(5 minutes\)/,
        ),
        expect.stringMatching(/^playbooks\[3\]\.signal\.alert\.windowMinutes: must be one of: 1, 5, 15/),
        expect.stringMatching(/^playbooks\[3\]\.signal\.resourceId: is required for scale-consumers/),
        expect.stringMatching(/^playbooks\[4\]\.bounds: is not allowed here/),
        // One deployment, scaled by its replicas in one playbook and its KEDA max in another: they would fight.
        expect.stringMatching(/^playbooks\[6\]\.target: changes the same resource as playbooks\[5\]/),
      ]),
    );
    // Kubernetes names are checked before any command is built from them.
    const aksC = problems.filter((p) => p.startsWith('playbooks[7]'));
    expect(aksC.join('\n')).toMatch(/namespace/);
    expect(aksC.join('\n')).toMatch(/deployment/);
    expect(aksC.join('\n')).toMatch(/scaledObject/);
  });

  it('names the run target by the throughput it changes, case-insensitively', () => {
    // Act / Assess
    expect(
      playbookTarget({
        kind: 'cosmosThroughput',
        accountId: ACCOUNT,
        database: 'Orders',
        container: 'Orders',
      }),
    ).toBe(`${ACCOUNT}/sqlDatabases/Orders/sqlContainers/Orders`.toLowerCase());
    expect(playbookTarget({ kind: 'cosmosThroughput', accountId: ACCOUNT, database: 'orders' })).toBe(
      `${ACCOUNT}/sqldatabases/orders`.toLowerCase(),
    );
    expect(playbookTarget({ kind: 'serviceBusNamespace', namespaceId: NAMESPACE })).toBe(
      NAMESPACE.toLowerCase(),
    );
  });
});

describe('findPlaybook', () => {
  const policy = parsePolicy(
    policyWith(`  - name: by-everything
    action: notify-only
    match:
      alertRule: Rule-A
      resourceType: Microsoft.DocumentDB/databaseAccounts
      metric: NormalizedRUConsumption
      customProperty: { name: team, value: data }
  - name: by-property
    action: notify-only
    match: { customProperty: { name: team } }
  - name: by-type
    action: notify-only
    match: { resourceType: microsoft.servicebus/namespaces }`),
    'test.yaml',
  );
  const alert = (o: {
    rule?: string;
    target?: string;
    metric?: string;
    properties?: Record<string, string>;
  }) => ({
    alertRule: o.rule ?? 'rule-a',
    targetResourceIds: [o.target ?? ACCOUNT.toLowerCase()],
    conditions: [{ metricName: o.metric ?? 'normalizedruconsumption' }],
    customProperties: o.properties ?? { team: 'data' },
  });

  it('takes the first playbook whose every criterion holds, case-insensitively but for property values', () => {
    // Act / Assess
    expect(findPlaybook(policy.playbooks, alert({}))?.name).toBe('by-everything');
    expect(findPlaybook(policy.playbooks, alert({ properties: { team: 'Data' } }))?.name).toBe('by-property');
    expect(findPlaybook(policy.playbooks, alert({ metric: 'TotalRequests' }))?.name).toBe('by-property');
    expect(findPlaybook(policy.playbooks, alert({ properties: {}, target: NAMESPACE }))?.name).toBe(
      'by-type',
    );
    expect(findPlaybook(policy.playbooks, alert({ properties: {} }))).toBeUndefined();
  });

  it('reads the type of a resource id, nested types joined', () => {
    // Act / Assess
    expect(resourceTypeOf(ACCOUNT)).toBe('microsoft.documentdb/databaseaccounts');
    expect(resourceTypeOf(`${NAMESPACE}/queues/orders`)).toBe('microsoft.servicebus/namespaces/queues');
    expect(resourceTypeOf('/subscriptions/x')).toBeUndefined();
    expect(resourceTypeOf(undefined)).toBeUndefined();
  });
});
