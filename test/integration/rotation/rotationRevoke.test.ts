/**
 * `revoke` mode (the key was exposed): the old key is regenerated only once every consumer runs on
 * the new one, with zero downtime; a consumer whose roll fails or hangs fails the run, halts the
 * secret, and the old key is never revoked (the consumers that could not move keep working).
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/lib/core/errors';
import { ROTATION_KIND } from '../../../src/lib/rotation/rotation';
import { rotationTarget } from '../../../src/lib/rotation/startRotation';
import { CLUSTER_ID, COSMOS_ID, rotationTags, rotationWorld, SITE_ID, stepsOf, VAULT } from './support';

const SECRET = {
  name: 'cosmos-key',
  valueFrom: { resource: 'cosmosDb/cosmos-rot', key: 'primaryMasterKey' },
  expiresInDays: 20,
  tags: rotationTags('cosmosDbKeys', COSMOS_ID, 'primary'),
};
const credential = { vault: VAULT, secret: 'cosmos-key', resource: 'cosmosDb/cosmos-rot' };
const deployment = (name: string, roll: Record<string, unknown>) => ({
  name,
  kind: 'aksDeployment' as const,
  cluster: 'aks-rot',
  namespace: 'orders',
  deployment: name,
  credential,
  roll,
});
const policy = (names: string[], extra = '') => `
  - vault: ${VAULT}
    name: cosmos-key
    owner: team-data
    rotation:
      provider: cosmosDbKeys
      resourceId: ${COSMOS_ID}
      mode: revoke${extra}
      consumers:
${names.map((n) => `        - { type: aksDeployment, clusterId: ${CLUSTER_ID}, namespace: orders, deployment: ${n}, timeoutMinutes: 5 }`).join('\n')}`;

describe('rotation in revoke mode', () => {
  it('regenerates the old key only after every consumer verified on the new version, with zero downtime', async () => {
    // Prepare: one fast and one slow consumer
    const world = await rotationWorld({
      secrets: [SECRET],
      consumers: [deployment('fast', { seconds: 30 }), deployment('slow', { seconds: 240 })],
      policy: policy(['fast', 'slow']),
    });

    // Act
    const run = await world.drive(await world.started('cosmos-key'));
    const regenerations = world.sandbox.estate().arm.regenerations;
    const rollsEnded = world.sandbox.consumers().map((c) => c.rolls[0]!.endsAt!);

    // Assess
    expect(run.error).toBeUndefined();
    expect(stepsOf(run)).toEqual([
      ['plan', 'done'],
      ['regenerate', 'done'],
      ['test', 'done'],
      ['publish', 'done'],
      ['roll', 'done'],
      ['verify', 'done'],
      ['revoke', 'done'],
      ['finish', 'done'],
    ]);
    expect(regenerations.map((r) => r.keyName)).toEqual(['secondaryMasterKey', 'primaryMasterKey']);
    const revokedAt = regenerations[1]!.at;
    for (const ended of rollsEnded) expect(ended <= revokedAt).toBe(true);
    expect(world.sandbox.downtime().intervals).toBe(0);
    const done = world.channel.sent.find((n) => n.type === 'com.stampkeeper.rotation.completed')!;
    expect(done.summary).toContain('The old primary key was regenerated (revoked).');
    expect(done.facts.Revoked).toBe('primary');
  });

  it('fails, halts and revokes nothing when a consumer never becomes ready on the new key', async () => {
    // Prepare
    const world = await rotationWorld({
      secrets: [SECRET],
      consumers: [
        deployment('fast', { seconds: 30 }),
        deployment('broken', { seconds: 60, outcome: 'fail', failReason: 'ImagePullBackOff' }),
      ],
      policy: policy(['fast', 'broken']),
    });

    // Act
    const run = await world.drive(await world.started('cosmos-key'));
    const again = await world.start('cosmos-key', { trigger: 'event', version: 'v-any' });

    // Assess
    expect(run.state).toBe('failed');
    expect(run.error?.code).toBe('RollFailed');
    expect(run.error?.message).toContain('aks-rot/orders/broken');
    expect(run.error?.message).toContain('nothing was revoked');
    expect(world.regenerations(COSMOS_ID)).toEqual(['secondaryMasterKey']);
    expect(world.sandbox.downtime().intervals).toBe(0);
    expect(again.status).toBe('halted');
    expect(world.channel.sent.map((n) => n.severity)).toContain('critical');
  });

  it('fails, halts and revokes nothing when a consumer roll hangs past its timeout', async () => {
    // Prepare: kubectl rollout status gives up after the consumer's 5 minutes
    const world = await rotationWorld({
      secrets: [SECRET],
      consumers: [deployment('fast', { seconds: 30 }), deployment('stuck', { outcome: 'hang' })],
      policy: policy(['fast', 'stuck']),
    });

    // Act
    const run = await world.drive(await world.started('cosmos-key'));

    // Assess
    expect(run.state).toBe('failed');
    expect(run.error?.code).toBe('RollFailed');
    expect(run.error?.message).toContain('timed out waiting for the condition');
    expect(world.regenerations(COSMOS_ID)).toEqual(['secondaryMasterKey']);
    expect(world.sandbox.downtime().intervals).toBe(0);
  });

  it('revokes only once an App Service whose restart takes 2 minutes reports the new version on its health URL', async () => {
    // Prepare: a restart reports no progress; the app's health URL lists the versions it holds
    const health = 'https://jobs.rotation.example/health';
    const world = await rotationWorld({
      secrets: [SECRET],
      consumers: [
        {
          name: 'jobs',
          kind: 'webApp',
          site: 'app-rot',
          credential,
          roll: { seconds: 120 },
          healthUrl: health,
        },
      ],
      settings: { JOBS_HEALTH_URL: health },
      policy: `
  - vault: ${VAULT}
    name: cosmos-key
    owner: team-data
    rotation:
      provider: cosmosDbKeys
      resourceId: ${COSMOS_ID}
      mode: revoke
      consumers:
        - { type: appService, resourceId: ${SITE_ID}, healthUrlSetting: JOBS_HEALTH_URL }`,
    });

    // Act
    const run = await world.drive(await world.started('cosmos-key'));
    await world.sandbox.advance({ minutes: 5 });

    // Assess
    expect(run.error).toBeUndefined();
    expect(run.state).toBe('succeeded');
    const [roll] = world.sandbox.consumers()[0]!.rolls;
    const revokedAt = world.sandbox.estate().arm.regenerations.at(-1)!.at;
    expect(world.regenerations(COSMOS_ID)).toEqual(['secondaryMasterKey', 'primaryMasterKey']);
    expect(Date.parse(revokedAt)).toBeGreaterThanOrEqual(Date.parse(roll!.endsAt!));
    expect(world.sandbox.downtime().intervals).toBe(0);
  });
});

describe('revoke needs proof that every consumer moved', () => {
  // The policy rotates in alternate mode (which the loader accepts without proof): an App Service
  // restart and a wait for reload prove nothing, so a revoke must never regenerate their old key.
  const unprovenPolicy = `
  - vault: ${VAULT}
    name: cosmos-key
    owner: team-data
    rotation:
      provider: cosmosDbKeys
      resourceId: ${COSMOS_ID}
      consumers:
        - { type: aksDeployment, clusterId: ${CLUSTER_ID}, namespace: orders, deployment: fast, timeoutMinutes: 5 }
        - { type: appService, resourceId: ${SITE_ID} }
        - { type: waitForReload, name: csi, waitMinutes: 2 }`;
  const unprovenWorld = () =>
    rotationWorld({
      secrets: [SECRET],
      consumers: [deployment('fast', { seconds: 30 })],
      policy: unprovenPolicy,
    });

  it('refuses an on-demand revoke naming each consumer without proof, and starts nothing', async () => {
    // Prepare
    const world = await unprovenWorld();

    // Act
    const refused = await world.start('cosmos-key', { mode: 'revoke' }).catch((e: unknown) => e);
    const runs = await world.engine.runsForTarget(ROTATION_KIND, rotationTarget(VAULT, 'cosmos-key'), {
      limit: 5,
    });

    // Assess
    expect(refused).toBeInstanceOf(ValidationError);
    const error = refused as ValidationError;
    expect(error.message).toContain('nothing started');
    expect(error.problems).toEqual([
      expect.stringMatching(/^consumer app-rot \(appService\): .*healthUrlSetting/),
      expect.stringMatching(/^consumer csi \(waitForReload\): .*healthUrlSetting/),
    ]);
    expect(runs).toEqual([]);
    expect(world.regenerations(COSMOS_ID)).toEqual([]);
  });

  it('fails at plan, before any key changes, a revoke started another way', async () => {
    // Prepare: a revoke reaching the engine without the on-demand check (a trigger asking revoke)
    const world = await unprovenWorld();
    const before = await world.versions('cosmos-key');

    // Act
    const run = await world.drive(
      await world.started('cosmos-key', { trigger: 'event', version: 'v1', mode: 'revoke' }),
    );

    // Assess
    expect(run.state).toBe('failed');
    expect(stepsOf(run)[0]).toEqual(['plan', 'failed']);
    expect(run.error?.code).toBe('RevokeUnproven');
    expect(run.error?.message).toContain('nothing changed');
    expect(run.error?.message).toContain('consumer app-rot (appService)');
    expect(run.error?.message).toContain('consumer csi (waitForReload)');
    expect(run.error?.message).not.toContain('fast');
    expect(world.regenerations(COSMOS_ID)).toEqual([]);
    expect(await world.versions('cosmos-key')).toEqual(before);
    expect(world.sandbox.consumers()[0]!.rolls).toEqual([]);
  });

  it('fails at plan the resumption of a revoke whose consumers the policy changed since to unproven ones', async () => {
    // Prepare: an on-demand revoke fails on its AKS consumer (nothing revoked); then the policy
    // gains an App Service consumer with no health URL (accepted: the policy says alternate)
    const world = await rotationWorld({
      secrets: [SECRET],
      consumers: [deployment('broken', { seconds: 30, outcome: 'fail', failReason: 'ImagePullBackOff' })],
      policy: policy(['broken']).replace('mode: revoke', 'mode: alternate'),
    });
    const failed = await world.drive(await world.started('cosmos-key', { mode: 'revoke' }));
    const regeneratedBefore = world.regenerations(COSMOS_ID);
    const rotation = world.policy.secrets[0]!.rotation;
    if (rotation.provider === 'manual') throw new Error('expected a key rotation');
    rotation.consumers.push({ type: 'appService', resourceId: SITE_ID, timeoutMinutes: 10 });

    // Act
    const resumed = await world.drive(await world.started('cosmos-key', { resumes: failed.id }));

    // Assess
    expect(failed.state).toBe('failed');
    expect((resumed.input as { rotation: { mode: string } }).rotation.mode).toBe('revoke');
    expect(resumed.state).toBe('failed');
    expect(stepsOf(resumed)[0]).toEqual(['plan', 'failed']);
    expect(resumed.error?.code).toBe('RevokeUnproven');
    expect(resumed.error?.message).toContain('consumer app-rot (appService)');
    expect(world.regenerations(COSMOS_ID)).toEqual(regeneratedBefore);
  });
});
