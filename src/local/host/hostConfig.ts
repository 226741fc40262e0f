/**
 * The parts of host.json the local host honours: `extensions.http.routePrefix`,
 * `extensions.queues` and `extensions.serviceBus` (handed to the listeners), `functionTimeout`.
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

export interface ServiceBusConfig {
  prefetchCount?: number;
  maxConcurrentCalls?: number;
  autoCompleteMessages?: boolean;
  messageHandlerOptions?: { autoComplete?: boolean; maxConcurrentCalls?: number; [key: string]: unknown };
  [key: string]: unknown;
}

export interface HostConfig {
  version: string;
  functionTimeout?: string;
  /** `functionTimeout` in ms, when set. */
  functionTimeoutMs?: number;
  routePrefix: string;
  queues: QueuesConfig;
  serviceBus: ServiceBusConfig;
  /** The whole file, for listeners that need more. */
  raw: Record<string, unknown>;
}

/** Defaults of the Functions host when host.json says nothing. */
export const DEFAULT_HOST_CONFIG: HostConfig = {
  version: '2.0',
  routePrefix: 'api',
  queues: { maxDequeueCount: 5, batchSize: 16 },
  serviceBus: {},
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
  return {
    version: '2.0',
    functionTimeout: json.functionTimeout as string | undefined,
    functionTimeoutMs,
    routePrefix: routePrefix.replace(/^\/+|\/+$/g, ''),
    queues,
    serviceBus: (extensions.serviceBus ?? {}) as ServiceBusConfig,
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
