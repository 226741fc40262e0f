/**
 * The bundled app on the local host and the sandbox, for the end-to-end tests. One app per test
 * file: the host replays a bundle's registrations in a later host of the same process, and the run
 * worker's queue name is fixed when the app registers it, so a second app with another work queue
 * in the same process would never see its runs' messages.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { type LocalAppOptions, type RunningLocalApp, startLocalApp } from '../../../src/local/app';
import type { HostLogger } from '../../../src/local/host/types';
import { appBundle } from '../../support/bundle';
import { storageConnectionString, uniquePrefix } from '../../support/storage';

export interface LocalAppHooks {
  /** Every line the host and the app wrote (the host logger and the console) since the test began. */
  logs: string[];
  current(): RunningLocalApp | undefined;
  /** Starts the bundle on fresh tables and a fresh work queue, with `extra` app settings. */
  start(extra?: Record<string, string>): Promise<RunningLocalApp>;
}

/**
 * Hooks for a test file: the console captured for the whole file, the app (at most one per test)
 * stopped after each test, and the logs cleared with it.
 */
export function localAppHooks(options: {
  /** Table prefix's start (a unique suffix is added). */
  prefix: string;
  sandbox?: LocalAppOptions['sandbox'];
}): LocalAppHooks {
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
      app = await startBundledApp({
        prefix: options.prefix,
        logger,
        env: extra,
        ...(options.sandbox !== undefined ? { sandbox: options.sandbox } : {}),
      });
      return app;
    },
  };
}

/**
 * The bundle on the local host, on the sandbox unless told otherwise, with its own tables and work
 * queue (`prefix` and a unique suffix), timers off, and `env` added to its settings.
 */
export function startBundledApp(options: {
  prefix: string;
  logger: HostLogger;
  env?: Record<string, string>;
  sandbox?: LocalAppOptions['sandbox'];
  auth?: LocalAppOptions['auth'];
}): Promise<RunningLocalApp> {
  const bundle = appBundle();
  const prefix = uniquePrefix(options.prefix);
  return startLocalApp({
    appEntry: bundle.entry,
    appRoot: bundle.root,
    port: 0,
    startTimers: false,
    logger: options.logger,
    env: {
      AzureWebJobsStorage: storageConnectionString(),
      STAMPKEEPER_TABLE_PREFIX: prefix,
      STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
      ...options.env,
    },
    ...(options.sandbox !== undefined ? { sandbox: options.sandbox } : {}),
    ...(options.auth !== undefined ? { auth: options.auth } : {}),
  });
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
export const advance = (current: RunningLocalApp, by: Record<string, number | string>) =>
  json(current, '/sandbox/clock/advance', { method: 'POST', body: JSON.stringify(by) });
