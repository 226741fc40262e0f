import { describe, expect, it } from 'vitest';
import type { ScalingPlaybook } from '../../../src/lib/config/playbooks';
import {
  cosmosReading,
  EMPTY_LEDGER,
  kubernetesReading,
  planLower,
  planRaise,
  replicaReading,
  serviceBusReading,
} from '../../../src/lib/remediation/plan';
import { priorLedger } from '../../../src/lib/remediation/playbookRun';
import type { Run, RunStep } from '../../../src/lib/runs/types';

const NOW = new Date('2026-05-01T12:00:00Z');
const MINUTE = 60_000;

function playbook(o: Partial<ScalingPlaybook> = {}): ScalingPlaybook {
  return {
    name: 'p',
    action: 'cosmos-raise-autoscale-max',
    match: { alertRule: 'r' },
    target: { kind: 'cosmosThroughput', accountId: 'a', database: 'd', container: 'c' },
    bounds: { floor: 1000, ceiling: 20000 },
    step: 2000,
    cooldownMinutes: 30,
    maxActionsPerDay: 4,
    dryRun: false,
    migrateToAutoscale: false,
    asyncScale: false,
    signal: {
      resourceId: 'a',
      region: 'westeurope',
      metric: 'NormalizedRUConsumption',
      aggregation: 'Maximum',
      dimensions: {},
      recoveredBelow: 90,
      verifyMinutes: 30,
    },
    ...o,
  };
}

const cosmos = (o: Partial<Parameters<typeof cosmosReading>[0]> = {}) => ({
  mode: 'autoscale' as const,
  value: 4000,
  minimum: 1000,
  instantMaximum: 10000,
  softMaximum: 1_000_000,
  pending: false,
  pendingValue: undefined,
  ...o,
});

const raise = (reading: ReturnType<typeof cosmosReading>, p = playbook(), ledger = EMPTY_LEDGER) =>
  planRaise({ reading, playbook: p, ledger, now: NOW, because: 'alert' });

describe('planRaise', () => {
  it('raises by the step, within the instant-scale limit unless the playbook allows the asynchronous scale', () => {
    // Act / Assess
    expect(raise(cosmosReading(cosmos({ value: 9000 }), playbook()))).toMatchObject({
      act: true,
      from: 9000,
      to: 10000,
    });
    expect(raise(cosmosReading(cosmos({ value: 10000 }), playbook()))).toMatchObject({
      act: false,
      code: 'atCeiling',
      why: expect.stringMatching(/most the service takes at once \(10000\).*splits partitions/),
    });
    const async = playbook({ asyncScale: true });
    expect(raise(cosmosReading(cosmos({ value: 10000 }), async), async)).toMatchObject({
      act: true,
      to: 12000,
    });
  });

  it('waits while a change is pending, refuses manual throughput unless it may migrate it, then migrates', () => {
    // Act / Assess
    expect(raise(cosmosReading(cosmos({ pending: true, pendingValue: 30000 }), playbook()))).toMatchObject({
      act: false,
      code: 'busy',
      why: expect.stringContaining('to 30000 RU/s'),
    });
    expect(raise(cosmosReading(cosmos({ mode: 'manual', value: 800 }), playbook()))).toMatchObject({
      act: false,
      code: 'blocked',
      severity: 'warning',
    });
    const migrating = playbook({ migrateToAutoscale: true, approvalAbove: 500 });
    expect(raise(cosmosReading(cosmos({ mode: 'manual', value: 800 }), migrating), migrating)).toMatchObject({
      act: true,
      migrate: true,
      from: 800,
      approval: true,
    });
  });

  it('asks for approval only above the threshold', () => {
    // Act / Assess
    const p = playbook({ approvalAbove: 6000 });
    expect(raise(cosmosReading(cosmos({ value: 4000 }), p), p)).toMatchObject({ to: 6000, approval: false });
    expect(raise(cosmosReading(cosmos({ value: 5000 }), p), p)).toMatchObject({ to: 7000, approval: true });
  });

  it('steps messaging units through the values the partitions allow, and only on premium', () => {
    // Prepare
    const p = playbook({
      action: 'servicebus-scale-messaging-units',
      target: { kind: 'serviceBusNamespace', namespaceId: 'n' },
      bounds: { floor: 2, ceiling: 16 },
      step: 1,
    });
    const ns = { sku: 'Premium' as const, capacity: 4, partitions: 2, provisioningState: 'Succeeded' };

    // Act / Assess
    expect(
      planRaise({
        reading: serviceBusReading(ns),
        playbook: p,
        ledger: EMPTY_LEDGER,
        now: NOW,
        because: 'x',
      }),
    ).toMatchObject({ to: 8 });
    expect(
      planRaise({
        reading: serviceBusReading({ ...ns, capacity: 16 }),
        playbook: p,
        ledger: EMPTY_LEDGER,
        now: NOW,
        because: 'x',
      }),
    ).toMatchObject({ act: false, code: 'atCeiling' });
    expect(
      planRaise({
        reading: serviceBusReading({ ...ns, sku: 'Standard', capacity: 0 }),
        playbook: p,
        ledger: EMPTY_LEDGER,
        now: NOW,
        because: 'x',
      }),
    ).toMatchObject({ act: false, code: 'blocked' });
    expect(
      planRaise({
        reading: serviceBusReading({ ...ns, provisioningState: 'Updating' }),
        playbook: p,
        ledger: EMPTY_LEDGER,
        now: NOW,
        because: 'x',
      }),
    ).toMatchObject({ act: false, code: 'busy' });
  });
});

/** A ledger whose last change (three hours ago) was stampkeeper raising the value to `to`. */
const changed = (to: number) => ({
  changes: [
    {
      at: new Date(NOW.getTime() - 3 * 60 * MINUTE).toISOString(),
      direction: 'raise' as const,
      from: 1,
      to,
      runId: 'r',
    },
  ],
});

describe('planLower', () => {
  it('lowers one step, never below the floor nor the minimum the service reports', () => {
    // Act / Assess
    const p = playbook({ bounds: { floor: 1000, ceiling: 20000 } });
    expect(
      planLower({
        reading: cosmosReading(cosmos({ value: 8000, minimum: 5000 }), p),
        playbook: p,
        ledger: changed(8000),
        now: NOW,
        because: 'low',
      }),
    ).toMatchObject({
      act: true,
      to: 6000,
    });
    expect(
      planLower({
        reading: cosmosReading(cosmos({ value: 6000, minimum: 5000 }), p),
        playbook: p,
        ledger: changed(6000),
        now: NOW,
        because: 'low',
      }),
    ).toMatchObject({
      act: true,
      to: 5000,
    });
    expect(
      planLower({
        reading: cosmosReading(cosmos({ value: 5000, minimum: 5000 }), p),
        playbook: p,
        ledger: changed(5000),
        now: NOW,
        because: 'low',
      }),
    ).toMatchObject({
      act: false,
      code: 'atFloor',
    });
  });

  it('leaves alone a value someone else set, and one stampkeeper never changed', () => {
    // Act / Assess
    const p = playbook();
    expect(
      planLower({
        reading: cosmosReading(cosmos({ value: 9000 }), p),
        playbook: p,
        ledger: changed(8000),
        now: NOW,
        because: 'low',
      }),
    ).toMatchObject({
      act: false,
      code: 'changedOutside',
    });
    expect(
      planLower({
        reading: cosmosReading(cosmos({ value: 9000 }), p),
        playbook: p,
        ledger: EMPTY_LEDGER,
        now: NOW,
        because: 'low',
      }),
    ).toMatchObject({
      act: false,
      code: 'changedOutside',
    });
  });

  it('keeps the min replicas below the max', () => {
    // Act / Assess
    const p = playbook({
      action: 'scale-consumers',
      target: { kind: 'containerApp', containerAppId: 'app' },
      bounds: { floor: 1, ceiling: 30 },
      step: 5,
    });
    const reading = replicaReading({
      minReplicas: 4,
      maxReplicas: 6,
      provisioningState: 'Succeeded',
      latestRevision: 'x',
    });
    expect(planLower({ reading, playbook: p, ledger: changed(6), now: NOW, because: 'low' })).toMatchObject({
      to: 4,
    });
  });
});

describe('AKS consumers (kubernetesReading)', () => {
  const aks = (o: Partial<ScalingPlaybook> = {}) =>
    playbook({
      action: 'scale-consumers',
      target: {
        kind: 'aksDeployment',
        clusterId: 'cluster',
        namespace: 'work',
        deployment: 'worker',
        scaledObject: 'worker',
      },
      bounds: { floor: 1, ceiling: 2000 },
      step: 600,
      ...o,
    });

  it('raises a KEDA max by the step, never past 1000 replicas nor while the controller lags', () => {
    // Act / Assess
    expect(raise(kubernetesReading({ mode: 'kedaMax', value: 300, minimum: 1 }), aks())).toMatchObject({
      act: true,
      from: 300,
      to: 900,
      unit: 'max replicas (KEDA)',
    });
    expect(raise(kubernetesReading({ mode: 'kedaMax', value: 900, minimum: 1 }), aks())).toMatchObject({
      act: true,
      to: 1000,
    });
    expect(raise(kubernetesReading({ mode: 'kedaMax', value: 1000, minimum: 1 }), aks())).toMatchObject({
      act: false,
      code: 'atCeiling',
    });
    expect(
      raise(
        kubernetesReading({ mode: 'replicas', value: 3, minimum: 0, busy: 'generation 4 not observed' }),
        aks(),
      ),
    ).toMatchObject({ act: false, code: 'busy' });
  });

  it("lowers never below the ScaledObject's min, nor to no consumers at all", () => {
    // Act / Assess
    const lower = (reading: ReturnType<typeof kubernetesReading>, p: ScalingPlaybook) =>
      planLower({ reading, playbook: p, ledger: changed(reading.value), now: NOW, because: 'low' });
    expect(
      lower(kubernetesReading({ mode: 'kedaMax', value: 10, minimum: 4 }), aks({ step: 8 })),
    ).toMatchObject({
      act: true,
      to: 4,
    });
    expect(
      lower(
        kubernetesReading({ mode: 'replicas', value: 3, minimum: 0 }),
        aks({ step: 8, bounds: { floor: 0, ceiling: 10 } }),
      ),
    ).toMatchObject({ act: true, to: 1 });
  });
});

describe('priorLedger', () => {
  function run(id: string, steps: Partial<RunStep>[], updatedOn: Date): Run {
    return {
      id,
      steps: steps.map((s) => ({ status: 'done', attempts: 1, ...s })) as RunStep[],
      dryRun: false,
      updatedOn,
    } as unknown as Run;
  }
  const decision = {
    act: true,
    direction: 'raise',
    migrate: false,
    from: 1000,
    to: 3000,
    unit: 'RU/s',
    why: 'x',
    approval: false,
  };

  it("takes the previous run's recorded ledger, and counts an act that may have changed the value without recording it", () => {
    // Prepare
    const earlier = new Date(NOW.getTime() - 10 * MINUTE);
    const recorded = run(
      'done',
      [
        { name: 'plan', output: { decision, ledger: EMPTY_LEDGER } },
        {
          name: 'act',
          output: {
            ledger: {
              changes: [
                { at: earlier.toISOString(), direction: 'raise', from: 1000, to: 3000, runId: 'done' },
              ],
            },
          },
        },
      ],
      earlier,
    );
    const crashed = run(
      'crashed',
      [
        { name: 'plan', output: { decision, ledger: EMPTY_LEDGER } },
        { name: 'act', status: 'failed', attempts: 5, startedOn: earlier },
      ],
      earlier,
    );

    // Act
    const fromRecorded = priorLedger([run('current', [], NOW), recorded], 'current', NOW);
    const fromCrashed = priorLedger([crashed, recorded], 'x', NOW);
    const none = priorLedger([], 'x', NOW);

    // Assess
    expect(fromRecorded.changes).toHaveLength(1);
    expect(fromCrashed.changes).toEqual([
      { at: earlier.toISOString(), direction: 'raise', from: 1000, to: 3000, runId: 'crashed' },
    ]);
    expect(none).toEqual(EMPTY_LEDGER);
  });
});
