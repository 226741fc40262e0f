/**
 * What the rotation reads from the current Key Vault version before it touches anything: its tags
 * (provider, resource, which key it holds) and, for a version stampkeeper did not publish, the key
 * its value really holds. A secret whose tags are missing, malformed, name another provider or
 * resource, or hold another key than they say, and a certificate-backed secret: a clear error, no
 * key regenerated, no version published, no consumer rolled.
 */
import { describe, expect, it } from 'vitest';
import { CLUSTER_ID, COSMOS_ID, rotationTags, rotationWorld, STORAGE_ID, stepsOf, VAULT } from './support';

const POLICY = `
  - vault: ${VAULT}
    name: cosmos-key
    owner: team-data
    rotation:
      provider: cosmosDbKeys
      resourceId: ${COSMOS_ID}
      consumers:
        - { type: aksDeployment, clusterId: ${CLUSTER_ID}, namespace: orders, deployment: orders-api }`;
const CONSUMER = {
  name: 'orders-api',
  kind: 'aksDeployment' as const,
  cluster: 'aks-rot',
  namespace: 'orders',
  deployment: 'orders-api',
  credential: { vault: VAULT, secret: 'cosmos-key', resource: 'cosmosDb/cosmos-rot' },
  roll: { seconds: 60 },
};
const primary = rotationTags('cosmosDbKeys', COSMOS_ID, 'primary');

describe('rotation refuses a secret it cannot rotate safely: a clear error and no action', () => {
  it.each([
    [
      'no tags at all',
      {},
      false,
      'TagsMissing',
      'lacks stampkeeper-provider, stampkeeper-resource, stampkeeper-key',
    ],
    [
      'a slot that is not primary or secondary',
      { ...primary, 'stampkeeper-key': 'key1' },
      false,
      'TagsMalformed',
      'stampkeeper-key must be primary or secondary',
    ],
    [
      'another provider',
      { ...primary, 'stampkeeper-provider': 'storageAccountKeys' },
      false,
      'TagsDisagree',
      'stampkeeper-provider says storageAccountKeys, the policy cosmosDbKeys',
    ],
    [
      'another resource',
      { ...primary, 'stampkeeper-resource': STORAGE_ID },
      false,
      'TagsDisagree',
      'stampkeeper-resource names another resource than the policy',
    ],
    ['a certificate', primary, true, 'CertificateManaged', 'belongs to a Key Vault certificate'],
  ])('%s', async (_what, tags, certificate, code, message) => {
    // Prepare
    const world = await rotationWorld({
      secrets: [
        {
          name: 'cosmos-key',
          ...(certificate
            ? { certificate: true }
            : { valueFrom: { resource: 'cosmosDb/cosmos-rot', key: 'primaryMasterKey' } }),
          expiresInDays: 20,
          tags,
        },
      ],
      consumers: certificate ? [] : [CONSUMER],
      policy: POLICY,
    });
    const mark = world.sandbox.requests().length;

    // Act
    const run = await world.drive(await world.started('cosmos-key'));

    // Assess
    expect(run.state).toBe('failed');
    expect(run.error?.code).toBe(code);
    expect(run.error?.message).toContain(message);
    expect(run.error?.message).toContain('cosmos-key');
    expect(stepsOf(run).slice(0, 2)).toEqual([
      ['plan', 'failed'],
      ['regenerate', 'pending'],
    ]);
    expect(world.regenerations(COSMOS_ID)).toEqual([]);
    expect(await world.versions('cosmos-key')).toHaveLength(1);
    const writes = world.sandbox
      .requests()
      .slice(mark)
      .filter((r) => r.method !== 'GET' && !/\/list(Keys|keys)$|readonlykeys$/i.test(r.path));
    expect(writes).toEqual([]);
  });

  it('refuses a version whose tags name the key it does not hold, before regenerating the key consumers use', async () => {
    // Prepare: tagged primary, but the value is the secondary key, which the consumer uses
    const world = await rotationWorld({
      secrets: [
        {
          name: 'cosmos-key',
          valueFrom: { resource: 'cosmosDb/cosmos-rot', key: 'secondaryMasterKey' },
          expiresInDays: 20,
          tags: primary,
        },
      ],
      consumers: [CONSUMER],
      policy: POLICY,
    });

    // Act
    const run = await world.drive(await world.started('cosmos-key'));

    // Assess
    expect(world.regenerations(COSMOS_ID)).toEqual([]);
    expect(world.sandbox.downtime().totalMs).toBe(0);
    expect(run.state).toBe('failed');
    expect(run.error?.code).toBe('TagsDisagree');
    expect(run.error?.message).toContain('holds the secondary key');
  });

  it('refuses a version whose value is neither key of the resource', async () => {
    // Prepare
    const world = await rotationWorld({
      secrets: [{ name: 'cosmos-key', value: 'bm90IGEga2V5', expiresInDays: 20, tags: primary }],
      policy: POLICY,
    });

    // Act
    const run = await world.drive(await world.started('cosmos-key'));

    // Assess
    expect(run.state).toBe('failed');
    expect(run.error?.code).toBe('KeyUnknown');
    expect(world.regenerations(COSMOS_ID)).toEqual([]);
  });

  it("keeps the secret's own tags on the version it publishes, and none of the rotation's marks of the old one", async () => {
    // Prepare
    const world = await rotationWorld({
      secrets: [
        {
          name: 'cosmos-key',
          valueFrom: { resource: 'cosmosDb/cosmos-rot', key: 'primaryMasterKey' },
          expiresInDays: 20,
          tags: { ...primary, owner: 'team-data', 'cost-center': 'cc-42' },
        },
      ],
      consumers: [CONSUMER],
      policy: POLICY,
    });

    // Act
    const first = await world.drive(await world.started('cosmos-key'));
    const second = await world.drive(await world.started('cosmos-key'));
    const versions = await world.versions('cosmos-key');

    // Assess
    expect([first.state, second.state]).toEqual(['succeeded', 'succeeded']);
    expect(versions).toHaveLength(3);
    expect(versions[2]!.tags).toEqual({
      owner: 'team-data',
      'cost-center': 'cc-42',
      'stampkeeper-provider': 'cosmosDbKeys',
      'stampkeeper-resource': COSMOS_ID,
      'stampkeeper-key': 'primary',
      'stampkeeper-fingerprint': expect.stringMatching(/^[0-9a-f]{16}$/),
      'stampkeeper-run': second.id,
      'stampkeeper-rolled': expect.any(String),
    });
    expect(world.sandbox.downtime().totalMs).toBe(0);
  });
});
