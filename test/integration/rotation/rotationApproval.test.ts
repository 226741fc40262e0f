/**
 * Dry runs and approvals. A dry run plans every step and changes nothing: no key regenerated, no
 * version published, no consumer rolled; the sandbox saw reads only (GETs, and the list-keys POSTs
 * that are ARM's reads of keys). A policy asking for approval parks the rotation before any key
 * changes, with a notice to the secret's channels, until an approver approves it.
 */
import { describe, expect, it } from 'vitest';
import { CLUSTER_ID, COSMOS_ID, rotationTags, rotationWorld, stepsOf, VAULT } from './support';

const secrets = [
  {
    name: 'cosmos-key',
    valueFrom: { resource: 'cosmosDb/cosmos-rot', key: 'primaryMasterKey' as const },
    expiresInDays: 20,
    tags: rotationTags('cosmosDbKeys', COSMOS_ID, 'primary'),
  },
];
const consumers = [
  {
    name: 'orders-api',
    kind: 'aksDeployment' as const,
    cluster: 'aks-rot',
    namespace: 'orders',
    deployment: 'orders-api',
    credential: { vault: VAULT, secret: 'cosmos-key', resource: 'cosmosDb/cosmos-rot' },
    roll: { seconds: 60 },
  },
  {
    name: 'legacy',
    kind: 'webhook' as const,
    url: 'https://ci.rotation.example/hooks/legacy',
    credential: { vault: VAULT, secret: 'cosmos-key', resource: 'cosmosDb/cosmos-rot' },
  },
];
const policy = (extra: string) => `
  - vault: ${VAULT}
    name: cosmos-key
    owner: team-data
    rotation:
      provider: cosmosDbKeys
      resourceId: ${COSMOS_ID}${extra}
      consumers:
        - { type: aksDeployment, clusterId: ${CLUSTER_ID}, namespace: orders, deployment: orders-api }
        - { type: webhook, name: legacy, urlSetting: LEGACY_HOOK }`;
const settings = () => ({ LEGACY_HOOK: 'https://ci.rotation.example/hooks/legacy' });
/** ARM's reads of keys are POSTs: `listKeys`, `readonlykeys`. */
const isRead = (r: { method: string; path: string }) =>
  r.method === 'GET' || (r.method === 'POST' && /\/(listKeys|readonlykeys)$/i.test(r.path));

describe('dry runs and approvals', () => {
  it('a dry run plans every step and changes nothing: reads only', async () => {
    // Prepare: revoke mode and an approval, so that every step has something to plan
    const world = await rotationWorld({
      secrets,
      consumers,
      settings: settings(),
      policy: policy('\n      mode: revoke\n      approval: true'),
    });
    const before = await world.versions('cosmos-key');
    const mark = world.sandbox.requests().length;

    // Act
    const run = await world.drive(await world.started('cosmos-key', { dryRun: true }));
    const requests = world.sandbox.requests().slice(mark);

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
    expect(run.steps.slice(1, 7).map((s) => (s.output as { planned: string }).planned)).toEqual([
      'regenerate the secondary key',
      'test the new key on the data plane',
      'publish a new version holding the secondary key',
      'roll aks-rot/orders/orders-api, legacy onto the new version',
      'verify every consumer runs on the new version',
      'regenerate the old primary key',
    ]);
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.filter((r) => !isRead(r))).toEqual([]);
    expect(requests.filter((r) => r.service === 'consumer')).toEqual([]);
    expect(world.regenerations(COSMOS_ID)).toEqual([]);
    expect(await world.versions('cosmos-key')).toEqual(before);
    expect(world.sandbox.consumers().flatMap((c) => c.rolls)).toEqual([]);
    const planned = world.channel.sent.find((n) => n.type === 'com.stampkeeper.rotation.planned')!;
    expect(planned.summary).toContain('changed nothing');
  });

  it('approval: the rotation parks before any key changes, notifies, and goes on once approved', async () => {
    // Prepare
    const world = await rotationWorld({
      secrets,
      consumers,
      settings: settings(),
      policy: policy('\n      approval: true'),
    });
    const id = await world.started('cosmos-key');

    // Act
    const parked = await world.drive(id);
    const regenerationsWhileParked = world.regenerations(COSMOS_ID);
    await world.sandbox.advance({ hours: 2 });
    const stillParked = await world.drive(id);
    await world.engine.approveRun(id, { actor: 'user:lead@contoso.com', comment: 'go' });
    const run = await world.drive(id);

    // Assess
    expect(parked.state).toBe('awaiting-approval');
    expect(stepsOf(parked).slice(0, 2)).toEqual([
      ['plan', 'done'],
      ['regenerate', 'pending'],
    ]);
    expect(regenerationsWhileParked).toEqual([]);
    expect(stillParked.state).toBe('awaiting-approval');
    const asked = world.channel.sent.filter((n) => n.type === 'com.stampkeeper.run.awaitingApproval');
    expect(asked).toHaveLength(1);
    expect(asked[0]!.subject).toBe(`vaults/${VAULT}/secrets/cosmos-key`);
    expect(asked[0]!.facts.Step).toBe('regenerate');
    expect(run.state).toBe('succeeded');
    expect(run.steps[1]!.approval).toMatchObject({
      decision: 'approved',
      decidedBy: 'user:lead@contoso.com',
    });
    expect(world.regenerations(COSMOS_ID)).toEqual(['secondaryMasterKey']);
    expect(world.sandbox.downtime().totalMs).toBe(0);
  });
});
