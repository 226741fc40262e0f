/**
 * Zero-downtime rotation end to end, on the bundle the app deploys, on the local host and the
 * sandbox: a near-expiry event of a managed secret starts a rotation run; the standby key is
 * regenerated, tested and published; the consumers (AKS deployment, Container App, a pipeline
 * webhook) are rolled and verified; the sandbox records no interval in which a consumer held a key
 * its resource no longer accepted.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RunningLocalApp, startLocalApp } from '../../src/local/app';
import type { HostLogger } from '../../src/local/host/types';
import { appBundle } from '../support/bundle';
import { storageConnectionString, uniquePrefix } from '../support/storage';

const VAULT = 'stampkeeper-sandbox';
const COSMOS_TARGET = `vaults/${VAULT}/secrets/cosmos-primary-key`;

const logs: string[] = [];
const logger: HostLogger = {
  info: (m) => logs.push(m),
  warn: (m) => logs.push(m),
  error: (m) => logs.push(m),
};
const consoleMethods = ['log', 'info', 'warn', 'error', 'debug'] as const;
const originalConsole = consoleMethods.map((m) => [m, console[m]] as const);
beforeAll(() => {
  for (const m of consoleMethods) console[m] = (...args: unknown[]) => logs.push(args.map(String).join(' '));
});
afterAll(() => {
  for (const [m, original] of originalConsole) console[m] = original as never;
});

let app: RunningLocalApp | undefined;
afterEach(async () => {
  await app?.stop();
  app = undefined;
  logs.length = 0;
});

async function start(extra: Record<string, string> = {}): Promise<RunningLocalApp> {
  const bundle = appBundle();
  const prefix = uniquePrefix('r');
  return startLocalApp({
    appEntry: bundle.entry,
    appRoot: bundle.root,
    port: 0,
    startTimers: false,
    logger,
    env: {
      AzureWebJobsStorage: storageConnectionString(),
      STAMPKEEPER_TABLE_PREFIX: prefix,
      STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
      ...extra,
    },
    // Every event delivered twice: the rotation must start once.
    sandbox: { random: () => 0 },
  });
}

async function json(
  current: RunningLocalApp,
  path: string,
  init?: RequestInit,
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are read freely in assertions
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${current.url}${path}`, init);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

const advance = (current: RunningLocalApp, by: Record<string, number>) =>
  json(current, '/sandbox/clock/advance', { method: 'POST', body: JSON.stringify(by) });

/** Moves the sandbox clock a minute at a time until the secret's last rotation is over (or gives up). */
async function untilRotationEnds(current: RunningLocalApp, maxMinutes = 60) {
  for (let i = 0; i < maxMinutes * 4; i++) {
    const history = await json(current, `/api/rotations?vault=${VAULT}&secret=cosmos-primary-key`);
    const latest = history.body?.runs?.[0];
    if (latest && ['succeeded', 'failed', 'cancelled'].includes(latest.state)) return latest;
    if (latest && latest.state === 'awaiting-approval') return latest;
    await new Promise((r) => setTimeout(r, 250));
    if (i % 4 === 3) await advance(current, { minutes: 1 });
  }
  throw new Error('the rotation did not end');
}

describe('rotation on the sandbox, end to end (the bundle)', () => {
  it('rotates a near-expiry Cosmos DB key with zero consumer downtime, once despite duplicated events', async () => {
    // Prepare
    app = await start();
    const before = await json(app, '/sandbox/estate');
    const cosmosBefore = before.body.keyVault.vaults[0].secrets.find(
      (s: { name: string }) => s.name === 'cosmos-primary-key',
    );

    // Act: past the 30-day mark of the secret (it expires on day 45)
    await advance(app, { days: 16 });
    const run = await untilRotationEnds(app);
    const history = await json(app, `/api/rotations?vault=${VAULT}&secret=cosmos-primary-key`);
    const downtime = await json(app, '/sandbox/downtime');
    const after = await json(app, '/sandbox/estate');
    const audit = await json(
      app,
      `/api/audit?since=2026-01-01T00:00:00Z&target=${encodeURIComponent(COSMOS_TARGET)}&limit=1000`,
    );

    // Assess
    expect(run.error).toBeNull();
    expect(run.state).toBe('succeeded');
    expect(history.body.count).toBe(1);
    expect(run.steps.map((s: { name: string; status: string }) => [s.name, s.status])).toEqual([
      ['plan', 'done'],
      ['regenerate', 'done'],
      ['test', 'done'],
      ['publish', 'done'],
      ['roll', 'done'],
      ['verify', 'done'],
      ['revoke', 'skipped'],
      ['finish', 'done'],
    ]);
    expect(downtime.body.totalMs).toBe(0);
    const cosmosAfter = after.body.keyVault.vaults[0].secrets.find(
      (s: { name: string }) => s.name === 'cosmos-primary-key',
    );
    expect(cosmosAfter.currentVersion).not.toBe(cosmosBefore.currentVersion);
    const current = cosmosAfter.versions.find((v: { current: boolean }) => v.current);
    expect(current.tags).toMatchObject({ 'stampkeeper-key': 'secondary', 'stampkeeper-run': run.id });
    expect(current.tags['stampkeeper-rolled']).toBeDefined();
    // The new version expires validityDays (90) after it was published.
    expect(Date.parse(current.expires) - Date.parse(current.created)).toBe(90 * 86_400_000);
    const actions = audit.body.records.map((r: { action: string }) => r.action);
    expect(actions).toContain('rotation.complete');
    expect(actions.filter((a: string) => a === 'run.rotation.regenerate')).toHaveLength(1);
    const published = app.sandbox!.eventGrid.published().map((p) => p.event.type);
    expect(published).toContain('com.stampkeeper.rotation.completed');
    // The pipeline (completion by callback) called the app back through built-in authentication's
    // one exclusion, and the app recorded it.
    expect(app.sandbox!.webhookCallbacks()).toEqual([
      { consumer: 'legacy-stamp', rollId: expect.any(String), status: 'Succeeded', answered: 200 },
    ]);
  });
});
