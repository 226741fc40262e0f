/**
 * The roles the deployment gives the app for the alert playbooks (`npm run infra:params` →
 * infra/policy.targets.json `remediation` → infra/modules/remediation*.bicep) hold exactly the
 * actions the capacity adapters call. The actions are read from what the adapters send: every
 * Resource Manager request of every adapter method (read, raise, migration to autoscale, messaging
 * units, max replicas, AKS deployment replicas and KEDA max through the run command) on the sandbox through the real SDK clients, turned into its RBAC action the
 * way Resource Manager authorizes it (`{namespace}/{types}/read` for a GET, `/write` for a PUT or
 * PATCH, `{namespace}/{types}/{verb}/action` for a POST to an action), with the resource it
 * targets. Every request must fall under a grant with that action, and every action of a role must
 * be used.
 */
import { describe, expect, it } from 'vitest';
import { deriveRemediation } from '../../../scripts/infra-params';
import { AksScaleAdapter } from '../../../src/lib/azure/aksScale';
import { ContainerAppScaleAdapter } from '../../../src/lib/azure/containerAppScale';
import { CosmosThroughputAdapter } from '../../../src/lib/azure/cosmosThroughput';
import { ServiceBusCapacityAdapter } from '../../../src/lib/azure/serviceBusCapacity';
import { parsePolicy } from '../../../src/lib/config/policy';
import { createSandbox } from '../../../src/local/sandbox';
import { actionOf, grantGaps } from '../../support/armRbac';

const SUB = '00000000-0000-0000-0000-000000000000';
const providers = `/subscriptions/${SUB}/resourceGroups/rg-stampkeeper-sandbox/providers`;
const ACCOUNT = `${providers}/Microsoft.DocumentDB/databaseAccounts/cosmos-remediation`;
const NAMESPACE = `${providers}/Microsoft.ServiceBus/namespaces/sb-remediation`;
const APP = `${providers}/Microsoft.App/containerApps/ca-remediation`;
const CLUSTER = `${providers}/Microsoft.ContainerService/managedClusters/aks-remediation`;

const playbook = (name: string, action: string, target: string, extra = '') => `
  - name: ${name}
    action: ${action}
    match: { alertRule: ${name} }
    target: ${target}
    bounds: ${action === 'cosmos-raise-autoscale-max' ? '{ floor: 1000, ceiling: 8000 }' : '{ floor: 1, ceiling: 8 }'}${extra}
    signal: { resourceId: ${action === 'cosmos-raise-autoscale-max' ? ACCOUNT : NAMESPACE}, region: westeurope, metric: ${action === 'cosmos-raise-autoscale-max' ? 'NormalizedRUConsumption' : 'ActiveMessages'}, recoveredBelow: 90 }`;

describe('playbook roles against the calls the capacity adapters make (sandbox, real SDK clients)', () => {
  it('grants every Resource Manager call of every adapter method on every target shape, and nothing they do not call', async () => {
    // Prepare: a container and a database on manual throughput (so both migrate, then raise), a
    // premium namespace, a Container App; one playbook each; Cosmos DB's operations polled once.
    const sandbox = createSandbox({
      scenario: {
        clock: { start: '2026-01-01T00:00:00Z' },
        arm: {
          operations: { pollsBeforeDone: 1 },
          cosmosDbAccounts: [
            {
              name: 'cosmos-remediation',
              databases: [
                { name: 'orders', containers: [{ name: 'orders', throughput: { manual: 800 } }] },
                { name: 'shared', throughput: { manual: 400 }, containers: [{ name: 'a' }] },
              ],
            },
          ],
          serviceBusNamespaces: [{ name: 'sb-remediation', sku: { tier: 'Premium', capacity: 1 } }],
          containerApps: [{ name: 'ca-remediation', scale: { minReplicas: 1, maxReplicas: 2 } }],
          aksClusters: [
            {
              name: 'aks-remediation',
              deployments: [
                { namespace: 'work', name: 'plain-worker', replicas: 2 },
                {
                  namespace: 'work',
                  name: 'keda-worker',
                  scaledObject: { name: 'keda-worker', maxReplicaCount: 2 },
                },
              ],
            },
          ],
        },
      },
    });
    const options = { httpClient: sandbox.httpClient, pollIntervalMs: 0 };
    const cosmos = new CosmosThroughputAdapter(sandbox.credential, options);
    const serviceBus = new ServiceBusCapacityAdapter(sandbox.credential, options);
    const apps = new ContainerAppScaleAdapter(sandbox.credential, options);
    const aks = new AksScaleAdapter(sandbox.credential, options);
    const plain = { clusterId: CLUSTER, namespace: 'work', deployment: 'plain-worker' };
    const keda = {
      clusterId: CLUSTER,
      namespace: 'work',
      deployment: 'keda-worker',
      scaledObject: 'keda-worker',
    };
    const policy = parsePolicy(`version: 1
notifications:
  defaults: [ops]
  channels:
    - { name: ops, type: eventGrid }
playbooks:${playbook('orders-ru', 'cosmos-raise-autoscale-max', `{ accountId: ${ACCOUNT}, database: orders, container: orders }`, '\n    migrateToAutoscale: true')}${playbook('shared-ru', 'cosmos-raise-autoscale-max', `{ accountId: ${ACCOUNT}, database: shared }`, '\n    migrateToAutoscale: true')}${playbook('units', 'servicebus-scale-messaging-units', `{ namespaceId: ${NAMESPACE} }`)}${playbook('consumers', 'scale-consumers', `{ containerAppId: ${APP} }`)}${playbook('aks-plain', 'scale-consumers', `{ clusterId: ${CLUSTER}, namespace: work, deployment: plain-worker }`)}${playbook('aks-keda', 'scale-consumers', `{ clusterId: ${CLUSTER}, namespace: work, deployment: keda-worker, scaledObject: keda-worker }`)}
`);
    const access = deriveRemediation(policy);

    // Act: every method of every adapter, as the playbooks' runs call them.
    for (const ref of [
      { accountId: ACCOUNT, database: 'orders', container: 'orders' },
      { accountId: ACCOUNT, database: 'shared' },
    ]) {
      await cosmos.read(ref);
      await cosmos.migrateToAutoscale(ref);
      await cosmos.setAutoscaleMax(ref, 5000);
    }
    await serviceBus.read(NAMESPACE);
    await serviceBus.setCapacity(NAMESPACE, 2);
    await apps.read(APP);
    await apps.setMaxReplicas(APP, 4);
    for (const ref of [plain, keda]) {
      await aks.read(ref);
      await aks.setScale(ref, 4);
    }
    const calls = sandbox
      .requests()
      .filter((r) => r.service === 'arm')
      .map((r) => actionOf(r.method, r.path));

    // Assess
    // Every call is granted on the resource it targets, and every action of every grant is called on
    // its resource: no role holds more than its adapter uses.
    const gaps = grantGaps(calls, access);
    expect(gaps.ungranted).toEqual([]);
    expect(gaps.unused).toEqual([]);
    expect(gaps.roles).toEqual(
      new Set([
        'cosmosContainerThroughput',
        'cosmosDatabaseThroughput',
        'cosmosContainerAutoscaleMigration',
        'cosmosDatabaseAutoscaleMigration',
        'cosmosThroughputOperationStatus',
        'serviceBusMessagingUnits',
        'containerAppReplicas',
        'containerAppOperationStatus',
        'aksConsumerScale',
      ]),
    );
    expect(calls.length).toBeGreaterThan(10);
  });
});
