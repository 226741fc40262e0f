import { afterEach, describe, expect, it, vi } from 'vitest';
import { fireAt } from '../../../src/local/sandbox/servicebus/broker';

const MAX_TIMER_MS = 2 ** 31 - 1;

afterEach(() => {
  vi.useRealTimers();
});

describe('fireAt (scheduled enqueue timer)', () => {
  it('waits out a delay beyond setTimeout range in chunks and fires at the instant, not before', () => {
    // Prepare
    vi.useFakeTimers({ now: 0 });
    const at = 3 * MAX_TIMER_MS + 12_345;
    const fired: number[] = [];

    // Act
    fireAt(at, () => fired.push(Date.now()));
    vi.advanceTimersByTime(at - 1);
    const beforeTime = [...fired];
    vi.advanceTimersByTime(1);

    // Assess
    expect(beforeTime).toEqual([]);
    expect(fired).toEqual([at]);
  });

  it('never fires once cancelled, even between chunks', () => {
    // Prepare
    vi.useFakeTimers({ now: 0 });
    const fired: number[] = [];
    const timer = fireAt(2 * MAX_TIMER_MS + 1, () => fired.push(Date.now()));
    vi.advanceTimersByTime(MAX_TIMER_MS + 5);

    // Act
    timer.cancel();
    vi.advanceTimersByTime(3 * MAX_TIMER_MS);

    // Assess
    expect(fired).toEqual([]);
  });
});
