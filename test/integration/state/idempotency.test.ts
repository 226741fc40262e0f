import { describe, expect, it } from 'vitest';
import { AlreadyDoneError, InProgressError, ValidationError } from '../../../src/lib/core/errors';
import { freshStores, TestClock } from './helpers';

describe('TableIdempotencyStore', () => {
  it('lets exactly one of many concurrent claims of a key win', async () => {
    // Prepare
    const clock = new TestClock();
    const { idempotency } = await freshStores(clock);

    // Act
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        idempotency.claim('event/abc#1', { owner: `w${i}`, leaseMs: 60_000 }),
      ),
    );

    // Assess
    expect(results.filter((r) => r.status === 'claimed')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'inProgress')).toHaveLength(11);
  });

  it('answers completed with the stored result until the ttl, then lets the key be claimed again', async () => {
    // Prepare
    const clock = new TestClock();
    const { idempotency } = await freshStores(clock);
    await idempotency.claim('k', { owner: 'a', leaseMs: 60_000 });
    await idempotency.complete('k', { owner: 'a', result: { notified: 2 }, ttlMs: 3_600_000 });

    // Act
    clock.advance(3_599_000);
    const before = await idempotency.claim('k', { owner: 'b', leaseMs: 60_000 });
    clock.advance(2_000);
    const after = await idempotency.claim('k', { owner: 'b', leaseMs: 60_000 });

    // Assess
    expect(before).toEqual({
      status: 'completed',
      result: { notified: 2 },
      completedOn: new Date('2026-11-27T10:00:00.000Z'),
    });
    expect(after).toEqual({ status: 'claimed' });
  });

  it('lets an expired claim be taken over, and refuses completion by the owner who lost it', async () => {
    // Prepare
    const clock = new TestClock();
    const { idempotency } = await freshStores(clock);
    await idempotency.claim('k', { owner: 'a', leaseMs: 10_000 });

    // Act
    const whileLive = await idempotency.claim('k', { owner: 'b', leaseMs: 10_000 });
    clock.advance(10_001);
    const afterExpiry = await idempotency.claim('k', { owner: 'b', leaseMs: 10_000 });
    const lateCompletion = idempotency.complete('k', { owner: 'a', result: {}, ttlMs: 1000 });

    // Assess
    expect(whileLive).toEqual({
      status: 'inProgress',
      owner: 'a',
      expiresOn: new Date('2026-11-27T10:00:10.000Z'),
    });
    expect(afterExpiry).toEqual({ status: 'claimed', takenOver: true });
    await expect(lateCompletion).rejects.toBeInstanceOf(InProgressError);
    await expect(lateCompletion).rejects.toMatchObject({ code: 'InProgressElsewhere', retryable: true });
  });

  it('tells "in progress elsewhere" and "already done" apart, by error and code', async () => {
    // Prepare
    const clock = new TestClock();
    const { idempotency } = await freshStores(clock);
    await idempotency.claim('done', { owner: 'a', leaseMs: 10_000 });
    clock.advance(10_001);
    await idempotency.claim('done', { owner: 'b', leaseMs: 10_000 });
    await idempotency.complete('done', { owner: 'b', result: {}, ttlMs: 60_000 });

    // Act
    const late = idempotency.complete('done', { owner: 'a', result: {}, ttlMs: 60_000 });

    // Assess
    await expect(late).rejects.toBeInstanceOf(AlreadyDoneError);
    await expect(late).rejects.toMatchObject({ code: 'AlreadyDone', retryable: false });
  });

  it('says a claim taken over from an expired attempt may have acted; a fresh or renewed one may not', async () => {
    // Prepare
    const clock = new TestClock();
    const { idempotency } = await freshStores(clock);

    // Act
    const fresh = await idempotency.claim('t', { owner: 'a', leaseMs: 10_000 });
    const renewed = await idempotency.claim('t', { owner: 'a', leaseMs: 10_000 });
    clock.advance(10_001);
    const takenOver = await idempotency.claim('t', { owner: 'b', leaseMs: 10_000 });
    await idempotency.complete('t', { owner: 'b', result: {}, ttlMs: 1_000 });
    clock.advance(1_001);
    const afterKeptResult = await idempotency.claim('t', { owner: 'c', leaseMs: 10_000 });

    // Assess
    expect(fresh).toEqual({ status: 'claimed' });
    expect(renewed).toEqual({ status: 'claimed' });
    expect(takenOver).toEqual({ status: 'claimed', takenOver: true });
    expect(afterKeptResult).toEqual({ status: 'claimed' });
  });

  it('release frees a claim at once for a retry, but never someone else’s claim', async () => {
    // Prepare
    const clock = new TestClock();
    const { idempotency } = await freshStores(clock);
    await idempotency.claim('k', { owner: 'a', leaseMs: 60_000 });

    // Act
    await idempotency.release('k', { owner: 'intruder' });
    const stillHeld = await idempotency.claim('k', { owner: 'b', leaseMs: 60_000 });
    await idempotency.release('k', { owner: 'a' });
    const free = await idempotency.claim('k', { owner: 'b', leaseMs: 60_000 });

    // Assess
    expect(stillHeld.status).toBe('inProgress');
    expect(free).toEqual({ status: 'claimed' });
  });

  it('keeps long keys with any characters apart', async () => {
    // Prepare
    const clock = new TestClock();
    const { idempotency } = await freshStores(clock);
    const long = `x/${'y'.repeat(400)}`;

    // Act
    const first = await idempotency.claim(`${long}1`, { owner: 'a', leaseMs: 60_000 });
    const second = await idempotency.claim(`${long}2`, { owner: 'a', leaseMs: 60_000 });
    const odd = await idempotency.claim('a/b\\c#d?e', { owner: 'a', leaseMs: 60_000 });

    // Assess
    expect([first.status, second.status, odd.status]).toEqual(['claimed', 'claimed', 'claimed']);
  });

  it('rejects bad arguments', async () => {
    // Prepare
    const clock = new TestClock();
    const { idempotency } = await freshStores(clock);

    // Act
    const noKey = idempotency.claim('', { owner: 'a', leaseMs: 1000 });
    const noLease = idempotency.claim('k', { owner: 'a', leaseMs: 0 });

    // Assess
    await expect(noKey).rejects.toBeInstanceOf(ValidationError);
    await expect(noLease).rejects.toBeInstanceOf(ValidationError);
  });
});

describe('TableLeaseStore', () => {
  it('grants a lease to one owner at a time, until it expires', async () => {
    // Prepare
    const clock = new TestClock();
    const { leases } = await freshStores(clock);

    // Act
    const racers = await Promise.all(['a', 'b', 'c', 'd'].map((o) => leases.acquire('sweep', o, 30_000)));
    const winner = racers.find((g) => g !== undefined)!.owner;
    const other = winner === 'a' ? 'b' : 'a';
    const blocked = await leases.acquire('sweep', other, 30_000);
    clock.advance(30_001);
    const takenOver = await leases.acquire('sweep', other, 30_000);
    const renewByLoser = await leases.renew('sweep', winner, 30_000);

    // Assess
    expect(racers.filter((g) => g !== undefined)).toHaveLength(1);
    expect(blocked).toBeUndefined();
    expect(takenOver?.owner).toBe(other);
    expect(renewByLoser).toBeUndefined();
  });

  it('renews and releases for the holder only', async () => {
    // Prepare
    const clock = new TestClock();
    const { leases } = await freshStores(clock);
    await leases.acquire('sweep', 'a', 10_000);

    // Act
    clock.advance(5_000);
    const renewed = await leases.renew('sweep', 'a', 10_000);
    await leases.release('sweep', 'b');
    const blocked = await leases.acquire('sweep', 'b', 10_000);
    await leases.release('sweep', 'a');
    const free = await leases.acquire('sweep', 'b', 10_000);

    // Assess
    expect(renewed?.expiresOn).toEqual(new Date('2026-11-27T10:00:15.000Z'));
    expect(blocked).toBeUndefined();
    expect(free?.owner).toBe('b');
  });
});
