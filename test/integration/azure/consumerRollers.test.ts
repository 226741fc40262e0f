import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AksDeploymentRoller } from '../../../src/lib/azure/aksRoller';
import { ConsumerRollers } from '../../../src/lib/azure/consumerRollers';
import { ContainerAppRoller } from '../../../src/lib/azure/containerAppRoller';
import { CosmosDbKeys } from '../../../src/lib/azure/cosmosDbKeys';
import { ReloadRoller } from '../../../src/lib/azure/reloadRoller';
import { WebAppRoller } from '../../../src/lib/azure/webAppRoller';
import { type WebhookCallbacks, WebhookRoller } from '../../../src/lib/azure/webhookRoller';
import { ConfigurationError, ValidationError } from '../../../src/lib/core/errors';
import type { Consumer, RollHandle, RollStatus } from '../../../src/lib/ports/consumers';
import { createSandbox, type Sandbox } from '../../../src/local/sandbox';

const SUB = '00000000-0000-0000-0000-000000000000';
const RG = 'rg-stampkeeper-sandbox';
const VAULT = 'kv-rollers';
const ACCOUNT_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-rolled`;
const CLUSTER_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ContainerService/managedClusters/aks-rollers`;
const credential = { vault: VAULT, secret: 'cosmos-key', resource: 'cosmosDb/cosmos-rolled' };

function estate(o: { aad?: boolean } = {}): Sandbox {
  return createSandbox({
    scenario: {
      seed: 'rollers',
      clock: { start: '2026-01-01T00:00:00Z' },
      keyVault: {
        vaults: [
          {
            name: VAULT,
            secrets: [
              {
                name: 'cosmos-key',
                valueFrom: { resource: 'cosmosDb/cosmos-rolled', key: 'primaryMasterKey' },
              },
            ],
          },
        ],
      },
      arm: {
        cosmosDbAccounts: [{ name: 'cosmos-rolled' }],
        aksClusters: [{ name: 'aks-rollers', aad: o.aad === true }],
        containerApps: [{ name: 'ca-rolled' }],
        webApps: [{ name: 'app-rolled' }],
      },
      consumers: [
        {
          name: 'api',
          kind: 'aksDeployment',
          cluster: 'aks-rollers',
          namespace: 'shop',
          deployment: 'api',
          credential,
          roll: { seconds: 90 },
          healthUrl: 'https://api.shop.example/healthz',
        },
        {
          name: 'broken',
          kind: 'aksDeployment',
          cluster: 'aks-rollers',
          namespace: 'shop',
          deployment: 'broken',
          credential,
          roll: { seconds: 30, outcome: 'fail', failReason: 'ImagePullBackOff' },
        },
        {
          name: 'stuck',
          kind: 'aksDeployment',
          cluster: 'aks-rollers',
          namespace: 'shop',
          deployment: 'stuck',
          credential,
          roll: { outcome: 'hang' },
        },
        { name: 'worker', kind: 'containerApp', app: 'ca-rolled', credential, roll: { seconds: 45 } },
        {
          name: 'jobs',
          kind: 'webApp',
          site: 'app-rolled',
          credential,
          roll: { seconds: 20 },
          healthUrl: 'https://jobs.shop.example/health',
        },
        {
          name: 'pipeline',
          kind: 'webhook',
          url: 'https://ci.shop.example/hooks/redeploy',
          credential,
          roll: { seconds: 300 },
        },
        {
          name: 'legacy',
          kind: 'webhook',
          url: 'https://ci.shop.example/hooks/legacy',
          credential,
          roll: { seconds: 120 },
        },
        {
          name: 'csi',
          kind: 'reload',
          reloadMinutes: 2,
          credential,
          healthUrl: 'https://csi.shop.example/healthz',
        },
      ],
    },
  });
}

const consumers: Record<string, Consumer> = {
  api: {
    name: 'api',
    target: {
      kind: 'aksDeployment',
      clusterId: CLUSTER_ID,
      namespace: 'shop',
      deployment: 'api',
      timeoutSeconds: 300,
    },
    healthUrl: 'https://api.shop.example/healthz',
  },
  broken: {
    name: 'broken',
    target: { kind: 'aksDeployment', clusterId: CLUSTER_ID, namespace: 'shop', deployment: 'broken' },
  },
  stuck: {
    name: 'stuck',
    target: {
      kind: 'aksDeployment',
      clusterId: CLUSTER_ID,
      namespace: 'shop',
      deployment: 'stuck',
      timeoutSeconds: 120,
    },
  },
  worker: {
    name: 'worker',
    target: {
      kind: 'containerApp',
      appId: `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.App/containerApps/ca-rolled`,
    },
  },
  jobs: {
    name: 'jobs',
    target: {
      kind: 'webApp',
      siteId: `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Web/sites/app-rolled`,
      settleSeconds: 30,
    },
    healthUrl: 'https://jobs.shop.example/health',
  },
  pipeline: {
    name: 'pipeline',
    target: { kind: 'webhook', url: 'https://ci.shop.example/hooks/redeploy', completion: 'polling' },
  },
  legacy: {
    name: 'legacy',
    target: { kind: 'webhook', url: 'https://ci.shop.example/hooks/legacy', completion: 'callback' },
  },
  csi: {
    name: 'csi',
    target: { kind: 'reload', waitSeconds: 150 },
    healthUrl: 'https://csi.shop.example/healthz',
  },
};

/** The rotation's step before the roll: the standby key published as the secret's new version. */
async function publishSecondary(box: Sandbox): Promise<string> {
  const keys = new CosmosDbKeys(box.credential, { httpClient: box.httpClient, pollIntervalMs: 0 });
  const pair = await keys.listKeys(ACCOUNT_ID, { withValues: true });
  return box.keyVault.setSecret(VAULT, 'cosmos-key', pair.secondary.value!);
}

const held = (box: Sandbox, name: string) =>
  box
    .consumers()
    .find((c) => c.name === name)!
    .holds.map((h) => h.version);
const options = (box: Sandbox) => ({
  httpClient: box.httpClient,
  healthClient: box.httpClient,
  clock: box.clock,
  pollIntervalMs: 0,
});

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

describe('AksDeploymentRoller over the real @azure/arm-containerservice client on the sandbox', () => {
  it('restarts and waits in one run command; running until the rollout ends, then done on the new version', async () => {
    // Prepare
    const box = estate();
    const roller = new AksDeploymentRoller(box.credential, options(box));
    const version = await publishSecondary(box);
    const mark = box.requests().length;

    // Act
    const handle = await roller.start(consumers.api!, { secretVersion: version });
    const during = await roller.status(consumers.api!, handle, { secretVersion: version });
    await box.advance({ seconds: 90 });
    const after = await roller.status(consumers.api!, handle, { secretVersion: version });

    // Assess
    expect(handle).toEqual({
      kind: 'aksDeployment',
      consumer: 'api',
      startedAt: '2026-01-01T00:00:00.000Z',
      ref: { commandId: expect.stringMatching(/^[0-9a-f]{32}$/) },
    });
    expect(JSON.parse(JSON.stringify(handle))).toEqual(handle);
    expect(during).toEqual({ state: 'running', detail: 'kubectl rollout running' });
    expect(after).toEqual({
      state: 'done',
      detail: `deployment "api" successfully rolled out; healthy on version ${version}`,
    });
    expect(held(box, 'api')).toEqual([version]);
    expect(
      box
        .requests()
        .slice(mark)
        .map(
          (r) =>
            `${r.service} ${r.method} ${r.path.replace(/^.*\/managedClusters\/aks-rollers/, '')} ${r.status}`,
        ),
    ).toEqual([
      'arm POST /runCommand 202',
      expect.stringMatching(/^arm GET \/commandResults\/[0-9a-f]{32} 202$/),
      expect.stringMatching(/^arm GET \/commandResults\/[0-9a-f]{32} 200$/),
      'consumer GET /healthz 200',
    ]);
  });

  it('waits for health on the published version when the consumer still reports another one', async () => {
    // Prepare
    const box = estate();
    const roller = new AksDeploymentRoller(box.credential, options(box));
    const handle = await roller.start(consumers.api!);
    await box.advance({ seconds: 90 });
    const later = await publishSecondary(box);

    // Act
    const status = await roller.status(consumers.api!, handle, { secretVersion: later });

    // Assess
    expect(status.state).toBe('running');
    expect((status as { detail: string }).detail).toContain(`(expected ${later})`);
  });

  it('fails with kubectl last words when the rollout fails or times out', async () => {
    // Prepare
    const box = estate();
    const roller = new AksDeploymentRoller(box.credential, options(box));

    // Act
    const broken = await roller.start(consumers.broken!);
    const stuck = await roller.start(consumers.stuck!);
    await box.advance({ minutes: 2 });
    const [b, s] = await Promise.all([
      roller.status(consumers.broken!, broken),
      roller.status(consumers.stuck!, stuck),
    ]);

    // Assess
    expect(b).toEqual({
      state: 'failed',
      reason: 'kubectl exited 1: error: deployment "broken" exceeded its progress deadline',
    });
    expect(s).toEqual({
      state: 'failed',
      reason: 'kubectl exited 1: error: timed out waiting for the condition',
    });
  });

  it('passes a token for the AKS AAD server app as clusterToken when asked (AAD-enabled clusters)', async () => {
    // Prepare
    const box = estate();
    const roller = new AksDeploymentRoller(box.credential, { ...options(box), aadClusterToken: true });
    const issued = box.credential.issued;

    // Act
    const handle = await roller.start(consumers.api!);

    // Assess
    expect(handle.ref.commandId).toMatch(/^[0-9a-f]{32}$/);
    expect(box.credential.issued).toBe(issued + 2);
  });

  it('sends the cluster token to an Entra-enabled cluster once it refuses a command without one, and from then on', async () => {
    // Prepare: AKS answers 400 MissingAADClusterToken to a command without a token.
    const box = estate({ aad: true });
    const roller = new AksDeploymentRoller(box.credential, options(box));
    const posts = () =>
      box
        .requests()
        .filter((r) => r.method === 'POST' && /\/runCommand$/i.test(r.path))
        .map((r) => r.status);

    // Act
    const first = await roller.start(consumers.api!);
    const afterFirst = posts();
    const second = await roller.start(consumers.api!);

    // Assess
    expect(first.ref.commandId).toMatch(/^[0-9a-f]{32}$/);
    expect(second.ref.commandId).toMatch(/^[0-9a-f]{32}$/);
    expect(afterFirst).toEqual([400, 202]);
    expect(posts()).toEqual([400, 202, 202]);
  });

  it('refuses names that are not Kubernetes names before any call (no shell injection into the run command)', async () => {
    // Prepare
    const box = estate();
    const roller = new AksDeploymentRoller(box.credential, options(box));
    const evil: Consumer = {
      name: 'evil',
      target: {
        kind: 'aksDeployment',
        clusterId: CLUSTER_ID,
        namespace: 'shop',
        deployment: 'api && kubectl delete ns shop',
      },
    };

    // Act
    const error = await roller.start(evil).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ValidationError);
    expect(box.requests()).toEqual([]);
  });
});

describe('ContainerAppRoller and WebAppRoller on the sandbox', () => {
  it('restarts the active revision of a container app and follows its running state', async () => {
    // Prepare
    const box = estate();
    const roller = new ContainerAppRoller(box.credential, options(box));
    const version = await publishSecondary(box);

    // Act
    const handle = await roller.start(consumers.worker!);
    const during = await roller.status(consumers.worker!, handle);
    await box.advance({ seconds: 45 });
    const after = await roller.status(consumers.worker!, handle);

    // Assess
    expect(handle.ref.revision).toMatch(/^ca-rolled--[0-9a-f]{7}$/);
    expect(during).toEqual({ state: 'running', detail: `revision ${handle.ref.revision} is Processing` });
    expect(after).toEqual({ state: 'done', detail: `revision ${handle.ref.revision} is Running` });
    expect(held(box, 'worker')).toEqual([version]);
  });

  it('restarts a web app, counts it running while it settles, then done when healthy', async () => {
    // Prepare
    const box = estate();
    const roller = new WebAppRoller(box.credential, options(box));
    const version = await publishSecondary(box);

    // Act
    const handle = await roller.start(consumers.jobs!);
    const settling = await roller.status(consumers.jobs!, handle, { secretVersion: version });
    await box.advance({ seconds: 30 });
    const after = await roller.status(consumers.jobs!, handle, { secretVersion: version });

    // Assess
    expect(settling).toEqual({ state: 'running', detail: 'restarted; settling (30 s left)' });
    expect(after).toEqual({ state: 'done', detail: `restarted and settled; healthy on version ${version}` });
  });
});

describe('WebhookRoller and ReloadRoller on the sandbox', () => {
  it('starts a pipeline by webhook and polls its status URL until it succeeded', async () => {
    // Prepare
    const box = estate();
    const roller = new WebhookRoller({ httpClient: box.httpClient, clock: box.clock });
    const version = await publishSecondary(box);

    // Act
    const handle = await roller.start(consumers.pipeline!, {
      secretVersion: version,
      secret: { vaultUrl: box.keyVault.vaultUrl(VAULT), name: 'cosmos-key' },
    });
    const during = await roller.status(consumers.pipeline!, handle);
    await box.advance({ minutes: 5 });
    const after = await roller.status(consumers.pipeline!, handle);

    // Assess
    expect(handle.ref).toEqual({
      completion: 'polling',
      statusUrl: expect.stringMatching(/^https:\/\/ci\.shop\.example\/hooks\/redeploy\/runs\//),
    });
    expect(during).toEqual({ state: 'running', detail: 'webhook run running' });
    expect(after).toEqual({ state: 'done', detail: 'webhook run succeeded' });
    expect(held(box, 'pipeline')).toEqual([version]);
  });

  it('learns a callback webhook is done from the callback the target sends to the app', async () => {
    // Prepare: the app's callback endpoint, recorded in a callbacks store (the lead's endpoint writes the real one).
    const reported = new Map<string, RollStatus>();
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const { status, reason } = JSON.parse(body) as { status: string; reason?: string };
        reported.set(
          req.url!,
          status === 'Succeeded'
            ? { state: 'done', detail: 'callback: Succeeded' }
            : { state: 'failed', reason: reason ?? status },
        );
        res.writeHead(204);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const callbackUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/rolls/r-1/legacy`;
    const callbacks: WebhookCallbacks = {
      statusOf: async (_handle: RollHandle) => reported.get('/api/rolls/r-1/legacy'),
    };
    const box = estate();
    const roller = new WebhookRoller({ httpClient: box.httpClient, clock: box.clock, callbacks });

    // Act
    const handle = await roller.start(consumers.legacy!, { callbackUrl });
    const during = await roller.status(consumers.legacy!, handle);
    await box.advance({ minutes: 2 });
    const after = await roller.status(consumers.legacy!, handle);

    // Assess
    expect(handle.ref).toEqual({ completion: 'callback' });
    expect(during).toEqual({ state: 'running', detail: 'waiting for the webhook callback' });
    expect(after).toEqual({ state: 'done', detail: 'callback: Succeeded' });
  });

  it('waits out the reload interval, then checks the consumer runs on the new version', async () => {
    // Prepare
    const box = estate();
    const roller = new ReloadRoller({ clock: box.clock, healthClient: box.httpClient });
    const version = await publishSecondary(box);

    // Act
    const handle = await roller.start(consumers.csi!);
    const early = await roller.status(consumers.csi!, handle, { secretVersion: version });
    await box.advance({ seconds: 150 });
    const after = await roller.status(consumers.csi!, handle, { secretVersion: version });

    // Assess
    expect(early).toEqual({ state: 'running', detail: 'waiting for the consumer to reload (150 s left)' });
    expect(after).toEqual({ state: 'done', detail: `reload interval passed; healthy on version ${version}` });
    expect(box.requests().filter((r) => r.service === 'consumer')).toHaveLength(1);
  });
});

describe('ConsumerRollers', () => {
  it('finds the roller of a consumer kind, refuses a kind without one and a handle of another consumer', async () => {
    // Prepare
    const box = estate();
    const reload = new ReloadRoller({ clock: box.clock });
    const rollers = new ConsumerRollers([reload]);
    const handle = await reload.start(consumers.csi!);

    // Act
    const found = rollers.for(consumers.csi!);
    const missing = (() => {
      try {
        return rollers.for(consumers.api!);
      } catch (e) {
        return e;
      }
    })();
    const foreign = await reload
      .status({ ...consumers.csi!, name: 'other' }, handle)
      .catch((e: unknown) => e);

    // Assess
    expect(found).toBe(reload);
    expect(missing).toBeInstanceOf(ConfigurationError);
    expect(foreign).toBeInstanceOf(ValidationError);
  });
});
