import { describe, expect, it } from 'vitest';
import { ConflictError } from '../../../src/lib/core/errors';
import { runOnce } from '../../../src/lib/core/once';
import { MemoryIdempotency, TestClock } from '../../support/fakes';

describe('runOnce', () => {
  const options = (owner: string) => ({
    owner,
    ttlMs: 60_000,
    busyMessage: 'busy',
    summarize: (n: number) => ({ n }),
  });

  it('runs once, answers duplicate with the stored summary, and expires after the ttl', async () => {
    // Prepare
    const clock = new TestClock(new Date('2026-01-01T00:00:00Z'));
    const store = new MemoryIdempotency(clock);
    let runs = 0;
    const work = async () => ++runs;
    // Act
    const first = await runOnce(store, 'k', options('a'), work);
    const second = await runOnce(store, 'k', options('b'), work);
    clock.advance(61_000);
    const third = await runOnce(store, 'k', options('c'), work);
    // Assess
    expect(first).toEqual({ status: 'done', result: 1 });
    expect(second).toEqual({ status: 'duplicate', previous: { n: 1 } });
    expect(third).toEqual({ status: 'done', result: 2 });
  });

  it('throws a retryable conflict while another attempt holds the key, and releases on failure', async () => {
    const store = new MemoryIdempotency(new TestClock(new Date()));
    await store.claim('k', { owner: 'other', leaseMs: 60_000 });
    const busy = runOnce(store, 'k', options('a'), async () => 1);
    await expect(busy).rejects.toBeInstanceOf(ConflictError);
    await expect(busy).rejects.toMatchObject({ retryable: true });

    await expect(
      runOnce(store, 'j', options('a'), async () => Promise.reject(new Error('boom'))),
    ).rejects.toThrow('boom');
    expect(await runOnce(store, 'j', options('b'), async () => 7)).toEqual({ status: 'done', result: 7 });
  });
});
