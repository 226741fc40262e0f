/**
 * Support of the remediation integration tests: the app's real composition root (`buildDeps`) on
 * the sandbox (ARM, metrics, the webhook sink) and Azurite, a policy with one playbook per action,
 * alerts posted to the real intake use case, and the real engine driven through the work queue as
 * the queue trigger would.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AppDeps, buildDeps } from '../../../src/lib/app/deps';
import { loadConfigurationSync } from '../../../src/lib/config/configuration';
import { newId } from '../../../src/lib/core/ids';
import { silentLogger } from '../../../src/lib/core/logging';
import { parseCommonAlert } from '../../../src/lib/remediation/alert';
import { type AlertOutcome, handleAlert } from '../../../src/lib/remediation/handleAlert';
import type { Run } from '../../../src/lib/runs/types';
import { createStateStores, type StateStores } from '../../../src/lib/state';
import { createSandbox, type Sandbox, type Scenario } from '../../../src/local/sandbox';
import { storageConnectionString, uniquePrefix } from '../../support/storage';
import { commonAlert } from '../../unit/remediation/alertFactory';
import { QueueTrigger } from '../runs/support';

export const SUB = '00000000-0000-0000-0000-000000000000';
export const RG = 'rg-remediation';
const providers = `/subscriptions/${SUB}/resourceGroups/${RG}/providers`;
export const ACCOUNT_ID = `${providers}/Microsoft.DocumentDB/databaseAccounts/cosmos-remed`;
export const NAMESPACE_ID = `${providers}/Microsoft.ServiceBus/namespaces/sb-remed-1`;
export const APP_ID = `${providers}/Microsoft.App/containerApps/ca-orders-worker`;
export const START = new Date('2026-03-01T00:00:00Z');
export const HOOK = 'https://hooks.ops.contoso.example/remediation';
export const MINUTE = 60_000;

/** The estate: a container on autoscale, a premium namespace with a queue, its worker app. */
export function remediationScenario(): Scenario {
  return {
    clock: { start: START.toISOString() },
    azure: { subscriptionId: SUB, resourceGroup: RG },
    arm: {
      cosmosDbAccounts: [
        {
          name: 'cosmos-remed',
          databases: [
            {
              name: 'orders',
              containers: [{ name: 'orders', storageGB: 5, throughput: { autoscaleMax: 1000 } }],
            },
          ],
        },
      ],
      serviceBusNamespaces: [
        { name: 'sb-remed-1', sku: { tier: 'Premium', capacity: 1 }, queues: [{ name: 'orders' }] },
      ],
      containerApps: [{ name: 'ca-orders-worker', scale: { minReplicas: 1, maxReplicas: 2 } }],
    },
    monitor: {
      metrics: {
        definitions: {
          'Microsoft.DocumentDB/databaseAccounts': [
            {
              name: 'NormalizedRUConsumption',
              unit: 'Percent',
              aggregation: 'Maximum',
              dimensions: ['DatabaseName', 'CollectionName'],
            },
          ],
          'Microsoft.ServiceBus/namespaces': [
            { name: 'ActiveMessages', unit: 'Count', aggregation: 'Average', dimensions: ['EntityName'] },
          ],
        },
        resources: [
          { id: ACCOUNT_ID, region: 'westeurope' },
          { id: NAMESPACE_ID, region: 'westeurope' },
        ],
      },
    },
  } as Scenario;
}

/** One playbook per action; the bounds are small so that a test reaches them. */
export function remediationPolicy(overrides: { cosmos?: string } = {}): string {
  return `version: 1
playbooks:
  - name: orders-ru
    action: cosmos-raise-autoscale-max
    match: { alertRule: cosmos-ru-orders }
    target: { accountId: ${ACCOUNT_ID}, database: orders, container: orders }
    bounds: { floor: 1000, ceiling: 3000 }
    step: 1000
    cooldownMinutes: 10
    maxActionsPerDay: 3
${overrides.cosmos ?? ''}    signal:
      region: westeurope
      metric: NormalizedRUConsumption
      dimensions: { DatabaseName: orders, CollectionName: orders }
      recoveredBelow: 80
      verifyMinutes: 15
    scaleBack: { below: 40, forMinutes: 15 }
  - name: orders-units
    action: servicebus-scale-messaging-units
    match: { alertRule: sb-backlog-orders }
    target: { namespaceId: ${NAMESPACE_ID} }
    bounds: { floor: 1, ceiling: 4 }
    cooldownMinutes: 10
    signal:
      region: westeurope
      metric: ActiveMessages
      aggregation: Average
      dimensions: { EntityName: orders }
      recoveredBelow: 500
      verifyMinutes: 15
    scaleBack: { below: 100, forMinutes: 15 }
  - name: orders-workers
    action: scale-consumers
    match: { alertRule: sb-backlog-orders-workers }
    target: { containerAppId: ${APP_ID} }
    bounds: { floor: 2, ceiling: 6 }
    step: 2
    cooldownMinutes: 10
    signal:
      resourceId: ${NAMESPACE_ID}
      region: westeurope
      metric: ActiveMessages
      aggregation: Average
      dimensions: { EntityName: orders }
      recoveredBelow: 500
      verifyMinutes: 15
  - name: page-payments
    action: notify-only
    match: { customProperty: { name: team, value: payments } }
notifications:
  defaults: [ops]
  channels:
    - { name: ops, type: webhook, urlSetting: OPS_HOOK }
`;
}

export interface Harness {
  sandbox: Sandbox;
  deps: AppDeps;
  stores: StateStores;
  trigger: QueueTrigger;
  /** Posts a common-schema alert to the intake use case, as the action group would. */
  post(alert: AlertSpec): Promise<AlertOutcome>;
  /** Handles work messages until `done(run)` (or throws after `seconds` of wall time). */
  until(runId: string, done: (run: Run) => boolean, seconds?: number): Promise<Run>;
  run(runId: string): Promise<Run>;
  /** Throughput, units and replicas the sandbox holds now. */
  estate(): { ru: number; units: number; replicas: number; pendingRu: number | null };
  notices(): Array<{ title: string; type: string }>;
}

export interface AlertSpec {
  alertId?: string;
  rule: string;
  condition?: 'Fired' | 'Resolved';
  target?: string;
  metric?: string;
  value?: number;
  firedAt?: Date;
  properties?: Record<string, string>;
}

/** A metric alert's payload (the published common-schema sample, with these essentials). */
export function alertPayload(a: AlertSpec, now: Date): Record<string, unknown> {
  const firedAt = a.firedAt ?? now;
  const payload = commonAlert(
    {
      alertId: a.alertId ?? `/subscriptions/${SUB}/providers/Microsoft.AlertsManagement/alerts/${newId()}`,
      alertRule: a.rule,
      severity: 'Sev2',
      monitorCondition: a.condition ?? 'Fired',
      targets: [(a.target ?? ACCOUNT_ID).toLowerCase()],
      firedDateTime: firedAt.toISOString(),
      resolvedDateTime: a.condition === 'Resolved' ? now.toISOString() : null,
    },
    {
      properties: a.properties ?? null,
      conditionType: 'SingleResourceMultipleMetricCriteria',
      condition: {
        windowSize: 'PT5M',
        allOf: [
          {
            metricName: a.metric ?? 'NormalizedRUConsumption',
            metricNamespace: 'Microsoft.DocumentDB/databaseAccounts',
            operator: 'GreaterThan',
            threshold: '90',
            timeAggregation: 'Maximum',
            dimensions: [],
            metricValue: a.value ?? 100,
          },
        ],
      },
    },
  );
  return payload;
}

/** The app's deps on a fresh sandbox, fresh tables and a fresh queue. */
export async function harness(policy = remediationPolicy(), dryRun = false): Promise<Harness> {
  const sandbox = createSandbox({ scenario: remediationScenario() });
  const dir = mkdtempSync(join(tmpdir(), 'stampkeeper-remediation-'));
  const policyPath = join(dir, 'policy.yaml');
  writeFileSync(policyPath, policy);
  const prefix = uniquePrefix('m');
  const env = {
    AzureWebJobsStorage: storageConnectionString(),
    STAMPKEEPER_TABLE_PREFIX: prefix,
    STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
    STAMPKEEPER_POLICY_PATH: policyPath,
    STAMPKEEPER_ENVIRONMENT: 'itest',
    STAMPKEEPER_DRY_RUN: dryRun ? 'true' : 'false',
    OPS_HOOK: HOOK,
  };
  const { settings, policy: parsed } = loadConfigurationSync(env);
  const deps = buildDeps(settings, parsed, {
    credential: sandbox.credential,
    httpClient: sandbox.httpClient,
    webhookClient: sandbox.httpClient,
    clock: sandbox.clock,
    kind: 'sandbox',
  });
  await deps.ready();
  const stores = createStateStores({
    connectionString: storageConnectionString(),
    tablePrefix: prefix,
    workQueueName: `${prefix}-work`,
    clock: sandbox.clock,
  });
  const trigger = new QueueTrigger(stores, () => deps.runs(silentLogger));
  const run = async (runId: string) => {
    const found = await deps.runs(silentLogger).getRun(runId);
    if (!found) throw new Error(`no run ${runId}`);
    return found;
  };
  return {
    sandbox,
    deps,
    stores,
    trigger,
    run,
    async post(a) {
      const payload = alertPayload(a, sandbox.clock.now());
      return handleAlert(parseCommonAlert(payload), deps.alerts(silentLogger), {
        actor: 'system:azure-monitor',
        correlationId: newId(),
        attemptId: newId(),
      });
    },
    async until(runId, done, seconds = 20) {
      const deadline = Date.now() + seconds * 1000;
      for (;;) {
        await trigger.drain(20);
        const current = await run(runId);
        if (done(current)) return current;
        if (Date.now() > deadline)
          throw new Error(`run ${runId} is ${current.state} at ${current.steps[current.currentStep]?.name}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    estate() {
      const arm = sandbox.estate().arm;
      const offer = arm.cosmosThroughput.find((o) => o.container === 'orders')!;
      return {
        ru: offer.value,
        pendingRu: offer.pendingTo,
        units: arm.serviceBusNamespaces.find((n) => n.name === 'sb-remed-1')!.sku.capacity,
        replicas: arm.containerApps.find((c) => c.name === 'ca-orders-worker')!.scale.maxReplicas,
      };
    },
    notices() {
      return (
        sandbox
          .webhooks()
          .map((w) => w.body as { source?: string; type?: string; data?: { title?: string } })
          // The webhook channel posts CloudEvents (its URL, a credential, is masked in the record).
          .filter((event) => event?.source === '/stampkeeper/itest')
          .map((event) => ({ title: event.data?.title ?? '', type: event.type ?? '' }))
      );
    },
  };
}

/** Whether a run is over. */
export const over = (run: Run) => ['succeeded', 'failed', 'cancelled'].includes(run.state);
