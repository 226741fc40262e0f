/**
 * The parts of host.json the local host honours: `extensions.http.routePrefix`,
 * `extensions.queues` and `extensions.serviceBus` (handed to the listeners), `functionTimeout`,
 * `singleton` (the timer listeners' locks). `ignoredHostJsonKeys` names what the Functions runtime
 * with extension bundle 4.x does not read at all.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { durationToMs } from './retry';

export interface QueuesConfig {
  maxPollingInterval?: string;
  visibilityTimeout?: string;
  batchSize?: number;
  newBatchThreshold?: number;
  maxDequeueCount?: number;
  [key: string]: unknown;
}

/** `extensions.serviceBus` as the Service Bus extension 5.x (extension bundle 4.x) reads it. */
export interface ServiceBusConfig {
  prefetchCount?: number;
  maxConcurrentCalls?: number;
  autoCompleteMessages?: boolean;
  maxAutoLockRenewalDuration?: string;
  maxMessageBatchSize?: number;
  [key: string]: unknown;
}

/** `singleton` (WebJobs `SingletonOptions`): the timer listeners' blob lease locks. */
export interface SingletonConfig {
  /** Lease of a listener lock (15 s to 60 s; host default 60 s), renewed at half of it. */
  listenerLockPeriodMs: number;
  /** How often a listener without its lock tries to take it (host default 60 s, at least 15 s). */
  listenerLockRecoveryPollingIntervalMs: number;
}

export interface HostConfig {
  version: string;
  functionTimeout?: string;
  /** `functionTimeout` in ms, when set. */
  functionTimeoutMs?: number;
  routePrefix: string;
  queues: QueuesConfig;
  serviceBus: ServiceBusConfig;
  singleton: SingletonConfig;
  /** The whole file, for listeners that need more. */
  raw: Record<string, unknown>;
}

/** Defaults of the Functions host when host.json says nothing. */
export const DEFAULT_HOST_CONFIG: HostConfig = {
  version: '2.0',
  routePrefix: 'api',
  queues: { maxDequeueCount: 5, batchSize: 16 },
  serviceBus: {},
  singleton: { listenerLockPeriodMs: 60_000, listenerLockRecoveryPollingIntervalMs: 60_000 },
  raw: {},
};

/** Reads `<rootDir>/host.json` (defaults when absent); throws a clear error when it is malformed. */
export function loadHostConfig(rootDir: string): HostConfig {
  const file = join(rootDir, 'host.json');
  if (!existsSync(file)) return DEFAULT_HOST_CONFIG;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`host.json is not valid JSON: ${(error as Error).message}`);
  }
  return parseHostConfig(raw);
}

export function parseHostConfig(raw: unknown): HostConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new Error('host.json must hold a JSON object.');
  const json = raw as Record<string, unknown>;
  if (json.version !== '2.0')
    throw new Error(`host.json "version" must be "2.0", got ${JSON.stringify(json.version)}.`);
  const extensions = (json.extensions ?? {}) as Record<string, Record<string, unknown> | undefined>;
  const http = extensions.http ?? {};
  const routePrefix = http.routePrefix ?? 'api';
  if (typeof routePrefix !== 'string')
    throw new Error('host.json extensions.http.routePrefix must be a string.');
  const queues = { ...DEFAULT_HOST_CONFIG.queues, ...(extensions.queues ?? {}) } as QueuesConfig;
  if (
    queues.maxDequeueCount !== undefined &&
    !(Number.isInteger(queues.maxDequeueCount) && queues.maxDequeueCount > 0)
  ) {
    throw new Error('host.json extensions.queues.maxDequeueCount must be a positive integer.');
  }
  const functionTimeoutMs = hostJsonDurationMs(json.functionTimeout, 'functionTimeout');
  const singleton = (json.singleton ?? {}) as Record<string, unknown>;
  const listenerLockPeriodMs =
    hostJsonDurationMs(singleton.listenerLockPeriod, 'singleton.listenerLockPeriod') ??
    DEFAULT_HOST_CONFIG.singleton.listenerLockPeriodMs;
  // SingletonOptions' bounds: Storage leases last 15 to 60 s.
  if (listenerLockPeriodMs < 15_000 || listenerLockPeriodMs > 60_000) {
    throw new Error('host.json singleton.listenerLockPeriod must be from 00:00:15 to 00:01:00.');
  }
  const listenerLockRecoveryPollingIntervalMs =
    hostJsonDurationMs(
      singleton.listenerLockRecoveryPollingInterval,
      'singleton.listenerLockRecoveryPollingInterval',
    ) ?? DEFAULT_HOST_CONFIG.singleton.listenerLockRecoveryPollingIntervalMs;
  if (listenerLockRecoveryPollingIntervalMs < 15_000) {
    throw new Error('host.json singleton.listenerLockRecoveryPollingInterval must be at least 00:00:15.');
  }
  return {
    version: '2.0',
    functionTimeout: json.functionTimeout as string | undefined,
    functionTimeoutMs,
    routePrefix: routePrefix.replace(/^\/+|\/+$/g, ''),
    queues,
    serviceBus: (extensions.serviceBus ?? {}) as ServiceBusConfig,
    singleton: { listenerLockPeriodMs, listenerLockRecoveryPollingIntervalMs },
    raw: json,
  };
}

/**
 * A host.json duration (a .NET TimeSpan string such as `"00:00:30"`) in ms; undefined when absent.
 * Throws naming the setting (`what`, e.g. `extensions.queues.visibilityTimeout`) otherwise.
 */
export function hostJsonDurationMs(value: unknown, what: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    throw new Error(`host.json ${what} must be a TimeSpan like "00:00:30", got ${JSON.stringify(value)}.`);
  }
  return durationToMs(value, `host.json ${what}`);
}

/** A key the runtime reads: a value (`true`), an object with known keys, or an object with any keys. */
type KeyTree = true | 'anyKeys' | { [key: string]: KeyTree };

const TIMESPAN_VALUE = true;
/**
 * What the Functions runtime 4.x with extension bundle 4.x reads from host.json: the keys of the
 * `version-2-ext-5` definition of SchemaStore's host.json schema (https://json.schemastore.org/host.json,
 * the "extensions 5.x" shape of bundles 3.x and 4.x; `additionalProperties: false` throughout). A key
 * outside it is silently ignored in Azure, e.g. `extensions.serviceBus.messageHandlerOptions`, the
 * Service Bus extension 4.x shape that 5.x replaced with `autoCompleteMessages`, `maxConcurrentCalls`
 * and `maxAutoLockRenewalDuration`.
 */
export const HOST_JSON_KEYS: { [key: string]: KeyTree } = {
  version: true,
  extensionBundle: { id: true, version: true },
  aggregator: { batchSize: true, flushTimeout: TIMESPAN_VALUE },
  functions: true,
  functionTimeout: TIMESPAN_VALUE,
  healthMonitor: {
    enabled: true,
    healthCheckInterval: true,
    healthCheckWindow: true,
    healthCheckThreshold: true,
    counterThreshold: true,
  },
  languageWorker: { workersDirectory: true },
  logging: {
    logLevel: 'anyKeys',
    fileLoggingMode: true,
    applicationInsights: {
      samplingSettings: {
        isEnabled: true,
        maxTelemetryItemsPerSecond: true,
        evaluationInterval: true,
        initialSamplingPercentage: true,
        samplingPercentageIncreaseTimeout: true,
        samplingPercentageDecreaseTimeout: true,
        minSamplingPercentage: true,
        maxSamplingPercentage: true,
        movingAverageRatio: true,
        excludedTypes: true,
        includedTypes: true,
      },
      enableLiveMetrics: true,
      enableLiveMetricsFilters: true,
      enableDependencyTracking: true,
      enablePerformanceCountersCollection: true,
      httpAutoCollectionOptions: {
        enableHttpTriggerExtendedInfoCollection: true,
        enableW3CDistributedTracing: true,
        enableResponseHeaderInjection: true,
      },
      snapshotConfiguration: 'anyKeys',
    },
  },
  managedDependency: { enabled: true },
  retry: {
    strategy: true,
    maxRetryCount: true,
    delayInterval: true,
    minimumInterval: true,
    maximumInterval: true,
  },
  customHandler: { description: 'anyKeys', enableForwardingHttpRequest: true },
  singleton: {
    lockPeriod: true,
    listenerLockPeriod: true,
    listenerLockRecoveryPollingInterval: true,
    lockAcquisitionTimeout: true,
    lockAcquisitionPollingInterval: true,
  },
  watchDirectories: true,
  watchFiles: true,
  concurrency: { dynamicConcurrencyEnabled: true, snapshotPersistenceEnabled: true },
  sendCanceledInvocationsToWorker: true,
  extensions: {
    http: {
      routePrefix: true,
      maxConcurrentRequests: true,
      maxOutstandingRequests: true,
      dynamicThrottlesEnabled: true,
      hsts: { isEnabled: true, excludedHosts: true, includeSubDomains: true, maxAge: true, preload: true },
      customHeaders: 'anyKeys',
    },
    queues: {
      maxPollingInterval: true,
      visibilityTimeout: true,
      batchSize: true,
      maxDequeueCount: true,
      newBatchThreshold: true,
      messageEncoding: true,
    },
    serviceBus: {
      clientRetryOptions: { mode: true, tryTimeout: true, delay: true, maxDelay: true, maxRetries: true },
      prefetchCount: true,
      transportType: true,
      webProxy: true,
      autoCompleteMessages: true,
      maxAutoLockRenewalDuration: true,
      maxConcurrentCalls: true,
      maxConcurrentSessions: true,
      maxMessageBatchSize: true,
      maxBatchWaitTime: true,
      sessionIdleTimeout: true,
      enableCrossEntityTransactions: true,
    },
    sendGrid: { from: true },
    eventHubs: 'anyKeys',
    durableTask: 'anyKeys',
    cosmosDB: 'anyKeys',
    blobs: { maxDegreeOfParallelism: true, poisonBlobThreshold: true },
  },
};

/**
 * The dotted paths of host.json keys the runtime with extension bundle 4.x does not read
 * (`HOST_JSON_KEYS`): a setting there has no effect in Azure.
 */
export function ignoredHostJsonKeys(
  raw: unknown,
  tree: { [key: string]: KeyTree } = HOST_JSON_KEYS,
): string[] {
  const ignored: string[] = [];
  const walk = (value: unknown, known: { [key: string]: KeyTree }, path: string) => {
    if (!value || typeof value !== 'object' || Array.isArray(value)) return;
    for (const [key, child] of Object.entries(value)) {
      const at = path ? `${path}.${key}` : key;
      const expected = known[key];
      if (expected === undefined) ignored.push(at);
      else if (typeof expected === 'object') walk(child, expected, at);
    }
  };
  walk(raw, tree, '');
  return ignored;
}
