/**
 * Safety of a rotation against the states people and failures leave behind: a version switched by
 * hand whose consumers may still hold the other key (rolled first, nothing regenerated before),
 * a worker dying while it starts the rolls (no consumer started twice), a resumption of a revoke
 * (still a revoke), requests that an active run would not honour (refused, 409), a trigger of a
 * version whose rotation ended (reported as ended), a consumer that cannot be rolled as configured
 * (stopped at the plan, nothing changed).
 */
import { describe, expect, it } from 'vitest';
import { CosmosDbKeys } from '../../../src/lib/azure/cosmosDbKeys';
import { KeyVaultSecretVault } from '../../../src/lib/azure/keyVaultSecrets';
import type { KeyRotationPolicy } from '../../../src/lib/config/policy';
import { ConflictError, TransientError, ValidationError } from '../../../src/lib/core/errors';
import { newId } from '../../../src/lib/core/ids';
import { consumerProblems } from '../../../src/lib/rotation/rotation';
import { startRotation } from '../../../src/lib/rotation/startRotation';
import type { StateStores } from '../../../src/lib/state';
import { CLUSTER_ID, COSMOS_ID, rotationTags, rotationWorld, stepsOf, VAULT, VAULT_URL } from './support';

const credential = { vault: VAULT, secret: 'cosmos-key', resource: 'cosmosDb/cosmos-rot' };
const seeded = (slot: 'primary' | 'secondary' = 'primary', verified = true) => ({
  name: 'cosmos-key',
  valueFrom: {
    resource: 'cosmosDb/cosmos-rot',
    key: slot === 'primary' ? ('primaryMasterKey' as const) : ('secondaryMasterKey' as const),
  },
  expiresInDays: 20,
  tags: rotationTags('cosmosDbKeys', COSMOS_ID, slot, verified),
});
const aks = (name: string, roll: Record<string, unknown> = { seconds: 45 }) => ({
  name,
  kind: 'aksDeployment' as const,
  cluster: 'aks-rot',
  namespace: 'orders',
  deployment: name,
  credential,
  roll,
});
const policy = (extra: string, consumers: string[]) => `
  - vault: ${VAULT}
    name: cosmos-key
    owner: team-data
    rotation:
      provider: cosmosDbKeys
      resourceId: ${COSMOS_ID}${extra}
      consumers:
${consumers.map((c) => `        - ${c}`).join('\n')}`;
const aksPolicy = (name: string) =>
  `{ type: aksDeployment, clusterId: ${CLUSTER_ID}, namespace: orders, deployment: ${name} }`;
const rollsOf = (world: Awaited<ReturnType<typeof rotationWorld>>) =>
  Object.fromEntries(world.sandbox.consumers().map((c) => [c.name, c.rolls.map((r) => r.status)]));

describe('rotation safety', () => {
  it('a version switched by hand while consumers still hold the other key: they are rolled onto it before anything is regenerated', async () => {
    // Prepare: consumers run on the secondary key; a person published the primary key as a new
    // version (the manual procedure, half done) and did not restart them
    const world = await rotationWorld({
      secrets: [seeded('secondary')],
      consumers: [aks('orders-api')],
      policy: policy('', [aksPolicy('orders-api')]),
    });
    const keys = await new CosmosDbKeys(world.sandbox.credential, {
      httpClient: world.sandbox.httpClient,
    }).listKeys(COSMOS_ID, { withValues: true });
    const vault = new KeyVaultSecretVault(world.sandbox.credential, { httpClient: world.sandbox.httpClient });
    const byHand = await vault.setSecret(VAULT_URL, 'cosmos-key', keys.primary.value!, {
      tags: rotationTags('cosmosDbKeys', COSMOS_ID, 'primary', false),
      expiresOn: new Date(world.sandbox.clock.now().getTime() + 20 * 86_400_000),
    });

    // Act
    const run = await world.drive(await world.started('cosmos-key'));
    await world.sandbox.advance({ minutes: 5 });

    // Assess
    expect(run.error).toBeUndefined();
    expect(run.state).toBe('succeeded');
    expect(run.steps[0]!.output).toMatchObject({
      rollFirst: true,
      rolledFirst: { 'aks-rot/orders/orders-api': 'done' },
    });
    const consumer = world.sandbox.consumers()[0]!;
    expect(consumer.rolls.map((r) => [r.version, r.status])).toEqual([
      [byHand.version, 'succeeded'],
      [(run.steps.find((s) => s.name === 'publish')!.output as { version: string }).version, 'succeeded'],
    ]);
    // The secondary key (the standby, which consumers held) was regenerated only after they left it.
    expect(world.regenerations(COSMOS_ID)).toEqual(['secondaryMasterKey']);
    expect(world.sandbox.downtime().intervals).toBe(0);
    const versions = await world.versions('cosmos-key');
    expect(versions.find((v) => v.version === byHand.version)!.tags['stampkeeper-rolled']).toBeDefined();
  });

  it('a worker dying after it started the last roll, before recording it: no consumer is started twice', async () => {
    // Prepare: the record of the roll step's end never happens, once
    const crash = crashWhenRollDone();
    const world = await rotationWorld({
      secrets: [seeded()],
      consumers: [
        {
          name: 'legacy',
          kind: 'webhook',
          url: 'https://ci.rotation.example/hooks/legacy',
          credential,
          roll: { seconds: 30 },
        },
        aks('orders-api'),
      ],
      settings: { LEGACY_HOOK: 'https://ci.rotation.example/hooks/legacy' },
      wrapRuns: crash.wrap,
      policy: policy('\n      mode: revoke', [
        '{ type: webhook, name: legacy, urlSetting: LEGACY_HOOK }',
        aksPolicy('orders-api'),
      ]),
    });

    // Act
    const run = await world.drive(await world.started('cosmos-key'));

    // Assess
    expect(crash.fired).toBe(true);
    expect(run.state).toBe('succeeded');
    expect(rollsOf(world)).toEqual({ legacy: ['succeeded'], 'orders-api': ['succeeded'] });
    expect(world.regenerations(COSMOS_ID)).toEqual(['secondaryMasterKey', 'primaryMasterKey']);
    expect(world.sandbox.downtime().intervals).toBe(0);
  });

  it("a resumed revoke is still a revoke, not the policy's alternate", async () => {
    // Prepare: a revoke asked on demand (the policy says alternate) failed on a consumer
    const world = await rotationWorld({
      secrets: [seeded()],
      consumers: [aks('orders-api', { seconds: 60, outcome: 'fail', failReason: 'image pull failed' })],
      policy: policy('', [aksPolicy('orders-api')]),
    });
    const failed = await world.drive(await world.started('cosmos-key', { mode: 'revoke' }));

    // Act
    const resumed = await world.engine.getRun(await world.started('cosmos-key', { resumes: failed.id }));

    // Assess
    expect(failed.state).toBe('failed');
    expect((failed.input as { rotation: { mode: string } }).rotation.mode).toBe('revoke');
    expect((resumed!.input as { rotation: { mode: string } }).rotation.mode).toBe('revoke');
  });

  it('a revoke asked while an alternate rotation runs is refused (409) with the run, not merged into it', async () => {
    // Prepare
    const world = await rotationWorld({
      secrets: [seeded()],
      consumers: [aks('orders-api')],
      policy: policy('', [aksPolicy('orders-api')]),
    });
    const first = await world.start('cosmos-key', { trigger: 'event', version: 'v1' });

    // Act
    const revoke = await world.start('cosmos-key', { mode: 'revoke' }).catch((e: unknown) => e);
    const same = await world.start('cosmos-key', { mode: 'alternate' });

    // Assess
    expect(first.status).toBe('started');
    expect(revoke).toBeInstanceOf(ConflictError);
    expect((revoke as ConflictError).message).toContain('alternate rotation of cosmos-key');
    expect((revoke as ConflictError).metadata).toMatchObject({
      runId: (first as { run: { id: string } }).run.id,
    });
    expect(same.status).toBe('active');
  });

  it('an on-demand rotation while a scheduled one waits for its window is refused (409), not left waiting', async () => {
    // Prepare: the window opens at 03:00 UTC; the sandbox's clock is at 00:01
    const world = await rotationWorld({
      secrets: [seeded()],
      consumers: [aks('orders-api')],
      policy: policy('\n      window: { startHour: 3, endHour: 5 }', [aksPolicy('orders-api')]),
    });
    const scheduled = await world.start('cosmos-key', { trigger: 'sweep', version: 'v1' });
    const id = (scheduled as { run: { id: string } }).run.id;
    await world.engine.executeStep(id, {
      owner: 'msg:test',
      ticket: (await world.engine.getRun(id))!.ticket,
    });

    // Act
    const now = await world.start('cosmos-key', { trigger: 'manual' }).catch((e: unknown) => e);

    // Assess
    expect((await world.engine.getRun(id))!.steps[0]!.status).toBe('running');
    expect(now).toBeInstanceOf(ConflictError);
    expect((now as ConflictError).message).toContain('waits for its window');
    expect(world.regenerations(COSMOS_ID)).toEqual([]);
  });

  it('a callback webhook while the app cannot give a callback URL: stopped at the plan (nothing changed), and an on-demand start is refused (400)', async () => {
    // Prepare: the app has no callback endpoint (its host name unknown)
    const world = await rotationWorld({
      secrets: [seeded()],
      consumers: [
        {
          name: 'legacy',
          kind: 'webhook',
          url: 'https://ci.rotation.example/hooks/legacy',
          credential,
          roll: { seconds: 30 },
        },
      ],
      settings: { LEGACY_HOOK: 'https://ci.rotation.example/hooks/legacy' },
      policy: policy('', ['{ type: webhook, name: legacy, urlSetting: LEGACY_HOOK, completion: callback }']),
    });
    const rotation = world.policy.secrets[0]!.rotation as KeyRotationPolicy;
    const noHost = {
      settingValue: (name: string) =>
        name === 'LEGACY_HOOK' ? 'https://ci.rotation.example/hooks/legacy' : undefined,
      registerCallback: async () => ({ id: 'x', url: 'https://unused.example/' }),
      callbackProblem: () =>
        'the app does not know its host name (WEBSITE_HOSTNAME, which the platform sets)',
    };

    // Act
    const onDemand = await startRotation(
      {
        vaultUrl: VAULT_URL,
        secretName: 'cosmos-key',
        trigger: 'manual',
        actor: 'user:tester',
        correlationId: newId(),
      },
      {
        engine: world.engine,
        policy: world.policy,
        clock: world.sandbox.clock,
        logger: world.logger,
        consumerProblems: (r) => consumerProblems(r, noHost),
      },
    ).catch((e: unknown) => e);
    const run = await world.drive(await world.started('cosmos-key', { trigger: 'event', version: 'v1' }));

    // Assess
    expect(run.state).toBe('failed');
    expect(run.error).toMatchObject({ code: 'ConsumerMisconfigured' });
    expect(run.error!.message).toContain(
      'consumer legacy completes by callback, and this app has no callback endpoint',
    );
    expect(world.regenerations(COSMOS_ID)).toEqual([]);
    expect(rollsOf(world)).toEqual({ legacy: [] });
    expect(rotation.consumers).toHaveLength(1);
    expect(onDemand).toBeInstanceOf(ValidationError);
    expect((onDemand as ValidationError).problems).toEqual([
      'consumer legacy completes by callback, and the app does not know its host name (WEBSITE_HOSTNAME, which the platform sets)',
    ]);
  });

  it('a consumer that reloads by itself after 4 hours is looked at when its wait ends, not every 15 seconds through it', async () => {
    // Prepare: the CSI driver's rotation poll every hour; the policy waits 4 hours
    const world = await rotationWorld({
      secrets: [seeded()],
      consumers: [{ name: 'csi-pods', kind: 'reload', reloadMinutes: 60, credential }],
      policy: policy('', ['{ type: waitForReload, name: csi-pods, waitMinutes: 240 }']),
    });

    // Act
    const run = await world.drive(await world.started('cosmos-key'), { maxExecutions: 60 });

    // Assess
    expect(run.error).toBeUndefined();
    expect(run.state).toBe('succeeded');
    expect(run.steps.find((s) => s.name === 'verify')!.waits).toBeLessThanOrEqual(2);
    expect(world.sandbox.downtime().intervals).toBe(0);
  });

  it('a polled webhook whose status URL carries its own signature on another path (Logic Apps): polled to the end, the signature never in the run', async () => {
    // Prepare
    const world = await rotationWorld({
      secrets: [seeded()],
      consumers: [
        {
          name: 'flow',
          kind: 'webhook',
          url: 'https://prod-07.rotation.example/workflows/roll/triggers/manual/paths/invoke',
          statusUrl: 'signed',
          credential,
          roll: { seconds: 90 },
        },
      ],
      settings: { FLOW_HOOK: 'https://prod-07.rotation.example/workflows/roll/triggers/manual/paths/invoke' },
      policy: policy('\n      mode: revoke', ['{ type: webhook, name: flow, urlSetting: FLOW_HOOK }']),
    });

    // Act
    const run = await world.drive(await world.started('cosmos-key'));

    // Assess
    expect(run.error).toBeUndefined();
    expect(run.state).toBe('succeeded');
    const handle = (
      run.steps.find((s) => s.name === 'roll')!.output as {
        handles: Array<{ handle: { ref: Record<string, string> } }>;
      }
    ).handles[0]!.handle;
    expect(handle.ref.statusUrl).toMatch(/^\{sealed\}/);
    expect(JSON.stringify(run)).not.toMatch(/sig=|REDACTED/);
    expect(world.regenerations(COSMOS_ID)).toEqual(['secondaryMasterKey', 'primaryMasterKey']);
    expect(world.sandbox.downtime().intervals).toBe(0);
  });

  it('an event of a version whose rotation ended is reported as ended, not as under way', async () => {
    // Prepare: the version's rotation was cancelled
    const world = await rotationWorld({
      secrets: [seeded()],
      consumers: [aks('orders-api')],
      policy: policy('', [aksPolicy('orders-api')]),
    });
    const first = await world.start('cosmos-key', { trigger: 'event', version: 'v1' });
    const id = (first as { run: { id: string } }).run.id;
    await world.engine.cancelRun(id, { actor: 'user:tester', reason: 'not now' });
    await world.drive(id);

    // Act
    const again = await world.start('cosmos-key', { trigger: 'sweep', version: 'v1' });

    // Assess
    expect(again.status).toBe('ended');
    expect((again as { run: { id: string; state: string } }).run).toMatchObject({ id, state: 'cancelled' });
  });

  it('a consumer whose URL setting is not set stops the rotation at its plan: nothing regenerated or published', async () => {
    // Prepare
    const world = await rotationWorld({
      secrets: [seeded()],
      consumers: [aks('orders-api')],
      policy: policy('', [
        aksPolicy('orders-api'),
        '{ type: webhook, name: legacy, urlSetting: LEGACY_HOOK }',
      ]),
    });

    // Act
    const run = await world.drive(await world.started('cosmos-key'));

    // Assess
    expect(run.state).toBe('failed');
    expect(stepsOf(run).slice(0, 2)).toEqual([
      ['plan', 'failed'],
      ['regenerate', 'pending'],
    ]);
    expect(run.error).toMatchObject({ code: 'ConsumerMisconfigured' });
    expect(run.error!.message).toContain('LEGACY_HOOK');
    expect(world.regenerations(COSMOS_ID)).toEqual([]);
    expect(await world.versions('cosmos-key')).toHaveLength(1);
    expect(rollsOf(world)).toEqual({ 'orders-api': [] });
  });
});

/**
 * The process dies between the roll step's last effect and the record of its end: the write that
 * records `roll` as done never happens (the engine's quick retries of it included), once.
 */
function crashWhenRollDone() {
  const state = { fired: 0 };
  const wrap = (runs: StateStores['runs']): StateStores['runs'] => {
    const store = Object.create(runs) as StateStores['runs'];
    store.update = async (run, options) => {
      const roll = run.steps.find((s) => s.name === 'roll');
      if (roll?.status === 'done' && state.fired < 3) {
        state.fired++;
        throw new TransientError('the worker died before recording the roll');
      }
      return runs.update(run, options);
    };
    return store;
  };
  return {
    wrap,
    get fired() {
      return state.fired > 0;
    },
  };
}
