import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startLocalHost } from '../../../src/local/host/localHost';
import { timerTriggerData } from '../../../src/local/host/timer';
import { captureLogger } from '../triggers/support';
import { recorded } from './fixtures/recorder';

const loadHooksApp = () => import('./fixtures/hooksApp.js');
const ROOT = resolve(__dirname, '../../..');

describe('worker hooks and retries on the local host', () => {
  it('runs appStart at start and appTerminate at stop; hooks can swap the handler and forgive an error', async () => {
    // Prepare
    const logger = captureLogger();
    const host = await startLocalHost({
      appEntry: loadHooksApp,
      rootDir: ROOT,
      port: 0,
      logger,
      startTimers: false,
    });
    let stopped = false;
    try {
      // Act
      const swapped = await fetch(`${host.url}/api/swapped`);
      const forgiven = await fetch(`${host.url}/api/forgiven`);
      const afterStart = [...recorded.hookCalls];
      await host.stop();
      stopped = true;
      // Assess
      expect(await swapped.text()).toBe('from the hook');
      expect(forgiven.status).toBe(299);
      expect(await forgiven.text()).toBe('forgiven');
      expect(afterStart).toEqual(['appStart']);
      expect(recorded.hookCalls).toEqual(['appStart', 'appTerminate']);
      expect(logger.lines).toContainEqual(expect.stringMatching(/^warn .*"slowRetry".*capped to 10/));
    } finally {
      if (!stopped) await host.stop();
    }
  });

  it('cancels a pending retry wait when the host stops: the invocation ends with its last error', async () => {
    // Prepare
    recorded.flakyAttempts.length = 0;
    const host = await startLocalHost({
      appEntry: loadHooksApp,
      rootDir: ROOT,
      port: 0,
      logger: captureLogger(),
      startTimers: false,
    });
    const fn = host.functions.find((f) => f.name === 'slowRetry');
    if (!fn) throw new Error('slowRetry not registered');
    const outcome = host.invoker.invoke(fn, { trigger: timerTriggerData({ status: null }) });
    // Act
    await host.stop();
    const result = await outcome;
    // Assess
    expect(result.ok).toBe(false);
    expect(result.attempts).toBe(1);
    expect((result.error as Error).message).toBe('always');
    expect(recorded.flakyAttempts).toHaveLength(1);
  });
});
