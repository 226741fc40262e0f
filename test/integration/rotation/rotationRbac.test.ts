/**
 * The roles the deployment gives the app for rotations (`npm run infra:params` →
 * infra/policy.targets.json → infra/modules/rotation*.bicep) hold exactly the actions the adapters
 * call. The actions are read from what the adapters send: every Resource Manager request of a
 * rotation per provider and roll method (revoke mode, so every call happens), turned into its RBAC
 * action the way Resource Manager authorizes it (`{namespace}/{types}/read` for a GET,
 * `{namespace}/{types}/{verb}/action` for a POST to an action), with the resource it targets.
 * Every request must fall under a grant with that action, and every action of a role must be used.
 */
import { describe, expect, it } from 'vitest';
import { deriveRotationAccess } from '../../../scripts/infra-params';
import { actionOf, grantGaps } from '../../support/armRbac';
import {
  APP_ID,
  BUS_ID,
  CLUSTER_ID,
  COSMOS_ID,
  rotationTags,
  rotationWorld,
  SITE_ID,
  STORAGE_ID,
  VAULT,
} from './support';

describe('rotation roles against the calls the adapters make (sandbox, real SDK clients, real engine)', () => {
  it('grants every Resource Manager call of every provider and roll method, and nothing they do not call', async () => {
    // Prepare: each provider (both Cosmos DB pairs, namespace and queue SAS rules) and each roll
    // method needing Azure access, in revoke mode; Cosmos DB's regeneration polled once.
    const rule = `${BUS_ID}/authorizationRules/RootManageSharedAccessKey`;
    const queueRule = `${BUS_ID}/queues/orders/authorizationRules/orders-send`;
    const REPORTS_HEALTH = 'https://reports.rotation.example/healthz';
    const JOBS_HEALTH = 'https://jobs.rotation.example/healthz';
    const consumer = (name: string, kind: string, extra: object, secret: string, resource: string) => ({
      name,
      kind,
      ...extra,
      credential: { vault: VAULT, secret, resource },
      roll: { seconds: 30 },
    });
    const world = await rotationWorld({
      pollsBeforeDone: 1,
      secrets: [
        {
          name: 'cosmos-rw',
          valueFrom: { resource: 'cosmosDb/cosmos-rot', key: 'primaryMasterKey' },
          expiresInDays: 20,
          tags: rotationTags('cosmosDbKeys', COSMOS_ID, 'primary'),
        },
        {
          name: 'cosmos-ro',
          valueFrom: { resource: 'cosmosDb/cosmos-rot', key: 'primaryReadonlyMasterKey' },
          expiresInDays: 20,
          tags: rotationTags('cosmosDbKeys', COSMOS_ID, 'primary'),
        },
        {
          name: 'storage',
          valueFrom: { resource: 'storage/strotation', key: 'key1' },
          expiresInDays: 20,
          tags: rotationTags('storageAccountKeys', STORAGE_ID, 'primary'),
        },
        {
          name: 'bus-root',
          valueFrom: { resource: 'serviceBus/sb-rotation-ns/RootManageSharedAccessKey', key: 'primaryKey' },
          expiresInDays: 20,
          tags: rotationTags('serviceBusSasKeys', rule, 'primary'),
        },
        {
          name: 'bus-send',
          valueFrom: { resource: 'serviceBus/sb-rotation-ns/queues/orders/orders-send', key: 'primaryKey' },
          expiresInDays: 20,
          tags: rotationTags('serviceBusSasKeys', queueRule, 'primary'),
        },
      ],
      consumers: [
        consumer(
          'orders-api',
          'aksDeployment',
          { cluster: 'aks-rot', namespace: 'orders', deployment: 'orders-api' },
          'cosmos-rw',
          'cosmosDb/cosmos-rot',
        ),
        // Revoke needs each move proven: health URLs for the Container App and the App Service.
        consumer(
          'reports',
          'containerApp',
          { app: 'ca-rot', healthUrl: REPORTS_HEALTH },
          'cosmos-ro',
          'cosmosDb/cosmos-rot',
        ),
        consumer(
          'jobs',
          'webApp',
          { site: 'app-rot', healthUrl: JOBS_HEALTH },
          'storage',
          'storage/strotation',
        ),
      ],
      settings: { REPORTS_HEALTH_URL: REPORTS_HEALTH, JOBS_HEALTH_URL: JOBS_HEALTH },
      policy: `
  - vault: ${VAULT}
    name: cosmos-rw
    owner: team-data
    rotation:
      provider: cosmosDbKeys
      resourceId: ${COSMOS_ID}
      mode: revoke
      consumers:
        - { type: aksDeployment, clusterId: ${CLUSTER_ID}, namespace: orders, deployment: orders-api }
  - vault: ${VAULT}
    name: cosmos-ro
    owner: team-data
    rotation:
      provider: cosmosDbKeys
      keyPair: readOnly
      resourceId: ${COSMOS_ID}
      mode: revoke
      consumers:
        - { type: containerApp, resourceId: ${APP_ID}, healthUrlSetting: REPORTS_HEALTH_URL }
  - vault: ${VAULT}
    name: storage
    owner: team-platform
    rotation:
      provider: storageAccountKeys
      resourceId: ${STORAGE_ID}
      mode: revoke
      consumers:
        - { type: appService, resourceId: ${SITE_ID}, healthUrlSetting: JOBS_HEALTH_URL }
  - vault: ${VAULT}
    name: bus-root
    owner: team-messaging
    rotation:
      provider: serviceBusSasKeys
      resourceId: ${rule}
      mode: revoke
      consumers: []
  - vault: ${VAULT}
    name: bus-send
    owner: team-messaging
    rotation:
      provider: serviceBusSasKeys
      resourceId: ${queueRule}
      mode: revoke
      consumers: []`,
    });
    const access = deriveRotationAccess(world.policy);

    // Act
    const runs = [];
    for (const secret of ['cosmos-rw', 'cosmos-ro', 'storage', 'bus-root', 'bus-send']) {
      runs.push(await world.drive(await world.started(secret)));
    }
    const calls = world.sandbox
      .requests()
      .filter((r) => r.service === 'arm')
      .map((r) => actionOf(r.method, r.path));

    // Assess
    expect(runs.map((r) => [r.state, r.steps.find((s) => s.name === 'revoke')?.status])).toEqual(
      runs.map(() => ['succeeded', 'done']),
    );
    // Every call is granted on the resource it targets, and every action of every grant is called on
    // its resource: no role holds more than its adapter uses.
    const gaps = grantGaps(calls, access);
    expect(gaps.ungranted).toEqual([]);
    expect(gaps.unused).toEqual([]);
    expect(gaps.roles).toEqual(
      new Set([
        'cosmosDbKeys',
        'cosmosDbReadOnlyKeys',
        'cosmosDbOperationStatus',
        'storageAccountKeys',
        'serviceBusNamespaceRuleKeys',
        'serviceBusQueueRuleKeys',
        'aksRunCommand',
        'containerAppRestart',
        'webAppRestart',
      ]),
    );
  });
});
