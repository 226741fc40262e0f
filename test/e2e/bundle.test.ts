/**
 * The built bundle (dist/main.js, what is deployed; built for this test run by the global setup)
 * carries its own copy of the platform module. The local host, running from source, sets the
 * sandbox as the platform: the bundle's SDK clients must reach the sandbox, each app started in the
 * process must use its own sandbox, and with no override the bundle must resolve Azure.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningLocalApp, SANDBOX_SETTINGS, startLocalApp } from '../../src/local/app';
import { appBundle } from '../support/bundle';
import { storageConnectionString, uniquePrefix } from '../support/storage';

const COSMOS = 'cosmos-primary-key';
const COSMOS_TARGET = `vaults/stampkeeper-sandbox/secrets/${COSMOS}`;
const quiet = { info: () => {}, warn: () => {}, error: () => {} };

function storageEnv(): Record<string, string> {
  const prefix = uniquePrefix('b');
  return {
    AzureWebJobsStorage: storageConnectionString(),
    STAMPKEEPER_TABLE_PREFIX: prefix,
    STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
  };
}

async function startOnBundle(sandbox: boolean, env: Record<string, string> = {}): Promise<RunningLocalApp> {
  const bundle = appBundle();
  return startLocalApp({
    appEntry: bundle.entry,
    appRoot: bundle.root,
    port: 0,
    startTimers: false,
    logger: quiet,
    env: { ...storageEnv(), ...env },
    sandbox: sandbox ? { random: () => 0.99 } : false,
  });
}

async function advance(app: RunningLocalApp, days: number): Promise<void> {
  const response = await fetch(`${app.url}/sandbox/clock/advance`, {
    method: 'POST',
    body: JSON.stringify({ days }),
  });
  expect(response.status).toBe(200);
}

/** What the sandbox saw of the app's calls for cosmos-primary-key. */
function cosmosCalls(app: RunningLocalApp) {
  const sandbox = app.sandbox!;
  return {
    keyVault: sandbox.keyVault.requests().filter((r) => r.path.includes(`/secrets/${COSMOS}`)),
    eventGrid: sandbox.eventGrid.published().filter((p) => p.event.subject === COSMOS_TARGET),
    delivered: sandbox.deliveries().filter((d) => d.subject === COSMOS && d.outcome === 'delivered'),
  };
}

let app: RunningLocalApp | undefined;
afterEach(async () => {
  await app?.stop();
  app = undefined;
});

describe('the built bundle on the local host', () => {
  it('sends its Key Vault and Event Grid calls to the sandbox the host set', async () => {
    // Prepare
    app = await startOnBundle(true);
    // Act: cosmos-primary-key enters its 30-day window; the app reads the secret and notifies.
    await advance(app, 16);
    const health = await (await fetch(`${app.url}/api/health`)).json();
    const events = await (await fetch(`${app.url}/sandbox/events`)).json();
    // Assess
    expect(health).toMatchObject({ status: 'healthy', platform: 'sandbox' });
    const calls = cosmosCalls(app);
    expect(calls.delivered).toHaveLength(1);
    expect(calls.keyVault.length).toBeGreaterThan(0);
    expect(calls.keyVault.every((r) => r.authenticated)).toBe(true);
    expect(calls.eventGrid).toHaveLength(1);
    expect(calls.eventGrid[0]!.event.type).toBe('com.stampkeeper.secret.nearExpiry');
    const raised = (events as { events: Array<{ subject: string; deliveries: Array<{ status: number }> }> })
      .events;
    expect(raised.find((e) => e.subject === COSMOS)?.deliveries.map((d) => d.status)).toEqual([202]);
  });

  it('uses the sandbox of the app started now, not of one started before in the process', async () => {
    // Prepare: a first app on its own sandbox, stopped; the bundle stays loaded in the process.
    const first = await startOnBundle(true);
    await advance(first, 16);
    const firstBefore = cosmosCalls(first);
    await first.stop();
    // Act: a second app, on a new sandbox, over the same bundle.
    app = await startOnBundle(true);
    await advance(app, 16);
    // Assess: the second sandbox served the second app; the first saw nothing more.
    const second = cosmosCalls(app);
    expect(second.keyVault.length).toBeGreaterThan(0);
    expect(second.eventGrid).toHaveLength(1);
    const firstAfter = cosmosCalls(first);
    expect(firstAfter.keyVault).toHaveLength(firstBefore.keyVault.length);
    expect(firstAfter.eventGrid).toHaveLength(firstBefore.eventGrid.length);
  });

  it('resolves the Azure platform when no override is set', async () => {
    // Prepare: the sandbox's settings, but no sandbox: nothing overrides the platform.
    app = await startOnBundle(false, SANDBOX_SETTINGS);
    // Act
    const response = await fetch(`${app.url}/api/health`);
    // Assess: storage (Azurite) answers; the managed vault is a real Azure host, unreachable from
    // here, so it is reported by name and health is 503: proof the bundle did not reach the sandbox.
    const json = (await response.json()) as { platform: string; checks: unknown[] };
    expect(json).toMatchObject({ platform: 'azure' });
    expect(json.checks[0]).toMatchObject({ name: 'storage', ok: true });
    expect(json.checks).toContainEqual(
      expect.objectContaining({ name: 'vault stampkeeper-sandbox.vault.azure.net', ok: false }),
    );
    expect(response.status).toBe(503);
  });
});
