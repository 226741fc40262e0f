/**
 * The local host's implementation of `@azure/functions-core`, the module the Functions Node.js worker
 * provides at run time and that `@azure/functions` looks for with `require('@azure/functions-core')`.
 *
 * One facade object is handed to every `require` of that id (the library caches it for the life of the
 * process); the facade forwards to the registry of the host that is currently loading or running the
 * app, so several hosts can start and stop one after the other in one process (tests).
 */

import Module from 'node:module';
import { redactText } from '../../lib/core/redact';
import type { BindingMetadata, FunctionMetadata, HostLogger, RegisteredFunction } from './types';

export const CORE_MODULE_ID = '@azure/functions-core';

/** Worker version we report (`version`), and the host version we emulate (`hostVersion`). */
export const LOCAL_WORKER_VERSION = '3.12.0-stampkeeper-local';
export const LOCAL_HOST_VERSION = '4.1037.0-stampkeeper-local';

export type HookName = 'preInvocation' | 'postInvocation' | 'appStart' | 'appTerminate';
export const HOOK_NAMES: readonly HookName[] = [
  'preInvocation',
  'postInvocation',
  'appStart',
  'appTerminate',
];

export type HookCallback = (context: Record<string, unknown>) => unknown;

/** What `@azure/functions`' `ProgrammingModel` offers (the part the host uses). */
export interface ProgrammingModelLike {
  name: string;
  version: string;
  getInvocationModel(coreCtx: unknown): InvocationModelLike;
}

export interface InvocationModelLike {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(
    context: unknown,
    inputs: unknown[],
    handler: (...args: unknown[]) => unknown,
  ): Promise<unknown>;
  getResponse(
    context: unknown,
    result: unknown,
  ): Promise<{
    invocationId?: string;
    outputData?: Array<{ name?: string | null; data?: unknown }>;
    returnValue?: unknown;
  }>;
}

/** Same contract as the worker's `Disposable` (types-core). */
export class Disposable {
  #callOnDispose: (() => unknown) | undefined;

  static from(...likes: Array<{ dispose: () => unknown }>): Disposable {
    return new Disposable(() => {
      for (const like of likes) like.dispose();
    });
  }

  constructor(callOnDispose: () => unknown) {
    this.#callOnDispose = callOnDispose;
  }

  dispose(): unknown {
    const call = this.#callOnDispose;
    this.#callOnDispose = undefined;
    return call?.();
  }
}

/** An error of the worker itself (the worker's `AzFuncSystemError`). */
export class LocalHostSystemError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalHostSystemError';
  }
}

/**
 * The functions and hooks one app registered while it loaded. Registration closes once start-up is
 * over (`seal()`), as in the worker: a function can only be registered or disposed during app start-up.
 */
export class FunctionRegistry {
  readonly #functions = new Map<string, RegisteredFunction>();
  readonly #hooks = new Map<HookName, HookCallback[]>();
  readonly appHookData: Record<string, unknown> = {};
  #sealed = false;

  constructor(private readonly logger: HostLogger) {}

  get functions(): RegisteredFunction[] {
    return [...this.#functions.values()];
  }

  get(name: string): RegisteredFunction | undefined {
    return this.#functions.get(name.toLowerCase());
  }

  hooks(name: HookName): HookCallback[] {
    return [...(this.#hooks.get(name) ?? [])];
  }

  get sealed(): boolean {
    return this.#sealed;
  }

  seal(): void {
    this.#sealed = true;
  }

  registerFunction(metadata: FunctionMetadata, callback: (...args: unknown[]) => unknown): Disposable {
    if (this.#sealed) throw new LocalHostSystemError('A function can only be registered during app startup.');
    const registered = toRegisteredFunction(metadata, callback);
    // Function names are case-insensitive for the host (routes, admin API, keys).
    const key = registered.name.toLowerCase();
    if (this.#functions.has(key)) {
      throw new LocalHostSystemError(
        `Duplicate function name "${registered.name}": function names must be unique within the app.`,
      );
    }
    this.#functions.set(key, registered);
    return new Disposable(() => {
      if (this.#sealed) throw new LocalHostSystemError('A function can only be disposed during app startup.');
      this.#functions.delete(key);
    });
  }

  registerHook(name: string, callback: HookCallback): Disposable {
    if (!HOOK_NAMES.includes(name as HookName)) {
      throw new LocalHostSystemError(`Unknown hook "${name}": expected one of ${HOOK_NAMES.join(', ')}.`);
    }
    if (typeof callback !== 'function') throw new LocalHostSystemError(`Hook "${name}" needs a function.`);
    const list = this.#hooks.get(name as HookName) ?? [];
    list.push(callback);
    this.#hooks.set(name as HookName, list);
    return new Disposable(() => {
      const current = this.#hooks.get(name as HookName) ?? [];
      const index = current.indexOf(callback);
      if (index >= 0) current.splice(index, 1);
    });
  }

  /** Runs the hooks of one kind in registration order; a throwing hook stops the chain (as the worker). */
  async executeHooks(name: HookName, context: Record<string, unknown>): Promise<void> {
    for (const callback of this.hooks(name)) await callback(context);
  }

  /** The worker's log entry point (the library's warnings); redacted like every other log line. */
  log(level: string, category: string, message: string): void {
    writeLog(this.logger, level, redactText(`[${category}] ${message}`));
  }
}

/** Routes a worker / library log level to the host logger. */
export function writeLog(logger: HostLogger, level: string, message: string): void {
  switch (level) {
    case 'error':
    case 'critical':
      logger.error(message);
      return;
    case 'warning':
      logger.warn(message);
      return;
    case 'trace':
    case 'debug':
      // The host shows debug lines only at verbose level; so do we (they go nowhere by default).
      return;
    default:
      logger.info(message);
  }
}

function toRegisteredFunction(
  metadata: FunctionMetadata,
  callback: (...args: unknown[]) => unknown,
): RegisteredFunction {
  if (!metadata || typeof metadata.name !== 'string' || metadata.name.trim() === '') {
    throw new LocalHostSystemError('A function registration needs a non-empty "name".');
  }
  if (typeof callback !== 'function') {
    throw new LocalHostSystemError(`Function "${metadata.name}" needs a handler function.`);
  }
  const bindings = metadata.bindings ?? {};
  const triggers = Object.entries(bindings).filter(([, b]) => /trigger$/i.test(b?.type ?? ''));
  if (triggers.length !== 1) {
    throw new LocalHostSystemError(
      `Function "${metadata.name}" must have exactly one trigger binding (found ${triggers.length}).`,
    );
  }
  const [triggerName, trigger] = triggers[0] as [string, BindingMetadata];
  return { name: metadata.name, metadata, callback, triggerName, trigger };
}

interface CoreState {
  programmingModel?: ProgrammingModelLike;
  active?: FunctionRegistry;
  facade?: Record<string, unknown>;
  installed?: boolean;
}

// Kept on globalThis so that two copies of this module (a test runner's and Node's own) share one state.
const STATE_KEY = Symbol.for('stampkeeper.localHost.functionsCore');

function state(): CoreState {
  const holder = globalThis as unknown as Record<symbol, CoreState | undefined>;
  let current = holder[STATE_KEY];
  if (!current) {
    current = {};
    holder[STATE_KEY] = current;
  }
  return current;
}

function activeRegistry(): FunctionRegistry {
  const registry = state().active;
  if (!registry) {
    throw new LocalHostSystemError(
      'No local host is loading an app: call startLocalHost() before the app registers functions.',
    );
  }
  return registry;
}

/** Makes `registry` the one the `@azure/functions-core` facade forwards to (undefined: none). */
export function setActiveRegistry(registry: FunctionRegistry | undefined): void {
  state().active = registry;
}

export function getActiveRegistry(): FunctionRegistry | undefined {
  return state().active;
}

/** The programming model the app set (`@azure/functions` sets it once per process, on its first `app.*`). */
export function currentProgrammingModel(): ProgrammingModelLike | undefined {
  return state().programmingModel;
}

/** The object `require('@azure/functions-core')` returns while the local host is installed. */
export function coreApiFacade(): Record<string, unknown> {
  const s = state();
  if (!s.facade) {
    s.facade = Object.freeze({
      version: LOCAL_WORKER_VERSION,
      hostVersion: LOCAL_HOST_VERSION,
      registerFunction: (metadata: FunctionMetadata, callback: (...args: unknown[]) => unknown) =>
        activeRegistry().registerFunction(metadata, callback),
      registerHook: (name: string, callback: HookCallback) => activeRegistry().registerHook(name, callback),
      setProgrammingModel: (model: ProgrammingModelLike) => {
        if (!model || typeof model.getInvocationModel !== 'function') {
          throw new LocalHostSystemError('setProgrammingModel needs an object with getInvocationModel().');
        }
        state().programmingModel = model;
      },
      getProgrammingModel: () => {
        const model = state().programmingModel;
        if (!model) throw new LocalHostSystemError('No programming model has been set.');
        return model;
      },
      log: (level: string, category: string, message: string) => {
        const registry = state().active;
        if (registry) registry.log(level, category, message);
      },
      Disposable,
    });
  }
  return s.facade;
}

type LoadFn = (request: string, parent: unknown, isMain: boolean) => unknown;

/**
 * Makes `require('@azure/functions-core')` resolve to the local host's facade, in this process, from
 * now on. Must run before the app's first `app.*` call (the library looks the module up lazily, once).
 * Idempotent.
 */
export function installCoreApi(): void {
  const s = state();
  if (s.installed) return;
  const mod = Module as unknown as {
    _load: LoadFn;
    _resolveFilename: (request: string, ...rest: unknown[]) => string;
  };
  const originalLoad = mod._load;
  const originalResolve = mod._resolveFilename;
  mod._load = function patchedLoad(this: unknown, request, parent, isMain) {
    if (request === CORE_MODULE_ID) return coreApiFacade();
    return originalLoad.call(this, request, parent, isMain);
  };
  mod._resolveFilename = function patchedResolve(this: unknown, request, ...rest) {
    // `require.resolve('@azure/functions-core')` must succeed too; the id itself is the "file".
    if (request === CORE_MODULE_ID) return CORE_MODULE_ID;
    return originalResolve.call(this, request, ...rest);
  };
  s.installed = true;
}
