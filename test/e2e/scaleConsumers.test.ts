/**
 * `scale-consumers` end to end, on the bundle the app deploys, on the local host with the example
 * a user starts (`STAMPKEEPER_POLICY_PATH=policy/examples/scale-consumers.policy.yaml npm start --
 * --scenario sandbox/examples/scale-consumers.scenario.yaml`): two queues fall behind when their
 * arrivals rise; the sandbox's alert rules fire and its action group posts them (some twice) to
 * POST /api/alerts; the playbooks raise the invoices worker's max replicas (Container Apps, ARM) and
 * the shipments worker's KEDA maxReplicaCount (AKS, kubectl through the run command); the backlogs
 * drain and the runs see them recover; once the load is gone and the backlogs stayed empty for the
 * playbooks' window, the scale-back timer lowers both again. A notify-only playbook takes an early
 * heads-up rule on the same backlog and only tells the channels.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { advance, json, localAppHooks } from './support/localApp';
import {
  changesOf,
  expectEpisodes,
  over,
  runsOf,
  scaleBackNow,
  until as untilMinutes,
} from './support/remediation';

const ROOT = resolve(__dirname, '..', '..');
const START = '2026-01-01T00:00:00Z';

const hooks = localAppHooks({
  prefix: 'sc',
  sandbox: { scenarioPath: resolve(ROOT, 'sandbox/examples/scale-consumers.scenario.yaml') },
});
const until = (done: () => Promise<boolean>, maxMinutes: number) =>
  untilMinutes(hooks.current()!, hooks.logs, done, maxMinutes);

function estate(body: {
  arm: {
    containerApps: Array<{ name: string; scale: { maxReplicas: number } }>;
    aksClusters: Array<{
      name: string;
      deployments: Array<{ name: string; scaledObject: { maxReplicaCount: number } | null }>;
    }>;
  };
}) {
  return {
    invoices: body.arm.containerApps.find((a) => a.name === 'ca-invoices-worker')?.scale.maxReplicas,
    shipments: body.arm.aksClusters
      .find((c) => c.name === 'aks-stamp-weu')
      ?.deployments.find((d) => d.name === 'shipments-worker')?.scaledObject?.maxReplicaCount,
  };
}

describe('scale-consumers on the local host (the bundle, the example scenario and policy)', () => {
  it('load -> alerts -> more consumers -> recovery -> load drops -> scale back, on Container Apps and AKS with KEDA', async () => {
    // Prepare
    const app = await hooks.start({
      STAMPKEEPER_POLICY_PATH: resolve(ROOT, 'policy/examples/scale-consumers.policy.yaml'),
    });
    const before = estate((await json(app, '/sandbox/estate')).body);

    // Act 1: both backlogs grow from +1h (2 replicas drain 800 a minute of 1500).
    await advance(app, { minutes: 60 });
    await until(async () => over((await runsOf(app, 'invoices-consumers'))[0]), 60);
    await until(async () => over((await runsOf(app, 'shipments-consumers'))[0]), 30);
    const raised = estate((await json(app, '/sandbox/estate')).body);
    const raiseRuns = {
      invoices: (await runsOf(app, 'invoices-consumers'))[0]!,
      shipments: (await runsOf(app, 'shipments-consumers'))[0]!,
    };
    // The notify-only playbook's run (one per alert): the id its Fired delivery was answered with.
    const early = (
      (await json(app, '/sandbox/alerts')).body.deliveries as Array<{
        rule: string;
        answer?: { runId?: string; playbook?: string };
      }>
    ).find((d) => d.rule === 'shipments-backlog-early' && d.answer?.runId);
    const headsUp = await json(app, `/api/runs/${early?.answer?.runId}`);

    // Act 2: the arrivals drop at +2h; the backlogs stay empty for the playbooks' hour; the timer ticks.
    await advance(app, { to: '2026-01-01T02:30:00Z' });
    const tick = await scaleBackNow(app, hooks.logs, ['invoices-consumers', 'shipments-consumers']);
    const lowered = estate((await json(app, '/sandbox/estate')).body);
    const lowerRuns = {
      invoices: (await runsOf(app, 'invoices-consumers'))[0]!,
      shipments: (await runsOf(app, 'shipments-consumers'))[0]!,
    };
    const alerts = (await json(app, '/sandbox/alerts')).body;
    const audit = await json(app, `/api/audit?since=${START}&limit=1000`);
    const notifications = JSON.stringify((await json(app, '/sandbox/notifications')).body);

    // Assess: raised by one step (2 -> 6), recovered, lowered back to the floor (6 -> 2).
    expect(before).toEqual({ invoices: 2, shipments: 2 });
    expect(raised).toEqual({ invoices: 6, shipments: 6 });
    for (const run of Object.values(raiseRuns)) {
      expect(run.state).toBe('succeeded');
      expect(run.steps.find((s) => s.name === 'verify')?.output).toMatchObject({ recovered: true });
    }
    expect(tick).toBe(202);
    expect(lowered).toEqual({ invoices: 2, shipments: 2 });
    for (const run of Object.values(lowerRuns)) expect(run.state).toBe('succeeded');

    // The action group's deliveries: one Fired per rule answered 202 with its run, redeliveries 200,
    // every episode resolved once the consumers caught up.
    const deliveries = expectEpisodes(alerts, [
      'invoices-backlog',
      'shipments-backlog',
      'shipments-backlog-early',
    ]);
    expect(
      deliveries.find((d) => d.rule === 'shipments-backlog' && d.monitorCondition === 'Fired')?.answer?.runId,
    ).toBe(raiseRuns.shipments.id);

    // The notify-only playbook routed its alert once and changed nothing.
    expect(early?.answer?.playbook).toBe('shipments-heads-up');
    expect(headsUp.status).toBe(200);
    expect(headsUp.body).toMatchObject({ state: 'succeeded' });

    // Audited with before and after, once per change, on the resources changed.
    const changes = changesOf(audit.body.records);
    expect(changes).toEqual([
      ['remediation.lower', 'ca-invoices-worker', 6, 2],
      ['remediation.lower', 'shipments-worker', 6, 2],
      ['remediation.raise', 'ca-invoices-worker', 2, 6],
      ['remediation.raise', 'shipments-worker', 2, 6],
    ]);
    // The channels heard what was done, and on what.
    expect(notifications).toContain('ca-invoices-worker');
    expect(notifications).toContain('shipments-worker');
    expect(notifications).toContain('shipments-backlog-early');
  }, 300_000);
});
