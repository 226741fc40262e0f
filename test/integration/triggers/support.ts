import { FunctionRegistry, installCoreApi, setActiveRegistry } from '../../../src/local/host/coreApi';
import { LocalInvoker } from '../../../src/local/host/invoker';
import type { HostLogger, RegisteredFunction } from '../../../src/local/host/types';

export interface CapturingLogger extends HostLogger {
  lines: string[];
}

export function captureLogger(): CapturingLogger {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
  };
}

export interface TestHost {
  registry: FunctionRegistry;
  invoker: LocalInvoker;
  logger: CapturingLogger;
  /** The `@azure/functions` app object, registering into this host's registry. */
  app: typeof import('@azure/functions').app;
  fn(name: string): RegisteredFunction;
}

/**
 * The real local-host pieces the listeners run on: `@azure/functions-core` installed, a registry
 * receiving the app's `app.*` registrations, and the host's `LocalInvoker` (the library's own
 * invocation model). One per test file: vitest runs each file in its own process.
 */
export async function createTestHost(): Promise<TestHost> {
  installCoreApi();
  const logger = captureLogger();
  const registry = new FunctionRegistry(logger);
  setActiveRegistry(registry);
  const { app } = await import('@azure/functions');
  const invoker = new LocalInvoker({ registry, logger });
  return {
    registry,
    invoker,
    logger,
    app,
    fn(name) {
      const found = registry.get(name);
      if (!found) throw new Error(`no function ${name}`);
      return found;
    },
  };
}

/** Polls `check` until it is true (bounded; not a timing assertion). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, limitMs = 20_000) {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
