/**
 * What starts a rotation, and when: Key Vault events, the safety-net sweep and a person or a
 * pipeline, at once or duplicated (one rotation, one regeneration); the rotation window (scheduled
 * rotations wait for it, never past the expiry; expired secrets and on-demand rotations do not
 * wait); halts after a failure (events and sweeps do not start a rotation, the notice says halted)
 * and resumes that roll a published but unverified version first, never regenerating over it.
 */
import { describe, expect, it } from 'vitest';
import { KeyVaultSecretVault } from '../../../src/lib/azure/keyVaultSecrets';
import { InProgressError } from '../../../src/lib/core/errors';
import { newId } from '../../../src/lib/core/ids';
import { handleSecretEvent } from '../../../src/lib/rotation/handleSecretEvent';
import { ROTATION_KIND } from '../../../src/lib/rotation/rotation';
import { rotationTarget } from '../../../src/lib/rotation/startRotation';
import { sweepSecrets } from '../../../src/lib/rotation/sweepSecrets';
import { CLUSTER_ID, COSMOS_ID, rotationTags, rotationWorld, stepsOf, VAULT, VAULT_URL } from './support';

const NEAR = 'Microsoft.KeyVault.SecretNearExpiry';
const EXPIRED = 'Microsoft.KeyVault.SecretExpired';
const TARGET = rotationTarget(VAULT, 'cosmos-key');
const TAGS = rotationTags('cosmosDbKeys', COSMOS_ID, 'primary');
const secret = (extra: Record<string, unknown> = {}) => ({
  name: 'cosmos-key',
  valueFrom: { resource: 'cosmosDb/cosmos-rot', key: 'primaryMasterKey' as const },
  expiresInDays: 20,
  tags: TAGS,
  ...extra,
});
const consumer = (name: string, roll: Record<string, unknown> = { seconds: 30 }) => ({
  name,
  kind: 'aksDeployment' as const,
  cluster: 'aks-rot',
  namespace: 'orders',
  deployment: name,
  credential: { vault: VAULT, secret: 'cosmos-key', resource: 'cosmosDb/cosmos-rot' },
  roll,
});
const policy = (
  extra = '',
  consumers = [
    `{ type: aksDeployment, clusterId: ${CLUSTER_ID}, namespace: orders, deployment: orders-api }`,
  ],
) => `
  - vault: ${VAULT}
    name: cosmos-key
    owner: team-data
    rotation:
      provider: cosmosDbKeys
      resourceId: ${COSMOS_ID}${extra}
      consumers:
${consumers.map((c) => `        - ${c}`).join('\n')}`;
const ctx = (actor = 'system:eventgrid') => ({ actor, correlationId: newId(), attemptId: newId() });
const regeneratedAt = (world: Awaited<ReturnType<typeof rotationWorld>>) =>
  world.sandbox.estate().arm.regenerations.map((r) => r.at);

describe('rotation triggers', () => {
  it('one rotation and one regeneration for duplicated events, the sweep and a pipeline call at once', async () => {
    // Prepare: the near-expiry event of the seeded version was raised when the world started
    const world = await rotationWorld({
      secrets: [secret()],
      consumers: [consumer('orders-api')],
      policy: policy(),
    });
    const deps = world.secretEvents();
    const [event] = world.raised(NEAR);

    // Act
    const [a, b, swept, posted] = await Promise.allSettled([
      handleSecretEvent(event!, deps, ctx()),
      handleSecretEvent(event!, deps, ctx()),
      sweepSecrets(deps, ctx('system:timer')),
      world.start('cosmos-key'),
    ]);
    const runs = await world.engine.runsForTarget(ROTATION_KIND, TARGET);
    const run = await world.drive(runs[0]!.id);
    // Event Grid redelivers what failed retryably, and duplicates: nothing more starts.
    const redelivered = await handleSecretEvent(event!, deps, ctx());

    // Assess
    expect(runs).toHaveLength(1);
    expect(posted.status === 'fulfilled' && posted.value.status !== 'halted' && posted.value.run.id).toBe(
      run.id,
    );
    // Of the event's two copies, one handled it; the other found it handled, or held (retryable).
    const events = [a, b].map((r) =>
      r.status === 'fulfilled' ? r.value.status : r.reason instanceof InProgressError ? 'retry' : r.reason,
    );
    expect(events).toContain('handled');
    expect(events.every((e) => ['handled', 'duplicate', 'retry'].includes(e))).toBe(true);
    expect(swept.status === 'fulfilled' && swept.value.failures.every((f) => f.retryable)).toBe(true);
    expect(run.state).toBe('succeeded');
    expect(world.regenerations(COSMOS_ID)).toEqual(['secondaryMasterKey']);
    expect(await world.versions('cosmos-key')).toHaveLength(2);
    expect(redelivered.status).not.toBe('handled');
    expect(world.sandbox.downtime().totalMs).toBe(0);
  });

  describe('the rotation window', () => {
    const windowed = policy('\n      window: { startHour: 2, endHour: 5 }');

    it('a scheduled rotation outside its window waits until the window opens', async () => {
      // Prepare: 00:01 UTC, the window opens at 02:00
      const world = await rotationWorld({
        secrets: [secret()],
        consumers: [consumer('orders-api')],
        policy: windowed,
      });
      const [event] = world.raised(NEAR);

      // Act
      await handleSecretEvent(event!, world.secretEvents(), ctx());
      const [started] = await world.engine.runsForTarget(ROTATION_KIND, TARGET);
      const run = await world.drive(started!.id);

      // Assess
      expect(run.state).toBe('succeeded');
      expect(regeneratedAt(world)).toEqual(['2026-03-01T02:00:00.000Z']);
    });

    it('an on-demand rotation and an expired secret do not wait', async () => {
      // Prepare
      const manual = await rotationWorld({
        secrets: [secret()],
        consumers: [consumer('orders-api')],
        policy: windowed,
      });
      const expired = await rotationWorld({
        secrets: [secret()],
        consumers: [consumer('orders-api')],
        policy: windowed,
      });
      const version = (await expired.versions('cosmos-key'))[0]!.version;

      // Act
      await manual.drive(await manual.started('cosmos-key'));
      await expired.drive(await expired.started('cosmos-key', { trigger: 'event', expired: true, version }));

      // Assess
      expect(regeneratedAt(manual)).toEqual(['2026-03-01T00:01:00.000Z']);
      expect(regeneratedAt(expired)).toEqual(['2026-03-01T00:01:00.000Z']);
    });

    it('a scheduled rotation waiting for its window goes ahead when the secret expires meanwhile', async () => {
      // Prepare: the version expires at 01:00, before the window opens
      const world = await rotationWorld({
        secrets: [secret({ expiresInDays: undefined, expires: '2026-03-01T01:00:00Z' })],
        consumers: [consumer('orders-api')],
        policy: windowed,
      });
      const version = (await world.versions('cosmos-key'))[0]!.version;

      // Act
      const run = await world.drive(await world.started('cosmos-key', { trigger: 'sweep', version }));

      // Assess
      expect(run.state).toBe('succeeded');
      expect(regeneratedAt(world)).toEqual(['2026-03-01T01:00:00.000Z']);
    });
  });

  it('a scheduled rotation a person cancelled does not stop the expired event from rotating the secret', async () => {
    // Prepare: the near-expiry rotation waits for an approval, and is cancelled
    const world = await rotationWorld({
      secrets: [secret()],
      consumers: [consumer('orders-api')],
      policy: policy('\n      approval: true'),
    });
    const deps = world.secretEvents();
    await handleSecretEvent(world.raised(NEAR)[0]!, deps, ctx());
    const [first] = await world.engine.runsForTarget(ROTATION_KIND, TARGET);
    expect((await world.drive(first!.id)).state).toBe('awaiting-approval');
    await world.engine.cancelRun(first!.id, { reason: 'not now', actor: 'user:lead' });
    await world.sandbox.advance({ days: 20 });

    // Act
    const expired = await handleSecretEvent(world.raised(EXPIRED)[0]!, deps, ctx());
    const runs = await world.engine.runsForTarget(ROTATION_KIND, TARGET);

    // Assess
    expect(expired.status).toBe('handled');
    expect(runs.map((r) => r.state)).toEqual(['pending', 'cancelled']);
    const notice = world.channel.sent.find((n) => n.type === 'com.stampkeeper.secret.expired')!;
    expect(notice.facts.Rotation).toBe(`started: run ${runs[0]!.id}`);
  });

  it('a real rotation does not merge into a dry run under way: the trigger is retried, then rotates', async () => {
    // Prepare: a dry run holds the secret's run slot
    const world = await rotationWorld({
      secrets: [secret()],
      consumers: [consumer('orders-api')],
      policy: policy(),
    });
    const dry = await world.started('cosmos-key', { dryRun: true });
    const version = (await world.versions('cosmos-key'))[0]!.version;

    // Act
    const during = await world.start('cosmos-key', { trigger: 'event', version }).catch((e: unknown) => e);
    await world.drive(dry);
    const after = await world.started('cosmos-key', { trigger: 'event', version });
    const run = await world.drive(after);

    // Assess
    expect(during).toBeInstanceOf(InProgressError);
    expect((during as InProgressError).retryable).toBe(true);
    expect(after).not.toBe(dry);
    expect(run.dryRun).toBe(false);
    expect(run.state).toBe('succeeded');
    expect(world.regenerations(COSMOS_ID)).toEqual(['secondaryMasterKey']);
  });

  describe('halts and resumes', () => {
    it('after a failed rotation, events and sweeps start nothing and the near-expiry notice says halted', async () => {
      // Prepare: the seeded version has no tags: its rotation fails at the plan
      const world = await rotationWorld({
        secrets: [secret({ tags: {} })],
        consumers: [consumer('orders-api')],
        policy: policy(),
      });
      const deps = world.secretEvents();
      await handleSecretEvent(world.raised(NEAR)[0]!, deps, ctx());
      const [failed] = await world.engine.runsForTarget(ROTATION_KIND, TARGET);
      expect((await world.drive(failed!.id)).error?.code).toBe('TagsMissing');
      await world.sandbox.advance({ days: 20 });

      // Act
      const expired = await handleSecretEvent(world.raised(EXPIRED)[0]!, deps, ctx());
      const swept = await sweepSecrets(deps, ctx('system:timer'));
      const runs = await world.engine.runsForTarget(ROTATION_KIND, TARGET);

      // Assess
      expect(expired.status).toBe('handled');
      expect(swept.failures).toEqual([]);
      expect(runs.map((r) => r.id)).toEqual([failed!.id]);
      const notice = world.channel.sent.find((n) => n.type === 'com.stampkeeper.secret.expired')!;
      expect(notice.severity).toBe('critical');
      expect(notice.facts.Rotation).toBe(
        `halted: rotation ${failed!.id} failed; resume it (POST /api/rotations/${failed!.id}/resume)`,
      );
      expect(world.regenerations(COSMOS_ID)).toEqual([]);
    });

    it('a failed dry run does not halt the secret', async () => {
      // Prepare: a dry run fails on missing tags; the tags are then put right
      const world = await rotationWorld({
        secrets: [secret({ tags: {} })],
        consumers: [consumer('orders-api')],
        policy: policy(),
      });
      const dry = await world.drive(await world.started('cosmos-key', { dryRun: true }));
      const [v0] = await world.versions('cosmos-key');
      await new KeyVaultSecretVault(world.sandbox.credential, {
        httpClient: world.sandbox.httpClient,
      }).updateSecretProperties(VAULT_URL, 'cosmos-key', v0!.version, { tags: TAGS });

      // Act
      const result = await world.start('cosmos-key', { trigger: 'event', version: v0!.version });

      // Assess
      expect(dry.state).toBe('failed');
      expect(result.status).toBe('started');
    });

    it('a resume rolls the version the failed rotation published, and regenerates nothing over it', async () => {
      // Prepare: the pipeline's URL setting is missing: the roll fails after the new version was published
      const settings: Record<string, string> = {};
      const world = await rotationWorld({
        secrets: [secret()],
        consumers: [
          consumer('orders-api'),
          {
            name: 'legacy',
            kind: 'webhook',
            url: 'https://ci.rotation.example/hooks/legacy',
            credential: { vault: VAULT, secret: 'cosmos-key', resource: 'cosmosDb/cosmos-rot' },
            roll: { seconds: 120 },
          },
        ],
        settings,
        policy: policy('', [
          '{ type: webhook, name: legacy, urlSetting: LEGACY_HOOK }',
          `{ type: aksDeployment, clusterId: ${CLUSTER_ID}, namespace: orders, deployment: orders-api }`,
        ]),
      });
      const failed = await world.drive(await world.started('cosmos-key'));
      const published = await world.versions('cosmos-key');
      settings.LEGACY_HOOK = 'https://ci.rotation.example/hooks/legacy';

      // Act
      const blocked = await world.start('cosmos-key');
      const resumed = await world.drive(await world.started('cosmos-key', { resumes: failed.id }));
      const versions = await world.versions('cosmos-key');

      // Assess
      expect(failed.state).toBe('failed');
      expect(failed.error?.message).toContain('LEGACY_HOOK');
      expect(published).toHaveLength(2);
      expect(blocked.status).toBe('halted');
      expect(resumed.error).toBeUndefined();
      expect(resumed.state).toBe('succeeded');
      expect(stepsOf(resumed)).toEqual([
        ['plan', 'done'],
        ['regenerate', 'skipped'],
        ['test', 'skipped'],
        ['publish', 'skipped'],
        ['roll', 'done'],
        ['verify', 'done'],
        ['revoke', 'skipped'],
        ['finish', 'done'],
      ]);
      expect(versions.map((v) => v.version)).toEqual(published.map((v) => v.version));
      expect(versions[1]!.tags['stampkeeper-rolled']).toBeDefined();
      expect(world.regenerations(COSMOS_ID)).toEqual(['secondaryMasterKey']);
      expect(world.sandbox.consumers().map((c) => c.holds.map((h) => h.version))).toEqual([
        [versions[1]!.version],
        [versions[1]!.version],
      ]);
      expect(world.sandbox.downtime().totalMs).toBe(0);
    });
  });
});
