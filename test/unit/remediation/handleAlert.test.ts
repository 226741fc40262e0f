import { beforeEach, describe, expect, it } from 'vitest';
import { InProgressError, TransientError, type ValidationError } from '../../../src/lib/core/errors';
import { silentLogger } from '../../../src/lib/core/logging';
import { type MonitorAlert, parseCommonAlert } from '../../../src/lib/remediation/alert';
import {
  type AlertDeps,
  alertKey,
  handleAlert,
  recordRejectedAlert,
} from '../../../src/lib/remediation/handleAlert';
import {
  MemoryAudit,
  MemoryIdempotency,
  MemoryRejections,
  RecordingNotifier,
  TestClock,
} from '../../support/fakes';
import { commonAlert, type EssentialsOverrides, sampleAlert } from './alertFactory';

const HOUR = 3_600_000;
const NOW = new Date('2026-11-27T12:00:00Z');
const VM =
  '/subscriptions/<subscription ID>/resourcegroups/pipelinealertrg/providers/microsoft.compute/virtualmachines/wcus-r2-gen2';

/** The published metric sample, fired (or resolved) with the given essentials. */
function metricAlert(o: EssentialsOverrides = {}): MonitorAlert {
  return parseCommonAlert(commonAlert({ monitorCondition: 'Fired', ...o }));
}

describe('handleAlert', () => {
  let clock: TestClock;
  let audit: MemoryAudit;
  let idempotency: MemoryIdempotency;
  let notifier: RecordingNotifier;
  let deps: AlertDeps;
  let n = 0;
  const ctx = () => ({
    actor: 'system:azure-monitor',
    correlationId: `corr-${n}`,
    attemptId: `attempt-${++n}`,
  });

  beforeEach(() => {
    clock = new TestClock(NOW);
    audit = new MemoryAudit();
    idempotency = new MemoryIdempotency(clock);
    notifier = new RecordingNotifier();
    deps = {
      audit,
      idempotency,
      rejections: new MemoryRejections(audit),
      claimLeaseMs: 12 * 60_000,
      notifier,
      clock,
      logger: silentLogger,
      defaultChannels: ['ops-events', 'ops-teams'],
      environment: 'test',
      dryRun: false,
      idempotencyTtlMs: 72 * HOUR,
      // No playbook: these alerts are reported, no run is involved (playbook alerts are tested on
      // the real engine: test/integration/remediation).
      playbooks: [],
      playbookChannels: () => [],
      runs: {
        startRun: () => Promise.reject(new Error('no run without a playbook')),
        runsForTarget: () => Promise.reject(new Error('no run without a playbook')),
      },
    };
  });

  it('reports an alert no playbook matches: one audit record, one notification per default channel', async () => {
    // Prepare
    const alert = metricAlert({ severity: 'Sev2' });

    // Act
    const result = await handleAlert(alert, deps, ctx());

    // Assess
    expect(result).toMatchObject({ status: 'handled', outcome: 'reported' });
    expect(audit.records).toHaveLength(1);
    expect(audit.records[0]).toMatchObject({
      action: 'alert.receive',
      // ARM ids are case-insensitive: the target is lower-cased so audit queries match one spelling.
      target: VM.toLowerCase(),
      outcome: 'reported',
      actor: 'system:azure-monitor',
      before: { alertRule: 'WCUS-R2-Gen2', severity: 'Sev2', monitorCondition: 'Fired' },
    });
    expect(notifier.sent.map((s) => s.channel)).toEqual(['ops-events', 'ops-teams']);
    const sent = notifier.sent[0]!.notification;
    expect(sent).toMatchObject({
      type: 'com.stampkeeper.alert.fired',
      severity: 'warning',
      subject: VM.toLowerCase(),
    });
    expect(sent.facts).toMatchObject({
      Rule: 'WCUS-R2-Gen2',
      Severity: 'Sev2',
      Condition: 'Fired',
      Resource: VM,
      Metric: 'Percentage CPU',
      Value: '7.727',
      Threshold: 'GreaterThan 25',
    });
    expect(sent.title).toBe('Alert fired: WCUS-R2-Gen2 (Sev2) on wcus-r2-gen2');
  });

  it('handles the same alert delivered twice once (action groups retry)', async () => {
    // Prepare
    const alert = metricAlert();
    const first = await handleAlert(alert, deps, ctx());

    // Act
    const second = await handleAlert(metricAlert(), deps, ctx());

    // Assess
    expect(second).toEqual({
      status: 'duplicate',
      previous: {
        outcome: 'reported',
        auditId: (first as { auditId: string }).auditId,
        playbook: null,
        runId: null,
      },
    });
    expect(audit.records).toHaveLength(1);
    expect(notifier.sent).toHaveLength(2);
  });

  it('treats the alert id case-insensitively (ARM ids) for de-duplication', async () => {
    // Prepare
    const alert = metricAlert();
    await handleAlert(alert, deps, ctx());

    // Act
    const again = await handleAlert({ ...alert, alertId: alert.alertId.toUpperCase() }, deps, ctx());

    // Assess
    expect(again.status).toBe('duplicate');
  });

  it('handles Fired and then Resolved of the same alert instance, each once', async () => {
    // Act
    await handleAlert(metricAlert({ severity: 'Sev0' }), deps, ctx());
    const resolved = await handleAlert(
      parseCommonAlert(commonAlert({ severity: 'Sev0', monitorCondition: 'Resolved' })),
      deps,
      ctx(),
    );

    // Assess
    expect(resolved).toMatchObject({ status: 'handled', outcome: 'reported' });
    expect(audit.records.map((r) => r.before?.monitorCondition)).toEqual(['Fired', 'Resolved']);
    const [fired, , done] = notifier.sent.map((s) => s.notification);
    expect(fired).toMatchObject({ severity: 'critical', type: 'com.stampkeeper.alert.fired' });
    expect(done).toMatchObject({ severity: 'info', type: 'com.stampkeeper.alert.resolved' });
    expect(done!.facts.Resolved).toBe('2019-03-22T14:03:16.224Z');
  });

  it.each([
    ['Sev0', 'critical'],
    ['Sev1', 'critical'],
    ['Sev2', 'warning'],
    ['Sev3', 'info'],
    ['Sev4', 'info'],
  ])('maps a fired %s alert to a %s notification', async (severity, expected) => {
    // Act
    await handleAlert(metricAlert({ severity }), deps, ctx());

    // Assess
    expect(notifier.sent[0]!.notification.severity).toBe(expected);
  });

  it('plans without sending in dry run, and audits the plan', async () => {
    // Prepare
    deps.dryRun = true;

    // Act
    const result = await handleAlert(metricAlert(), deps, ctx());

    // Assess
    expect(result).toMatchObject({ status: 'handled', outcome: 'planned' });
    expect(notifier.sent).toHaveLength(0);
    expect(audit.records[0]).toMatchObject({
      outcome: 'planned',
      after: { channels: ['ops-events', 'ops-teams'] },
    });
  });

  it('honours a dry run asked by the caller even when the app is live', async () => {
    // Act
    const result = await handleAlert(metricAlert(), deps, { ...ctx(), dryRun: true });

    // Assess
    expect(result).toMatchObject({ outcome: 'planned' });
    expect(notifier.sent).toHaveLength(0);
  });

  it('acts on an alert after a dry run of it: the dry run is remembered apart', async () => {
    await handleAlert(metricAlert(), deps, { ...ctx(), dryRun: true });
    const real = await handleAlert(metricAlert(), deps, ctx());
    expect(real).toMatchObject({ status: 'handled', outcome: 'reported' });
    expect(notifier.sent.map((s) => s.channel).sort()).toEqual(['ops-events', 'ops-teams']);
    expect(audit.records.map((r) => r.outcome).sort()).toEqual(['planned', 'reported']);
  });

  it('on a transient channel failure throws retryable; the retry re-sends only that channel', async () => {
    // Prepare
    notifier.failures.set('ops-teams', [{ retryable: true }]);
    await expect(handleAlert(metricAlert(), deps, ctx())).rejects.toBeInstanceOf(TransientError);
    expect(audit.records).toHaveLength(0);

    // Act
    const retry = await handleAlert(metricAlert(), deps, ctx());

    // Assess
    expect(retry).toMatchObject({ status: 'handled', outcome: 'reported' });
    expect(notifier.sent.map((s) => s.channel)).toEqual(['ops-events', 'ops-teams']);
    expect(audit.records).toHaveLength(1);
  });

  it('records a channel that failed for good as a failed outcome, without retrying it', async () => {
    // Prepare
    notifier.failures.set('ops-teams', [{ retryable: false }]);

    // Act
    const result = await handleAlert(metricAlert(), deps, ctx());

    // Assess
    expect(result).toMatchObject({ outcome: 'failed' });
    expect(audit.records[0]!.after).toMatchObject({
      channels: [
        { channel: 'ops-events', status: 'sent' },
        { channel: 'ops-teams', status: 'failed', retryable: false },
      ],
    });
  });

  it('answers a retryable conflict while another attempt holds the alert', async () => {
    // Prepare
    const alert = metricAlert();
    await idempotency.claim(alertKey(alert), { owner: 'someone-else', leaseMs: 60_000 });

    // Act
    const attempt = handleAlert(alert, deps, ctx());

    // Assess
    await expect(attempt).rejects.toBeInstanceOf(InProgressError);
    expect(notifier.sent).toHaveLength(0);
  });

  it('targets the alert rule when the alert names no resource', async () => {
    // Act
    await handleAlert(metricAlert({ targets: [] }), deps, ctx());

    // Assess
    expect(audit.records[0]!.target).toBe('alertRules/WCUS-R2-Gen2');
    expect(notifier.sent[0]!.notification.facts.Resource).toBe('none');
  });

  it('reports an activity log alert with its operation, and a log alert with its result count', async () => {
    // Prepare
    const activity = parseCommonAlert(sampleAlert('test-action-activity-log-administrative.json'));
    const log = parseCommonAlert(sampleAlert('test-action-log-alerts-v1-numresults.json'));

    // Act
    await handleAlert(activity, deps, ctx());
    await handleAlert({ ...log, alertId: `${log.alertId}-log` }, deps, ctx());

    // Assess
    const [a, , l] = notifier.sent.map((s) => s.notification);
    expect(a!.facts.Operation).toBe('Microsoft.Compute/virtualMachines/restart/action');
    expect(a!.subject).toBe(
      '/subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups/test-rg/providers/microsoft.compute/virtualmachines/test-vm',
    );
    expect(l!.facts).toMatchObject({ Value: '1', Threshold: 'GreaterThan 0' });
    expect(JSON.stringify(audit.records)).not.toContain('Heartbeat');
  });
});

describe('recordRejectedAlert', () => {
  const rejectionOf = (payload: unknown): ValidationError => {
    try {
      parseCommonAlert(payload);
    } catch (e) {
      return e as ValidationError;
    }
    throw new Error('expected a ValidationError');
  };

  it('audits the first rejection with every problem and none of the payload', async () => {
    // Prepare
    const audit = new MemoryAudit();
    const rejections = new MemoryRejections(audit);
    const payload = commonAlert({ severity: 'Sev9', description: 'payload-marker-xyz' });

    // Act
    const result = await recordRejectedAlert(
      payload,
      rejectionOf(payload),
      { rejections, clock: new TestClock(NOW), logger: silentLogger },
      { actor: 'system:azure-monitor', correlationId: 'corr-x' },
    );

    // Assess
    expect(result.reason).toBe('invalid-alert');
    expect(audit.records).toHaveLength(1);
    expect(audit.records[0]).toMatchObject({
      id: result.auditId,
      action: 'alert.reject',
      outcome: 'rejected',
      target: 'alerts/azure-monitor',
      reason: "data.essentials.severity: 'Sev9' is not one of Sev0, Sev1, Sev2, Sev3, Sev4",
    });
    expect(JSON.stringify(audit.records)).not.toContain('payload-marker-xyz');
  });

  it('counts a storm of bad deliveries in one bucket per reason, not one record each', async () => {
    // Prepare
    const audit = new MemoryAudit();
    const rejections = new MemoryRejections(audit);
    const deps = { rejections, clock: new TestClock(NOW), logger: silentLogger };
    const bad = commonAlert({ severity: 'Sev9' });
    const notCommon = { ...commonAlert(), schemaId: 'AzureMonitorMetricAlert' };

    // Act
    for (let i = 0; i < 30; i++)
      await recordRejectedAlert(bad, rejectionOf(bad), deps, { actor: 'a', correlationId: `c${i}` });
    await recordRejectedAlert(notCommon, rejectionOf(notCommon), deps, { actor: 'a', correlationId: 'x' });

    // Assess
    expect(audit.records).toHaveLength(2);
    expect([...rejections.buckets.values()].map((b) => [b.reason, b.count]).sort()).toEqual([
      ['invalid-alert', 30],
      ['not-common-schema', 1],
    ]);
  });
});
