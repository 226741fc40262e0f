import { describe, expect, it } from 'vitest';
import { type CheckDeps, configuredChecks, runCheck } from '../../../src/lib/checks/runCheck';
import { parsePolicy } from '../../../src/lib/config/policy';
import { NotFoundError, TransientError } from '../../../src/lib/core/errors';
import { createLogger } from '../../../src/lib/core/logging';
import {
  MemoryAudit,
  MemoryIdempotency,
  MemoryVault,
  RecordingNotifier,
  TestClock,
} from '../../support/fakes';
import { FakeCosmos, FakeKubernetes, FakeQuotas, MemoryReports } from './fakes';

const SUB = '00000000-0000-0000-0000-000000000000';
const POLICY = parsePolicy(`version: 1
notifications:
  defaults: [ops]
  channels: [{ name: ops, type: eventGrid }, { name: teams, type: teams, urlSetting: TEAMS_URL }]
checks:
  quotaHeadroom:
    notify: [teams]
    quotas: [{ subscriptionId: ${SUB}, provider: Microsoft.Compute, location: westeurope, names: [cores] }]
  credentialHygiene: { vaults: [kv-one] }
`);

function deps(usage: number) {
  const clock = new TestClock(new Date('2026-01-01T05:30:00Z'));
  const quotas = new FakeQuotas();
  quotas.scopes.set('Microsoft.Compute/westeurope', [
    {
      name: 'cores',
      displayName: 'Total Regional vCPUs',
      usage,
      limit: 100,
      unit: 'Count',
      adjustable: true,
    },
  ]);
  const d: CheckDeps & { notifier: RecordingNotifier; reports: MemoryReports; audit: MemoryAudit } = {
    policy: POLICY,
    clock,
    logger: createLogger({ info: () => {}, warn: () => {}, error: () => {}, debug: () => {} } as never),
    reports: new MemoryReports(),
    audit: new MemoryAudit(),
    notifier: new RecordingNotifier(),
    idempotency: new MemoryIdempotency(clock),
    environment: 'test',
    idempotencyTtlMs: 3_600_000,
    claimLeaseMs: 60_000,
    cosmos: new FakeCosmos(),
    kubernetes: new FakeKubernetes(),
    quotas,
    vault: new MemoryVault(),
    runtime: { node: '22.12.0' },
  };
  return { d, clock, quotas };
}

const request = { trigger: 'timer' as const, actor: 'system:timer', correlationId: 'c-1' };

describe('running a check', () => {
  it('stores the report, audits it, and tells nobody when nothing needs a person', async () => {
    // Prepare
    const { d } = deps(10);

    // Act
    const report = await runCheck('quotaHeadroom', request, d);

    // Assess
    expect(report).toMatchObject({
      check: 'quotaHeadroom',
      status: 'ok',
      needsPerson: false,
      counts: { ok: 1, warning: 0, failed: 0, unknown: 0 },
      trigger: 'timer',
      omittedFindings: 0,
    });
    expect(report.id).toMatch(/^20260101T053000000Z-[0-9a-f]{6}$/);
    expect(d.reports.saved).toEqual([report]);
    expect(d.audit.records).toMatchObject([
      {
        action: 'check.run',
        target: 'checks/quotaHeadroom',
        outcome: 'succeeded',
        after: { reportId: report.id },
      },
    ]);
    expect(d.notifier.sent).toEqual([]);
  });

  it("notifies the check's channels once a day per set of problems, and again when the problems change or the day does", async () => {
    // Prepare
    const { d, clock, quotas } = deps(97);

    // Act
    const first = await runCheck('quotaHeadroom', request, d);
    clock.advance(3_600_000);
    await runCheck('quotaHeadroom', request, d);
    quotas.scopes.set('Microsoft.Compute/westeurope', new TransientError('503'));
    await runCheck('quotaHeadroom', request, d);
    clock.advance(86_400_000);
    quotas.scopes.set('Microsoft.Compute/westeurope', [
      {
        name: 'cores',
        displayName: 'Total Regional vCPUs',
        usage: 97,
        limit: 100,
        unit: 'Count',
        adjustable: true,
      },
    ]);
    await runCheck('quotaHeadroom', request, d);

    // Assess
    expect(first.status).toBe('failed');
    expect(d.reports.saved).toHaveLength(4);
    expect(d.notifier.sent.map((s) => [s.channel, s.notification.type, s.notification.severity])).toEqual([
      ['teams', 'com.stampkeeper.check.failed', 'critical'],
      ['teams', 'com.stampkeeper.check.failed', 'critical'], // the quota became unreadable: another problem
      ['teams', 'com.stampkeeper.check.failed', 'critical'], // the next day
    ]);
    const notice = d.notifier.sent[0]!.notification;
    expect(notice.summary).toContain('Request a limit of 194 for cores in westeurope');
    expect(notice.facts).toMatchObject({ Check: 'quotaHeadroom', Report: first.id, Failed: '1' });
    expect(d.audit.records.map((r) => r.outcome)).toEqual(['reported', 'reported', 'reported', 'reported']);
  });

  it('refuses a check the policy does not configure, and keeps nothing when the report cannot be stored', async () => {
    // Prepare
    const { d } = deps(97);
    d.reports.failNext = new TransientError('storage down');

    // Act
    const unknown = await runCheck('backupReadiness', request, d).catch((e: unknown) => e);
    const unstored = await runCheck('quotaHeadroom', request, d).catch((e: unknown) => e);

    // Assess
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect(unstored).toBeInstanceOf(TransientError);
    expect(d.audit.records).toEqual([]);
    expect(d.notifier.sent).toEqual([]);
    expect(configuredChecks(POLICY)).toEqual(['quotaHeadroom', 'credentialHygiene']);
  });
});
