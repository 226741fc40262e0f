import type { InvocationContext, Timer } from '@azure/functions';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningLocalHost, startLocalHost } from '../../../src/local/host/localHost';
import { startTimerListener, type TimerListener } from '../../../src/local/host/timer';
import {
  createTimerStore,
  HOSTS_CONTAINER,
  parseStatus,
  type TimerStore,
} from '../../../src/local/host/timerStorage';
import type { InvocationInput, Invoker, RegisteredFunction } from '../../../src/local/host/types';
import { storageConnectionString, uniquePrefix } from '../../support/storage';
import { captureLogger, createTestHost, eventually } from './support';

// Timers on the host storage (Azurite): the schedule monitor across host restarts, and the
// singleton lock between hosts of one app.

const HOUR = 3600_000;

async function statusBlob(hostId: string, timerName: string) {
  const blob = BlobServiceClient.fromConnectionString(storageConnectionString())
    .getContainerClient(HOSTS_CONTAINER)
    .getBlockBlobClient(`timers/${hostId}/${timerName}/status`);
  return parseStatus((await blob.downloadToBuffer()).toString('utf8'));
}

describe('schedule monitor across host restarts', () => {
  const fired: Array<{ timer: Timer; at: number }> = [];
  const loadApp = async () => {
    const { app } = await import('@azure/functions');
    app.timer('hourly', {
      schedule: '0 0 * * * *',
      handler: (timer: Timer, _context: InvocationContext) => {
        fired.push({ timer, at: Date.now() });
      },
    });
  };
  let host: RunningLocalHost | undefined;
  afterEach(async () => {
    await host?.stop();
    host = undefined;
  });

  it('runs an occurrence missed while the host was down once at start, with IsPastDue', async () => {
    // Prepare: a first host records the schedule status, then stops before the next occurrence.
    const hostId = uniquePrefix('hid');
    const env = { AzureWebJobsStorage: storageConnectionString(), AzureFunctionsWebHost__hostid: hostId };
    host = await startLocalHost({ port: 0, logger: captureLogger(), env, appEntry: loadApp });
    await host.stop();
    host = undefined;
    const recorded = await statusBlob(hostId, 'Host.Functions.hourly');
    const downFor = 2 * HOUR;
    const logger = captureLogger();

    // Act: the next start is two hours later
    host = await startLocalHost({
      port: 0,
      logger,
      env,
      appEntry: loadApp,
      clock: () => new Date(Date.now() + downFor),
    });
    await eventually(() => fired.length > 0, 'the past-due occurrence ran');
    await host.stop();
    host = undefined;

    // Assess
    expect(fired).toHaveLength(1);
    const timer = fired[0]!.timer;
    expect(timer.isPastDue).toBe(true);
    expect(timer.scheduleStatus?.next).toBe(recorded.next?.toISOString());
    expect(recorded.next!.getTime()).toBeGreaterThan(Date.now());
    expect(recorded.next!.getTime()).toBeLessThanOrEqual(Date.now() + HOUR);
    const after = await statusBlob(hostId, 'Host.Functions.hourly');
    expect(after.last!.getTime()).toBeGreaterThan(recorded.next!.getTime());
    expect(after.next!.getTime()).toBeGreaterThan(after.last!.getTime());
    expect(logger.lines.some((l) => l.includes('[hourly] is past due on startup'))).toBe(true);
  });

  it('runs nothing at start when the recorded occurrence is still ahead', async () => {
    // Prepare
    const hostId = uniquePrefix('hid');
    const env = { AzureWebJobsStorage: storageConnectionString(), AzureFunctionsWebHost__hostid: hostId };
    fired.length = 0;
    host = await startLocalHost({ port: 0, logger: captureLogger(), env, appEntry: loadApp });
    await host.stop();
    host = undefined;
    const recorded = await statusBlob(hostId, 'Host.Functions.hourly');

    // Act: the next start comes before that occurrence
    host = await startLocalHost({ port: 0, logger: captureLogger(), env, appEntry: loadApp });
    const listener = host.timers.find((t) => t.functionName === 'hourly');
    await host.stop();
    host = undefined;

    // Assess
    expect(listener?.fired).toBe(0);
    expect(fired).toEqual([]);
    expect(await statusBlob(hostId, 'Host.Functions.hourly')).toEqual(recorded);
  });
});

describe('timer singleton lock', () => {
  const listeners: TimerListener[] = [];
  afterEach(async () => {
    await Promise.all(listeners.splice(0).map((l) => l.stop()));
  });

  /** The real invoker, noting which host's listener ran each occurrence. */
  function labelled(inner: Invoker, label: string, calls: Array<{ label: string; at: number }>): Invoker {
    return {
      invoke(fn: RegisteredFunction, input: InvocationInput) {
        calls.push({ label, at: Date.now() });
        return inner.invoke(fn, input);
      },
    };
  }

  it('runs a timer on one host only; another takes over when that host stops', async () => {
    // Prepare: two listeners of one function on one storage and host id, as two hosts of one app.
    const host = await createTestHost();
    host.app.timer('everySecond', { schedule: '*/1 * * * * *', handler: () => {} });
    const created = createTimerStore(
      { AzureWebJobsStorage: storageConnectionString(), AzureFunctionsWebHost__hostid: uniquePrefix('hid') },
      process.cwd(),
    );
    const store = (created as { store: TimerStore }).store;
    const calls: Array<{ label: string; at: number }> = [];
    const start = (label: string) =>
      startTimerListener(host.fn('everySecond'), {
        invoker: labelled(host.invoker, label, calls),
        logger: host.logger,
        env: {},
        store,
        singleton: { listenerLockPeriodMs: 15_000, listenerLockRecoveryPollingIntervalMs: 200 },
      });
    const first = await start('first');
    const second = await start('second');
    listeners.push(first, second);

    // Act
    await eventually(() => first.fired >= 3, 'three occurrences on the first host');
    const whileBothRan = { first: first.fired, second: second.fired, secondRunning: second.running };
    await first.stop();
    const firstStoppedAt = Date.now();
    await eventually(() => second.fired >= 2, 'two occurrences on the second host');

    // Assess
    expect(whileBothRan).toEqual({ first: whileBothRan.first, second: 0, secondRunning: false });
    expect(calls.filter((c) => c.label === 'second').every((c) => c.at >= firstStoppedAt)).toBe(true);
    expect(calls.filter((c) => c.label === 'first').length).toBe(first.fired);
  });

  it('lets one host of two take a lock nobody holds, and none a lock held', async () => {
    // Prepare
    const created = createTimerStore(
      { AzureWebJobsStorage: storageConnectionString(), AzureFunctionsWebHost__hostid: uniquePrefix('hid') },
      process.cwd(),
    );
    const store = (created as { store: TimerStore }).store;
    // Act
    const [a, b] = await Promise.all([
      store.tryLock('Host.Functions.x.Listener', 15_000),
      store.tryLock('Host.Functions.x.Listener', 15_000),
    ]);
    const whileHeld = await store.tryLock('Host.Functions.x.Listener', 15_000);
    await (a ?? b)?.release();
    const afterRelease = await store.tryLock('Host.Functions.x.Listener', 15_000);
    await afterRelease?.release();
    // Assess
    expect([a, b].filter(Boolean)).toHaveLength(1);
    expect(whileHeld).toBeUndefined();
    expect(afterRelease).toBeDefined();
  });
});
