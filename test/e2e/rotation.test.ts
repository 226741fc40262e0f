/**
 * Zero-downtime rotation end to end, on the bundle the app deploys, on the local host and the
 * sandbox: a near-expiry event of a managed secret starts a rotation run; the standby key is
 * regenerated, tested and published; the consumers (AKS deployment, Container App, a pipeline
 * webhook) are rolled and verified; the sandbox records no interval in which a consumer held a key
 * its resource no longer accepted.
 */
import { describe, expect, it } from 'vitest';
import {
  advance,
  COSMOS_TARGET,
  json,
  rotationAppHooks,
  untilRotationEnds,
  VAULT,
} from './support/rotationApp';

const hooks = rotationAppHooks();

describe('rotation on the sandbox, end to end (the bundle)', () => {
  it('rotates a near-expiry Cosmos DB key with zero consumer downtime, once despite duplicated events', async () => {
    // Prepare
    const app = await hooks.start();
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
