/**
 * A crash injected after every step of a rotation (revoke mode, two consumers): the worker dies
 * between the step's effect and its record (the step runs again, checks the remote state first and
 * does not act twice), or after the record and before the next message (the resume timer finds
 * the stalled run and sends it again). Every time the run finishes, each key is regenerated once,
 * one version is published, one completion is announced, and no consumer is ever cut off.
 */
import { describe, expect, it } from 'vitest';
import { ROTATION_KIND } from '../../../src/lib/rotation/rotation';
import { rotationTarget } from '../../../src/lib/rotation/startRotation';
import { auditOf } from '../runs/support';
import { CLUSTER_ID, COSMOS_ID, crashBeforeRecording, rotationTags, rotationWorld, VAULT } from './support';

const STEPS = ['plan', 'regenerate', 'test', 'publish', 'roll', 'verify', 'revoke', 'finish'] as const;

async function world(wrapRuns?: Parameters<typeof rotationWorld>[0]['wrapRuns']) {
  return rotationWorld({
    secrets: [
      {
        name: 'cosmos-key',
        valueFrom: { resource: 'cosmosDb/cosmos-rot', key: 'primaryMasterKey' },
        expiresInDays: 20,
        tags: rotationTags('cosmosDbKeys', COSMOS_ID, 'primary'),
      },
    ],
    consumers: [
      {
        name: 'orders-api',
        kind: 'aksDeployment',
        cluster: 'aks-rot',
        namespace: 'orders',
        deployment: 'orders-api',
        credential: { vault: VAULT, secret: 'cosmos-key', resource: 'cosmosDb/cosmos-rot' },
        roll: { seconds: 45 },
      },
      {
        name: 'legacy',
        kind: 'webhook',
        url: 'https://ci.rotation.example/hooks/legacy',
        credential: { vault: VAULT, secret: 'cosmos-key', resource: 'cosmosDb/cosmos-rot' },
        roll: { seconds: 30 },
      },
    ],
    settings: { LEGACY_HOOK: 'https://ci.rotation.example/hooks/legacy' },
    ...(wrapRuns ? { wrapRuns } : {}),
    policy: `
  - vault: ${VAULT}
    name: cosmos-key
    owner: team-data
    rotation:
      provider: cosmosDbKeys
      resourceId: ${COSMOS_ID}
      mode: revoke
      consumers:
        - { type: aksDeployment, clusterId: ${CLUSTER_ID}, namespace: orders, deployment: orders-api }
        - { type: webhook, name: legacy, urlSetting: LEGACY_HOOK }`,
  });
}

/** What must hold after any crash: one rotation's worth of effects, zero downtime. */
async function assessOneRotation(w: Awaited<ReturnType<typeof world>>, runId: string) {
  const run = (await w.engine.getRun(runId))!;
  expect(run.error).toBeUndefined();
  expect(run.state).toBe('succeeded');
  expect(await w.engine.runsForTarget(ROTATION_KIND, rotationTarget(VAULT, 'cosmos-key'))).toHaveLength(1);
  expect(w.regenerations(COSMOS_ID)).toEqual(['secondaryMasterKey', 'primaryMasterKey']);
  expect(await w.versions('cosmos-key')).toHaveLength(2);
  expect(w.sandbox.downtime().totalMs).toBe(0);
  expect(w.channel.sent.filter((n) => n.type === 'com.stampkeeper.rotation.completed')).toHaveLength(1);
  const audit = await auditOf(w.stores, runId, {
    since: new Date('2026-02-01T00:00:00Z'),
    until: new Date('2026-04-01T00:00:00Z'),
  });
  expect(audit.filter((r) => r.action === 'rotation.complete')).toHaveLength(1);
  return run;
}

describe('a crash after every step of a rotation', () => {
  it.each(STEPS)(
    'the worker dies after %s acted, before its record: the step runs again and acts once',
    async (step) => {
      // Prepare
      const crash = crashBeforeRecording(step);
      const w = await world(crash.wrap);

      // Act
      const run = await w.drive(await w.started('cosmos-key'));

      // Assess
      expect(crash.fired).toBe(true);
      expect(run.steps.find((s) => s.name === step)!.attempts).toBe(2);
      await assessOneRotation(w, run.id);
    },
  );

  it.each(STEPS.slice(0, -1))(
    'the worker dies after %s was recorded, before the next message: the resume timer sends it again',
    async (step) => {
      // Prepare
      const w = await world();
      let dropped = false;

      // Act
      const run = await w.drive(await w.started('cosmos-key'), {
        dropNextMessage: (recorded) => {
          const s = recorded.steps.find((x) => x.name === step)!;
          if (dropped || (s.status !== 'done' && s.status !== 'skipped')) return false;
          dropped = true;
          return true;
        },
      });

      // Assess
      expect(dropped).toBe(true);
      await assessOneRotation(w, run.id);
    },
  );
});
