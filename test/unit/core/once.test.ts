import { afterEach, describe, expect, it } from 'vitest';
import {
  CompletionPendingError,
  InProgressError,
  TransientError,
  ValidationError,
} from '../../../src/lib/core/errors';
import { clearPendingCompletions, runOnce } from '../../../src/lib/core/once';
import { MemoryIdempotency, TestClock } from '../../support/fakes';

describe('runOnce', () => {
  afterEach(() => clearPendingCompletions());

  const options = (owner: string) => ({
    owner,
    ttlMs: 60_000,
    leaseMs: 30_000,
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

  it('throws a retryable InProgressError while another attempt holds the key, and releases on failure', async () => {
    // Prepare
    const store = new MemoryIdempotency(new TestClock(new Date()));
    await store.claim('k', { owner: 'other', leaseMs: 60_000 });

    // Act
    const busy = runOnce(store, 'k', options('a'), async () => 1);
    const failed = runOnce(store, 'j', options('a'), async () => Promise.reject(new Error('boom')));

    // Assess
    await expect(busy).rejects.toBeInstanceOf(InProgressError);
    await expect(busy).rejects.toMatchObject({ retryable: true, code: 'InProgressElsewhere' });
    await expect(failed).rejects.toThrow('boom');
    expect(await runOnce(store, 'j', options('b'), async () => 7)).toEqual({ status: 'done', result: 7 });
  });

  it('leaves the key free when the work decided to do nothing, so a later attempt acts', async () => {
    // Prepare
    const store = new MemoryIdempotency(new TestClock(new Date()));
    let state: 'not yet' | 'now' = 'not yet';
    const decide = async () => (state === 'now' ? 'acted' : 'skipped');
    const opts = (owner: string) => ({
      owner,
      ttlMs: 60_000,
      busyMessage: 'busy',
      consumed: (r: string) => r !== 'skipped',
    });

    // Act
    const early = await runOnce(store, 'k', opts('a'), decide);
    state = 'now';
    const later = await runOnce(store, 'k', opts('b'), decide);
    const again = await runOnce(store, 'k', opts('c'), decide);

    // Assess
    expect(early).toEqual({ status: 'nothingDone', result: 'skipped' });
    expect(later).toEqual({ status: 'done', result: 'acted' });
    expect(again.status).toBe('duplicate');
  });

  it('never releases the claim of work done whose completion failed; a retry records it without redoing', async () => {
    // Prepare
    const store = new MemoryIdempotency(new TestClock(new Date()));
    for (let i = 0; i < 3; i++) store.completeFailures.push(new TransientError('storage unavailable'));
    let actions = 0;
    const work = async () => ++actions;

    // Act
    const first = runOnce(store, 'k', options('a'), work);
    await expect(first).rejects.toBeInstanceOf(CompletionPendingError);
    const heldAfterFailure = store.held('k');
    const retry = await runOnce(store, 'k', options('b'), work);
    const later = await runOnce(store, 'k', options('c'), work);

    // Assess
    await expect(first).rejects.toMatchObject({ code: 'CompletionPending', retryable: true });
    expect(heldAfterFailure).toBe(true);
    expect(actions).toBe(1);
    expect(retry).toEqual({ status: 'duplicate', previous: { n: 1 } });
    expect(later).toEqual({ status: 'duplicate', previous: { n: 1 } });
  });

  it('retries a transient completion failure within the attempt before calling it pending', async () => {
    // Prepare
    const store = new MemoryIdempotency(new TestClock(new Date()));
    store.completeFailures.push(new TransientError('a blip'));

    // Act
    const result = await runOnce(store, 'k', options('a'), async () => 5);

    // Assess
    expect(result).toEqual({ status: 'done', result: 5 });
    expect(store.completeCalls).toBe(2);
  });

  it('rethrows a completion failure no retry mends, and keeps the claim', async () => {
    // Prepare
    const store = new MemoryIdempotency(new TestClock(new Date()));
    store.completeFailures.push(new ValidationError('result too large'));

    // Act
    const attempt = runOnce(store, 'k', options('a'), async () => 5);

    // Assess
    await expect(attempt).rejects.toBeInstanceOf(ValidationError);
    expect(store.held('k')).toBe(true);
  });

  it('tells the work when it took over a claim that ran out without a completion', async () => {
    // Prepare
    const clock = new TestClock(new Date());
    const store = new MemoryIdempotency(clock);
    await store.claim('k', { owner: 'crashed', leaseMs: 30_000 });
    clock.advance(30_001);
    const seen: boolean[] = [];

    // Act
    await runOnce(store, 'k', options('a'), async ({ takenOver }) => {
      seen.push(takenOver);
      return 1;
    });
    await runOnce(store, 'fresh', options('a'), async ({ takenOver }) => {
      seen.push(takenOver);
      return 1;
    });

    // Assess
    expect(seen).toEqual([true, false]);
  });
});
