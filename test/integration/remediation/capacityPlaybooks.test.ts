/**
 * `servicebus-scale-messaging-units` and `scale-consumers` through the app's real composition root
 * on the sandbox: queue depth → alert → scale up → depth drops → (units) scale back.
 */
import { describe, expect, it } from 'vitest';
import { newId } from '../../../src/lib/core/ids';
import { silentLogger } from '../../../src/lib/core/logging';
import { scaleBackPlaybooks } from '../../../src/lib/remediation/scaleBack';
import { harness, MINUTE, NAMESPACE_ID, over, START } from './support';

const depth = { resourceId: NAMESPACE_ID, metric: 'ActiveMessages', dimensions: { EntityName: 'orders' } };
const timer = () => ({ actor: 'system:timer', correlationId: newId(), attemptId: newId() });

describe('queue depth playbooks on the sandbox', () => {
  it('doubles the messaging units on a backlog, waits for the namespace, and halves them once the queue stayed short', async () => {
    // Prepare: a backlog until +30 min, then a short queue.
    const h = await harness();
    const drop = START.getTime() + 30 * MINUTE;
    h.sandbox.monitor.metrics.setSeries(depth, { fn: (at) => (at.getTime() < drop ? 5000 : 50) });
    await h.sandbox.advance({ minutes: 10 });

    // Act
    const accepted = await h.post({
      rule: 'sb-backlog-orders',
      target: NAMESPACE_ID,
      metric: 'ActiveMessages',
      value: 5000,
    });
    const runId = (accepted as { runId: string }).runId;
    await h.until(runId, (r) => r.state === 'waiting' || over(r));
    const raised = h.estate().units;
    await h.sandbox.advance({ minutes: 25 });
    const recovered = await h.until(runId, over);
    await h.sandbox.advance({ minutes: 25 });
    const reports = await scaleBackPlaybooks(h.deps.remediation(silentLogger), timer());
    const lowering = reports.find((r) => r.playbook === 'orders-units')!;
    await h.until(lowering.runId!, over);

    // Assess
    expect(accepted).toMatchObject({ status: 'handled', playbook: 'orders-units' });
    expect(raised).toBe(2);
    expect(recovered.steps.find((s) => s.name === 'verify')?.output).toMatchObject({
      recovered: true,
      value: 50,
    });
    expect(lowering.outcome).toBe('started');
    expect(h.estate().units).toBe(1);
    // The workers playbook has no scale-back: the timer leaves it alone.
    expect(reports.map((r) => r.playbook)).not.toContain('orders-workers');
    const audit = await h.stores.audit.query({ since: START, until: h.sandbox.clock.now(), limit: 500 });
    expect(
      audit
        .filter((r) => r.action.startsWith('remediation.') && r.outcome === 'succeeded')
        .map((r) => [r.action, r.before?.value, r.after?.value]),
    ).toEqual([
      ['remediation.raise', 1, 2],
      ['remediation.verify', undefined, 50],
      ['remediation.lower', 2, 1],
    ]);
  });

  it('raises the worker app max replicas by its step, within the ceiling; a new revision serves', async () => {
    // Prepare
    const h = await harness();
    h.sandbox.monitor.metrics.setSeries(depth, { value: 5000 });
    await h.sandbox.advance({ minutes: 10 });
    const revision = () =>
      h.sandbox.estate().arm.containerApps.find((a) => a.name === 'ca-orders-worker')!.revision;
    const before = revision();

    // Act
    const accepted = await h.post({
      rule: 'sb-backlog-orders-workers',
      target: NAMESPACE_ID,
      metric: 'ActiveMessages',
      value: 5000,
    });
    await h.until((accepted as { runId: string }).runId, (r) => r.state === 'waiting' || over(r));

    // Assess
    expect(accepted).toMatchObject({ playbook: 'orders-workers' });
    expect(h.estate().replicas).toBe(4);
    expect(revision()).not.toBe(before);
    expect(h.notices()[0]?.title).toBe('Raised Container App ca-orders-worker: 2 → 4 max replicas');
  });
});
