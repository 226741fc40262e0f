/**
 * Built-in authentication end to end, on the built bundle and the real local host, whose emulation
 * of Easy Auth (src/local/host/builtInAuth.ts) stands for the platform: callers come with developer
 * tokens minted by the host, the app authorizes from the principal the host injects. Wrong or
 * missing roles get 401 / 403 and change nothing; the platform's own deliveries (the sandbox's
 * Event Grid subscription, the action group's secure webhook) still reach their functions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTION_GROUP_APP_ID, ROLES } from '../../src/lib/app/auth';
import { newId } from '../../src/lib/core/ids';
import { type LocalAppOptions, type RunningLocalApp, startLocalApp } from '../../src/local/app';
import type { HostLogger } from '../../src/local/host/types';
import { appBundle } from '../support/bundle';
import { storageConnectionString, uniquePrefix } from '../support/storage';
import { commonAlert } from '../unit/remediation/alertFactory';

const quiet: HostLogger = { info: () => {}, warn: () => {}, error: () => {} };
const PIPELINE_APP = '0f5e2c1a-6b7d-4e8f-9a0b-1c2d3e4f5a6b';
const SINCE = '2025-12-01T00:00:00Z';

function forgedPrincipal(roles: string[]): string {
  return Buffer.from(
    JSON.stringify({
      auth_typ: 'aad',
      claims: [
        { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: newId() },
        ...roles.map((val) => ({ typ: 'roles', val })),
      ],
      role_typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
    }),
  ).toString('base64');
}

async function startApp(auth: LocalAppOptions['auth']) {
  const prefix = uniquePrefix('auth');
  return startLocalApp({
    appEntry: appBundle().entry,
    appRoot: appBundle().root,
    port: 0,
    startTimers: false,
    logger: quiet,
    auth,
    env: {
      AzureWebJobsStorage: storageConnectionString(),
      STAMPKEEPER_TABLE_PREFIX: prefix,
      STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
    },
  });
}

describe('built-in authentication as in Azure (no default caller)', () => {
  let app: RunningLocalApp;

  async function token(body: Record<string, unknown>): Promise<string> {
    const response = await fetch(`${app.url}/admin/token`, { method: 'POST', body: JSON.stringify(body) });
    expect(response.status, await response.clone().text()).toBe(200);
    return ((await response.json()) as { token: string }).token;
  }

  async function call(
    path: string,
    options: { token?: string; method?: string; body?: string; headers?: Record<string, string> } = {},
    // biome-ignore lint/suspicious/noExplicitAny: response bodies are read freely in assertions
  ): Promise<{ status: number; json: any; headers: Headers }> {
    const response = await fetch(`${app.url}${path}`, {
      method: options.method ?? 'GET',
      body: options.body,
      headers: {
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.body ? { 'content-type': 'application/json' } : {}),
        ...options.headers,
      },
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: response.status, json, headers: response.headers };
  }

  beforeAll(async () => {
    app = await startApp({ defaultCaller: false });
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('reads the audit and the rejections with Operations.Read only: 401 without a caller, 403 without the role', async () => {
    // Prepare
    const reader = await token({ name: 'auditor@contoso.com', roles: [ROLES.read] });
    const executor = await token({ app: PIPELINE_APP, roles: [ROLES.execute, ROLES.approve] });
    const tampered = `${reader.slice(0, -4)}${reader.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;

    // Act
    const results = [];
    for (const path of [`/api/audit?since=${SINCE}`, '/api/rejections']) {
      results.push({
        path,
        none: await call(path),
        tampered: await call(path, { token: tampered }),
        executor: await call(path, { token: executor }),
        reader: await call(path, { token: reader }),
      });
    }

    // Assess
    for (const r of results) {
      expect(r.none.status, r.path).toBe(401);
      expect(r.none.headers.get('www-authenticate'), r.path).toBe('Bearer');
      expect(r.tampered.status, r.path).toBe(401);
      expect(r.executor.status, r.path).toBe(403);
      expect(r.executor.json.error).toMatchObject({
        code: 'Forbidden',
        message: `the caller app:${PIPELINE_APP} lacks the app role Operations.Read`,
      });
      expect(r.reader.status, r.path).toBe(200);
    }
  });

  it('strips a principal header the client made up: it neither authenticates nor adds a role', async () => {
    // Prepare
    const forged = forgedPrincipal([ROLES.read, ROLES.execute, ROLES.approve]);
    const executor = await token({ app: PIPELINE_APP, roles: [ROLES.execute] });

    // Act
    const alone = await call(`/api/audit?since=${SINCE}`, { headers: { 'x-ms-client-principal': forged } });
    const withToken = await call(`/api/audit?since=${SINCE}`, {
      token: executor,
      headers: { 'X-MS-CLIENT-PRINCIPAL': forged, 'x-ms-client-principal-name': 'admin@contoso.com' },
    });

    // Assess
    expect(alone.status).toBe(401);
    expect(withToken.status).toBe(403);
    expect(withToken.json.error.message).toBe(
      `the caller app:${PIPELINE_APP} lacks the app role Operations.Read`,
    );
  });

  it("takes alerts from the action group's secure webhook only, recording Azure Monitor as the actor; 401 and 403 change nothing", async () => {
    // Prepare
    const actionGroup = await token({ app: ACTION_GROUP_APP_ID, roles: [ROLES.alertDelivery] });
    const operator = await token({
      name: 'ops@contoso.com',
      roles: [ROLES.read, ROLES.execute, ROLES.approve],
    });
    const reader = await token({ name: 'auditor@contoso.com', roles: [ROLES.read] });
    const alertId = `/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/${newId()}`;
    const body = JSON.stringify(commonAlert({ alertId, monitorCondition: 'Fired', severity: 'Sev2' }));
    const alertRecords = async () =>
      (
        (
          await call(`/api/audit?since=2025-12-01T00:00:00Z&until=2026-12-01T00:00:00Z&limit=1000`, {
            token: reader,
          })
        ).json.records as Array<{ action: string; actor: string; before?: { alertId?: string } }>
      ).filter((r) => r.before?.alertId === alertId);
    const rejections = async () => (await call('/api/rejections', { token: reader })).json.total as number;
    const rejectedBefore = await rejections();

    // Act
    const anonymous = await call('/api/alerts', { method: 'POST', body });
    const wrongRole = await call('/api/alerts', { method: 'POST', body, token: operator });
    const garbage = await call('/api/alerts', { method: 'POST', body: '{not json', token: operator });
    const unchanged = await alertRecords();
    const delivered = await call('/api/alerts', { method: 'POST', body, token: actionGroup });

    // Assess
    expect(anonymous.status).toBe(401);
    expect(wrongRole.status).toBe(403);
    expect(garbage.status).toBe(403);
    expect(unchanged).toEqual([]);
    expect(await rejections()).toBe(rejectedBefore);
    expect(delivered.status).toBe(202);
    const records = await alertRecords();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ action: 'alert.receive', actor: 'system:azure-monitor' });
  });

  it("lets the platform's own deliveries through: Event Grid's webhook without a token, the health probe", async () => {
    // Prepare
    const reader = await token({ name: 'auditor@contoso.com', roles: [ROLES.read] });

    // Act: the sandbox's Key Vault raises SecretNearExpiry and Event Grid delivers it (no token).
    await app.sandbox!.advance({ days: 16 });
    const health = await call('/api/health');
    const audit = await call(
      `/api/audit?since=2026-01-01T00:00:00Z&target=${encodeURIComponent('vaults/stampkeeper-sandbox/secrets/cosmos-primary-key')}`,
      { token: reader },
    );

    // Assess
    const deliveries = app.sandbox!.deliveries();
    expect(deliveries.length).toBeGreaterThan(0);
    expect(deliveries.map((d) => d.outcome)).toEqual(deliveries.map(() => 'delivered'));
    expect(health.status).not.toBe(401);
    expect(health.json.status).toBeDefined();
    expect(audit.status).toBe(200);
    expect(audit.json.records.map((r: { actor: string }) => r.actor)).toContain('system:eventgrid');
  });

  it('mints tokens for loopback callers only, refusing bad requests with every problem', async () => {
    // Act
    const noRoles = await fetch(`${app.url}/admin/token`, {
      method: 'POST',
      body: JSON.stringify({ name: 'x', app: PIPELINE_APP, roles: ['bad role'], minutes: 5000 }),
    });
    const get = await fetch(`${app.url}/admin/token`);

    // Assess
    expect(noRoles.status).toBe(400);
    const problems = await noRoles.text();
    expect(problems).toContain('roles: each must be an app role name');
    expect(problems).toContain('name or app: give exactly one');
    expect(problems).toContain('minutes: a whole number from 1 to 1440');
    expect(get.status).toBe(405);
  });
});

describe('built-in authentication on npm start (the developer as default caller)', () => {
  let app: RunningLocalApp;

  beforeAll(async () => {
    app = await startApp({});
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('reads as developer@localhost without a token, and still refuses a token without the role', async () => {
    // Prepare
    const minted = await fetch(`${app.url}/admin/token`, {
      method: 'POST',
      body: JSON.stringify({ app: PIPELINE_APP, roles: [ROLES.execute] }),
    });
    const { token } = (await minted.json()) as { token: string };

    // Act
    const developer = await fetch(`${app.url}/api/rejections`);
    const pipeline = await fetch(`${app.url}/api/rejections`, {
      headers: { authorization: `Bearer ${token}` },
    });

    // Assess
    expect(developer.status).toBe(200);
    expect(pipeline.status).toBe(403);
  });
});

describe('without built-in authentication', () => {
  let app: RunningLocalApp;

  beforeAll(async () => {
    app = await startApp(false);
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('refuses every authorized endpoint, whatever principal header a client sends', async () => {
    // Act
    const audit = await fetch(`${app.url}/api/audit?since=${SINCE}`, {
      headers: { 'x-ms-client-principal': forgedPrincipal([ROLES.read]) },
    });
    const token = await fetch(`${app.url}/admin/token`, { method: 'POST', body: '{}' });
    const health = await fetch(`${app.url}/api/health`);

    // Assess
    expect(audit.status).toBe(403);
    expect(((await audit.json()) as { error: { message: string } }).error.message).toMatch(
      /built-in authentication is not enabled/,
    );
    expect(token.status).toBe(404);
    expect(health.status).not.toBe(403);
  });
});
