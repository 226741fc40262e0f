/**
 * The example scenario of the scale-consumers story (`sandbox/examples/scale-consumers.scenario.yaml`),
 * on the sandbox alone (no app): it loads, the backlogs grow from +1h at 2 replicas, both rules fire,
 * and once the Container App's max replicas and the ScaledObject's maxReplicaCount are raised to 4
 * through the sandbox's ARM (Container Apps PATCH, AKS run command), the backlogs drain and the rules
 * resolve; at 2 replicas they keep growing.
 */
import { ContainerAppsAPIClient } from '@azure/arm-appcontainers';
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { describe, expect, it } from 'vitest';
import { createSandbox, loadScenario, type Sandbox } from '../../../src/local/sandbox';

const SUB = '00000000-0000-0000-0000-000000000000';
const RG = 'rg-stampkeeper-sandbox';
const NAMESPACE = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ServiceBus/namespaces/stampkeeper-sandbox-sb`;
const FILE = 'sandbox/examples/scale-consumers.scenario.yaml';

function start(): Sandbox {
  return createSandbox({ scenario: loadScenario(FILE) });
}

/** Both queues' backlogs as the load last sampled them. */
function backlogs(sandbox: Sandbox): Record<string, number> {
  const metrics = sandbox.monitor.describe().metrics as {
    resources: Array<{
      id: string;
      sources: Array<{
        metric: string;
        latest?: { values: Array<{ dimensions: Record<string, string>; value: number }> };
      }>;
    }>;
  };
  const values =
    metrics.resources.find((r) => r.id === NAMESPACE)?.sources.find((s) => s.metric === 'activemessages')
      ?.latest?.values ?? [];
  return Object.fromEntries(values.map((v) => [Object.values(v.dimensions)[0], v.value]));
}

/** Raises both consumers to 4 replicas as the app's playbooks would: Container Apps PATCH, kubectl patch. */
async function raiseToFour(sandbox: Sandbox) {
  const apps = new ContainerAppsAPIClient(sandbox.credential, SUB, { httpClient: sandbox.httpClient });
  await apps.containerApps.beginUpdateAndWait(
    RG,
    'ca-invoices-worker',
    { location: 'westeurope', template: { scale: { maxReplicas: 4 } } },
    { updateIntervalInMs: 0 },
  );
  const aks = new ContainerServiceClient(sandbox.credential, SUB, { httpClient: sandbox.httpClient });
  return aks.managedClusters.beginRunCommandAndWait(
    RG,
    'aks-stamp-weu',
    {
      command: `kubectl patch scaledobject/shipments-worker -n shipping --type=merge -p '{"spec":{"maxReplicaCount":4}}' && kubectl get scaledobject/shipments-worker -n shipping -o json`,
    },
    { updateIntervalInMs: 0 },
  );
}

const states = (sandbox: Sandbox) => Object.fromEntries(sandbox.alerts.rules().map((r) => [r.name, r.state]));

describe('the scale-consumers example scenario', () => {
  it('loads, with the consumers at 2 replicas in the estate', () => {
    // Act
    const sandbox = start();

    // Assess
    const { arm } = sandbox.estate();
    expect(arm.containerApps).toEqual([
      expect.objectContaining({ name: 'ca-invoices-worker', scale: { minReplicas: 1, maxReplicas: 2 } }),
    ]);
    expect(arm.aksClusters[0]!.deployments).toEqual([
      {
        namespace: 'shipping',
        name: 'shipments-worker',
        replicas: 2,
        scaledObject: { name: 'shipments-worker', minReplicaCount: 1, maxReplicaCount: 2 },
      },
    ]);
    expect(arm.serviceBusNamespaces[0]!.queues).toEqual(['invoices', 'shipments']);
    expect(sandbox.alerts.rules().map((r) => r.name)).toEqual([
      'invoices-backlog',
      'shipments-backlog',
      'shipments-backlog-early',
    ]);
  });

  it('fires both rules from +1h, and drains and resolves them once the consumers are raised to 4 replicas', async () => {
    // Prepare
    const raised = start();
    const left = start();
    await raised.advance({ hours: 1 });
    await left.advance({ hours: 1 });
    const quietBefore = backlogs(raised);

    // Act: the rules fire within minutes; raised at +1h15m (one sandbox), left at 2 (the other).
    await raised.advance({ minutes: 15 });
    await left.advance({ minutes: 15 });
    const fired = states(raised);
    const atRaise = backlogs(raised);
    const patched = await raiseToFour(raised);
    await raised.advance({ minutes: 40 });
    await left.advance({ minutes: 40 });
    const raisedAt155 = backlogs(raised);
    const leftAt155 = backlogs(left);
    await raised.advance({ hours: 2 });

    // Assess
    expect(quietBefore).toEqual({ invoices: 0, shipments: 0 });
    expect(fired).toEqual({
      'invoices-backlog': 'fired',
      'shipments-backlog': 'fired',
      'shipments-backlog-early': 'fired',
    });
    // 15 minutes at 1500 - 2 x 400 = +700 a minute.
    expect(atRaise).toEqual({ invoices: 10_500, shipments: 10_500 });
    expect(patched.exitCode).toBe(0);
    expect(patched.logs!.split('\n')[0]).toBe('scaledobject.keda.sh/shipments-worker patched');
    // At 4 replicas (1600 a minute) the backlogs shrink by 100 a minute; at 2 they keep growing.
    expect(raisedAt155).toEqual({ invoices: 6_500, shipments: 6_500 });
    expect(leftAt155).toEqual({ invoices: 38_500, shipments: 38_500 });
    expect(backlogs(raised)).toEqual({ invoices: 0, shipments: 0 });
    expect(states(raised)).toEqual({
      'invoices-backlog': 'ok',
      'shipments-backlog': 'ok',
      'shipments-backlog-early': 'ok',
    });
    const resolved = raised.alerts
      .deliveries()
      .filter((d) => d.monitorCondition === 'Resolved' && !d.duplicate)
      .map((d) => d.rule)
      .sort();
    expect(resolved).toEqual(['invoices-backlog', 'shipments-backlog', 'shipments-backlog-early']);
  });
});
