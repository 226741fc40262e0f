/**
 * The local host's Service Bus trigger: receives from a queue or a topic subscription with
 * `@azure/service-bus` in peek-lock mode and invokes the function per message (`cardinality: 'one'`)
 * or per batch (`'many'`), passing the trigger value and the binding data the Service Bus
 * extension (5.x) gives the host, converted to RPC data the way the host converts them. Settlement
 * follows the extension: with `autoCompleteMessages` (the default) a successful invocation
 * completes the message(s) and a failed one abandons them, so the delivery count grows and the
 * broker dead-letters at its `maxDeliveryCount`.
 */
import {
  type ServiceBusClient as Client,
  ServiceBusClient,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
} from '@azure/service-bus';
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

export interface ServiceBusHostConfig {
  /** Not applied: the JS SDK's streaming receiver has no prefetch; kept for host.json parity. */
  prefetchCount: number;
  /** Concurrent invocations for `cardinality: 'one'` (host default 16 × processors). */
  maxConcurrentCalls: number;
  /** Complete on success, abandon on failure (host default true). */
  autoCompleteMessages: boolean;
  /** How long locks are renewed while a function runs (host default 5 min). */
  maxAutoLockRenewalDurationMs: number;
  /** Most messages per `cardinality: 'many'` invocation (host default 1000). */
  maxMessageBatchSize: number;
}

export const DEFAULT_SERVICE_BUS_HOST_CONFIG: ServiceBusHostConfig = {
  prefetchCount: 0,
  maxConcurrentCalls: 16,
  autoCompleteMessages: true,
  maxAutoLockRenewalDurationMs: 5 * 60_000,
  maxMessageBatchSize: 1000,
};

export interface ServiceBusListenerOptions {
  invoker: Invoker;
  /** Looks up an app setting by name (connection strings, `%binding expressions%`). */
  resolveSetting: ResolveSetting;
  hostConfig?: Partial<ServiceBusHostConfig>;
  logger: HostLogger;
  /** How long `stop()` waits for running invocations before abandoning them (default 5 s). */
  stopTimeoutMs?: number;
}

/** How long one batch receive waits for messages before polling again (`cardinality: 'many'`). */
const BATCH_WAIT_MS = 1_000;
/** .NET's DateTimeOffset.MaxValue: what the host reports for messages that never expire. */
const MAX_DATE_ISO = '9999-12-31T23:59:59.9999999';

/**
 * Starts receiving for a `serviceBusTrigger` binding (`queueName`, or `topicName` +
 * `subscriptionName`; `connection` names the setting holding the connection string). Rejects with
 * a clear message on a bad binding or a missing setting. Identity-based connections and session
 * receivers are not served locally: a warning is logged and the listener does nothing.
 *
 * Service Bus permission: Listen on the entity (Azure Service Bus Data Receiver).
 * Retry semantics: at-least-once; a failed invocation abandons the message(s) and the broker
 * redelivers until `maxDeliveryCount`, then dead-letters with `MaxDeliveryCountExceeded`.
 */
export async function startServiceBusListener(
  fn: RegisteredFunction,
  options: ServiceBusListenerOptions,
): Promise<TriggerListener> {
  const config = resolveServiceBusConfig(options.hostConfig ?? {});
  const binding = fn.trigger;
  const what = `[${fn.name}]`;
  const queueName = resolveBindingExpression(
    binding['queueName'],
    options.resolveSetting,
    `${what} queueName`,
  );
  const topicName = resolveBindingExpression(
    binding['topicName'],
    options.resolveSetting,
    `${what} topicName`,
  );
  const subscriptionName = resolveBindingExpression(
    binding['subscriptionName'],
    options.resolveSetting,
    `${what} subscriptionName`,
  );
  if (!queueName && !(topicName && subscriptionName)) {
    throw new Error(`${what} a serviceBusTrigger needs queueName, or topicName and subscriptionName.`);
  }
  if (queueName && (topicName || subscriptionName)) {
    throw new Error(`${what} a serviceBusTrigger takes queueName or topicName + subscriptionName, not both.`);
  }
  const cardinality = String(binding['cardinality'] ?? 'one').toLowerCase();
  if (cardinality !== 'one' && cardinality !== 'many') {
    throw new Error(`${what} cardinality must be "one" or "many", got "${String(binding['cardinality'])}".`);
  }
  const entity = queueName ?? `${topicName}/Subscriptions/${subscriptionName}`;
  if (binding['isSessionsEnabled'] === true) {
    return notServed(fn, options.logger, `session-enabled receivers are not supported locally (${entity}).`);
  }
  const connectionName =
    typeof binding['connection'] === 'string' && binding['connection']
      ? binding['connection']
      : 'AzureWebJobsServiceBus';
  let connectionString: string;
  try {
    connectionString = resolveConnectionString(
      connectionName,
      options.resolveSetting,
      ['fullyQualifiedNamespace'],
      fn.name,
    );
  } catch (error) {
    if (error instanceof Error && error.message.includes('identity-based')) {
      return notServed(fn, options.logger, error.message);
    }
    throw error;
  }
  if (!config.autoCompleteMessages) {
    options.logger.warn(
      `${what} autoCompleteMessages is false: the local host leaves settlement to the function; unsettled messages return when their lock expires.`,
    );
  }

  const client = new ServiceBusClient(connectionString);
  const receiverOptions = {
    receiveMode: 'peekLock' as const,
    maxAutoLockRenewalDurationInMs: config.maxAutoLockRenewalDurationMs,
    // The host hands the body over as text or bytes; the library parses JSON itself.
    skipParsingBodyAsJson: true,
    skipConvertingDate: true,
  };
  const receiver = queueName
    ? client.createReceiver(queueName, receiverOptions)
    : client.createReceiver(topicName!, subscriptionName!, receiverOptions);
  const listener = new ServiceBusListener(fn, client, receiver, config, options, {
    many: cardinality === 'many',
    binary: String(binding['dataType'] ?? '').toLowerCase() === 'binary',
  });
  listener.start();
  options.logger.info(`${what} listening on Service Bus '${entity}' (cardinality ${cardinality}).`);
  return listener;
}

class ServiceBusListener implements TriggerListener {
  readonly functionName: string;
  readonly #abort = new AbortController();
  /** Running invocations and the ids of their messages. */
  readonly #inFlight = new Map<Promise<void>, string[]>();
  #subscription: { close(): Promise<void> } | undefined;
  #batchLoop: Promise<void> | undefined;

  constructor(
    private readonly fn: RegisteredFunction,
    private readonly client: Client,
    private readonly receiver: ServiceBusReceiver,
    private readonly config: ServiceBusHostConfig,
    private readonly options: ServiceBusListenerOptions,
    private readonly shape: { many: boolean; binary: boolean },
  ) {
    this.functionName = fn.name;
  }

  start(): void {
    if (this.shape.many) {
      this.#batchLoop = this.#receiveBatches();
      return;
    }
    this.#subscription = this.receiver.subscribe(
      {
        processMessage: (message) => this.#track([message]),
        processError: async (args) => {
          if (!this.#abort.signal.aborted) {
            this.options.logger.warn(
              `[${this.fn.name}] Service Bus receive error (${args.errorSource}): ${describeError(args.error)}`,
            );
          }
        },
      },
      { autoCompleteMessages: false, maxConcurrentCalls: this.config.maxConcurrentCalls },
    );
  }

  /**
   * Stops receiving. Running invocations settle on the open link first, for at most
   * `stopTimeoutMs` in all; messages of invocations still running then are abandoned to the
   * broker (closing the link releases their locks, so they are redelivered), as are messages
   * delivered after the abort.
   */
  async stop(): Promise<void> {
    this.#abort.abort();
    const limit = this.options.stopTimeoutMs ?? DRAIN_TIMEOUT_MS;
    const deadline = Date.now() + limit;
    const remaining = () => Math.max(0, deadline - Date.now());
    let settled = await settledWithin(this.#inFlight.keys(), remaining());
    await this.#subscription?.close();
    if (this.#batchLoop) settled = (await settledWithin([this.#batchLoop], remaining())) && settled;
    settled = (await settledWithin(this.#inFlight.keys(), remaining())) && settled;
    if (!settled) {
      const abandoned = [...this.#inFlight.values()].flat();
      this.options.logger.warn(
        `[${this.fn.name}] stopped without waiting for ${this.#inFlight.size} running invocation(s) (still running after ${limit} ms); message(s) ${abandoned.join(', ')} are released to the broker.`,
      );
    }
    await this.receiver.close();
    await this.client.close();
  }

  async #receiveBatches(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      let messages: ServiceBusReceivedMessage[] = [];
      try {
        messages = await this.receiver.receiveMessages(this.config.maxMessageBatchSize, {
          maxWaitTimeInMs: BATCH_WAIT_MS,
          abortSignal: signal,
        });
      } catch (error) {
        if (signal.aborted) return;
        this.options.logger.warn(`[${this.fn.name}] Service Bus receive error: ${describeError(error)}`);
        await sleep(BATCH_WAIT_MS, signal);
        continue;
      }
      if (messages.length > 0) await this.#track(messages);
    }
  }

  /** Handles `messages`, tracked for stop(); never rejects (a failure is logged). */
  #track(messages: ServiceBusReceivedMessage[]): Promise<void> {
    const work = this.#handle(messages).catch((error: unknown) => {
      this.options.logger.error(
        `[${this.fn.name}] handling message(s) ${messages.map((m) => String(m.messageId)).join(', ')} failed: ${describeError(error)}`,
      );
    });
    this.#inFlight.set(
      work,
      messages.map((m) => String(m.messageId)),
    );
    void work.finally(() => this.#inFlight.delete(work));
    return work;
  }

  async #handle(messages: ServiceBusReceivedMessage[]): Promise<void> {
    if (this.#abort.signal.aborted) return;
    const outcome = await this.options.invoker.invoke(this.fn, {
      trigger: this.shape.many ? this.#collection(messages) : this.#value(messages[0]!),
      triggerMetadata: this.shape.many
        ? batchMetadata(messages, this.fn.name)
        : singleMetadata(messages[0]!, this.fn.name),
    });
    if (!this.config.autoCompleteMessages) return;
    for (const message of messages) {
      try {
        if (outcome.ok) await this.receiver.completeMessage(message);
        else await this.receiver.abandonMessage(message);
      } catch (error) {
        // A lost lock means the broker already made the message available again: nothing is lost.
        this.options.logger.warn(
          `[${this.fn.name}] could not ${outcome.ok ? 'complete' : 'abandon'} message ${String(message.messageId)}: ${describeError(error)}`,
        );
      }
    }
  }

  #value(message: ServiceBusReceivedMessage): RpcTypedData {
    return this.shape.binary ? { bytes: bodyBytes(message) } : { string: bodyText(message) };
  }

  #collection(messages: ServiceBusReceivedMessage[]): RpcTypedData {
    return this.shape.binary
      ? { collectionBytes: { bytes: messages.map(bodyBytes) } }
      : { collectionString: { string: messages.map(bodyText) } };
  }
}

/** The body as the host's `string` binding sees it: the UTF-8 text of the data section. */
function bodyText(message: ServiceBusReceivedMessage): string {
  const body = message.body as unknown;
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) return Buffer.from(body).toString('utf8');
  if (typeof body === 'string') return body;
  return JSON.stringify(body ?? null);
}

function bodyBytes(message: ServiceBusReceivedMessage): Uint8Array {
  const body = message.body as unknown;
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) return Buffer.from(body);
  return Buffer.from(bodyText(message), 'utf8');
}

/** What the .NET SDK reports: delivery attempts including this one (the AMQP header counts previous ones). */
function deliveryCount(message: ServiceBusReceivedMessage): number {
  return (message.deliveryCount ?? 0) + 1;
}

function expiresAt(message: ServiceBusReceivedMessage): { utc: string; offset: string } {
  const date = message.expiresAtUtc;
  if (!date || Number.isNaN(date.getTime()) || date.getUTCFullYear() > 9999) {
    return { utc: `${MAX_DATE_ISO}Z`, offset: `${MAX_DATE_ISO}+00:00` };
  }
  const iso = date.toISOString();
  return { utc: iso, offset: iso.replace('Z', '+00:00') };
}

function enqueuedAt(message: ServiceBusReceivedMessage): Date | undefined {
  return message.enqueuedTimeUtc ? new Date(message.enqueuedTimeUtc) : undefined;
}

function optionalString(value: unknown): RpcTypedData {
  return value === undefined || value === null ? {} : stringData(String(value));
}

/** The extension's binding data for one message (`ServiceBusTriggerBindingStrategy.AddBindingData`). */
function singleMetadata(
  message: ServiceBusReceivedMessage,
  functionName: string,
): Record<string, RpcTypedData> {
  const expiry = expiresAt(message);
  const enqueued = enqueuedAt(message);
  const properties = jsonData(message.applicationProperties ?? {});
  return {
    DeliveryCount: jsonData(deliveryCount(message)),
    DeadLetterSource: optionalString(message.deadLetterSource),
    LockToken: optionalString(message.lockToken),
    ExpiresAtUtc: jsonData(expiry.utc),
    ExpiresAt: jsonData(expiry.offset),
    EnqueuedTimeUtc: enqueued ? jsonData(enqueued.toISOString()) : {},
    EnqueuedTime: dateTimeOffsetData(enqueued),
    MessageId: optionalString(message.messageId),
    ContentType: optionalString(message.contentType),
    ReplyTo: optionalString(message.replyTo),
    SequenceNumber: jsonData(message.sequenceNumber === undefined ? null : Number(message.sequenceNumber)),
    To: optionalString(message.to),
    Subject: optionalString(message.subject),
    Label: optionalString(message.subject),
    CorrelationId: optionalString(message.correlationId),
    ApplicationProperties: properties,
    UserProperties: properties,
    SessionId: optionalString(message.sessionId),
    ReplyToSessionId: optionalString(message.replyToSessionId),
    PartitionKey: optionalString(message.partitionKey),
    TransactionPartitionKey: optionalString(message.partitionKey),
    sys: sysMetadata(functionName),
  };
}

/**
 * The binding data for a batch: the same members suffixed `Array`. As the host converts them,
 * string arrays travel as `collectionString` (null as ""), `long[]` as `collectionSint64`, and
 * everything else (int[], DateTime[], dictionaries) as JSON.
 */
function batchMetadata(
  messages: ServiceBusReceivedMessage[],
  functionName: string,
): Record<string, RpcTypedData> {
  const strings = (pick: (m: ServiceBusReceivedMessage) => unknown): RpcTypedData => ({
    collectionString: {
      string: messages.map((m) => {
        const value = pick(m);
        return value === undefined || value === null ? '' : String(value);
      }),
    },
  });
  const properties = jsonData(messages.map((m) => m.applicationProperties ?? {}));
  const sequenceNumbers = {
    collectionSint64: { sint64: messages.map((m) => Number(m.sequenceNumber ?? 0)) },
  } as RpcTypedData;
  return {
    DeliveryCountArray: jsonData(messages.map(deliveryCount)),
    DeadLetterSourceArray: strings((m) => m.deadLetterSource),
    LockTokenArray: strings((m) => m.lockToken),
    ExpiresAtUtcArray: jsonData(messages.map((m) => expiresAt(m).utc)),
    ExpiresAtArray: jsonData(messages.map((m) => expiresAt(m).offset)),
    EnqueuedTimeUtcArray: jsonData(messages.map((m) => enqueuedAt(m)?.toISOString() ?? null)),
    EnqueuedTimeArray: jsonData(
      messages.map((m) => enqueuedAt(m)?.toISOString().replace('Z', '+00:00') ?? null),
    ),
    MessageIdArray: strings((m) => m.messageId),
    ContentTypeArray: strings((m) => m.contentType),
    ReplyToArray: strings((m) => m.replyTo),
    SequenceNumberArray: sequenceNumbers,
    ToArray: strings((m) => m.to),
    SubjectArray: strings((m) => m.subject),
    LabelArray: strings((m) => m.subject),
    CorrelationIdArray: strings((m) => m.correlationId),
    ApplicationPropertiesArray: properties,
    UserPropertiesArray: properties,
    SessionIdArray: strings((m) => m.sessionId),
    ReplyToSessionIdArray: strings((m) => m.replyToSessionId),
    PartitionKeyArray: strings((m) => m.partitionKey),
    TransactionPartitionKeyArray: strings((m) => m.partitionKey),
    sys: sysMetadata(functionName),
  };
}

function notServed(fn: RegisteredFunction, logger: HostLogger, why: string): TriggerListener {
  logger.warn(`Function "${fn.name}" (serviceBusTrigger) is not served locally: ${why}`);
  return { functionName: fn.name, stop: async () => {} };
}

function resolveServiceBusConfig(partial: Partial<ServiceBusHostConfig>): ServiceBusHostConfig {
  const merged = { ...DEFAULT_SERVICE_BUS_HOST_CONFIG, ...stripUndefined(partial) } as ServiceBusHostConfig;
  if (!Number.isInteger(merged.maxConcurrentCalls) || merged.maxConcurrentCalls < 1) {
    throw new Error('host.json extensions.serviceBus.maxConcurrentCalls must be a positive integer.');
  }
  if (!Number.isInteger(merged.maxMessageBatchSize) || merged.maxMessageBatchSize < 1) {
    throw new Error('host.json extensions.serviceBus.maxMessageBatchSize must be a positive integer.');
  }
  if (!(merged.maxAutoLockRenewalDurationMs >= 0)) {
    throw new Error('host.json extensions.serviceBus.maxAutoLockRenewalDuration must not be negative.');
  }
  if (typeof merged.autoCompleteMessages !== 'boolean') {
    throw new Error('host.json extensions.serviceBus.autoCompleteMessages must be true or false.');
  }
  return merged;
}
