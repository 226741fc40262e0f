/**
 * Starts the local host in this process: installs `@azure/functions-core`, loads the app (its `app.*`
 * registrations land in a fresh registry), runs the `appStart` hooks, serves HTTP / Event Grid / admin
 * on one server, runs timers and the listeners of other trigger types, and stops all of it cleanly.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FLEX_DEFAULT_FUNCTION_TIMEOUT_MS } from '../../lib/config/hostJson';
import { BuiltInAuth, type BuiltInAuthOptions } from './builtInAuth';
import {
  FunctionRegistry,
  getActiveRegistry,
  type HookCallback,
  type HookName,
  installCoreApi,
  setActiveRegistry,
} from './coreApi';
import { type HostConfig, ignoredHostJsonKeys, loadHostConfig } from './hostConfig';
import { DRAIN_TIMEOUT_MS, LocalInvoker } from './invoker';
import { keySettingsFromEnv } from './keys';
import { BUILT_IN_TRIGGERS, findFactory, type ListenerFactories } from './listeners';
import { LOCAL_INFINITE_RETRY_CAP, RETRY_POLICY_TRIGGERS, settledWithin } from './retry';
import { createLocalServer, type LocalServer, type MountHandler } from './server';
import { startTimerListener, type TimerListener } from './timer';
import { createTimerStore, type TimerStore } from './timerStorage';
import type { HostLogger, RegisteredFunction, TriggerListener } from './types';

export interface LocalHostOptions {
  /** Module to load (path, relative to `rootDir`), or a function that loads the app. Default `src/main.ts`. */
  appEntry?: string | (() => unknown);
  /** Where host.json is read and `appEntry` resolved. Default: the current directory. */
  rootDir?: string;
  /** 0 = a free port. Default 7071. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Settings set in `process.env` for the app (restored on stop). */
  env?: Record<string, string>;
  logger?: HostLogger;
  /** Handlers tried after the host's own routes, before 404 (e.g. the sandbox under /sandbox/). */
  mounts?: MountHandler[];
  /** Run timers on their schedules (default true). `runOnStartup` timers fire only when true. */
  startTimers?: boolean;
  /** Listener factories by trigger type (`queueTrigger`, `serviceBusTrigger`). */
  listenerFactories?: ListenerFactories;
  /** Host config instead of reading `<rootDir>/host.json`. */
  hostConfig?: HostConfig;
  /**
   * The clock timers read (default: the system clock). A later clock stands for time the host was
   * down: the schedule monitor then finds the occurrences it missed.
   */
  clock?: () => Date;
  /**
   * Emulates the platform's built-in authentication (Easy Auth with Microsoft Entra) in front of
   * the app: `WEBSITE_AUTH_ENABLED=True` for the app, client-sent principal headers stripped, the
   * caller's principal from a developer token (`POST /admin/token`), 401 without one except on the
   * excluded paths (see builtInAuth.ts). Absent: requests reach the app as sent, as with Core Tools.
   */
  builtInAuth?: BuiltInAuthOptions;
  /**
   * How long `stop()` waits for running invocations (timers, listeners, HTTP) before abandoning
   * them with a warning (default 5 s): a handler that never ends does not hang the host's stop.
   */
  drainTimeoutMs?: number;
}

export interface RunningLocalHost {
  url: string;
  functions: RegisteredFunction[];
  invoker: LocalInvoker;
  hostConfig: HostConfig;
  /** The server (to mount more handlers after start). */
  server: LocalServer;
  /** Function names whose trigger type is not served locally. */
  notServed: string[];
  /** The timer listeners (whether each runs here or another host holds its lock, how often it fired). */
  timers: TimerListener[];
  /** The emulated built-in authentication, when on. */
  builtInAuth?: BuiltInAuth;
  stop(): Promise<void>;
}

/** Writes host lines to the console. */
export const consoleHostLogger: HostLogger = {
  info: (m) => console.log(m),
  warn: (m) => console.warn(m),
  error: (m) => console.error(m),
};

interface LoadedApp {
  functions: Array<{ metadata: RegisteredFunction['metadata']; callback: RegisteredFunction['callback'] }>;
  hooks: Array<{ name: HookName; callback: HookCallback }>;
}

/** What a listener may take to close its links once its invocations are settled or abandoned. */
const LISTENER_CLOSE_GRACE_MS = 2_000;

// Node caches modules: a second host on the same entry in one process would see no registrations,
// so what an entry registered the first time is kept and replayed.
const loadedApps = new Map<unknown, LoadedApp>();

/**
 * Starts the local host. Resolves once the server listens and the listeners run; rejects (after
 * cleaning up) when the app fails to load, a registration is invalid or the port is taken.
 */
export async function startLocalHost(options: LocalHostOptions = {}): Promise<RunningLocalHost> {
  const logger = options.logger ?? consoleHostLogger;
  const rootDir = options.rootDir ?? process.cwd();
  // Refuse before touching the environment: the running host's invocations read it.
  if (getActiveRegistry()) throw new Error('Another local host is running in this process; stop it first.');
  const drainTimeoutMs = options.drainTimeoutMs ?? DRAIN_TIMEOUT_MS;
  // Built first: a bad default caller fails before the environment is touched.
  const builtInAuth = options.builtInAuth ? new BuiltInAuth(options.builtInAuth) : undefined;
  // The platform, not the configuration, says whether built-in authentication is on: App Service
  // sets WEBSITE_AUTH_ENABLED=True when it is, and the app trusts principal headers only then.
  const previousEnv = applyEnv({
    ...(options.env ?? {}),
    WEBSITE_AUTH_ENABLED: builtInAuth ? 'True' : undefined,
    // Set once the server listens (below), as the platform sets the app's host name.
    WEBSITE_HOSTNAME: options.env?.WEBSITE_HOSTNAME,
  });
  const listeners: TriggerListener[] = [];
  let localServer: LocalServer | undefined;
  let invoker: LocalInvoker | undefined;
  const registry = new FunctionRegistry(logger);
  try {
    const hostConfig = options.hostConfig ?? loadHostConfig(rootDir);
    for (const key of ignoredHostJsonKeys(hostConfig.raw)) {
      logger.warn(
        `host.json: "${key}" is not read by the Functions runtime with extension bundle 4.x; it has no effect.`,
      );
    }
    const keys = keySettingsFromEnv(process.env);
    installCoreApi();
    setActiveRegistry(registry);
    await loadApp(options.appEntry ?? 'src/main.ts', rootDir, registry);
    registry.seal();

    // Without functionTimeout in host.json, Flex Consumption (what the app is deployed to) stops an
    // invocation after 30 minutes.
    invoker = new LocalInvoker({
      registry,
      logger,
      timeoutMs: hostConfig.functionTimeoutMs ?? FLEX_DEFAULT_FUNCTION_TIMEOUT_MS,
    });
    for (const fn of registry.functions) {
      // Malformed retry options fail start-up; ignored ones are reported.
      if (fn.metadata.retryOptions && !invoker.retryPolicy(fn)) {
        logger.warn(
          `Retry options of "${fn.name}" are ignored: the host enforces retry policies on ${RETRY_POLICY_TRIGGERS.join(', ')} only (${fn.trigger.type} retries through its extension).`,
        );
      }
      if (fn.metadata.retryOptions && invoker.retryPolicy(fn)?.capped) {
        logger.warn(
          `Retry options of "${fn.name}": maxRetryCount -1 (forever) is capped to ${LOCAL_INFINITE_RETRY_CAP} locally.`,
        );
      }
    }

    await registry.executeHooks('appStart', {
      hookData: {},
      appHookData: registry.appHookData,
      functionAppDirectory: rootDir,
    });

    localServer = createLocalServer({
      functions: () => registry.functions,
      invoker,
      hostConfig,
      keys,
      logger,
      builtInAuth,
    });
    for (const mount of options.mounts ?? []) localServer.mount(mount);
    localServer.routes(); // invalid route templates fail start-up
    await localServer.listen(options.port ?? 7071, options.host ?? '127.0.0.1');
    // The app's host name, as App Service sets it (`<app>.azurewebsites.net`) and Core Tools
    // (`localhost:<port>`): known only now, with the port taken.
    if (!options.env?.WEBSITE_HOSTNAME) process.env.WEBSITE_HOSTNAME = new URL(localServer.url).host;

    const notServed: string[] = [];
    const env = process.env;
    const timers = registry.functions.filter((f) => f.trigger.type.toLowerCase() === 'timertrigger');
    const timerListeners: TimerListener[] = [];
    let timerStore: TimerStore | undefined;
    if (options.startTimers !== false && timers.length > 0) {
      const created = createTimerStore(env, rootDir);
      if ('store' in created) timerStore = created.store;
      else {
        logger.warn(
          `Timers run without schedule monitor and singleton lock: ${created.reason} (the runtime keeps both in that storage account).`,
        );
      }
    }
    for (const fn of registry.functions) {
      const type = fn.trigger.type;
      if (type.toLowerCase() === 'timertrigger') {
        if (options.startTimers !== false) {
          const timer = await startTimerListener(fn, {
            invoker,
            logger,
            env,
            stopTimeoutMs: drainTimeoutMs,
            store: timerStore,
            singleton: hostConfig.singleton,
            now: options.clock,
          });
          listeners.push(timer);
          timerListeners.push(timer);
        }
        continue;
      }
      if (BUILT_IN_TRIGGERS.some((t) => t.toLowerCase() === type.toLowerCase())) continue;
      const factory = findFactory(options.listenerFactories ?? {}, type);
      if (!factory) {
        notServed.push(fn.name);
        logger.warn(`Function "${fn.name}" (${type}) is not served locally: no listener for ${type}.`);
        continue;
      }
      listeners.push(await factory(fn, { invoker, logger, hostConfig, env, stopTimeoutMs: drainTimeoutMs }));
    }

    const server = localServer;
    const activeInvoker = invoker;
    let stopping: Promise<void> | undefined;
    return {
      url: server.url,
      functions: registry.functions,
      invoker: activeInvoker,
      hostConfig,
      server,
      notServed,
      timers: timerListeners,
      builtInAuth,
      stop: () => {
        stopping ??= (async () => {
          await shutdown(listeners, server, activeInvoker, registry, logger, drainTimeoutMs);
          restoreEnv(previousEnv);
        })();
        return stopping;
      },
    };
  } catch (error) {
    await shutdown(listeners, localServer, invoker, registry, logger, drainTimeoutMs, false);
    restoreEnv(previousEnv);
    throw error;
  }
}

async function shutdown(
  listeners: TriggerListener[],
  server: LocalServer | undefined,
  invoker: LocalInvoker | undefined,
  registry: FunctionRegistry,
  logger: HostLogger,
  drainTimeoutMs: number,
  runTerminateHooks = true,
): Promise<void> {
  const deadline = Date.now() + drainTimeoutMs;
  invoker?.close();
  // Listeners bound their own wait for running invocations; a listener that still does not stop
  // (a custom factory's, a link that never closes) is abandoned shortly after.
  await Promise.all(
    listeners.map(async (listener) => {
      const stopping = listener.stop();
      const stopped = await settledWithin([stopping], drainTimeoutMs + LISTENER_CLOSE_GRACE_MS);
      if (!stopped) {
        logger.warn(`Listener of "${listener.functionName}" did not stop in time; abandoned.`);
        return;
      }
      await stopping.catch(() => logger.warn(`Listener of "${listener.functionName}" did not stop cleanly.`));
    }),
  );
  await server?.close();
  if (invoker && !(await invoker.drain(Math.max(0, deadline - Date.now())))) {
    logger.warn(
      `Stopped without waiting for ${invoker.inFlight} running invocation(s) (still running after ${drainTimeoutMs} ms).`,
    );
  }
  if (runTerminateHooks) {
    try {
      await registry.executeHooks('appTerminate', { hookData: {}, appHookData: registry.appHookData });
    } catch (error) {
      logger.warn(`An appTerminate hook failed: ${(error as Error).message}`);
    }
  }
  if (getActiveRegistry() === registry) setActiveRegistry(undefined);
}

async function loadApp(
  entry: string | (() => unknown),
  rootDir: string,
  registry: FunctionRegistry,
): Promise<void> {
  const key = typeof entry === 'string' ? (isAbsolute(entry) ? entry : resolve(rootDir, entry)) : entry;
  const known = loadedApps.get(key);
  if (known) {
    replay(known, registry);
    return;
  }
  const captured: LoadedApp = { functions: [], hooks: [] };
  // Record what the app registers, for a later host on the same entry.
  const recordingRegistry = new Proxy(registry, {
    get(target, prop, receiver) {
      if (prop === 'registerFunction') {
        return (
          metadata: LoadedApp['functions'][number]['metadata'],
          callback: LoadedApp['functions'][number]['callback'],
        ) => {
          const disposable = target.registerFunction(metadata, callback);
          const record = { metadata, callback };
          captured.functions.push(record);
          return disposable;
        };
      }
      if (prop === 'registerHook') {
        return (name: HookName, callback: HookCallback) => {
          const disposable = target.registerHook(name, callback);
          captured.hooks.push({ name, callback });
          return disposable;
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  setActiveRegistry(recordingRegistry);
  try {
    if (typeof entry === 'string') {
      // import() rather than require(): it loads TypeScript both under tsx (npm start) and vitest.
      await import(pathToFileURL(key as string).href);
    } else {
      await entry();
    }
  } finally {
    setActiveRegistry(registry);
  }
  // Keep only what survived disposal during start-up.
  const names = new Set(registry.functions.map((f) => f.name));
  captured.functions = captured.functions.filter((f) => names.has(f.metadata.name));
  if (captured.functions.length > 0 || captured.hooks.length > 0) loadedApps.set(key, captured);
}

function replay(app: LoadedApp, registry: FunctionRegistry): void {
  for (const f of app.functions) registry.registerFunction(f.metadata, f.callback);
  for (const h of app.hooks) registry.registerHook(h.name, h.callback);
}

/** Sets (or, for `undefined`, removes) variables; returns what to restore. */
function applyEnv(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const previous: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(env)) {
    previous[name] = process.env[name];
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  return previous;
}

function restoreEnv(previous: Record<string, string | undefined>): void {
  for (const [name, value] of Object.entries(previous)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
}
