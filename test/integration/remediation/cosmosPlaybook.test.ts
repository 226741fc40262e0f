/**
 * `cosmos-raise-autoscale-max` through the app's real composition root: the intake starts a run,
 * the run raises the container's autoscale max through the real ARM client on the sandbox, verifies
 * the metric through the real metrics client, and the scale-back timer's use case lowers it again
 * once the metric stayed low, every change audited with before and after and notified with why.
 */
import { describe, expect, it } from 'vitest';
import { newId } from '../../../src/lib/core/ids';
import { silentLogger } from '../../../src/lib/core/logging';
import { scaleBackPlaybooks } from '../../../src/lib/remediation/scaleBack';
import { ACCOUNT_ID, harness, MINUTE, over, START } from './support';

const series = {
  resourceId: ACCOUNT_ID,
  metric: 'NormalizedRUConsumption',
  dimensions: { DatabaseName: 'orders', CollectionName: 'orders' },
};
const timer = () => ({ actor: 'system:timer', correlationId: newId(), attemptId: newId() });

describe('cosmos-raise-autoscale-max on the sandbox', () => {
  it('raises on a Fired alert, verifies the recovery, and scales back one step once the metric stayed low', async () => {
    // Prepare: hot until +30 min, then quiet.
    const h = await harness();
    const drop = START.getTime() + 30 * MINUTE;
    h.sandbox.monitor.metrics.setSeries(series, { fn: (at) => (at.getTime() < drop ? 100 : 20) });
    await h.sandbox.advance({ minutes: 10 });

    // Act 1: the alert fires
    const accepted = await h.post({ rule: 'cosmos-ru-orders', value: 100 });
    const runId = (accepted as { runId: string }).runId;
    const verifying = await h.until(runId, (r) => r.state === 'waiting' || over(r));
    const raised = h.estate();

    // Act 2: load drops; the run sees the metric recover
    await h.sandbox.advance({ minutes: 25 });
    const recovered = await h.until(runId, over);

    // Act 3: the metric stays low for the window; the timer starts a scale-back
    await h.sandbox.advance({ minutes: 20 });
    const reports = await scaleBackPlaybooks(h.deps.remediation(silentLogger), timer());
    const lowering = reports.find((r) => r.playbook === 'orders-ru')!;
    const lowered = await h.until(lowering.runId!, over);
    const tooSoon = await scaleBackPlaybooks(h.deps.remediation(silentLogger), timer());
    await h.sandbox.advance({ minutes: 25 });
    const again = await scaleBackPlaybooks(h.deps.remediation(silentLogger), timer());

    // Assess
    expect(accepted).toMatchObject({ status: 'handled', outcome: 'succeeded', playbook: 'orders-ru' });
    expect(verifying.steps.map((s) => [s.name, s.status])).toEqual([
      ['plan', 'done'],
      ['act', 'done'],
      ['verify', 'running'],
      ['finish', 'pending'],
    ]);
    expect(raised.ru).toBe(2000);
    expect(recovered.state).toBe('succeeded');
    expect(recovered.steps.find((s) => s.name === 'verify')!.output).toMatchObject({
      recovered: true,
      closedBy: 'signal',
      value: 20,
    });
    expect(lowering.outcome).toBe('started');
    expect(lowered.state).toBe('succeeded');
    expect(h.estate().ru).toBe(1000);
    expect(tooSoon.find((r) => r.playbook === 'orders-ru')).toMatchObject({ outcome: 'tooRecent' });
    expect(again.find((r) => r.playbook === 'orders-ru')).toMatchObject({ outcome: 'atFloor' });

    const audit = await h.stores.audit.query({ since: START, until: h.sandbox.clock.now(), limit: 500 });
    const raise = audit.find((r) => r.action === 'remediation.raise')!;
    expect(raise).toMatchObject({
      outcome: 'succeeded',
      runId,
      target: `${ACCOUNT_ID}/sqlDatabases/orders/sqlContainers/orders`.toLowerCase(),
      before: { value: 1000, unit: 'RU/s (autoscale max)', playbook: 'orders-ru' },
      after: { value: 2000, applied: true },
    });
    expect(raise.reason).toMatch(
      /alert cosmos-ru-orders \(Sev2\) fired at .*: NormalizedRUConsumption was 100/,
    );
    expect(audit.find((r) => r.action === 'remediation.lower')).toMatchObject({
      outcome: 'succeeded',
      before: { value: 2000 },
      after: { value: 1000 },
      reason: expect.stringMatching(/NormalizedRUConsumption stayed below 40 for 15 min \(highest 20\)/),
    });
    expect(audit.filter((r) => r.action === 'alert.receive')).toHaveLength(1);
    const titles = h.notices().map((n) => n.title);
    expect(titles).toEqual([
      expect.stringMatching(
        /^Raised container orders in database orders of Cosmos DB account cosmos-remed: 1000 → 2000 RU\/s/,
      ),
      'Recovered: orders-ru (NormalizedRUConsumption 20)',
      expect.stringMatching(/^Lowered container orders .*: 2000 → 1000 RU\/s/),
    ]);
  });
});
