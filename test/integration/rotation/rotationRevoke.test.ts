/**
 * `revoke` mode (the key was exposed): the old key is regenerated only once every consumer runs on
 * the new one, with zero downtime; a consumer whose roll fails or hangs fails the run, halts the
 * secret, and the old key is never revoked (the consumers that could not move keep working).
 */
import { describe, expect, it } from 'vitest';
import { CLUSTER_ID, COSMOS_ID, rotationTags, rotationWorld, stepsOf, VAULT } from './support';

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
    expect(world.sandbox.downtime().totalMs).toBe(0);
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
    expect(world.sandbox.downtime().totalMs).toBe(0);
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
    expect(world.sandbox.downtime().totalMs).toBe(0);
  });
});
