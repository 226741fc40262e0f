/**
 * The local host's Storage queue trigger: polls a queue the way the Functions host's queue listener
 * does (exponential back-off when empty, batches of `batchSize`, a new batch when in-flight work
 * drops to `newBatchThreshold`), invokes the function once per message, deletes the message on
 * success, makes it visible again after `visibilityTimeout` on failure, and moves it to
 * `<queue>-poison` once its dequeue count reaches `maxDequeueCount`.
 *
 * Message encoding follows host.json `extensions.queues.messageEncoding`: `base64` (the default,
 * as in the host) decodes each message; a message that is not valid base64 cannot be decoded, and
 * is moved to the poison queue without an invocation (the host's decode-failure handling).
 * `none` passes the text as it is. A binding with `dataType: 'binary'` gets the bytes.
 */
import { randomUUID } from 'node:crypto';
import { type DequeuedMessageItem, type QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { sleep } from './retry';
import type { HostLogger, Invoker, RegisteredFunction, RpcTypedData, TriggerListener } from './types';

export interface QueueHostConfig {
  /** Longest wait between polls of an empty queue (host default 1 min). */
  maxPollingIntervalMs: number;
  /** How long a failed message stays invisible before its next attempt (host default 0). */
  visibilityTimeoutMs: number;
  /** Messages fetched per poll (host default 16, at most 32). */
  batchSize: number;
  /** Attempts before a message goes to the poison queue (host default 5). */
  maxDequeueCount: number;
  /** In-flight count at or under which the next batch is fetched (host default batchSize / 2). */
  newBatchThreshold?: number;
  /** `base64` (host default) or `none`. */
  messageEncoding?: 'base64' | 'none';
}

export const DEFAULT_QUEUE_HOST_CONFIG: QueueHostConfig = {
  maxPollingIntervalMs: 60_000,
  visibilityTimeoutMs: 0,
  batchSize: 16,
  maxDequeueCount: 5,
  messageEncoding: 'base64',
};

export interface QueueListenerOptions {
  invoker: Invoker;
  /** Looks up an app setting by name (connection strings, `%binding expressions%`). */
  resolveSetting: ResolveSetting;
  hostConfig?: Partial<QueueHostConfig>;
  logger: HostLogger;
  /** Shortest wait between polls of an empty queue (default 100 ms, as the host). */
  minPollingIntervalMs?: number;
}

/** The host receives with a 10-minute lease and renews it while the function runs. */
const LEASE_SECONDS = 600;
const MIN_POLLING_INTERVAL_MS = 100;
const QUEUE_NAME_RE = /^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/;

/**
 * Starts polling the queue of a `queueTrigger` binding. Resolves once the binding is validated
 * (bad queue name, missing connection setting: rejects, nothing starts). An identity-based
 * connection (`<name>__queueServiceUri` ...) is not served locally: a warning, and nothing polls.
 *
 * Storage permission: the connection's account needs queue data read, process and add (Storage
 * Queue Data Contributor) for the trigger queue and its poison queue.
 * Retry semantics: at-least-once. A message is attempted up to `maxDequeueCount` times, then
 * copied to `<queue>-poison` and deleted from the trigger queue; a crash between the copy and the
 * delete can leave a second copy, never zero.
 */
export async function startQueueListener(
  fn: RegisteredFunction,
  options: QueueListenerOptions,
): Promise<TriggerListener> {
  const config = resolveQueueConfig(options.hostConfig ?? {});
  const queueName = resolveBindingExpression(
    fn.trigger['queueName'],
    options.resolveSetting,
    `[${fn.name}] queueName`,
  );
  if (!queueName || !QUEUE_NAME_RE.test(queueName)) {
    throw new Error(
      `[${fn.name}] queueName '${queueName ?? ''}' is not a valid Storage queue name (3-63 lowercase letters, digits and single hyphens).`,
    );
  }
  const connectionName =
    typeof fn.trigger['connection'] === 'string' ? fn.trigger['connection'] : 'AzureWebJobsStorage';
  let connectionString: string;
  try {
    connectionString = resolveConnectionString(
      connectionName || 'AzureWebJobsStorage',
      options.resolveSetting,
      ['queueServiceUri', 'serviceUri', 'accountName'],
      fn.name,
    );
  } catch (error) {
    if (error instanceof Error && error.message.includes('identity-based')) {
      options.logger.warn(`Function "${fn.name}" (queueTrigger) is not served locally: ${error.message}`);
      return { functionName: fn.name, stop: async () => {} };
    }
    throw error;
  }
  const service = QueueServiceClient.fromConnectionString(connectionString);
  const listener = new QueueListener(
    fn,
    service.getQueueClient(queueName),
    service.getQueueClient(`${queueName}-poison`),
    config,
    options,
  );
  listener.start();
  options.logger.info(`[${fn.name}] listening on Storage queue '${queueName}'.`);
  return listener;
}

class QueueListener implements TriggerListener {
  readonly functionName: string;
  readonly #abort = new AbortController();
  readonly #inFlight = new Set<Promise<void>>();
  #loop: Promise<void> | undefined;
  #poisonQueueReady = false;

  constructor(
    private readonly fn: RegisteredFunction,
    private readonly queue: QueueClient,
    private readonly poisonQueue: QueueClient,
    private readonly config: Required<QueueHostConfig>,
    private readonly options: QueueListenerOptions,
  ) {
    this.functionName = fn.name;
  }

  start(): void {
    this.#loop = this.#poll();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
    await Promise.allSettled([...this.#inFlight]);
  }

  async #poll(): Promise<void> {
    const signal = this.#abort.signal;
    const minDelay = this.options.minPollingIntervalMs ?? MIN_POLLING_INTERVAL_MS;
    let delay = minDelay;
    while (!signal.aborted) {
      if (this.#inFlight.size > this.config.newBatchThreshold) {
        await Promise.race([...this.#inFlight]);
        continue;
      }
      const messages = await this.#receive(signal);
      if (signal.aborted) return;
      if (messages.length === 0) {
        await sleep(delay, signal);
        delay = Math.min(delay * 2, Math.max(minDelay, this.config.maxPollingIntervalMs));
        continue;
      }
      delay = minDelay;
      for (const message of messages) {
        const work = this.#process(message).catch((error) =>
          this.options.logger.error(
            `[${this.fn.name}] queue message ${message.messageId}: ${describe(error)}`,
          ),
        );
        this.#inFlight.add(work);
        void work.finally(() => this.#inFlight.delete(work));
      }
    }
  }

  async #receive(signal: AbortSignal): Promise<DequeuedMessageItem[]> {
    try {
      const response = await this.queue.receiveMessages({
        numberOfMessages: this.config.batchSize,
        visibilityTimeout: LEASE_SECONDS,
        abortSignal: signal,
      });
      return response.receivedMessageItems;
    } catch (error) {
      if (signal.aborted) return [];
      // A queue that does not exist yet is an empty queue to the host's listener.
      if ((error as { statusCode?: number }).statusCode !== 404) {
        this.options.logger.warn(`[${this.fn.name}] polling '${this.queue.name}' failed: ${describe(error)}`);
      }
      return [];
    }
  }

  async #process(message: DequeuedMessageItem): Promise<void> {
    const lease = new Lease(this.queue, message, this.options.logger, this.fn.name);
    try {
      const bytes = this.#decode(message.messageText);
      if (bytes === undefined) {
        this.options.logger.warn(
          `[${this.fn.name}] message ${message.messageId} is not valid base64 (messageEncoding is base64): moving it to '${this.poisonQueue.name}'.`,
        );
        await this.#moveToPoison(message, lease);
        return;
      }
      lease.startRenewing();
      const text = bytes.toString('utf8');
      const binary = String(this.fn.trigger['dataType'] ?? '').toLowerCase() === 'binary';
      const outcome = await this.options.invoker.invoke(this.fn, {
        trigger: binary ? { bytes } : { string: text },
        triggerMetadata: this.#metadata(message, text),
      });
      lease.stopRenewing();
      if (outcome.ok) {
        await this.queue.deleteMessage(message.messageId, lease.popReceipt);
        return;
      }
      if (message.dequeueCount >= this.config.maxDequeueCount) {
        this.options.logger.warn(
          `[${this.fn.name}] message ${message.messageId} failed ${message.dequeueCount} time(s) (maxDequeueCount ${this.config.maxDequeueCount}): moving it to '${this.poisonQueue.name}'.`,
        );
        await this.#moveToPoison(message, lease);
        return;
      }
      await this.queue.updateMessage(
        message.messageId,
        lease.popReceipt,
        undefined,
        Math.ceil(this.config.visibilityTimeoutMs / 1000),
      );
    } finally {
      lease.stopRenewing();
    }
  }

  /** Copies the message, exactly as stored, to the poison queue, then deletes the original. */
  async #moveToPoison(message: DequeuedMessageItem, lease: Lease): Promise<void> {
    if (!this.#poisonQueueReady) {
      await this.poisonQueue.createIfNotExists();
      this.#poisonQueueReady = true;
    }
    await this.poisonQueue.sendMessage(message.messageText);
    await this.queue.deleteMessage(message.messageId, lease.popReceipt);
  }

  /** The message's bytes per `messageEncoding`; undefined when base64 is expected and it is not. */
  #decode(messageText: string): Buffer | undefined {
    if (this.config.messageEncoding === 'none') return Buffer.from(messageText, 'utf8');
    return decodeBase64Bytes(messageText);
  }

  /** The queue trigger's binding data, named and typed as the host sends it. */
  #metadata(message: DequeuedMessageItem, text: string): Record<string, RpcTypedData> {
    return {
      QueueTrigger: stringData(text),
      DequeueCount: jsonData(message.dequeueCount),
      ExpirationTime: dateTimeOffsetData(message.expiresOn),
      Id: stringData(message.messageId),
      InsertionTime: dateTimeOffsetData(message.insertedOn),
      NextVisibleTime: dateTimeOffsetData(message.nextVisibleOn),
      PopReceipt: stringData(message.popReceipt),
      sys: sysMetadata(this.fn.name),
    };
  }
}

/** Keeps a received message invisible while the function runs (the host renews at half the lease). */
class Lease {
  popReceipt: string;
  #timer: NodeJS.Timeout | undefined;
  #renewal: Promise<void> = Promise.resolve();

  constructor(
    private readonly queue: QueueClient,
    private readonly message: DequeuedMessageItem,
    private readonly logger: HostLogger,
    private readonly functionName: string,
  ) {
    this.popReceipt = message.popReceipt;
  }

  startRenewing(): void {
    this.#timer = setInterval(
      () => {
        this.#renewal = this.#renewal.then(() => this.#renew());
      },
      (LEASE_SECONDS * 1000) / 2,
    );
    this.#timer.unref();
  }

  stopRenewing(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #renew(): Promise<void> {
    try {
      const response = await this.queue.updateMessage(
        this.message.messageId,
        this.popReceipt,
        undefined,
        LEASE_SECONDS,
      );
      if (response.popReceipt) this.popReceipt = response.popReceipt;
    } catch (error) {
      this.logger.warn(
        `[${this.functionName}] renewing the lease of message ${this.message.messageId} failed: ${describe(error)}`,
      );
    }
  }
}

function resolveQueueConfig(partial: Partial<QueueHostConfig>): Required<QueueHostConfig> {
  const merged = { ...DEFAULT_QUEUE_HOST_CONFIG, ...stripUndefined(partial) };
  if (!Number.isInteger(merged.batchSize) || merged.batchSize < 1 || merged.batchSize > 32) {
    throw new Error('host.json extensions.queues.batchSize must be an integer from 1 to 32.');
  }
  if (!Number.isInteger(merged.maxDequeueCount) || merged.maxDequeueCount < 1) {
    throw new Error('host.json extensions.queues.maxDequeueCount must be a positive integer.');
  }
  if (!(merged.visibilityTimeoutMs >= 0) || !(merged.maxPollingIntervalMs >= 0)) {
    throw new Error('host.json extensions.queues durations must not be negative.');
  }
  const encoding = merged.messageEncoding ?? 'base64';
  if (encoding !== 'base64' && encoding !== 'none') {
    throw new Error(
      `host.json extensions.queues.messageEncoding must be "base64" or "none", got "${encoding}".`,
    );
  }
  const newBatchThreshold = merged.newBatchThreshold ?? Math.floor(merged.batchSize / 2);
  if (!Number.isInteger(newBatchThreshold) || newBatchThreshold < 0) {
    throw new Error('host.json extensions.queues.newBatchThreshold must be a non-negative integer.');
  }
  return { ...merged, newBatchThreshold, messageEncoding: encoding };
}

/**
 * Decodes base64 the way .NET's `Convert.FromBase64String` accepts it (whitespace ignored, length
 * a multiple of 4, padding only at the end); undefined when the text is not base64.
 */
export function decodeBase64Strict(text: string): string | undefined {
  return decodeBase64Bytes(text)?.toString('utf8');
}

function decodeBase64Bytes(text: string): Buffer | undefined {
  const compact = text.replace(/[\s]/g, '');
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return undefined;
  return Buffer.from(compact, 'base64');
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

// ---------------------------------------------------------------------------------------------
// Helpers shared with the Service Bus listener (serviceBusTrigger.ts).

export type ResolveSetting = (name: string) => string | undefined;

/** Resolves `%Setting%` binding expressions in a binding property, as the host does at start-up. */
export function resolveBindingExpression(
  value: unknown,
  resolveSetting: ResolveSetting,
  what: string,
): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new Error(`${what} must be a string.`);
  return value.replace(/%([^%]+)%/g, (_match, name: string) => {
    const resolved = resolveSetting(name);
    if (resolved === undefined || resolved === '') {
      throw new Error(`${what} refers to the app setting '${name}', which is not set.`);
    }
    return resolved;
  });
}

/**
 * The connection string a binding's `connection` names. Like the host, it looks the name up as
 * is, then with the `AzureWebJobs` prefix. Identity-based connections (`<name>__...` settings)
 * are reported as not served locally. The error names the setting, never its value.
 */
export function resolveConnectionString(
  connectionName: string,
  resolveSetting: ResolveSetting,
  identitySuffixes: string[],
  functionName: string,
): string {
  const value = resolveSetting(connectionName) ?? resolveSetting(`AzureWebJobs${connectionName}`);
  if (value !== undefined && value !== '') return value;
  const identity = identitySuffixes.find((suffix) => resolveSetting(`${connectionName}__${suffix}`));
  if (identity) {
    throw new Error(
      `[${functionName}] connection '${connectionName}' is identity-based (${connectionName}__${identity}); the local host serves connection strings only.`,
    );
  }
  throw new Error(
    `[${functionName}] connection setting '${connectionName}' is not set: expected a connection string in '${connectionName}' or 'AzureWebJobs${connectionName}'.`,
  );
}

/** A non-string .NET value as the host sends it over RPC: JSON (Newtonsoft). */
export function jsonData(value: unknown): RpcTypedData {
  return { json: JSON.stringify(value ?? null) };
}

export function stringData(value: string): RpcTypedData {
  return { string: value };
}

/** A date as Newtonsoft serializes a UTC `DateTimeOffset` (`+00:00`, not `Z`). */
export function dateTimeOffsetData(date: Date | undefined): RpcTypedData {
  if (!date) return { json: 'null' };
  return jsonData(date.toISOString().replace('Z', '+00:00'));
}

/** The `sys` binding data the host adds to every invocation. */
export function sysMetadata(functionName: string): RpcTypedData {
  return jsonData({ MethodName: functionName, UtcNow: new Date().toISOString(), RandGuid: randomUUID() });
}
