/**
 * The parts of host.json the local host honours: `extensions.http.routePrefix`,
 * `extensions.queues` and `extensions.serviceBus` (handed to the listeners), `functionTimeout`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTimeSpan } from './retry';

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
  let functionTimeoutMs: number | undefined;
  if (json.functionTimeout !== undefined) {
    functionTimeoutMs =
      typeof json.functionTimeout === 'string' ? parseTimeSpan(json.functionTimeout) : undefined;
    if (functionTimeoutMs === undefined) {
      throw new Error(`host.json functionTimeout must be a TimeSpan like "00:10:00".`);
    }
  }
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
