/**
 * The rotation endpoints as the app registers them (`src/functions/rotations.ts`), on the app's own
 * deps (its composition root on the sandbox platform and Azurite), callers identified by built-in
 * authentication's principal header: a rotation that cannot start answers a clear 4xx and starts
 * nothing; approval needs Operations.Approve (403 otherwise, nothing changes); a halted secret is
 * shown as such and resumed by Operations.Execute.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpRequest, type HttpResponseInit, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  approveRotation,
  getRotation,
  resumeRotation,
  rollCallback,
  rotations,
} from '../../../src/functions/rotations';
import { getDeps, resetDeps } from '../../../src/lib/app/deps';
import { KeyVaultSecretVault } from '../../../src/lib/azure/keyVaultSecrets';
import { setPlatformOverride } from '../../../src/lib/azure/platform';
import { newId } from '../../../src/lib/core/ids';
import { silentLogger } from '../../../src/lib/core/logging';
import { ROTATION_KIND } from '../../../src/lib/rotation/rotation';
import { rotationTarget } from '../../../src/lib/rotation/startRotation';
import { createSandbox, type Sandbox } from '../../../src/local/sandbox';
import { storageConnectionString, uniquePrefix } from '../../support/storage';
import {
  BUS_ID,
  CLUSTER_ID,
  COSMOS_ID,
  driveRun,
  RG,
  rotationTags,
  SITE_ID,
  STORAGE_ID,
  SUB,
  VAULT,
  VAULT_URL,
} from './support';

const ROLE = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role';
function principal(roles: string[]): string {
  const body = {
    auth_typ: 'aad',
    claims: [
      { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: newId() },
      ...roles.map((val) => ({ typ: ROLE, val })),
    ],
    name_typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
    role_typ: ROLE,
  };
  return Buffer.from(JSON.stringify(body)).toString('base64');
}
const READER = principal(['Operations.Read']);
const OPERATOR = principal(['Operations.Execute', 'Operations.Read']);
const APPROVER = principal(['Operations.Approve']);

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;
// biome-ignore lint/suspicious/noExplicitAny: response bodies are read freely in assertions
type Answer = HttpResponseInit & { jsonBody?: any };
const answers: string[] = [];

async function call(
  handler: Handler,
  options: {
    method?: 'GET' | 'POST';
    path: string;
    caller?: string;
    body?: unknown;
    params?: Record<string, string>;
  },
): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.caller) {
    headers['x-ms-client-principal'] = options.caller;
    headers['x-ms-client-principal-name'] = 'lead@contoso.com';
  }
  const request = new HttpRequest({
    method: options.method ?? 'POST',
    url: `http://localhost${options.path}`,
    headers,
    params: options.params ?? {},
    ...(options.body !== undefined ? { body: { string: JSON.stringify(options.body) } } : {}),
  });
  const answer = (await handler(
    request,
    new InvocationContext({ invocationId: newId(), functionName: 'rotations' }),
  )) as Answer;
  answers.push(JSON.stringify(answer.jsonBody ?? null));
  return answer;
}

const POLICY = `version: 1
secrets:
  - vault: ${VAULT}
    name: cosmos-key
    owner: team-data
    rotation:
      provider: cosmosDbKeys
      resourceId: ${COSMOS_ID}
      approval: true
      consumers:
        - { type: aksDeployment, clusterId: ${CLUSTER_ID}, namespace: orders, deployment: orders-api }
  - vault: ${VAULT}
    name: storage-conn
    owner: team-platform
    rotation:
      provider: storageAccountKeys
      resourceId: ${STORAGE_ID}
      publish: connectionString
      consumers:
        - { type: appService, resourceId: ${SITE_ID} }
  - vault: ${VAULT}
    name: bus-cert
    owner: team-messaging
    rotation: { provider: serviceBusSasKeys, resourceId: ${BUS_ID}/authorizationRules/RootManageSharedAccessKey }
  - vault: ${VAULT}
    name: bus-orders
    owner: team-messaging
    rotation:
      provider: serviceBusSasKeys
      resourceId: ${BUS_ID}/queues/orders/authorizationRules/orders-send
      consumers:
        - { type: aksDeployment, clusterId: ${CLUSTER_ID}, namespace: orders, deployment: broken }
  - { vault: ${VAULT}, name: by-hand, owner: team-data, rotation: { provider: manual } }
  - { vault: kv-rotation-b, name: by-hand, owner: team-data, rotation: { provider: manual } }
notifications:
  defaults: [ops]
  channels:
    - { name: ops, type: webhook, urlSetting: OPS_WEBHOOK_URL }
`;

describe('rotation endpoints (authorized; bad requests change nothing)', () => {
  let dir: string;
  let sandbox: Sandbox;
  const env: Record<string, string> = {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stampkeeper-rotations-'));
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    sandbox = createSandbox({
      scenario: {
        seed: 'rotation-endpoints',
        clock: { start: '2026-03-01T00:00:00Z' },
        azure: { subscriptionId: SUB, resourceGroup: RG },
        keyVault: {
          vaults: [
            {
              name: VAULT,
              secrets: [
                {
                  name: 'cosmos-key',
                  valueFrom: { resource: 'cosmosDb/cosmos-rot', key: 'primaryMasterKey' },
                  expiresInDays: 20,
                  tags: rotationTags('cosmosDbKeys', COSMOS_ID, 'primary'),
                },
                {
                  name: 'storage-conn',
                  valueFrom: { resource: 'storage/strotation', key: 'key1' },
                  expiresInDays: 20,
                },
                { name: 'bus-cert', certificate: true, expiresInDays: 20 },
                {
                  name: 'bus-orders',
                  valueFrom: {
                    resource: 'serviceBus/sb-rotation-ns/queues/orders/orders-send',
                    key: 'primaryKey',
                  },
                  expiresInDays: 20,
                  tags: rotationTags(
                    'serviceBusSasKeys',
                    `${BUS_ID}/queues/orders/authorizationRules/orders-send`,
                    'primary',
                  ),
                },
                { name: 'by-hand', expiresInDays: 20 },
              ],
            },
          ],
        },
        arm: {
          cosmosDbAccounts: [{ name: 'cosmos-rot' }],
          storageAccounts: [{ name: 'strotation' }],
          serviceBusNamespaces: [
            {
              name: 'sb-rotation-ns',
              authorizationRules: [
                { name: 'RootManageSharedAccessKey', rights: ['Listen', 'Send', 'Manage'] },
              ],
              queues: [{ name: 'orders', authorizationRules: [{ name: 'orders-send', rights: ['Send'] }] }],
            },
          ],
          aksClusters: [{ name: 'aks-rot' }],
        },
        consumers: [
          {
            name: 'orders-api',
            kind: 'aksDeployment',
            cluster: 'aks-rot',
            namespace: 'orders',
            deployment: 'orders-api',
            credential: { vault: VAULT, secret: 'cosmos-key', resource: 'cosmosDb/cosmos-rot' },
            roll: { seconds: 60 },
          },
          {
            name: 'broken',
            kind: 'aksDeployment',
            cluster: 'aks-rot',
            namespace: 'orders',
            deployment: 'broken',
            credential: {
              vault: VAULT,
              secret: 'bus-orders',
              resource: 'serviceBus/sb-rotation-ns/queues/orders/orders-send',
            },
            roll: { seconds: 30, outcome: 'fail', failReason: 'CrashLoopBackOff' },
          },
        ],
      },
    });
    await sandbox.advance({ minutes: 1 });
    setPlatformOverride({
      credential: sandbox.credential,
      httpClient: sandbox.httpClient,
      webhookClient: sandbox.httpClient,
      clock: sandbox.clock,
      kind: 'sandbox',
    });
    const prefix = uniquePrefix('rot');
    Object.assign(env, {
      AzureWebJobsStorage: storageConnectionString(),
      STAMPKEEPER_TABLE_PREFIX: prefix,
      STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
      STAMPKEEPER_POLICY_PATH: join(dir, 'policy.yaml'),
      STAMPKEEPER_ENVIRONMENT: 'itest',
      OPS_WEBHOOK_URL: 'https://ops.example/hook',
      WEBSITE_AUTH_ENABLED: 'true',
    });
    Object.assign(process.env, env);
    resetDeps();
    await getDeps().ready();
  });

  afterAll(() => {
    for (const name of Object.keys(env)) delete process.env[name];
    setPlatformOverride(undefined);
    resetDeps();
    rmSync(dir, { recursive: true, force: true });
  });

  const engine = () => getDeps().runs(silentLogger);
  const history = (secret: string) => engine().runsForTarget(ROTATION_KIND, rotationTarget(VAULT, secret));
  const start = (body: unknown, caller = OPERATOR) =>
    call(rotations, { path: '/api/rotations', caller, body });
  const regenerations = () => sandbox.estate().arm.regenerations;

  it.each([
    [
      'a secret the policy does not name',
      { vault: VAULT, secret: 'nobody' },
      OPERATOR,
      404,
      'NotFound',
      'does not name secret nobody',
    ],
    [
      'a secret rotated by hand',
      { vault: VAULT, secret: 'by-hand' },
      OPERATOR,
      400,
      'ValidationFailed',
      'rotation.provider: manual',
    ],
    [
      'a secret without its tags',
      { vault: VAULT, secret: 'storage-conn' },
      OPERATOR,
      400,
      'ValidationFailed',
      'TagsMissing: secret storage-conn in kv-rotation: version',
    ],
    [
      'a revoke with an App Service consumer whose restart proves nothing (no health URL)',
      { vault: VAULT, secret: 'storage-conn', mode: 'revoke' },
      OPERATOR,
      400,
      'ValidationFailed',
      'consumer app-rot (appService): an App Service restart proves nothing',
    ],
    [
      'a certificate-backed secret',
      { vault: VAULT, secret: 'bus-cert' },
      OPERATOR,
      400,
      'ValidationFailed',
      'CertificateManaged: secret bus-cert in kv-rotation belongs to a Key Vault certificate',
    ],
    [
      'a malformed request',
      { vault: 'not a vault!', secret: 'x y', mode: 'sideways', dryRun: 'yes', extra: 1 },
      OPERATOR,
      400,
      'ValidationFailed',
      "mode: 'alternate' or 'revoke'",
    ],
    [
      'a caller without Operations.Execute',
      { vault: VAULT, secret: 'cosmos-key' },
      READER,
      403,
      'Forbidden',
      'lacks the app role Operations.Execute',
    ],
  ])('POST /api/rotations for %s: %i, nothing started', async (_what, body, caller, status, code, text) => {
    // Prepare
    const secret = (body as { secret: string }).secret;
    const managed = ['storage-conn', 'bus-cert', 'cosmos-key'].includes(secret);
    const before = regenerations().length;

    // Act
    const answer = await start(body, caller);

    // Assess
    expect(answer.status).toBe(status);
    expect(answer.jsonBody.error.code).toBe(code);
    expect(JSON.stringify(answer.jsonBody.error)).toContain(text);
    if (managed) expect(await history(secret)).toEqual([]);
    expect(regenerations()).toHaveLength(before);
  });

  it('approval: the rotation waits as awaiting-approval until an approver approves it; without the role, 403 and nothing changes', async () => {
    // Prepare
    const started = await start({ vault: VAULT, secret: 'cosmos-key' });
    const id = started.jsonBody.runId as string;
    await driveRun(engine(), sandbox, id);

    // Act
    const viewed = await call(getRotation, {
      method: 'GET',
      path: `/api/rotations/${id}`,
      caller: READER,
      params: { id },
    });
    const refused = await call(approveRotation, {
      path: `/api/rotations/${id}/approve`,
      caller: OPERATOR,
      params: { id },
      body: {},
    });
    const unchanged = await engine().getRun(id);
    const approved = await call(approveRotation, {
      path: `/api/rotations/${id}/approve`,
      caller: APPROVER,
      params: { id },
      body: { comment: 'change window agreed' },
    });
    const run = await driveRun(engine(), sandbox, id);

    // Assess
    expect(started.status).toBe(202);
    expect(started.jsonBody.status).toBe('started');
    expect(viewed.status).toBe(200);
    expect(viewed.jsonBody).toMatchObject({ id, state: 'awaiting-approval', currentStep: 'regenerate' });
    expect(refused.status).toBe(403);
    expect(refused.jsonBody.error.message).toContain('Operations.Approve');
    expect(unchanged!.state).toBe('awaiting-approval');
    expect(unchanged!.steps[1]!.approval?.decision).toBeUndefined();
    expect(approved.status).toBe(200);
    expect(approved.jsonBody.steps[1].approval).toMatchObject({
      decision: 'approved',
      comment: 'change window agreed',
    });
    expect(run.state).toBe('succeeded');
    expect(
      regenerations()
        .filter((r) => r.resourceId === COSMOS_ID)
        .map((r) => r.keyName),
    ).toEqual(['secondaryMasterKey']);
    expect(sandbox.downtime().intervals).toBe(0);
  });

  it('halted: the history says so, a reader cannot resume, an operator resumes from the state left (roll first, no regeneration)', async () => {
    // Prepare: the consumer never becomes ready: the rotation fails after publishing
    const rule = `${BUS_ID}/queues/orders/authorizationRules/orders-send`;
    const started = await start({ vault: VAULT, secret: 'bus-orders' });
    const failed = await driveRun(engine(), sandbox, started.jsonBody.runId);

    // Act
    const listed = await call(rotations, {
      method: 'GET',
      path: `/api/rotations?vault=${VAULT}&secret=bus-orders`,
      caller: READER,
    });
    const again = await start({ vault: VAULT, secret: 'bus-orders' });
    const byReader = await call(resumeRotation, {
      path: `/api/rotations/${failed.id}/resume`,
      caller: READER,
      params: { id: failed.id },
    });
    const resumed = await call(resumeRotation, {
      path: `/api/rotations/${failed.id}/resume`,
      caller: OPERATOR,
      params: { id: failed.id },
    });
    const second = await driveRun(engine(), sandbox, resumed.jsonBody.runId);
    const stale = await call(resumeRotation, {
      path: `/api/rotations/${failed.id}/resume`,
      caller: OPERATOR,
      params: { id: failed.id },
    });

    // Assess
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('RollFailed');
    expect(listed.status).toBe(200);
    expect(listed.jsonBody).toMatchObject({ halted: failed.id, count: 1 });
    expect(again.status).toBe(409);
    expect(again.jsonBody.error.message).toContain(`POST /api/rotations/${failed.id}/resume`);
    expect(byReader.status).toBe(403);
    expect(resumed.status).toBe(202);
    expect(resumed.jsonBody).toMatchObject({ status: 'started', resumes: failed.id });
    // The version the failed run published is rolled again; nothing is regenerated over it.
    expect(second.steps.map((s) => [s.name, s.status]).slice(1, 4)).toEqual([
      ['regenerate', 'skipped'],
      ['test', 'skipped'],
      ['publish', 'skipped'],
    ]);
    expect(
      regenerations()
        .filter((r) => r.resourceId === rule)
        .map((r) => r.keyName),
    ).toEqual(['secondaryKey']);
    // The first failure is no longer the secret's last rotation: resuming it again is refused.
    expect(second.state).toBe('failed');
    expect(stale.status).toBe(409);
    expect(stale.jsonBody.error.message).toContain(`is not the secret's last rotation (${second.id})`);
    expect(sandbox.downtime().intervals).toBe(0);
  });

  it('GET /api/rotations?secret= without a vault: the one vault holding it; a name in two vaults: 400 naming them; unknown: 404', async () => {
    // Prepare
    const list = (query: string) =>
      call(rotations, { method: 'GET', path: `/api/rotations?${query}`, caller: READER });
    const withVault = await list(`vault=${VAULT}&secret=cosmos-key`);

    // Act
    const without = await list('secret=cosmos-key');
    const ambiguous = await list('secret=by-hand');
    const unknown = await list('secret=nowhere');

    // Assess
    expect(withVault.status).toBe(200);
    expect(without.status).toBe(200);
    expect(without.jsonBody.secret).toBe(withVault.jsonBody.secret);
    expect(without.jsonBody.runs.map((r: { id: string }) => r.id)).toEqual(
      withVault.jsonBody.runs.map((r: { id: string }) => r.id),
    );
    expect(ambiguous.status).toBe(400);
    expect(ambiguous.jsonBody.error.message).toContain(
      `several vaults of the policy (${VAULT}, kv-rotation-b)`,
    );
    expect(unknown.status).toBe(404);
  });

  it('answers no secret value, and no callback token, in any response', async () => {
    // Prepare: every value of the vault, read with the real SDK
    const vault = new KeyVaultSecretVault(sandbox.credential, { httpClient: sandbox.httpClient });
    const values: string[] = [];
    for await (const s of vault.listSecrets(VAULT_URL)) {
      for await (const v of vault.listSecretVersions(VAULT_URL, s.name)) {
        if (s.managed) continue;
        values.push((await vault.getSecret(VAULT_URL, s.name, { version: v.version! })).value);
      }
    }

    // Act: every view once more, and a callback with a made-up token
    for (const secret of ['cosmos-key', 'bus-orders']) {
      const listed = await call(rotations, {
        method: 'GET',
        path: `/api/rotations?vault=${VAULT}&secret=${secret}`,
        caller: READER,
      });
      for (const run of listed.jsonBody.runs) {
        await call(getRotation, {
          method: 'GET',
          path: `/api/rotations/${run.id}`,
          caller: READER,
          params: { id: run.id },
        });
      }
    }
    const forged = await call(rollCallback, {
      path: `/api/rollcallbacks?id=${'a'.repeat(32)}&token=${'B'.repeat(43)}`,
      body: { status: 'Succeeded' },
    });

    // Assess
    expect(values.length).toBeGreaterThanOrEqual(6);
    expect(forged.status).toBe(403);
    const everything = answers.join('\n');
    expect(everything).toContain('cosmos-key');
    for (const value of values) expect(everything).not.toContain(value);
    expect(everything).not.toContain('B'.repeat(43));
  });
});
