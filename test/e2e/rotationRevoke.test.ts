/**
 * Rotation in `revoke` mode end to end, on the bundle, the local host and the sandbox: a near-expiry
 * event starts the rotation; the standby key is regenerated, tested, published; every consumer is
 * rolled and verified; only then is the old key regenerated, so it stops working. The sandbox
 * records no interval in which a consumer held a key its resource no longer accepted.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { appBundle } from '../support/bundle';
import { advance, COSMOS_TARGET, json, rotationAppHooks, untilRotationEnds } from './support/rotationApp';

const hooks = rotationAppHooks();

/** The bundled policy with the Cosmos DB key's rotation in revoke mode, in a scratch file. */
async function revokePolicy(): Promise<{ path: string; dispose(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'stampkeeper-revoke-'));
  const policy = parseYaml(await readFile(join(appBundle().root, 'policy/stampkeeper.policy.yaml'), 'utf8'));
  const cosmos = (policy.secrets as Array<{ name: string; rotation: { mode: string } }>).find(
    (s) => s.name === 'cosmos-primary-key',
  )!;
  cosmos.rotation.mode = 'revoke';
  const path = join(dir, 'revoke.policy.yaml');
  await writeFile(path, stringifyYaml(policy));
  return { path, dispose: () => rm(dir, { recursive: true, force: true }) };
}

describe('rotation in revoke mode on the sandbox, end to end (the bundle)', () => {
  it('rotates a near-expiry key in revoke mode: consumers rolled first, then the old key regenerated; zero downtime, audited, announced, new expiry', async () => {
    // Prepare
    const policy = await revokePolicy();
    try {
      const app = await hooks.start({ STAMPKEEPER_POLICY_PATH: policy.path });
      const box = app.sandbox!;
      const before = box.estate().keyVault.vaults[0]!.secrets.find((s) => s.name === 'cosmos-primary-key')!;

      // Act: past the 30-day mark of the secret (it expires on day 45)
      await advance(app, { days: 16 });
      const run = await untilRotationEnds(app);
      const audit = await json(
        app,
        `/api/audit?since=2026-01-01T00:00:00Z&target=${encodeURIComponent(COSMOS_TARGET)}&limit=1000`,
      );
      const after = box.estate().keyVault.vaults[0]!.secrets.find((s) => s.name === 'cosmos-primary-key')!;
      const consumers = box.consumers().filter((c) => c.credential.secret === 'cosmos-primary-key');

      // Assess
      expect(run.error).toBeNull();
      expect(run.state).toBe('succeeded');
      expect(run.steps.map((s: { name: string; status: string }) => [s.name, s.status])).toEqual([
        ['plan', 'done'],
        ['regenerate', 'done'],
        ['test', 'done'],
        ['publish', 'done'],
        ['roll', 'done'],
        ['verify', 'done'],
        ['revoke', 'done'],
        ['finish', 'done'],
      ]);
      // The standby key first; the old (primary) key only once every consumer was rolled off it.
      expect(
        box.estate().arm.regenerations.map((r) => `${r.resourceId.split('/').pop()}:${r.keyName}`),
      ).toEqual([
        'stampkeeper-sandbox-cosmos:secondaryMasterKey',
        'stampkeeper-sandbox-cosmos:primaryMasterKey',
      ]);
      expect(box.downtime().totalMs).toBe(0);
      expect(consumers.map((c) => c.name).sort()).toEqual(['legacy-stamp', 'orders-api', 'orders-worker']);
      for (const c of consumers) {
        expect(c.rolls.length, c.name).toBeGreaterThan(0);
        expect(
          c.holds.map((h) => h.version),
          c.name,
        ).toEqual([after.currentVersion]);
      }
      expect(after.currentVersion).not.toBe(before.currentVersion);
      const current = after.versions.find((v) => v.current)!;
      expect(current.tags).toMatchObject({ 'stampkeeper-key': 'secondary', 'stampkeeper-run': run.id });
      expect(Date.parse(current.expires!) - Date.parse(current.created!)).toBe(90 * 86_400_000);
      const complete = audit.body.records.filter((r: { action: string }) => r.action === 'rotation.complete');
      expect(complete).toHaveLength(1);
      expect(complete[0].after).toMatchObject({
        revoked: 'primary',
        slot: 'secondary',
        version: after.currentVersion,
      });
      const announced = box.eventGrid
        .published()
        .filter((p) => p.event.type === 'com.stampkeeper.rotation.completed');
      expect(announced).toHaveLength(1);
      expect(announced[0]!.event.data).toMatchObject({ revoked: 'primary', secret: 'cosmos-primary-key' });
      expect(JSON.stringify(box.webhooks())).toContain('The old primary key was regenerated (revoked).');
    } finally {
      await policy.dispose();
    }
  }, 180_000);
});
