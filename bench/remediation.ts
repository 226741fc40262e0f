/**
 * Guarded remediation, measured on the local host and the sandbox (issue 10, section 5). Prints:
 *
 * 1. The alert intake under a storm: 500 common-schema alerts (200 distinct, the rest redeliveries)
 *    posted at once to `POST /api/alerts` as action groups would (secure webhook token, function
 *    key): p50 / p99 / max response time (an action group gives up after 10 s), the answers by
 *    status, and the throughput raises taken, next to how many there should be: one per target a
 *    playbook acts on, however many alerts and redeliveries name it.
 * 2. Resource Manager calls per remediation (the raise runs of the storm), by kind, next to the
 *    minimum the APIs allow (read the offer, write it: 2; docs/bench.md).
 * 3. The same for one raise of each other scaling playbook, one at a time: Service Bus messaging
 *    units, a Container App's max replicas, an AKS deployment's replicas and a KEDA ScaledObject's
 *    max (kubectl through the run command), each next to the least a check-then-act needs.
 *
 * The app runs from the sources on the real local host, its state on an in-memory Azurite, its SDK
 * clients on the sandbox. Figures only, never assertions.
 *
 * Run alone with `npx tsx bench/remediation.ts`, or `npm run bench -- remediation`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ACTION_GROUP_APP_ID, ROLES } from '../src/lib/app/auth';
import { type RunningLocalApp, startLocalApp } from '../src/local/app';
import type { Scenario } from '../src/local/sandbox';
import { startAzurite } from '../test/support/azurite';

const SUB = '00000000-0000-0000-0000-000000000000';
const RG = 'rg-bench';
const ACCOUNT = 'cosmos-storm';
const ACCOUNT_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.DocumentDB/databaseAccounts/${ACCOUNT}`;
const TARGETS = 10;
const ALERTS_PER_TARGET = 5;
const OTHER_ALERTS = 150;
const POSTS = 500;
const NAMESPACE = 'sb-bench';
const NAMESPACE_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ServiceBus/namespaces/${NAMESPACE}`;
const CLUSTER_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ContainerService/managedClusters/aks-bench`;
/**
 * One playbook of every other scaling kind, and the least Resource Manager calls a check-then-act
 * raise of it needs (read, then change, then know the change is done).
 */
const OTHER_KINDS = [
  {
    playbook: 'units',
    action: 'servicebus-scale-messaging-units',
    target: `{ namespaceId: ${NAMESPACE_ID} }`,
    minimum: 2,
    why: 'GET the namespace, PATCH its capacity',
  },
  {
    playbook: 'container-app',
    action: 'scale-consumers',
    target: `{ containerAppId: /subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.App/containerApps/ca-bench }`,
    minimum: 3,
    why: 'GET the app, PATCH its scale, one poll of the long-running operation',
  },
  {
    playbook: 'aks-replicas',
    action: 'scale-consumers',
    target: `{ clusterId: ${CLUSTER_ID}, namespace: work, deployment: plain-worker }`,
    minimum: 4,
    why: 'a kubectl get and a kubectl scale, each a run command POST and its result GET',
  },
  {
    playbook: 'aks-keda-max',
    action: 'scale-consumers',
    target: `{ clusterId: ${CLUSTER_ID}, namespace: work, deployment: keda-worker, scaledObject: keda-worker }`,
    minimum: 4,
    why: 'a kubectl get and a kubectl patch, each a run command POST and its result GET',
  },
] as const;

function scenario(): Scenario {
  const containers = Array.from({ length: TARGETS }, (_, i) => ({
    name: `c${i}`,
    storageGB: 1,
    throughput: { autoscaleMax: 1000 },
  }));
  return {
    clock: { start: '2026-06-01T00:00:00Z' },
    azure: { subscriptionId: SUB, resourceGroup: RG },
    arm: {
      cosmosDbAccounts: [{ name: ACCOUNT, databases: [{ name: 'db', containers }] }],
      serviceBusNamespaces: [
        { name: NAMESPACE, sku: { tier: 'Premium', capacity: 1 }, queues: [{ name: 'work' }] },
      ],
      containerApps: [{ name: 'ca-bench', scale: { minReplicas: 1, maxReplicas: 2 } }],
      aksClusters: [
        {
          name: 'aks-bench',
          deployments: [
            { namespace: 'work', name: 'plain-worker', replicas: 2 },
            {
              namespace: 'work',
              name: 'keda-worker',
              scaledObject: { name: 'keda-worker', minReplicaCount: 1, maxReplicaCount: 2 },
            },
          ],
        },
      ],
    },
    monitor: { metrics: { ingestionDelayMinutes: 0 } },
    // Every container throttled (1400 RU/s asked of 1000): each raise is warranted. The queue the
    // other playbooks watch is empty, so their runs verify at once.
    alerting: {
      load: [
        ...containers.map((c) => ({
          cosmos: { account: ACCOUNT, database: 'db', container: c.name },
          ruPerSecond: [{ at: '+0m', value: 1400 }],
        })),
        {
          queue: { namespace: NAMESPACE, name: 'work' },
          incomingPerMinute: [{ at: '+0m', value: 0 }],
          drainedPerMinutePerUnit: 1000,
        },
      ],
    },
  } as Scenario;
}

function policy(): string {
  const playbooks = Array.from(
    { length: TARGETS },
    (_, i) => `  - name: ru-c${i}
    action: cosmos-raise-autoscale-max
    match: { alertRule: ru-c${i} }
    target: { accountId: ${ACCOUNT_ID}, database: db, container: c${i} }
    bounds: { floor: 1000, ceiling: 4000 }
    step: 1000
    cooldownMinutes: 15
    signal:
      region: westeurope
      metric: NormalizedRUConsumption
      dimensions: { DatabaseName: db, CollectionName: c${i} }
      recoveredBelow: 90
      verifyMinutes: 30
`,
  ).join('');
  const others = OTHER_KINDS.map(
    (k) => `  - name: ${k.playbook}
    action: ${k.action}
    match: { alertRule: ${k.playbook} }
    target: ${k.target}
    bounds: { floor: 1, ceiling: 8 }${k.action === 'scale-consumers' ? '\n    step: 2' : ''}
    signal:
      resourceId: ${NAMESPACE_ID}
      region: westeurope
      metric: ActiveMessages
      dimensions: { EntityName: work }
      recoveredBelow: 100
      verifyMinutes: 30
`,
  ).join('');
  return `version: 1\nplaybooks:\n${playbooks}${others}notifications:\n  defaults: []\n  channels: []\n`;
}

function alert(
  rule: string,
  id: string,
  target: string,
  metric = { name: 'NormalizedRUConsumption', namespace: 'Microsoft.DocumentDB/databaseAccounts' },
): string {
  return JSON.stringify({
    schemaId: 'azureMonitorCommonAlertSchema',
    data: {
      essentials: {
        alertId: `/subscriptions/${SUB}/providers/Microsoft.AlertsManagement/alerts/${id}`,
        alertRule: rule,
        severity: 'Sev2',
        signalType: 'Metric',
        monitorCondition: 'Fired',
        monitoringService: 'Platform',
        alertTargetIDs: [target.toLowerCase()],
        configurationItems: [target.split('/').at(-1)],
        originAlertId: id,
        firedDateTime: '2026-06-01T00:09:00.000Z',
        description: '',
        essentialsVersion: '1.0',
        alertContextVersion: '1.0',
      },
      alertContext: {
        properties: null,
        conditionType: 'SingleResourceMultipleMetricCriteria',
        condition: {
          windowSize: 'PT5M',
          allOf: [
            {
              metricName: metric.name,
              metricNamespace: metric.namespace,
              operator: 'GreaterThan',
              threshold: '90',
              timeAggregation: 'Maximum',
              dimensions: [],
              metricValue: 100,
            },
          ],
        },
      },
      customProperties: null,
    },
  });
}

/** Printed past the silenced console (the app's own logs would drown the figures). */
const print = (line: string) => process.stdout.write(`${line}\n`);

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;

async function storm(app: RunningLocalApp): Promise<string> {
  const sandbox = app.sandbox!;
  const minted = await fetch(`${app.url}/admin/token`, {
    method: 'POST',
    body: JSON.stringify({ app: ACTION_GROUP_APP_ID, roles: [ROLES.alertDelivery] }),
  });
  const { token } = (await minted.json()) as { token: string };
  // Ten minutes of throttling on record before the alerts (the runs read the metric).
  await sandbox.advance({ minutes: 10 });
  // 200 distinct alerts: 5 alert instances on each of the 10 playbook targets, 150 that no playbook takes.
  const distinct: string[] = [];
  for (let t = 0; t < TARGETS; t++)
    for (let k = 0; k < ALERTS_PER_TARGET; k++)
      distinct.push(
        alert(`ru-c${t}`, `00000000-0000-4000-8000-${String(t * 100 + k).padStart(12, '0')}`, ACCOUNT_ID),
      );
  for (let k = 0; k < OTHER_ALERTS; k++)
    distinct.push(alert('cpu-high', `00000000-0000-4000-9000-${String(k).padStart(12, '0')}`, ACCOUNT_ID));
  // Redeliveries: the first 300 of 500 posts are each distinct alert once (some twice), the rest repeats.
  const bodies = Array.from({ length: POSTS }, (_, i) => distinct[(i * 7) % distinct.length]!);
  // One at a time first (alerts no playbook takes): the cost of one alert without queueing.
  const single: number[] = [];
  for (let k = 0; k < 20; k++) {
    const t0 = performance.now();
    const response = await fetch(`${app.url}/api/alerts`, {
      method: 'POST',
      body: alert('warm-up', `00000000-0000-4000-a000-${String(k).padStart(12, '0')}`, ACCOUNT_ID),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    });
    await response.text();
    single.push(performance.now() - t0);
  }
  single.sort((a, b) => a - b);
  const armBefore = sandbox.requests().length;

  const started = performance.now();
  const answers = await Promise.all(
    bodies.map(async (body) => {
      const t0 = performance.now();
      const response = await fetch(`${app.url}/api/alerts`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      });
      await response.text();
      return { status: response.status, ms: performance.now() - t0 };
    }),
  );
  const wall = performance.now() - started;

  // The runs act on their own (the host's queue worker): wait until the raises settle.
  const raised = () =>
    sandbox.estate().arm.cosmosThroughput.filter((o) => o.container !== null && o.value > 1000).length;
  const deadline = Date.now() + 60_000;
  let last = -1;
  let stableSince = Date.now();
  while (Date.now() < deadline) {
    const now = raised();
    if (now !== last) {
      last = now;
      stableSince = Date.now();
    } else if (now >= TARGETS && Date.now() - stableSince > 3000) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const writes = sandbox
    .requests()
    .slice(armBefore)
    .filter((r) => r.host === 'management.azure.com');
  const puts = writes.filter((r) => r.method === 'PUT').length;
  const byStatus = new Map<number, number>();
  for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
  const times = answers.map((a) => a.ms).sort((a, b) => a - b);

  print('1. Alert intake under a storm (POST /api/alerts, all at once)');
  print(
    `   one app process on ${cpus().length} cores, load average ${loadavg()[0]!.toFixed(1)} (the machine is shared: read times relative to it)`,
  );
  print(
    `   ${POSTS} posts of ${distinct.length} distinct alerts (${TARGETS * ALERTS_PER_TARGET} on ${TARGETS} playbook targets, ${OTHER_ALERTS} no playbook takes)`,
  );
  print(
    `   response time: p50 ${percentile(times, 50).toFixed(0)} ms, p99 ${percentile(times, 99).toFixed(0)} ms, max ${times.at(-1)!.toFixed(0)} ms (the action group gives up at 10000 ms); storm wall time ${wall.toFixed(0)} ms`,
  );
  print(
    `   for scale: one alert at a time answers in p50 ${percentile(single, 50).toFixed(0)} ms (20 alerts, after warm-up of the first)`,
  );
  print(
    `   answers: ${[...byStatus.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([s, n]) => `${s} x${n}`)
      .join(', ')}`,
  );
  print(
    `   throughput raises taken: ${raised()} containers raised, ${puts} throughput writes (should be: ${TARGETS})`,
  );

  const kinds = new Map<string, number>();
  for (const r of writes) {
    const last = r.path.split('/').at(-1) ?? '';
    // Operation status polls end in a generated id; the offer's own path ends in throughputSettings/default.
    const kind = `${r.method} ${/^[0-9a-f-]{36}$/i.test(last) ? 'operation status' : `${r.path.split('/').at(-2)}/${last}`}`;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  print('2. Resource Manager calls per remediation (raise runs of the storm)');
  print(
    `   ${(writes.length / TARGETS).toFixed(1)} calls per raise (minimum the API allows: 2, read the offer then write it); by kind over ${TARGETS} raises: ${[
      ...kinds.entries(),
    ]
      .map(([k, n]) => `${k} x${n}`)
      .join(', ')}`,
  );
  return token;
}

/** One raise of each other scaling kind, one at a time, with the Resource Manager calls its run made. */
async function otherKinds(app: RunningLocalApp, token: string): Promise<void> {
  const sandbox = app.sandbox!;
  print('3. Resource Manager calls per remediation, other playbooks (one raise each, one at a time)');
  for (const [i, kind] of OTHER_KINDS.entries()) {
    const before = sandbox.requests().length;
    const response = await fetch(`${app.url}/api/alerts`, {
      method: 'POST',
      body: alert(kind.playbook, `00000000-0000-4000-b000-${String(i).padStart(12, '0')}`, NAMESPACE_ID, {
        name: 'ActiveMessages',
        namespace: 'Microsoft.ServiceBus/namespaces',
      }),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    });
    const { runId } = (await response.json()) as { runId?: string };
    // Raised once the run waits in its verify step (on the sandbox clock, which stands still here)
    // or is over; its calls are the slice since the alert.
    const deadline = Date.now() + 30_000;
    let state = 'unknown';
    while (Date.now() < deadline) {
      const run = await fetch(`${app.url}/api/runs/${runId}`);
      state = ((await run.json()) as { state?: string }).state ?? 'unknown';
      if (['waiting', 'succeeded', 'failed', 'cancelled'].includes(state)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const calls = sandbox
      .requests()
      .slice(before)
      .filter((r) => r.host === 'management.azure.com');
    print(
      `   ${kind.playbook} (${kind.action}): ${calls.length} calls, run ${state === 'waiting' ? 'raised, verifying' : state} (least a check-then-act needs: ${kind.minimum}, ${kind.why}); ${calls
        .map(
          (r) =>
            `${r.method} ${r.path
              .split('/')
              .slice(-2)
              .join('/')
              .replace(/[0-9a-f-]{32,36}/i, '{id}')}`,
        )
        .join(', ')}`,
    );
  }
}

export async function main(): Promise<void> {
  const azurite = await startAzurite();
  const dir = mkdtempSync(join(tmpdir(), 'stampkeeper-bench-remediation-'));
  const policyPath = join(dir, 'policy.yaml');
  writeFileSync(policyPath, policy());
  const quiet = { info() {}, warn() {}, error() {} };
  const consoleLog = console.log;
  const restore = { info: console.info, warn: console.warn, error: console.error, debug: console.debug };
  let app: RunningLocalApp | undefined;
  try {
    // The app's own logs would drown the figures.
    console.info = console.warn = console.error = console.debug = () => {};
    console.log = () => {};
    app = await startLocalApp({
      port: 0,
      startTimers: false,
      logger: quiet,
      env: {
        AzureWebJobsStorage: azurite.connectionString,
        STAMPKEEPER_POLICY_PATH: policyPath,
        STAMPKEEPER_TABLE_PREFIX: 'benchremed',
        STAMPKEEPER_WORK_QUEUE: 'benchremed-work',
      },
      sandbox: { scenario: scenario() },
    });
    const token = await storm(app);
    await otherKinds(app, token);
  } finally {
    console.log = consoleLog;
    Object.assign(console, restore);
    await app?.stop();
    await azurite.stop();
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
