/**
 * Types shared by the local host's parts. The host provides `@azure/functions-core` (the worker API
 * that `@azure/functions` looks for), collects every `registerFunction(metadata, callback)` call as a
 * `RegisteredFunction`, and runs trigger listeners (HTTP, Event Grid, timer, storage queue,
 * Service Bus) that call `Invoker.invoke`, which goes through the library's own
 * `ProgrammingModel.getInvocationModel()` exactly as the real worker does.
 *
 * The shapes of `metadata` and the RPC data mirror the worker's `types-core/index.d.ts`
 * (a copy ships in node_modules/applicationinsights/types/@azure_functions-core/index.d.ts).
 */

/** One binding of a registered function, as `@azure/functions` builds it (`toCoreFunctionMetadata`). */
export interface BindingMetadata {
  type: string;
  direction: 'in' | 'out' | 'inout' | string;
  [key: string]: unknown;
}

export interface RetryOptions {
  strategy: 'fixedDelay' | 'exponentialBackoff' | string;
  maxRetryCount: number;
  delayInterval?: { seconds?: number; milliseconds?: number } | number | string;
  minimumInterval?: { seconds?: number; milliseconds?: number } | number | string;
  maximumInterval?: { seconds?: number; milliseconds?: number } | number | string;
}

export interface FunctionMetadata {
  name: string;
  functionId?: string;
  bindings: Record<string, BindingMetadata>;
  retryOptions?: RetryOptions;
  [key: string]: unknown;
}

export interface RegisteredFunction {
  name: string;
  metadata: FunctionMetadata;
  callback: (...args: unknown[]) => unknown;
  /** The binding whose type ends in `Trigger` (its key is `triggerName`). */
  triggerName: string;
  trigger: BindingMetadata;
}

/** RPC typed data, as the worker protocol carries it (only the members the host uses). */
export interface RpcTypedData {
  string?: string | null;
  json?: string | null;
  bytes?: Uint8Array | null;
  http?: unknown;
  int?: number | null;
  double?: number | null;
  collectionString?: { string?: string[] | null } | null;
  collectionBytes?: { bytes?: Uint8Array[] | null } | null;
}

export interface InvocationInput {
  /** The trigger's value. */
  trigger: RpcTypedData;
  /** Trigger metadata (dequeueCount, messageId, ...), values as RPC typed data. */
  triggerMetadata?: Record<string, RpcTypedData>;
}

export interface InvocationOutcome {
  ok: boolean;
  /** The `returnValue` / outputs as the invocation model produced them (`getResponse`). */
  returnValue?: RpcTypedData | null;
  outputData?: Array<{ name?: string | null; data?: RpcTypedData | null }>;
  error?: unknown;
  /** How many attempts ran (1 without retries). */
  attempts: number;
  /** The (last) attempt outlived host.json `functionTimeout` (`error` is a `FunctionTimeoutError`). */
  timedOut?: boolean;
}

export interface Invoker {
  /**
   * Invokes `fn` once through the programming model, then again per its `retryOptions` (as the
   * host does) while it throws. Never throws itself: the outcome says what happened.
   */
  invoke(fn: RegisteredFunction, input: InvocationInput): Promise<InvocationOutcome>;
}

export interface HostLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** A running trigger source (timer scheduler, queue poller, Service Bus receiver...). */
export interface TriggerListener {
  readonly functionName: string;
  stop(): Promise<void>;
}
