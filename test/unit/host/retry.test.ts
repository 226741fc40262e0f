import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  LOCAL_INFINITE_RETRY_CAP,
  parseRetryOptions,
  parseTimeSpan,
  retryDelayMs,
  retryPolicyApplies,
  sleep,
} from '../../../src/local/host/retry';

describe('retry options', () => {
  it('reads the durations the library serializes ({ seconds }), ms numbers and TimeSpan strings', () => {
    // Act
    const fixed = parseRetryOptions(
      { strategy: 'fixedDelay', maxRetryCount: 3, delayInterval: { seconds: 5 } },
      'f',
    );
    const expo = parseRetryOptions(
      { strategy: 'exponentialBackoff', maxRetryCount: 4, minimumInterval: 250, maximumInterval: '00:01:00' },
      'f',
    );
    // Assess
    expect(fixed).toMatchObject({ strategy: 'fixedDelay', maxRetryCount: 3, delayMs: 5000, capped: false });
    expect(expo).toMatchObject({ strategy: 'exponentialBackoff', minimumMs: 250, maximumMs: 60_000 });
  });

  it('caps infinite retries (-1) locally', () => {
    // Act
    const policy = parseRetryOptions({ strategy: 'fixedDelay', maxRetryCount: -1, delayInterval: 0 }, 'f');
    // Assess
    expect(policy).toMatchObject({ maxRetryCount: LOCAL_INFINITE_RETRY_CAP, capped: true });
  });

  it.each([
    [{ strategy: 'linear', maxRetryCount: 1 }, /strategy must be "fixedDelay" or "exponentialBackoff"/],
    [
      { strategy: 'fixedDelay', maxRetryCount: -2, delayInterval: 0 },
      /maxRetryCount must be an integer >= -1/,
    ],
    [{ strategy: 'fixedDelay', maxRetryCount: 1 }, /delayInterval is required/],
    [{ strategy: 'fixedDelay', maxRetryCount: 1, delayInterval: 'soon' }, /TimeSpan like "00:00:05"/],
    [
      { strategy: 'exponentialBackoff', maxRetryCount: 1, minimumInterval: 5000, maximumInterval: 1000 },
      /minimumInterval must not be greater than maximumInterval/,
    ],
  ])('rejects %j with a message naming the function', (options, message) => {
    // Act / Assess
    expect(() => parseRetryOptions(options, 'myFunction')).toThrow(message);
    expect(() => parseRetryOptions(options, 'myFunction')).toThrow(/function "myFunction"/);
  });

  it('applies only to the triggers the runtime retries', () => {
    // Act / Assess
    expect(
      ['timerTrigger', 'eventHubTrigger', 'kafkaTrigger', 'cosmosDBTrigger'].every(retryPolicyApplies),
    ).toBe(true);
    expect(
      ['httpTrigger', 'eventGridTrigger', 'queueTrigger', 'serviceBusTrigger'].some(retryPolicyApplies),
    ).toBe(false);
  });
});

describe('retry delays', () => {
  it('waits delayInterval between fixed-delay attempts', () => {
    // Prepare
    const policy = parseRetryOptions({ strategy: 'fixedDelay', maxRetryCount: 3, delayInterval: 2000 }, 'f')!;
    // Act / Assess
    expect([1, 2, 3].map((n) => retryDelayMs(policy, n))).toEqual([2000, 2000, 2000]);
  });

  it('backs off exponentially from the minimum, randomized +-20 %, never above the maximum', () => {
    // Prepare
    const policy = parseRetryOptions(
      { strategy: 'exponentialBackoff', maxRetryCount: 10, minimumInterval: 1000, maximumInterval: 10_000 },
      'f',
    )!;
    const middle = () => 0.5; // factor 1.0
    // Act
    const delays = [1, 2, 3, 4, 5].map((n) => retryDelayMs(policy, n, middle));
    const low = retryDelayMs(policy, 3, () => 0);
    const high = retryDelayMs(policy, 3, () => 0.999_999);
    // Assess
    expect(delays).toEqual([1000, 2000, 3000, 5000, 9000]);
    expect(retryDelayMs(policy, 6, middle)).toBe(10_000);
    expect(low).toBeCloseTo(1000 + 0.8 * 2000);
    expect(high).toBeCloseTo(1000 + 1.2 * 2000, 0);
  });

  it('parses .NET TimeSpans', () => {
    // Act / Assess
    expect(parseTimeSpan('00:00:05')).toBe(5000);
    expect(parseTimeSpan('01:02:03.5')).toBe(3_723_500);
    expect(parseTimeSpan('2.00:00:00')).toBe(172_800_000);
    expect(parseTimeSpan('00:61:00')).toBeUndefined();
    expect(parseTimeSpan('5s')).toBeUndefined();
  });
});

describe('abortable sleep', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('resolves true once the time has passed', async () => {
    // Prepare
    vi.useFakeTimers();
    let settled: boolean | undefined;
    // Act
    const done = sleep(1_000, new AbortController().signal).then((v) => {
      settled = v;
    });
    await vi.advanceTimersByTimeAsync(999);
    const before = settled;
    await vi.advanceTimersByTimeAsync(1);
    await done;
    // Assess
    expect(before).toBeUndefined();
    expect(settled).toBe(true);
  });

  it('resolves false early when the signal aborts, or at once when it already has', async () => {
    // Prepare
    vi.useFakeTimers();
    const controller = new AbortController();
    const waiting = sleep(60_000, controller.signal);
    // Act
    controller.abort();
    const aborted = await waiting;
    const already = await sleep(60_000, controller.signal);
    // Assess
    expect(aborted).toBe(false);
    expect(already).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});
