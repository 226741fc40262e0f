import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/lib/core/errors';
import { clearRegisteredSecrets, registerSecret } from '../../../src/lib/core/redact';
import type { AuditRecord } from '../../../src/lib/ports/state';
import { freshStores, TestClock } from './helpers';

function record(overrides: Partial<AuditRecord> = {}): AuditRecord {
  return {
    id: 'rec-1',
    time: new Date('2026-11-27T10:00:00.000Z'),
    actor: 'system:eventgrid',
    action: 'secret.nearExpiry.notify',
    target: 'vaults/kv1/secrets/cosmos-key',
    outcome: 'succeeded',
    correlationId: 'corr-1',
    ...overrides,
  };
}

describe('TableAuditLog', () => {
  it('appends a record and reads it back with its JSON before / after', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T12:00:00.000Z'));
    const { audit } = await freshStores(clock);
    const rec = record({
      before: { version: 'v1' },
      after: { version: 'v2', tags: { a: '1' } },
      runId: 'run-1',
      reason: 'why',
    });

    // Act
    await audit.append(rec);
    const found = await audit.query({});

    // Assess
    expect(found).toEqual([rec]);
  });

  it('treats a repeat of the same id as a no-op, never an overwrite', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T12:00:00.000Z'));
    const { audit } = await freshStores(clock);
    await audit.append(record({ outcome: 'succeeded', after: { n: 1 } }));

    // Act: same id, same day, different content and time
    await audit.append(record({ outcome: 'failed', after: { n: 2 } }));
    await audit.append(record({ time: new Date('2026-11-27T11:00:00.000Z'), outcome: 'failed' }));
    const found = await audit.query({});

    // Assess
    expect(found).toHaveLength(1);
    expect(found[0]?.outcome).toBe('succeeded');
    expect(found[0]?.after).toEqual({ n: 1 });
  });

  it('treats a repeat of the same id the next day (a retry across midnight) as a no-op', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-28T12:00:00.000Z'));
    const { audit } = await freshStores(clock);
    await audit.append(record({ id: 'midnight', time: new Date('2026-11-27T23:59:59.000Z') }));

    // Act
    await audit.append(
      record({ id: 'midnight', time: new Date('2026-11-28T00:00:05.000Z'), outcome: 'failed' }),
    );

    // Assess
    const found = await audit.query({ since: new Date('2026-11-27T00:00:00.000Z') });
    expect(found.map((r) => [r.id, r.outcome])).toEqual([['midnight', 'succeeded']]);
  });

  it('queries by time window across day partitions and by target, oldest first, with a limit', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-30T00:00:00.000Z'));
    const { audit } = await freshStores(clock);
    const times = [
      '2026-11-25T23:59:59.999Z',
      '2026-11-26T08:00:00.000Z',
      '2026-11-27T09:00:00.000Z',
      '2026-11-28T00:00:00.000Z',
    ];
    // Appended out of order on purpose: the order comes from the keys, not from insertion.
    for (const [i, time] of [...times.entries()].reverse()) {
      await audit.append(
        record({ id: `r${i}`, time: new Date(time), target: i % 2 === 0 ? 'a/b' : "o'neil/x" }),
      );
    }

    // Act
    const window = await audit.query({
      since: new Date('2026-11-26T00:00:00.000Z'),
      until: new Date('2026-11-28T00:00:00.000Z'),
    });
    const byTarget = await audit.query({ since: new Date('2026-11-25T00:00:00.000Z'), target: "o'neil/x" });
    const limited = await audit.query({ since: new Date('2026-11-25T00:00:00.000Z'), limit: 2 });

    // Assess
    expect(window.map((r) => r.id)).toEqual(['r1', 'r2', 'r3']);
    expect(byTarget.map((r) => r.id)).toEqual(['r1', 'r3']);
    expect(limited.map((r) => r.id)).toEqual(['r0', 'r1']);
  });

  it('redacts secrets in before / after as a second line of defence', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T12:00:00.000Z'));
    const { audit } = await freshStores(clock);
    registerSecret('s3cr3t-value-xyz');

    // Act
    await audit.append(
      record({ before: { password: 'hunter22', note: 'got s3cr3t-value-xyz' }, after: { ok: true } }),
    );
    const [found] = await audit.query({});
    clearRegisteredSecrets();

    // Assess
    expect(JSON.stringify(found)).not.toContain('hunter22');
    expect(JSON.stringify(found)).not.toContain('s3cr3t-value-xyz');
    expect(found?.before).toEqual({ password: '[REDACTED]', note: 'got [REDACTED]' });
  });

  it('stores an oversized before / after as valid JSON with a truncation marker', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T12:00:00.000Z'));
    const { audit } = await freshStores(clock);
    const big = { items: Array.from({ length: 5000 }, (_, i) => `item-"${i}"-${'x'.repeat(20)}`) };

    // Act
    await audit.append(record({ after: big }));
    const [found] = await audit.query({});

    // Assess
    expect(found?.after).toMatchObject({ _truncated: true, originalLength: JSON.stringify(big).length });
    expect(JSON.stringify(found?.after).length).toBeLessThanOrEqual(32 * 1024);
  });

  it('rejects an invalid record or query and stores nothing', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-11-27T12:00:00.000Z'));
    const { audit } = await freshStores(clock);

    // Act
    const badRecord = audit.append(record({ actor: '', outcome: 'maybe' as never }));
    const badQuery = audit.query({
      since: new Date('2026-11-28T00:00:00Z'),
      until: new Date('2026-11-27T00:00:00Z'),
    });

    // Assess
    await expect(badRecord).rejects.toBeInstanceOf(ValidationError);
    await expect(badQuery).rejects.toBeInstanceOf(ValidationError);
    expect(await audit.query({})).toEqual([]);
  });
});
