/**
 * Runs one registered function the way the Node.js worker does (InvocationHandler): through the
 * programming model the app set (`@azure/functions`' own `InvocationModel`), with the pre- and
 * post-invocation hooks, then again per the registration's retry policy, as the host does.
 */
import { randomUUID } from 'node:crypto';
import { redactText } from '../../lib/core/redact';
import { currentProgrammingModel, type FunctionRegistry, LocalHostSystemError, writeLog } from './coreApi';
import {
  parseRetryOptions,
  type RetryPolicy,
  retryDelayMs,
  retryPolicyApplies,
  settledWithin,
  sleep,
} from './retry';
import type {
  HostLogger,
  InvocationInput,
  InvocationOutcome,
  Invoker,
  RegisteredFunction,
  RpcTypedData,
} from './types';

export interface LocalInvokerOptions {
  registry: FunctionRegistry;
  logger: HostLogger;
  /** For exponential backoff jitter (tests pass a fixed one). */
  random?: () => number;
  /** host.json `functionTimeout` in ms: an attempt running longer fails, as on the host. */
  timeoutMs?: number;
}

interface RpcRetryContext {
  retryCount: number;
  maxRetryCount: number;
  exception?: { message?: string; source?: string; stackTrace?: string };
}

/** How long a stopping host waits for running invocations before it abandons them (5 s). */
export const DRAIN_TIMEOUT_MS = 5_000;

/** The `Invoker` of the local host. `close()` cancels pending retry waits (host stopping). */
export class LocalInvoker implements Invoker {
  readonly #registry: FunctionRegistry;
  readonly #logger: HostLogger;
  readonly #random: () => number;
  readonly #timeoutMs: number | undefined;
  readonly #policies = new Map<string, RetryPolicy | undefined>();
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #closing = new AbortController();

  constructor(options: LocalInvokerOptions) {
    this.#registry = options.registry;
    this.#logger = options.logger;
    this.#random = options.random ?? Math.random;
    this.#timeoutMs = options.timeoutMs;
  }

  /** Invocations (with their retries) not finished yet. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Invokes `fn` and retries it per its `retryOptions` while it throws (retryContext carries the
   * attempt number and the last exception). Never throws: the outcome says what happened.
   */
  invoke(fn: RegisteredFunction, input: InvocationInput): Promise<InvocationOutcome> {
    const run = this.#invokeWithRetries(fn, input);
    this.#inFlight.add(run);
    void run.finally(() => this.#inFlight.delete(run));
    return run;
  }

  /**
   * Waits for running invocations to finish (at most `timeoutMs`); resolves true when they all did,
   * false when some were still running and are abandoned.
   */
  async drain(timeoutMs = DRAIN_TIMEOUT_MS): Promise<boolean> {
    if (this.#inFlight.size === 0) return true;
    return settledWithin(this.#inFlight, timeoutMs);
  }

  /** Stops waiting between retries: pending retries end with their last error. */
  close(): void {
    this.#closing.abort();
  }

  /**
   * The retry policy the host enforces for a function (undefined: none). Throws on a malformed one.
   * A policy on a trigger the runtime does not retry (HTTP, Event Grid, queues...) is ignored, as in Azure.
   */
  retryPolicy(fn: RegisteredFunction): RetryPolicy | undefined {
    if (!this.#policies.has(fn.name)) {
      const policy = parseRetryOptions(fn.metadata.retryOptions, fn.name);
      this.#policies.set(fn.name, policy && retryPolicyApplies(fn.trigger.type) ? policy : undefined);
    }
    return this.#policies.get(fn.name);
  }

  async #invokeWithRetries(fn: RegisteredFunction, input: InvocationInput): Promise<InvocationOutcome> {
    let policy: RetryPolicy | undefined;
    try {
      policy = this.retryPolicy(fn);
    } catch (error) {
      return { ok: false, error, attempts: 0 };
    }
    let attempts = 0;
    let retryContext: RpcRetryContext | undefined = policy
      ? { retryCount: 0, maxRetryCount: policy.maxRetryCount }
      : undefined;
    for (;;) {
      attempts += 1;
      const result = await this.#invokeOnce(fn, input, retryContext);
      if (result.ok) return { ...result, attempts };
      const retryCount = attempts;
      if (!policy || retryCount > policy.maxRetryCount || this.#closing.signal.aborted) {
        return { ...result, attempts };
      }
      const delay = retryDelayMs(policy, retryCount, this.#random);
      this.#logger.warn(
        `[${fn.name}] attempt ${attempts} failed; retry ${retryCount} of ${policy.maxRetryCount} in ${Math.round(delay)} ms (${policy.strategy}).`,
      );
      if (!(await sleep(delay, this.#closing.signal))) return { ...result, attempts };
      retryContext = {
        retryCount,
        maxRetryCount: policy.maxRetryCount,
        exception: toRpcException(result.error),
      };
    }
  }

  async #invokeOnce(
    fn: RegisteredFunction,
    input: InvocationInput,
    retryContext: RpcRetryContext | undefined,
  ): Promise<Omit<InvocationOutcome, 'attempts'>> {
    const invocationId = randomUUID();
    const category = `${fn.name}.Invocation`;
    const coreCtx: {
      invocationId: string;
      request: Record<string, unknown>;
      metadata: RegisteredFunction['metadata'];
      state?: string;
      log(level: string, logCategory: string, message: string): void;
    } = {
      invocationId,
      request: {
        invocationId,
        functionId: fn.name,
        inputData: [{ name: fn.triggerName, data: input.trigger }],
        triggerMetadata: input.triggerMetadata ?? {},
        retryContext,
      },
      metadata: fn.metadata,
      log: (level, logCategory, message) => {
        const prefix = logCategory === 'system' ? `[${category}] (system)` : `[${fn.name}]`;
        // In Azure the worker running a timed-out handler is restarted: nothing it logs afterwards
        // reaches the host. Here it keeps running, so its late lines are marked as such.
        const late = timedOut ? ' (after its timeout: lost in Azure)' : '';
        writeLog(this.#logger, level, `${prefix}${late} ${redactText(message)}`);
      },
    };
    let timedOut = false;
    try {
      const model = currentProgrammingModel();
      if (!model)
        throw new LocalHostSystemError('The app did not set a programming model (no app.* call ran).');
      const invocationModel = await model.getInvocationModel(coreCtx);
      const hookData: Record<string, unknown> = {};
      const { context, inputs } = await invocationModel.getArguments();
      const appHookData = this.#registry.appHookData;
      const preContext = {
        hookData,
        appHookData,
        invocationContext: context,
        inputs,
        functionCallback: fn.callback,
      };
      coreCtx.state = 'preInvocationHooks';
      try {
        await this.#registry.executeHooks('preInvocation', preContext);
      } finally {
        coreCtx.state = undefined;
      }
      const postContext = {
        hookData,
        appHookData,
        invocationContext: context,
        inputs: preContext.inputs,
        result: null as unknown,
        error: null as unknown,
      };
      coreCtx.state = 'invocation';
      try {
        const running = invocationModel.invokeFunction(
          context,
          preContext.inputs,
          preContext.functionCallback,
        );
        const settled = await this.#withinTimeout(running);
        if (settled.timedOut) {
          timedOut = true;
          // Whatever the handler returns or throws later is discarded (as the restarted worker's).
          running.catch(() => {});
          return this.#timedOut(fn, invocationId, settled.limitMs);
        }
        postContext.result = settled.value;
      } catch (error) {
        postContext.error = error;
      } finally {
        coreCtx.state = undefined;
      }
      coreCtx.state = 'postInvocationHooks';
      try {
        await this.#registry.executeHooks('postInvocation', postContext);
      } finally {
        coreCtx.state = undefined;
      }
      if (isErrorLike(postContext.error)) throw postContext.error;
      const response = await invocationModel.getResponse(context, postContext.result);
      return {
        ok: true,
        returnValue: (response.returnValue ?? null) as RpcTypedData | null,
        outputData: (response.outputData ?? []) as InvocationOutcome['outputData'],
      };
    } catch (error) {
      this.#logger.error(`[${fn.name}] invocation ${invocationId} failed: ${describeError(error)}`);
      return { ok: false, error };
    }
  }

  /**
   * The handler's settlement, or `timedOut` when it outlives `functionTimeout` (a rejection within
   * the limit is rethrown). JavaScript cannot stop the handler: see `#timedOut`.
   */
  async #withinTimeout<T>(
    work: Promise<T>,
  ): Promise<{ timedOut: false; value: T } | { timedOut: true; limitMs: number }> {
    const limitMs = this.#timeoutMs;
    if (limitMs === undefined) return { timedOut: false, value: await work };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<{ timedOut: true; limitMs: number }>((resolve) => {
      timer = setTimeout(() => resolve({ timedOut: true, limitMs }), limitMs);
    });
    try {
      return await Promise.race([work.then((value) => ({ timedOut: false as const, value })), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * What the Functions host does when an invocation outlives `functionTimeout`, as far as it can
   * be done in one process. The host (WebJobs `FunctionExecutor`) logs "Timeout value of <limit>
   * exceeded by function 'Functions.<name>' (Id: '<id>'). Initiating cancellation.", fails the
   * invocation with `FunctionTimeoutException` ("Timeout value of <limit> was exceeded by function:
   * Functions.<name>."), then, for an out-of-process worker such as Node's, restarts the worker
   * process running it (azure-functions-host `WebScriptHostExceptionHandler.OnTimeoutExceptionAsync`:
   * "A function timeout has occurred. Restarting worker process executing invocationId '<id>'.").
   * The invocation's trigger then settles as a failure: HTTP 500, Event Grid redelivery, the queue
   * message back on the queue (poison after `maxDequeueCount`), Service Bus abandon.
   *
   * Here the worker is this process: the attempt fails the same way and with the same lines, no
   * post-invocation hook runs (the restarted worker would run none), and the handler's later result
   * is discarded; the handler itself cannot be stopped and runs on.
   */
  #timedOut(
    fn: RegisteredFunction,
    invocationId: string,
    limitMs: number,
  ): Omit<InvocationOutcome, 'attempts'> {
    const limit = formatTimeSpan(limitMs);
    const error = new FunctionTimeoutError(limitMs, fn.name);
    this.#logger.error(
      `[${fn.name}] Timeout value of ${limit} exceeded by function 'Functions.${fn.name}' (Id: '${invocationId}'). Initiating cancellation.`,
    );
    this.#logger.error(`[${fn.name}] invocation ${invocationId} failed: ${describeError(error)}`);
    this.#logger.warn(
      `[${fn.name}] A function timeout has occurred. Restarting worker process executing invocationId '${invocationId}'. ` +
        '(Local host: the worker is this process, so the handler runs on; its result and later output are discarded.)',
    );
    return { ok: false, error, timedOut: true };
  }
}

/**
 * An invocation outlived host.json `functionTimeout`: the runtime's `FunctionTimeoutException`,
 * with its message.
 */
export class FunctionTimeoutError extends Error {
  readonly limitMs: number;
  constructor(limitMs: number, functionName: string) {
    super(`Timeout value of ${formatTimeSpan(limitMs)} was exceeded by function: Functions.${functionName}.`);
    this.name = 'FunctionTimeoutException';
    this.limitMs = limitMs;
  }
}

/** A duration as .NET prints a TimeSpan (`[d.]hh:mm:ss[.fffffff]`), as the host's messages show it. */
export function formatTimeSpan(ms: number): string {
  const whole = Math.floor(ms);
  const days = Math.floor(whole / 86_400_000);
  const pad = (n: number) => String(n).padStart(2, '0');
  const hours = Math.floor(whole / 3_600_000) % 24;
  const minutes = Math.floor(whole / 60_000) % 60;
  const seconds = Math.floor(whole / 1000) % 60;
  const fraction = whole % 1000;
  return (
    `${days > 0 ? `${days}.` : ''}${pad(hours)}:${pad(minutes)}:${pad(seconds)}` +
    (fraction > 0 ? `.${String(fraction * 10_000).padStart(7, '0')}` : '')
  );
}

function isErrorLike(value: unknown): boolean {
  // A post-invocation hook may clear the error (null) to swallow it; anything else thrown fails.
  return value !== null && value !== undefined;
}

function toRpcException(error: unknown): RpcRetryContext['exception'] {
  if (error instanceof Error) {
    return {
      message: redactText(error.message),
      source: error.name,
      stackTrace: redactText(error.stack ?? ''),
    };
  }
  return { message: redactText(String(error)) };
}

/** A one-line, redacted description of an invocation error (never a stack trace). */
export function describeError(error: unknown): string {
  if (error instanceof Error) return redactText(`${error.name}: ${error.message}`);
  return redactText(String(error));
}
