import { afterEach, describe, expect, it } from 'vitest';
import { TransientError } from '../../../src/lib/core/errors';
import { clearPendingCompletions } from '../../../src/lib/core/once';
import { sendToChannelsOnce } from '../../../src/lib/notify/sendOnce';
import type { Notification } from '../../../src/lib/ports/notifier';
import { MemoryIdempotency, RecordingNotifier, TestClock } from '../../support/fakes';

const notification: Notification = {
  id: 'n-1',
  type: 'com.stampkeeper.secret.nearExpiry',
  subject: 'vaults/kv/secrets/db-password',
  severity: 'warning',
  title: 'Secret near expiry: db-password in kv',
  summary: 'expires soon',
  facts: { Secret: 'db-password' },
  correlationId: 'c',
  time: new Date('2026-01-01T00:00:00Z'),
  data: {},
};

describe('sendToChannelsOnce', () => {
  afterEach(() => clearPendingCompletions());

  it('never sends twice when a send succeeded but its record failed: the retry records it', async () => {
    // Prepare
    const store = new MemoryIdempotency(new TestClock(new Date('2026-01-01T00:00:00Z')));
    const notifier = new RecordingNotifier();
    const deps = { idempotency: store, notifier, idempotencyTtlMs: 3_600_000, claimLeaseMs: 600_000 };
    for (let i = 0; i < 3; i++) store.completeFailures.push(new TransientError('table storage unavailable'));

    // Act
    const first = await sendToChannelsOnce(notification, ['ops-teams'], 'k', deps, { attemptId: 'a1' });
    const retry = await sendToChannelsOnce(notification, ['ops-teams'], 'k', deps, { attemptId: 'a2' });

    // Assess
    expect(first).toEqual([{ channel: 'ops-teams', status: 'sent' }]);
    expect(retry).toEqual([{ channel: 'ops-teams', status: 'sent' }]);
    expect(notifier.sent).toHaveLength(1);
  });

  it('leaves a transiently failed channel free and re-sends only it', async () => {
    // Prepare
    const store = new MemoryIdempotency(new TestClock(new Date('2026-01-01T00:00:00Z')));
    const notifier = new RecordingNotifier();
    notifier.failures.set('ops-teams', [{ retryable: true }]);
    const deps = { idempotency: store, notifier, idempotencyTtlMs: 3_600_000, claimLeaseMs: 600_000 };

    // Act
    const first = await sendToChannelsOnce(notification, ['ops-events', 'ops-teams'], 'k', deps, {
      attemptId: 'a1',
    });
    const retry = await sendToChannelsOnce(notification, ['ops-events', 'ops-teams'], 'k', deps, {
      attemptId: 'a2',
    });

    // Assess
    expect(first.map((r) => r.status)).toEqual(['sent', 'failed']);
    expect(retry.map((r) => r.status)).toEqual(['sent', 'sent']);
    expect(notifier.sent.map((s) => s.channel)).toEqual(['ops-events', 'ops-teams']);
  });
});
