/**
 * The bundled app on the local host and the sandbox, for the rotation end-to-end tests. One app per
 * test file: the host replays a bundle's registrations in a later host of the same process, and the
 * run worker's queue name is fixed when the app registers it, so a second app with another work
 * queue in the same process would never see its runs' messages.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { type RunningLocalApp, startLocalApp } from '../../../src/local/app';
import type { HostLogger } from '../../../src/local/host/types';
import { appBundle } from '../../support/bundle';
import { storageConnectionString, uniquePrefix } from '../../support/storage';

export const VAULT = 'stampkeeper-sandbox';
export const COSMOS_TARGET = `vaults/${VAULT}/secrets/cosmos-primary-key`;

/**
 * Every line the host and the app write (the host logger and the console), from the file's start
 * to the end of each test; the app is stopped after each test.
 */
export function rotationAppHooks(): {
  logs: string[];
  current(): RunningLocalApp | undefined;
  start(extra?: Record<string, string>): Promise<RunningLocalApp>;
} {
  const logs: string[] = [];
  const logger: HostLogger = {
    info: (m) => logs.push(m),
    warn: (m) => logs.push(m),
    error: (m) => logs.push(m),
  };
  const consoleMethods = ['log', 'info', 'warn', 'error', 'debug'] as const;
  const originalConsole = consoleMethods.map((m) => [m, console[m]] as const);
  let app: RunningLocalApp | undefined;
  beforeAll(() => {
    for (const m of consoleMethods)
      console[m] = (...args: unknown[]) => logs.push(args.map(String).join(' '));
  });
  afterAll(() => {
    for (const [m, original] of originalConsole) console[m] = original as never;
  });
  afterEach(async () => {
    await app?.stop();
    app = undefined;
    logs.length = 0;
  });
  return {
    logs,
    current: () => app,
    async start(extra = {}) {
      if (app) throw new Error('one app per test');
      const bundle = appBundle();
      const prefix = uniquePrefix('r');
      app = await startLocalApp({
        appEntry: bundle.entry,
        appRoot: bundle.root,
        port: 0,
        startTimers: false,
        logger,
        env: {
          AzureWebJobsStorage: storageConnectionString(),
          STAMPKEEPER_TABLE_PREFIX: prefix,
          STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
          ...extra,
        },
        // Every event delivered twice: the rotation must start once.
        sandbox: { random: () => 0 },
      });
      return app;
    },
  };
}

/** A JSON request to the app or the sandbox (same origin). */
export async function json(
  current: RunningLocalApp,
  path: string,
  init?: RequestInit,
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are read freely in assertions
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${current.url}${path}`, init);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** Moves the sandbox clock (`POST /sandbox/clock/advance`). */
export const advance = (current: RunningLocalApp, by: Record<string, number>) =>
  json(current, '/sandbox/clock/advance', { method: 'POST', body: JSON.stringify(by) });

/**
 * Moves the sandbox clock a minute at a time until the secret's last rotation is over or parked for
 * approval (or gives up after `maxMinutes` of sandbox time).
 */
export async function untilRotationEnds(
  current: RunningLocalApp,
  secret = 'cosmos-primary-key',
  maxMinutes = 60,
) {
  for (let i = 0; i < maxMinutes * 4; i++) {
    const history = await json(current, `/api/rotations?vault=${VAULT}&secret=${secret}`);
    const latest = history.body?.runs?.[0];
    if (latest && ['succeeded', 'failed', 'cancelled'].includes(latest.state)) return latest;
    if (latest && latest.state === 'awaiting-approval') return latest;
    await new Promise((r) => setTimeout(r, 250));
    if (i % 4 === 3) await advance(current, { minutes: 1 });
  }
  throw new Error(`the rotation of ${secret} did not end`);
}
