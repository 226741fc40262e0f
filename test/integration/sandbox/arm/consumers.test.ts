import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ContainerAppsAPIClient } from '@azure/arm-appcontainers';
import { WebSiteManagementClient } from '@azure/arm-appservice';
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { CosmosDBManagementClient } from '@azure/arm-cosmosdb';
import { afterEach, describe, expect, it } from 'vitest';
import type { Sandbox, Scenario } from '../../../../src/local/sandbox';
import { ARM, armSandbox, RG, raw, SUB } from './support';

const VAULT = 'kv-consumers';
const ACCOUNT = 'cosmos-consumed';
const MINUTE = 60_000;

type ConsumerSpec = Record<string, unknown>;

/** A Cosmos DB account whose primary key a Key Vault secret holds, and the given consumers of it. */
function world(consumers: ConsumerSpec[], extra: Partial<Scenario> = {}): Sandbox {
  return armSandbox({
    keyVault: {
      vaults: [
        {
          name: VAULT,
          secrets: [
            {
              name: 'cosmos-key',
              valueFrom: { resource: `cosmosDb/${ACCOUNT}`, key: 'primaryMasterKey' },
              expiresInDays: 30,
            },
            {
              name: 'cosmos-conn',
              valueFrom: {
                resource: `cosmosDb/${ACCOUNT}`,
                key: 'primaryMasterKey',
                format: 'connectionString',
              },
            },
          ],
        },
      ],
    },
    arm: {
      cosmosDbAccounts: [{ name: ACCOUNT }],
      aksClusters: [{ name: 'aks-weu', deployments: [{ namespace: 'ops', name: 'no-secret' }] }],
      containerApps: [{ name: 'ca-orders' }],
      webApps: [{ name: 'app-orders', kind: 'functionapp' }],
    },
    consumers: consumers.map((c) => ({
      credential: { vault: VAULT, secret: 'cosmos-key', resource: `cosmosDb/${ACCOUNT}` },
      ...c,
    })),
    ...extra,
  });
}

const aksConsumer = (roll: Record<string, unknown> = {}): ConsumerSpec => ({
  name: 'orders-api',
  kind: 'aksDeployment',
  cluster: 'aks-weu',
  namespace: 'orders',
  deployment: 'orders-api',
  roll: { seconds: 60, ...roll },
  healthUrl: 'https://orders-api.contoso.example/healthz',
});

const cosmos = (box: Sandbox) =>
  new CosmosDBManagementClient(box.credential, SUB, { httpClient: box.httpClient });
const aks = (box: Sandbox) => new ContainerServiceClient(box.credential, SUB, { httpClient: box.httpClient });

/** Publishes the secondary key as a new version of the consumers' secret (what a rotation does before a roll). */
async function publishSecondary(box: Sandbox): Promise<string> {
  const keys = await cosmos(box).databaseAccounts.listKeys(RG, ACCOUNT);
  return box.keyVault.setSecret(VAULT, 'cosmos-key', keys.secondaryMasterKey!);
}

async function regenerate(box: Sandbox, keyKind: 'primary' | 'secondary') {
  await cosmos(box).databaseAccounts.regenerateKey(RG, ACCOUNT, { keyKind }, { updateIntervalInMs: 0 });
}

/** Starts a run command without waiting for it (it may wait on the sandbox clock), returns its poller. */
async function runCommand(box: Sandbox, command: string) {
  const poller = aks(box).managedClusters.runCommand(RG, 'aks-weu', { command }, { updateIntervalInMs: 0 });
  await poller.submitted();
  const location = (poller.operationState as unknown as { config: { operationLocation: string } }).config
    .operationLocation;
  return { poller, commandId: /commandResults\/([0-9a-f]+)/.exec(location)![1]! };
}

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

describe('sandbox consumers and the downtime record', () => {
  it('records no downtime when the consumer is rolled onto the standby key before the old key is regenerated', async () => {
    // Prepare
    const box = world([aksConsumer()]);
    const seeded = box.consumers()[0]!.holds[0]!.version;

    // Act: publish, roll (restart && status, one run command), then revoke the old key.
    const version = await publishSecondary(box);
    const { poller } = await runCommand(
      box,
      'kubectl rollout restart deployment/orders-api -n orders && kubectl rollout status deployment/orders-api -n orders --timeout=300s',
    );
    const during = box.consumers()[0]!.holds.map((h) => h.version);
    await box.advance({ seconds: 60 });
    const result = await poller;
    await regenerate(box, 'primary');

    // Assess
    expect(during).toEqual([seeded, version]);
    expect(result).toMatchObject({ provisioningState: 'Succeeded', exitCode: 0 });
    expect(result.logs).toBe(
      'deployment.apps/orders-api restarted\ndeployment "orders-api" successfully rolled out',
    );
    expect(box.consumers()[0]!.holds).toEqual([{ version, accepted: true }]);
    expect(box.downtime()).toMatchObject({
      totalMs: 0,
      consumers: [{ name: 'orders-api', intervals: [], totalMs: 0 }],
    });
  });

  it('records the interval during which a consumer holds a regenerated key, until a roll gives it a live one', async () => {
    // Prepare
    const box = world([aksConsumer()]);
    const seeded = box.consumers()[0]!.holds[0]!.version;

    // Act: the held key is regenerated first (the mistake a rotation must not make).
    await box.advance({ minutes: 5 });
    await regenerate(box, 'primary');
    await box.advance({ minutes: 10 });
    await publishSecondary(box);
    await runCommand(box, 'kubectl rollout restart deployment/orders-api -n orders');
    await box.advance({ seconds: 60 });

    // Assess
    const report = box.downtime();
    expect(report.consumers[0]!.intervals).toEqual([
      {
        from: '2026-01-01T00:05:00.000Z',
        to: '2026-01-01T00:16:00.000Z',
        durationMs: 11 * MINUTE,
        versions: [seeded],
      },
    ]);
    expect(report.totalMs).toBe(11 * MINUTE);
  });

  it('shows a still-open interval with no end, counted up to now', async () => {
    // Prepare
    const box = world([aksConsumer()]);

    // Act
    await regenerate(box, 'primary');
    await box.advance({ hours: 1 });

    // Assess
    expect(box.downtime().consumers[0]!.intervals).toEqual([
      { from: '2026-01-01T00:00:00.000Z', to: null, durationMs: 60 * MINUTE, versions: [expect.any(String)] },
    ]);
  });

  it('counts a key that dies during a roll: the old instances still serve until the new ones are ready', async () => {
    // Prepare
    const box = world([aksConsumer()]);
    await publishSecondary(box);

    // Act: regenerating the old key while the roll runs leaves the old pods on a dead key for its rest.
    await runCommand(box, 'kubectl rollout restart deployment/orders-api -n orders');
    await box.advance({ seconds: 20 });
    await regenerate(box, 'primary');
    await box.advance({ seconds: 40 });

    // Assess
    expect(box.downtime().consumers[0]!.intervals.map((i) => i.durationMs)).toEqual([40_000]);
  });

  it('reads a connection string secret as its AccountKey', async () => {
    // Prepare
    const box = world([
      {
        ...aksConsumer(),
        credential: { vault: VAULT, secret: 'cosmos-conn', resource: `cosmosDb/${ACCOUNT}` },
      },
    ]);

    // Act
    await regenerate(box, 'secondary');
    const before = box.downtime().totalMs;
    await regenerate(box, 'primary');

    // Assess
    expect(before).toBe(0);
    expect(box.downtime().consumers[0]!.intervals).toHaveLength(1);
  });
});

describe('sandbox AKS run command against simulated deployments', () => {
  it('answers 202 with the commandResults location, then 202 while the rollout waits, then 200', async () => {
    // Prepare
    const box = world([aksConsumer()]);
    const path = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ContainerService/managedClusters/aks-weu`;

    // Act
    const accepted = await raw(box, 'POST', `${ARM}${path}/runCommand?api-version=2025-07-01`, {
      body: {
        command:
          'kubectl rollout restart deployment/orders-api -n orders && kubectl rollout status deployment/orders-api -n orders',
        context: '',
      },
    });
    const location = accepted.headers.location!;
    const running = await raw(box, 'GET', location);
    await box.advance({ seconds: 60 });
    const done = await raw(box, 'GET', location);

    // Assess
    expect(accepted.status).toBe(202);
    expect(location).toMatch(
      new RegExp(
        `^https://management\\.azure\\.com/subscriptions/${SUB}/resourcegroups/${RG}/providers/Microsoft\\.ContainerService/managedClusters/aks-weu/commandResults/[0-9a-f]{32}\\?api-version=2025-07-01$`,
      ),
    );
    expect(running.status).toBe(202);
    expect(done.status).toBe(200);
    expect(done.json).toEqual({
      id: location.split('/commandResults/')[1]!.split('?')[0],
      properties: {
        provisioningState: 'Succeeded',
        exitCode: 0,
        startedAt: '2026-01-01T00:00:00Z',
        finishedAt: '2026-01-01T00:01:00Z',
        logs: 'deployment.apps/orders-api restarted\ndeployment "orders-api" successfully rolled out',
      },
    });
  });

  it('reports a failed rollout with kubectl exit 1, and the consumer keeps its old key', async () => {
    // Prepare
    const box = world([aksConsumer({ outcome: 'fail', failReason: 'CrashLoopBackOff' })]);
    const seeded = box.consumers()[0]!.holds[0]!.version;
    await publishSecondary(box);

    // Act
    const { poller } = await runCommand(
      box,
      'kubectl rollout restart deployment/orders-api -n orders && kubectl rollout status deployment/orders-api -n orders --timeout=5m',
    );
    await box.advance({ seconds: 60 });
    const result = await poller;

    // Assess
    expect(result).toMatchObject({ provisioningState: 'Succeeded', exitCode: 1 });
    expect(result.logs).toContain('error: deployment "orders-api" exceeded its progress deadline');
    expect(box.consumers()[0]!.holds.map((h) => h.version)).toEqual([seeded]);
    expect(box.consumers()[0]!.rolls[0]).toMatchObject({ status: 'failed', reason: 'CrashLoopBackOff' });
  });

  it('times a hung rollout out at --timeout, and keeps the command running without one', async () => {
    // Prepare
    const box = world([aksConsumer({ outcome: 'hang' })]);

    // Act
    const timed = await runCommand(
      box,
      'kubectl rollout restart deployment/orders-api -n orders && kubectl rollout status deployment/orders-api -n orders --timeout=2m',
    );
    const forever = await runCommand(box, 'kubectl rollout status deployment/orders-api -n orders');
    await box.advance({ minutes: 2 });
    const result = await timed.poller;
    const still = await aks(box).managedClusters.getCommandResult(RG, 'aks-weu', forever.commandId);

    // Assess
    expect(result.exitCode).toBe(1);
    expect(result.logs).toContain('error: timed out waiting for the condition');
    expect(result.finishedAt?.toISOString()).toBe('2026-01-01T00:02:00.000Z');
    expect(still).toBeUndefined();
  });

  it('answers kubectl errors for an unknown deployment and unemulated commands, and restarts a deployment without consumers', async () => {
    // Prepare
    const box = world([aksConsumer()]);

    // Act
    const unknown = await (await runCommand(box, 'kubectl rollout restart deployment/nope -n orders')).poller;
    const other = await (await runCommand(box, 'kubectl delete pod x')).poller;
    const plain = await (
      await runCommand(
        box,
        'kubectl rollout restart deploy/no-secret --namespace=ops; kubectl rollout status deploy/no-secret -n ops',
      )
    ).poller;

    // Assess
    expect(unknown).toMatchObject({
      exitCode: 1,
      logs: 'Error from server (NotFound): deployments.apps "nope" not found',
    });
    expect(other.exitCode).not.toBe(0);
    expect(plain).toMatchObject({
      exitCode: 0,
      logs: 'deployment.apps/no-secret restarted\ndeployment "no-secret" successfully rolled out',
    });
  });
});

describe('sandbox Container Apps and App Service restarts', () => {
  it('restarts the active revision of a container app: Processing while its replicas roll, then Running on the new key', async () => {
    // Prepare
    const box = world([
      { name: 'orders-worker', kind: 'containerApp', app: 'ca-orders', roll: { seconds: 30 } },
    ]);
    const client = new ContainerAppsAPIClient(box.credential, SUB, { httpClient: box.httpClient });
    const version = await publishSecondary(box);

    // Act
    const app = await client.containerApps.get(RG, 'ca-orders');
    await client.containerAppsRevisions.restartRevision(RG, 'ca-orders', app.latestReadyRevisionName!);
    const during = await client.containerAppsRevisions.getRevision(
      RG,
      'ca-orders',
      app.latestReadyRevisionName!,
    );
    await box.advance({ seconds: 30 });
    const after = await client.containerAppsRevisions.getRevision(
      RG,
      'ca-orders',
      app.latestReadyRevisionName!,
    );

    // Assess
    expect(app.latestReadyRevisionName).toMatch(/^ca-orders--[0-9a-f]{7}$/);
    expect(during.runningState).toBe('Processing');
    expect(after).toMatchObject({ runningState: 'Running', healthState: 'Healthy', active: true });
    expect(box.consumers()[0]!.holds).toEqual([{ version, accepted: true }]);
  });

  it('restarts a web app, and refuses synchronous=true that the sandbox clock cannot honour', async () => {
    // Prepare
    const box = world([{ name: 'orders-func', kind: 'webApp', site: 'app-orders', roll: { seconds: 10 } }]);
    const client = new WebSiteManagementClient(box.credential, SUB, { httpClient: box.httpClient });
    const version = await publishSecondary(box);

    // Act
    const site = await client.webApps.get(RG, 'app-orders');
    await client.webApps.restart(RG, 'app-orders', { softRestart: false, synchronous: false });
    await box.advance({ seconds: 10 });
    const sync = await raw(box, 'POST', `${ARM}${site.id}/restart?api-version=2025-05-01&synchronous=true`);

    // Assess
    expect(site.kind).toBe('functionapp');
    expect(box.consumers()[0]!.holds).toEqual([{ version, accepted: true }]);
    expect(sync.status).toBe(501);
  });
});

describe('sandbox webhook, reload and health consumers', () => {
  it('starts a roll on a webhook POST, serves its status for polling, and calls the callback when it ends', async () => {
    // Prepare
    const calls: unknown[] = [];
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        calls.push(JSON.parse(body));
        res.writeHead(204);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const callbackUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/rolls/callback`;
    const box = world([
      {
        name: 'billing',
        kind: 'webhook',
        url: 'https://deploy.contoso.example/hooks/billing',
        roll: { seconds: 90 },
      },
    ]);

    // Act
    const started = await raw(box, 'POST', 'https://deploy.contoso.example/hooks/billing', {
      scope: null,
      body: { consumer: 'billing', callbackUrl },
    });
    const running = await raw(box, 'GET', started.headers.location!, { scope: null });
    await box.advance({ seconds: 90 });
    const done = await raw(box, 'GET', started.headers.location!, { scope: null });
    const bad = await raw(box, 'POST', 'https://deploy.contoso.example/hooks/billing', {
      scope: null,
      body: ['not', 'an', 'object'],
    });

    // Assess
    expect(started.status).toBe(202);
    expect(started.headers.location).toMatch(
      /^https:\/\/deploy\.contoso\.example\/hooks\/billing\/runs\/[0-9a-f-]{36}$/,
    );
    expect(running.json).toEqual({ id: (started.json as { id: string }).id, status: 'Running' });
    expect(done.json).toEqual({ id: (started.json as { id: string }).id, status: 'Succeeded' });
    expect(calls).toEqual([
      { id: (started.json as { id: string }).id, consumer: 'billing', status: 'Succeeded' },
    ]);
    expect(box.webhookCallbacks()).toEqual([
      expect.objectContaining({ consumer: 'billing', status: 'Succeeded', answered: 204 }),
    ]);
    expect(bad.status).toBe(400);
  });

  it('lets a reload consumer pick a new version up at its next poll, with downtime only if the old key died first', async () => {
    // Prepare
    const box = world([
      { name: 'csi-fast', kind: 'reload', reloadMinutes: 2 },
      { name: 'csi-slow', kind: 'reload', reloadMinutes: 10 },
    ]);

    // Act
    await box.advance({ seconds: 30 });
    const version = await publishSecondary(box);
    await box.advance({ minutes: 1, seconds: 30 });
    const fastAtTwo = box.consumers()[0]!.holds;
    await regenerate(box, 'primary');
    await box.advance({ minutes: 8 });

    // Assess
    expect(fastAtTwo).toEqual([{ version, accepted: true }]);
    expect(box.consumers()[0]!.reloads).toEqual([
      { at: '2026-01-01T00:02:00.000Z', from: expect.any(String), to: version },
    ]);
    const [fast, slow] = box.downtime().consumers;
    expect(fast!.totalMs).toBe(0);
    expect(slow!.intervals).toEqual([
      {
        from: '2026-01-01T00:02:00.000Z',
        to: '2026-01-01T00:10:00.000Z',
        durationMs: 8 * MINUTE,
        versions: [expect.any(String)],
      },
    ]);
  });

  it('serves the consumer health URL: 200 with the versions held, 503 once a held key is dead', async () => {
    // Prepare
    const box = world([aksConsumer()]);
    const version = box.consumers()[0]!.holds[0]!.version;

    // Act
    const healthy = await raw(box, 'GET', 'https://orders-api.contoso.example/healthz', { scope: null });
    await regenerate(box, 'primary');
    const unhealthy = await raw(box, 'GET', 'https://orders-api.contoso.example/healthz', { scope: null });

    // Assess
    expect(healthy).toMatchObject({
      status: 200,
      json: { status: 'Healthy', consumer: 'orders-api', secretVersions: [version], rolling: false },
    });
    expect(unhealthy).toMatchObject({ status: 503, json: { status: 'Unhealthy' } });
  });
});
