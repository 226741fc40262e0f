import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/lib/core/errors';
import { createLogger } from '../../../src/lib/core/logging';
import { applyRetention } from '../../../src/lib/maintenance/applyRetention';
import type { CheckReport, Finding } from '../../../src/lib/ports/reports';
import { freshStores, TestClock } from './helpers';

function report(id: string, findings: Finding[] = [], check = 'quotaHeadroom'): CheckReport {
  const startedOn = `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T${id.slice(9, 11)}:${id.slice(11, 13)}:${id.slice(13, 15)}.${id.slice(15, 18)}Z`;
  return {
    id,
    check,
    status: findings.length ? 'attention' : 'ok',
    needsPerson: findings.length > 0,
    summary: `report ${id}`,
    counts: { ok: 0, warning: findings.length, failed: 0, unknown: 0 },
    startedOn,
    finishedOn: startedOn,
    trigger: 'timer',
    actor: 'system:timer',
    correlationId: 'c',
    findings,
    omittedFindings: 0,
  };
}

const finding = (i: number): Finding => ({
  subject: `Microsoft.Compute/westeurope/family${i}`,
  code: 'quota.usage',
  status: 'warning',
  title: `family ${i} at 90%`,
  detail: 'x'.repeat(400),
  facts: { usage: 90, limit: 100 },
  action: { summary: 'Request a limit of 180.', runbook: 'docs/runbooks/quota-increase.md' },
});

describe('TableReportStore on Azurite', () => {
  it('keeps reports newest first per check, reads the latest and one by id, a large report whole', async () => {
    // Prepare
    const stores = await freshStores(new TestClock());
    const big = report(
      '20260102T053000000Z-bbbbbb',
      Array.from({ length: 300 }, (_, i) => finding(i)),
    );

    // Act
    await stores.reports.save(report('20260101T053000000Z-aaaaaa'));
    await stores.reports.save(big);
    await stores.reports.save(report('20260103T053000000Z-cccccc', [], 'backupReadiness'));
    const latest = await stores.reports.latest('quotaHeadroom');
    const byId = await stores.reports.get('quotaHeadroom', '20260101T053000000Z-aaaaaa');
    const missing = await stores.reports.get('quotaHeadroom', '20260101T053000000Z-ffffff');
    const list = await stores.reports.list('quotaHeadroom', { limit: 10 });

    // Assess
    expect(JSON.stringify(big).length).toBeGreaterThan(100_000);
    expect(latest).toEqual(big);
    expect(byId?.summary).toBe('report 20260101T053000000Z-aaaaaa');
    expect(missing).toBeUndefined();
    expect(list.map((r) => r.id)).toEqual(['20260102T053000000Z-bbbbbb', '20260101T053000000Z-aaaaaa']);
    expect(list[0]).not.toHaveProperty('findings');
    expect(await stores.reports.latest('credentialHygiene')).toBeUndefined();
  });

  it('refuses a malformed id or check name before any call, and is purged by the retention sweep', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-06-01T00:00:00Z'));
    const stores = await freshStores(clock);
    await stores.reports.save(report('20260101T053000000Z-aaaaaa'));
    await stores.reports.save(report('20260530T053000000Z-bbbbbb'));

    // Act
    const badId = await stores.reports.get('quotaHeadroom', "x' or 1 eq 1").catch((e: unknown) => e);
    const badCheck = await stores.reports
      .list("q' or PartitionKey ne '", { limit: 1 })
      .catch((e: unknown) => e);
    const summary = await applyRetention(
      {
        audit: stores.audit,
        idempotency: stores.idempotency,
        leases: stores.leases,
        runs: stores.runs,
        reports: stores.reports,
        clock,
        logger: createLogger({ info: () => {}, warn: () => {}, error: () => {}, debug: () => {} } as never),
      },
      { auditRetentionDays: 30, correlationId: 'retention-1' },
    );

    // Assess
    expect(badId).toBeInstanceOf(ValidationError);
    expect(badCheck).toBeInstanceOf(ValidationError);
    expect(summary.results.reports).toEqual({ deleted: 1, more: false });
    expect((await stores.reports.list('quotaHeadroom', { limit: 10 })).map((r) => r.id)).toEqual([
      '20260530T053000000Z-bbbbbb',
    ]);
  });
});
