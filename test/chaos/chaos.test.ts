import { describe, expect, it } from 'vitest';
import { storageConnectionString } from '../support/storage';
import { runChaos } from './harness';

/**
 * The run engine under chaos, with a fixed seed and a bounded time (about 25 s of wall time): see
 * test/chaos/harness.ts for what is injected. `npm run bench -- chaos` runs longer soaks.
 */
describe('run engine chaos (issue 6, §10)', () => {
  it('ends every run, never repeats an effect, never goes backwards and keeps a complete audit', async () => {
    // Act
    const report = await runChaos({
      connectionString: storageConnectionString(),
      seed: 20261127,
      runs: 12,
      legacyRuns: 3,
      workers: 3,
      sweepers: 2,
      chaosMs: 8_000,
      calmMs: 14_000,
      faultRate: 0.03,
    });

    // Assess: the faults were injected...
    for (const fault of [
      'crash-before',
      'crash-after',
      'error-before',
      'error-after',
      'duplicate',
      'stale',
      'ticketless',
      'clock-move',
      'cancel',
    ]) {
      expect(report.injected[fault] ?? 0, fault).toBeGreaterThan(0);
    }
    // ...and the invariants held
    expect(report.invariants).toEqual({
      unfinished: [],
      doubleEffects: [],
      concurrentSteps: [],
      backwards: [],
      auditMissing: [],
      duplicateRuns: [],
    });
    expect(report.runs).toBe(15);
    // The deploy found runs in flight and moved them onto the new steps.
    expect(report.migrations).toBeGreaterThan(0);
  }, 60_000);
});
