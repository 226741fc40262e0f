import { afterEach, describe, expect, it } from 'vitest';
import { TransientError } from '../../../src/lib/core/errors';
import { clearPendingCompletions, runOnce } from '../../../src/lib/core/once';
import { sendToChannelsOnce } from '../../../src/lib/notify/sendOnce';
import type { ChannelResult, Notification } from '../../../src/lib/ports/notifier';
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

/** One attempt of a notifying use case: the sends inside `runOnce`, failing while a channel failed transiently. */
function attempt(
  store: MemoryIdempotency,
  notifier: RecordingNotifier,
  attemptId: string,
  channels: string[],
) {
  return runOnce<ChannelResult[]>(
    store,
    'k',
    { owner: attemptId, ttlMs: 3_600_000, leaseMs: 600_000, busyMessage: 'busy', summarize: (r) => r },
    async (once) => {
      const results = await sendToChannelsOnce(notification, channels, { notifier }, once, {});
      if (results.some((r) => r.status === 'failed' && r.retryable)) throw new TransientError('retry me');
      return results;
    },
  );
}

describe('sendToChannelsOnce', () => {
  afterEach(() => clearPendingCompletions());

  it('never sends twice when a send succeeded but its record failed: the retry records it', async () => {
    // Prepare
    const store = new MemoryIdempotency(new TestClock(new Date('2026-01-01T00:00:00Z')));
    const notifier = new RecordingNotifier();
    for (let i = 0; i < 3; i++) store.completeFailures.push(new TransientError('table storage unavailable'));

    // Act
    const first = await attempt(store, notifier, 'a1', ['ops-teams']).catch((e: unknown) => e);
    const retry = await attempt(store, notifier, 'a2', ['ops-teams']);

    // Assess
    expect(first).toMatchObject({ code: 'CompletionPending' });
    expect(retry).toEqual({ status: 'duplicate', previous: [{ channel: 'ops-teams', status: 'sent' }] });
    expect(notifier.sent).toHaveLength(1);
  });

  it('keeps what was sent when a channel fails transiently, and the retry sends to that channel only', async () => {
    // Prepare
    const store = new MemoryIdempotency(new TestClock(new Date('2026-01-01T00:00:00Z')));
    const notifier = new RecordingNotifier();
    notifier.failures.set('ops-teams', [{ retryable: true }]);

    // Act
    const first = await attempt(store, notifier, 'a1', ['ops-events', 'ops-teams']).catch((e: unknown) => e);
    const retry = await attempt(store, notifier, 'a2', ['ops-events', 'ops-teams']);

    // Assess
    expect(first).toBeInstanceOf(TransientError);
    expect(retry).toMatchObject({ status: 'done' });
    expect(notifier.sent.map((s) => s.channel)).toEqual(['ops-events', 'ops-teams']);
  });

  it('costs no storage call of its own: the key is claimed and completed once for all channels', async () => {
    // Prepare
    const store = new MemoryIdempotency(new TestClock(new Date('2026-01-01T00:00:00Z')));
    const notifier = new RecordingNotifier();

    // Act
    await attempt(store, notifier, 'a1', ['ops-events', 'ops-teams', 'pager']);

    // Assess
    expect(store.completeCalls).toBe(1);
    expect(notifier.sent).toHaveLength(3);
  });
});
