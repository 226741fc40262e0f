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
import { type DequeuedMessageItem, type QueueClient, QueueServiceClient } from '@azure/storage-queue';
import {
  dateTimeOffsetData,
  jsonData,
  type ResolveSetting,
  resolveBindingExpression,
  resolveConnectionString,
  stringData,
  stripUndefined,
  sysMetadata,
} from './bindingData';
import { DRAIN_TIMEOUT_MS, describeError } from './invoker';
import { settledWithin, sleep } from './retry';
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
  /** How long `stop()` waits for running invocations before abandoning them (default 5 s). */
  stopTimeoutMs?: number;
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
  /** Running messages: their work, and the lease to let go of if stop() abandons them. */
  readonly #inFlight = new Map<Promise<void>, { messageId: string; lease?: Lease }>();
  readonly #aborted: Promise<void>;
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
    this.#aborted = new Promise((resolve) =>
      this.#abort.signal.addEventListener('abort', () => resolve(), { once: true }),
    );
  }

  start(): void {
    this.#loop = this.#poll();
  }

  /**
   * Stops polling and waits for running invocations, at most `stopTimeoutMs`: the messages of
   * invocations still running then are abandoned (their lease is no longer renewed, so they
   * return to the queue when it expires).
   */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
    const limit = this.options.stopTimeoutMs ?? DRAIN_TIMEOUT_MS;
    if (await settledWithin(this.#inFlight.keys(), limit)) return;
    const abandoned = [...this.#inFlight.values()];
    for (const item of abandoned) void item.lease?.stopRenewing();
    this.options.logger.warn(
      `[${this.fn.name}] stopped without waiting for ${abandoned.length} running invocation(s) (still running after ${limit} ms); message(s) ${abandoned.map((a) => a.messageId).join(', ')} return to '${this.queue.name}' when their lease expires.`,
    );
  }

  async #poll(): Promise<void> {
    const signal = this.#abort.signal;
    const minDelay = this.options.minPollingIntervalMs ?? MIN_POLLING_INTERVAL_MS;
    let delay = minDelay;
    while (!signal.aborted) {
      if (this.#inFlight.size > this.config.newBatchThreshold) {
        await Promise.race([...this.#inFlight.keys(), this.#aborted]);
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
        const tracked: { messageId: string; lease?: Lease } = { messageId: message.messageId };
        const work = this.#process(message, (lease) => {
          tracked.lease = lease;
        }).catch((error) =>
          this.options.logger.error(
            `[${this.fn.name}] queue message ${message.messageId}: ${describeError(error)}`,
          ),
        );
        this.#inFlight.set(work, tracked);
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
        this.options.logger.warn(
          `[${this.fn.name}] polling '${this.queue.name}' failed: ${describeError(error)}`,
        );
      }
      return [];
    }
  }

  async #process(message: DequeuedMessageItem, leased: (lease: Lease) => void): Promise<void> {
    const lease = new Lease(this.queue, message, this.options.logger, this.fn.name);
    leased(lease);
    try {
      // QueueProcessor.BeginProcessingMessageAsync: a message dequeued more often than
      // maxDequeueCount (its earlier attempts never settled: a host stopped or crashed mid-invocation)
      // goes to the poison queue before it is decoded or invoked.
      if (message.dequeueCount > this.config.maxDequeueCount) {
        await this.#poisonAfterMaxDequeue(message, lease);
        return;
      }
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
      // A renewal still running changes the pop receipt: settle with the receipt it returns.
      await lease.stopRenewing();
      if (outcome.ok) {
        await this.queue.deleteMessage(message.messageId, lease.popReceipt);
        return;
      }
      if (message.dequeueCount >= this.config.maxDequeueCount) {
        await this.#poisonAfterMaxDequeue(message, lease);
        return;
      }
      await this.queue.updateMessage(
        message.messageId,
        lease.popReceipt,
        undefined,
        Math.ceil(this.config.visibilityTimeoutMs / 1000),
      );
    } finally {
      await lease.stopRenewing();
    }
  }

  /** The poison move of a message out of attempts, with QueueProcessor.CopyMessageToPoisonQueueAsync's warning. */
  async #poisonAfterMaxDequeue(message: DequeuedMessageItem, lease: Lease): Promise<void> {
    this.options.logger.warn(
      `[${this.fn.name}] message ${message.messageId} (dequeue count ${message.dequeueCount}): Message has reached MaxDequeueCount of ${this.config.maxDequeueCount}. Moving message to queue '${this.poisonQueue.name}'.`,
    );
    await this.#moveToPoison(message, lease);
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

  /** Stops renewing; resolves once a renewal already running has finished (and updated `popReceipt`). */
  async stopRenewing(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#renewal;
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
        `[${this.functionName}] renewing the lease of message ${this.message.messageId} failed: ${describeError(error)}`,
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
