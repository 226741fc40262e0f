/**
 * Episodes of a target through the real intake and engine on the sandbox and Azurite: duplicated
 * and out-of-order Fired / Resolved, alerts joining the raise under way, the cooldown, the ceiling,
 * approval above the threshold, dry run, and notify-only playbooks.
 */
import { describe, expect, it } from 'vitest';
import { newId } from '../../../src/lib/core/ids';
import { silentLogger } from '../../../src/lib/core/logging';
import { ACCOUNT_ID, harness, MINUTE, over, remediationPolicy, START, SUB } from './support';

const series = {
  resourceId: ACCOUNT_ID,
  metric: 'NormalizedRUConsumption',
  dimensions: { DatabaseName: 'orders', CollectionName: 'orders' },
};
const alertId = () => `/subscriptions/${SUB}/providers/Microsoft.AlertsManagement/alerts/${newId()}`;
const stepOf = (run: { steps: Array<{ name: string; output?: unknown }> }, name: string) =>
  run.steps.find((s) => s.name === name)?.output as Record<string, unknown> | undefined;

describe('remediation episodes', () => {
  it('handles a duplicated Fired once, joins a second alert to the raise under way, and a Resolved closes it', async () => {
    // Prepare: always hot, so only the Resolved can close the episode.
    const h = await harness();
    h.sandbox.monitor.metrics.setSeries(series, { value: 100 });
    await h.sandbox.advance({ minutes: 10 });
    const first = alertId();

    // Act
    const fired = await h.post({ alertId: first, rule: 'cosmos-ru-orders' });
    const duplicate = await h.post({ alertId: first, rule: 'cosmos-ru-orders' });
    const runId = (fired as { runId: string }).runId;
    await h.until(runId, (r) => r.state === 'waiting');
    const other = await h.post({ alertId: alertId(), rule: 'cosmos-ru-orders' });
    await h.sandbox.advance({ minutes: 5 });
    const resolved = await h.post({ alertId: first, rule: 'cosmos-ru-orders', condition: 'Resolved' });
    const resolvedAgain = await h.post({ alertId: first, rule: 'cosmos-ru-orders', condition: 'Resolved' });
    await h.sandbox.advance({ minutes: 1 });
    const closed = await h.until(runId, over);

    // Assess
    expect(duplicate).toEqual({
      status: 'duplicate',
      previous: expect.objectContaining({ runId, playbook: 'orders-ru', outcome: 'succeeded' }),
    });
    expect(other).toMatchObject({ status: 'handled', runId });
    expect(resolved).toMatchObject({ status: 'handled', outcome: 'reported', runId });
    expect(resolvedAgain).toMatchObject({ status: 'duplicate' });
    expect(closed.state).toBe('succeeded');
    expect(stepOf(closed, 'verify')).toMatchObject({ recovered: true, closedBy: 'resolved' });
    expect(h.estate().ru).toBe(2000);
    const audit = await h.stores.audit.query({ since: START, until: h.sandbox.clock.now(), limit: 500 });
    expect(audit.filter((r) => r.action === 'remediation.raise')).toHaveLength(1);
    const joined = audit.find((r) => r.action === 'alert.receive' && r.after?.joined === true);
    expect(joined?.reason).toMatch(/joined the remediation run .* already under way/);
    expect(h.notices().map((n) => n.type)).toEqual([
      'com.stampkeeper.remediation.raised',
      'com.stampkeeper.alert.resolved',
    ]);
  });

  it('does not act on a Fired that arrives after its own Resolved', async () => {
    // Prepare
    const h = await harness();
    h.sandbox.monitor.metrics.setSeries(series, { value: 100 });
    await h.sandbox.advance({ minutes: 10 });
    const id = alertId();
    const firedAt = new Date(h.sandbox.clock.now().getTime() - 5 * MINUTE);

    // Act
    await h.post({ alertId: id, rule: 'cosmos-ru-orders', condition: 'Resolved', firedAt });
    const late = await h.post({ alertId: id, rule: 'cosmos-ru-orders', firedAt });
    const run = await h.until((late as { runId: string }).runId, over);

    // Assess
    expect(run.state).toBe('succeeded');
    expect(stepOf(run, 'plan')).toMatchObject({ decision: { act: false, code: 'resolved' } });
    expect(run.steps.map((s) => s.status)).toEqual(['done', 'skipped', 'skipped', 'done']);
    expect(h.estate().ru).toBe(1000);
  });
});

describe('remediation guardrails', () => {
  it('raises step by step to the ceiling, never within the cooldown, then holds with a warning', async () => {
    // Prepare: always hot; verification times out after 15 min each time.
    const h = await harness();
    h.sandbox.monitor.metrics.setSeries(series, { value: 100 });
    await h.sandbox.advance({ minutes: 10 });
    const episode = async () => {
      const accepted = await h.post({ alertId: alertId(), rule: 'cosmos-ru-orders' });
      const runId = (accepted as { runId: string }).runId;
      await h.until(runId, (r) => r.state === 'waiting' || over(r));
      await h.sandbox.advance({ minutes: 16 });
      return h.until(runId, over);
    };

    // Act
    const one = await episode(); // 1000 -> 2000, at +10 min
    const early = await episode(); // +26 min: 16 min later, cooldown 10 min passed -> 3000
    const atCeiling = await episode(); // 3000 is the ceiling

    // Assess
    expect(stepOf(one, 'act')).toMatchObject({ before: 1000, after: 2000, applied: true });
    expect(stepOf(one, 'verify')).toMatchObject({ recovered: false, closedBy: 'timeout' });
    expect(stepOf(early, 'act')).toMatchObject({ before: 2000, after: 3000 });
    expect(stepOf(atCeiling, 'plan')).toMatchObject({
      decision: { act: false, code: 'atCeiling', severity: 'warning' },
    });
    expect(h.estate().ru).toBe(3000);
    const types = h.notices().map((n) => n.type);
    expect(types.filter((t) => t === 'com.stampkeeper.remediation.raised')).toHaveLength(2);
    expect(types.filter((t) => t === 'com.stampkeeper.remediation.unrecovered')).toHaveLength(2);
    expect(types.at(-1)).toBe('com.stampkeeper.remediation.held');
  }, 90_000);

  it('holds within the cooldown, audited without a notification', async () => {
    // Prepare: the metric recovers right away, so the episode ends quickly.
    const h = await harness();
    h.sandbox.monitor.metrics.setSeries(series, { value: 20 });
    await h.sandbox.advance({ minutes: 10 });
    const first = await h.post({ alertId: alertId(), rule: 'cosmos-ru-orders' });
    const firstId = (first as { runId: string }).runId;
    await h.until(firstId, (r) => r.state === 'waiting' || over(r));
    await h.sandbox.advance({ minutes: 5 });
    await h.until(firstId, over);

    // Act: 5 minutes after the raise, the cooldown is 10
    const second = await h.post({ alertId: alertId(), rule: 'cosmos-ru-orders' });
    const held = await h.until((second as { runId: string }).runId, over);

    // Assess
    expect(stepOf(held, 'plan')).toMatchObject({ decision: { act: false, code: 'cooldown' } });
    expect(h.estate().ru).toBe(2000);
    const audit = await h.stores.audit.query({ since: START, until: h.sandbox.clock.now(), limit: 500 });
    expect(audit.find((r) => r.action === 'remediation.hold')).toMatchObject({
      outcome: 'skipped',
      reason: expect.stringMatching(/^cooldown: the last change \(raise 1000 → 2000/),
    });
    expect(h.notices().map((n) => n.type)).toEqual([
      'com.stampkeeper.remediation.raised',
      'com.stampkeeper.remediation.recovered',
    ]);
  });

  it('waits for a person above the approval threshold, then acts as the approver said', async () => {
    // Prepare
    const h = await harness(remediationPolicy({ cosmos: '    approvalAbove: 1000\n' }));
    h.sandbox.monitor.metrics.setSeries(series, { value: 100 });
    await h.sandbox.advance({ minutes: 10 });

    // Act
    const accepted = await h.post({ alertId: alertId(), rule: 'cosmos-ru-orders' });
    const runId = (accepted as { runId: string }).runId;
    const parked = await h.until(runId, (r) => r.state === 'awaiting-approval');
    const untouched = h.estate().ru;
    await h.deps.runs(silentLogger).approveRun(runId, { actor: 'user:oncall@contoso.com', comment: 'go' });
    const acting = await h.until(runId, (r) => r.state === 'waiting' || over(r));

    // Assess
    expect(parked.steps.find((s) => s.name === 'act')?.approval).toMatchObject({
      requestedOn: expect.any(Date),
    });
    expect(untouched).toBe(1000);
    expect(acting.steps.find((s) => s.name === 'act')?.approval).toMatchObject({
      decision: 'approved',
      decidedBy: 'user:oncall@contoso.com',
    });
    expect(h.estate().ru).toBe(2000);
  });

  it('plans, audits and notifies in dry run, and changes nothing', async () => {
    // Prepare
    const h = await harness(remediationPolicy({ cosmos: '    dryRun: true\n' }));
    h.sandbox.monitor.metrics.setSeries(series, { value: 100 });
    await h.sandbox.advance({ minutes: 10 });
    const puts = () => h.sandbox.requests().filter((r) => r.method !== 'GET' && r.service === 'arm').length;

    // Act
    const accepted = await h.post({ alertId: alertId(), rule: 'cosmos-ru-orders' });
    const run = await h.until((accepted as { runId: string }).runId, over);

    // Assess
    expect(run.dryRun).toBe(true);
    expect(stepOf(run, 'act')).toMatchObject({ applied: false, dryRun: true, before: 1000, after: 2000 });
    expect(h.estate().ru).toBe(1000);
    expect(puts()).toBe(0);
    const audit = await h.stores.audit.query({ since: START, until: h.sandbox.clock.now(), limit: 500 });
    expect(audit.find((r) => r.action === 'remediation.raise')).toMatchObject({ outcome: 'planned' });
    expect(h.notices()[0]?.title).toMatch(/^Would have raised container orders/);
  });

  it('routes a notify-only alert to the channels, changing nothing', async () => {
    // Prepare
    const h = await harness();

    // Act
    const accepted = await h.post({
      alertId: alertId(),
      rule: 'payments-latency',
      metric: 'ServerLatency',
      properties: { team: 'payments' },
    });
    const run = await h.until((accepted as { runId: string }).runId, over);

    // Assess
    expect(accepted).toMatchObject({ playbook: 'page-payments' });
    expect(run.state).toBe('succeeded');
    expect(h.notices()).toEqual([
      {
        type: 'com.stampkeeper.alert.fired',
        title: expect.stringMatching(/^Alert fired: payments-latency \(Sev2\)/),
      },
    ]);
    expect(h.sandbox.requests().filter((r) => r.service === 'arm')).toEqual([]);
  });
});
