import type { TokenCredential } from '@azure/core-auth';
import {
  type CorrelationRuleFilter,
  type RetryOptions,
  type RuleProperties,
  ServiceBusClient,
  type ServiceBusMessage,
  type ServiceBusMessageBatch,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
  type ServiceBusSender,
  type SqlRuleFilter,
} from '@azure/service-bus';
import Long from 'long';

/** The SDK's raw AMQP message (`AmqpAnnotatedMessage`, not exported by `@azure/service-bus` itself). */
type AmqpAnnotatedMessage = Exclude<
  Parameters<ServiceBusMessageBatch['tryAddMessage']>[0],
  ServiceBusMessage
>;

import { ConfigurationError, ValidationError } from '../core/errors';
import {
  type ApplicationPropertyValue,
  type BusMessageBody,
  type BusSource,
  type CorrelationFilter,
  guardedRule,
  isGuarded,
  type LockedBusMessage,
  type MessageBus,
  type OutgoingBusMessage,
  REPLAY_RULE_NAME,
  type ReceivedBusMessage,
  replayIsolation,
  replayRule,
  type SendOptions,
  type SendReport,
  type SettleBySequenceReport,
  type SubscriptionRule,
} from '../ports/messageBus';
import { fromServiceBusError } from './serviceBusErrors';

/**
 * `MessageBus` over `@azure/service-bus` 7.x. In Azure the connection is identity-based
 * (`fullyQualifiedNamespace` + the platform credential: the app needs Azure Service Bus Data
 * Sender on the entities it replays to, Data Receiver on those it reads); locally a connection
 * string (the sandbox broker's). Senders and receivers are opened once per entity and kept until
 * `close()`: a receiver closed early would hand its locked messages back.
 */
export type ServiceBusConnection =
  | { connectionString: string }
  | { fullyQualifiedNamespace: string; credential: TokenCredential };

export interface ServiceBusMessageBusOptions {
  /** The SDK's retries (default: its own, 3 retries). */
  retryOptions?: RetryOptions;
  /**
   * How long the SDK keeps renewing the lock of a received message until it is settled (the
   * SDK's default: 5 minutes); 0 turns renewal off (then use `renewLock`).
   */
  maxAutoLockRenewalDurationInMs?: number;
}

/** Service Bus's limit on message id, session id and partition key (128 characters). */
const MAX_ID_LENGTH = 128;
const ENTITY_NAME = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,259}$/;
const HOST_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;
const MAX_BATCH_COUNT = 10_000;

interface Held {
  receiver: ServiceBusReceiver;
  message: ServiceBusReceivedMessage;
}

export class ServiceBusMessageBus implements MessageBus {
  private readonly client: ServiceBusClient;
  private readonly senders = new Map<string, ServiceBusSender>();
  private readonly receivers = new Map<string, ServiceBusReceiver>();
  private readonly held = new WeakMap<LockedBusMessage, Held>();
  private readonly autoRenew: { maxAutoLockRenewalDurationInMs?: number };

  constructor(connection: ServiceBusConnection, options: ServiceBusMessageBusOptions = {}) {
    this.autoRenew =
      options.maxAutoLockRenewalDurationInMs === undefined
        ? {}
        : { maxAutoLockRenewalDurationInMs: options.maxAutoLockRenewalDurationInMs };
    const clientOptions = options.retryOptions ? { retryOptions: options.retryOptions } : {};
    if ('connectionString' in connection) {
      this.client = new ServiceBusClient(connection.connectionString, clientOptions);
    } else {
      if (!HOST_NAME.test(connection.fullyQualifiedNamespace)) {
        throw new ConfigurationError(
          `the Service Bus namespace '${connection.fullyQualifiedNamespace}' is not a host name (expected <namespace>.servicebus.windows.net)`,
        );
      }
      this.client = new ServiceBusClient(
        connection.fullyQualifiedNamespace,
        connection.credential,
        clientOptions,
      );
    }
  }

  async send(
    entity: string,
    messages: Iterable<OutgoingBusMessage> | AsyncIterable<OutgoingBusMessage>,
    options: SendOptions = {},
  ): Promise<SendReport> {
    checkEntity(entity);
    const doing = `sending to ${entity}`;
    const sender = this.sender(entity);
    const report: SendReport = { messages: 0, batches: 0, bytes: 0, capacity: 0, fillRatio: 0 };
    const newBatch = () =>
      call(doing, { entity }, () => sender.createMessageBatch({ abortSignal: options.abortSignal }));
    const flush = async (batch: ServiceBusMessageBatch) => {
      await call(doing, { entity }, () => sender.sendMessages(batch, { abortSignal: options.abortSignal }));
      report.messages += batch.count;
      report.batches += 1;
      report.bytes += batch.sizeInBytes;
      report.capacity += batch.maxSizeInBytes;
      report.fillRatio = report.bytes / report.capacity;
      await options.onBatch?.({
        messages: batch.count,
        sizeInBytes: batch.sizeInBytes,
        maxSizeInBytes: batch.maxSizeInBytes,
      });
    };
    let batch = await newBatch();
    let index = 0;
    const tooLarge = (message: OutgoingBusMessage) =>
      new ValidationError(
        `${doing}: message ${index}${message.messageId ? ` (${message.messageId})` : ''} is larger than the ${batch.maxSizeInBytes} bytes the entity accepts`,
        [`messages[${index}]: larger than ${batch.maxSizeInBytes} bytes`],
        { metadata: { entity, sent: report.messages } },
      );
    for await (const message of messages) {
      const sdkMessage = toSdkMessage(message, index);
      if (batch.count >= MAX_BATCH_COUNT || !batch.tryAddMessage(sdkMessage)) {
        if (batch.count === 0) throw tooLarge(message);
        await flush(batch);
        batch = await newBatch();
        if (!batch.tryAddMessage(sdkMessage)) throw tooLarge(message);
      }
      index += 1;
    }
    if (batch.count > 0) await flush(batch);
    return report;
  }

  async peek(
    source: BusSource,
    options: { maxCount: number; fromSequenceNumber?: string; abortSignal?: AbortSignal },
  ): Promise<ReceivedBusMessage[]> {
    const { maxCount } = options;
    if (!Number.isInteger(maxCount) || maxCount < 1 || maxCount > 1000) {
      throw new ValidationError('peek: maxCount must be an integer from 1 to 1000');
    }
    // Always from an explicit number: without one, the SDK continues from the receiver's last peek.
    const from = sequenceLong(options.fromSequenceNumber ?? '0');
    const path = describeSource(source);
    const messages = await call(`peeking ${path}`, { entity: path }, () =>
      this.receiver(source).peekMessages(maxCount, {
        fromSequenceNumber: from,
        abortSignal: options.abortSignal,
      }),
    );
    return messages.map(fromSdkMessage);
  }

  async receive(
    source: BusSource,
    options: { maxCount: number; maxWaitMs: number; abortSignal?: AbortSignal },
  ): Promise<LockedBusMessage[]> {
    if (!Number.isInteger(options.maxCount) || options.maxCount < 1 || options.maxCount > 1000) {
      throw new ValidationError('receive: maxCount must be an integer from 1 to 1000');
    }
    if (!Number.isFinite(options.maxWaitMs) || options.maxWaitMs < 0) {
      throw new ValidationError('receive: maxWaitMs must be a non-negative number');
    }
    const path = describeSource(source);
    const receiver = this.receiver(source);
    const messages = await call(`receiving from ${path}`, { entity: path }, () =>
      receiver.receiveMessages(options.maxCount, {
        maxWaitTimeInMs: options.maxWaitMs,
        abortSignal: options.abortSignal,
      }),
    );
    return messages.map((message) => this.hold(receiver, message));
  }

  async receiveDeferred(source: BusSource, sequenceNumbers: string[]): Promise<LockedBusMessage[]> {
    const numbers = sequenceNumbers.map(sequenceLong);
    const path = describeSource(source);
    const receiver = this.receiver(source);
    const messages = await call(`receiving deferred messages from ${path}`, { entity: path }, () =>
      receiver.receiveDeferredMessages(numbers),
    );
    return messages.map((message) => this.hold(receiver, message));
  }

  async settleBySequenceNumber(
    source: BusSource,
    sequenceNumbers: string[],
    action: { complete: true } | { deadLetter: { reason: string; description: string } },
    options: { maxScan: number; maxWaitMs: number },
  ): Promise<SettleBySequenceReport> {
    if (!Number.isInteger(options.maxScan) || options.maxScan < 1 || options.maxScan > 10_000) {
      throw new ValidationError('settleBySequenceNumber: maxScan must be an integer from 1 to 10000');
    }
    const wanted = new Set(sequenceNumbers.map((n) => sequenceLong(n).toString()));
    const path = describeSource(source);
    // A receiver of its own: what it locks and does not settle goes back when it closes.
    const receiver = createReceiver(this.client, source, { skipParsingBodyAsJson: true, ...this.autoRenew });
    const settled: string[] = [];
    try {
      let scanned = 0;
      while (scanned < options.maxScan && settled.length < wanted.size) {
        const batch = await call(`receiving from ${path}`, { entity: path }, () =>
          receiver.receiveMessages(Math.min(100, options.maxScan - scanned), {
            maxWaitTimeInMs: options.maxWaitMs,
          }),
        );
        if (batch.length === 0) break;
        scanned += batch.length;
        for (const message of batch) {
          const number = message.sequenceNumber?.toString() ?? '';
          if (wanted.has(number) && !settled.includes(number)) {
            await call(`settling ${number} in ${path}`, { entity: path }, () =>
              'complete' in action
                ? receiver.completeMessage(message)
                : receiver.deadLetterMessage(message, {
                    deadLetterReason: action.deadLetter.reason,
                    deadLetterErrorDescription: action.deadLetter.description,
                  }),
            );
            settled.push(number);
          } else {
            await call(`releasing ${number} in ${path}`, { entity: path }, () =>
              receiver.abandonMessage(message),
            );
          }
        }
      }
    } finally {
      await receiver.close().catch(() => undefined);
    }
    return { settled, notFound: [...wanted].filter((n) => !settled.includes(n)) };
  }

  async complete(message: LockedBusMessage): Promise<void> {
    const { receiver, message: sdk } = this.heldOf(message);
    await call(`completing ${message.sequenceNumber}`, {}, () => receiver.completeMessage(sdk));
  }

  async abandon(
    message: LockedBusMessage,
    propertiesToModify?: Record<string, ApplicationPropertyValue>,
  ): Promise<void> {
    const { receiver, message: sdk } = this.heldOf(message);
    if (propertiesToModify) checkProperties(propertiesToModify, 'propertiesToModify');
    await call(`abandoning ${message.sequenceNumber}`, {}, () =>
      receiver.abandonMessage(
        sdk,
        propertiesToModify as Record<string, string | number | boolean | Date | null>,
      ),
    );
  }

  async deadLetter(
    message: LockedBusMessage,
    details: { reason: string; description: string },
  ): Promise<void> {
    const { receiver, message: sdk } = this.heldOf(message);
    await call(`dead-lettering ${message.sequenceNumber}`, {}, () =>
      receiver.deadLetterMessage(sdk, {
        deadLetterReason: details.reason,
        deadLetterErrorDescription: details.description,
      }),
    );
  }

  async defer(message: LockedBusMessage): Promise<void> {
    const { receiver, message: sdk } = this.heldOf(message);
    await call(`deferring ${message.sequenceNumber}`, {}, () => receiver.deferMessage(sdk));
  }

  async renewLock(message: LockedBusMessage): Promise<Date> {
    const { receiver, message: sdk } = this.heldOf(message);
    return call(`renewing the lock of ${message.sequenceNumber}`, {}, () => receiver.renewMessageLock(sdk));
  }

  async listRules(topic: string, subscription: string): Promise<SubscriptionRule[]> {
    checkEntity(topic);
    checkEntity(subscription);
    const path = `${topic}/Subscriptions/${subscription}`;
    return call(`listing the rules of ${path}`, { entity: path }, async () => {
      const rules: SubscriptionRule[] = [];
      for await (const rule of this.client.createRuleManager(topic, subscription).listRules())
        rules.push(fromSdkRule(rule));
      return rules;
    });
  }

  async createRule(topic: string, subscription: string, rule: SubscriptionRule): Promise<void> {
    checkEntity(topic);
    checkEntity(subscription);
    const path = `${topic}/Subscriptions/${subscription}`;
    const filter: SqlRuleFilter | CorrelationRuleFilter =
      'sql' in rule.filter ? { sqlExpression: rule.filter.sql } : rule.filter.correlation;
    await call(`creating rule ${rule.name} on ${path}`, { entity: path, rule: rule.name }, () =>
      this.client.createRuleManager(topic, subscription).createRule(rule.name, filter),
    );
  }

  async deleteRule(topic: string, subscription: string, name: string): Promise<void> {
    checkEntity(topic);
    checkEntity(subscription);
    const path = `${topic}/Subscriptions/${subscription}`;
    await call(`deleting rule ${name} of ${path}`, { entity: path, rule: name }, () =>
      this.client.createRuleManager(topic, subscription).deleteRule(name),
    );
  }

  async ensureReplayIsolation(
    topic: string,
    subscription: string,
  ): Promise<{ created: string[]; deleted: string[] }> {
    const rules = await this.listRules(topic, subscription);
    const created: string[] = [];
    const deleted: string[] = [];
    if (replayIsolation(rules, subscription).isolated) return { created, deleted };
    const withAction = rules.find((r) => r.action !== undefined);
    if (withAction) {
      // A rule with an action makes its own copy of each message it matches: guarding it is a
      // decision for a person (nothing is changed).
      throw new ValidationError(
        `rule '${withAction.name}' of ${topic}/Subscriptions/${subscription} has an action: change its rules by hand to isolate replays`,
      );
    }
    const names = new Set(rules.map((r) => r.name.toLowerCase()));
    const wantedReplay = replayRule(subscription);
    for (const rule of rules) {
      if (rule.name === REPLAY_RULE_NAME) {
        if (replayIsolation([rule], subscription).isolated) continue;
        // A replay rule for something else: replaced below.
        await this.deleteRule(topic, subscription, rule.name);
        deleted.push(rule.name);
        names.delete(rule.name.toLowerCase());
        continue;
      }
      if ('sql' in rule.filter && (isGuarded(rule.filter.sql) || rule.filter.sql.trim() === '1=0')) continue;
      // The guarded rule first, then the old one away: in between both admit the same messages, and
      // rules without actions make one copy whatever matches, so nothing is missed or doubled.
      const guarded = guardedRule(rule);
      if (!names.has(guarded.name.toLowerCase())) {
        await this.createRule(topic, subscription, guarded);
        created.push(guarded.name);
        names.add(guarded.name.toLowerCase());
      }
      await this.deleteRule(topic, subscription, rule.name);
      deleted.push(rule.name);
    }
    if (!names.has(REPLAY_RULE_NAME)) {
      await this.createRule(topic, subscription, wantedReplay);
      created.push(wantedReplay.name);
    }
    return { created, deleted };
  }

  async close(): Promise<void> {
    const closing = [...this.senders.values(), ...this.receivers.values()].map((link) =>
      link.close().catch(() => undefined),
    );
    await Promise.all(closing);
    this.senders.clear();
    this.receivers.clear();
    await this.client.close();
  }

  private sender(entity: string): ServiceBusSender {
    let sender = this.senders.get(entity.toLowerCase());
    if (!sender) {
      sender = this.client.createSender(entity);
      this.senders.set(entity.toLowerCase(), sender);
    }
    return sender;
  }

  private receiver(source: BusSource): ServiceBusReceiver {
    const key = describeSource(source).toLowerCase();
    let receiver = this.receivers.get(key);
    if (!receiver) {
      receiver = createReceiver(this.client, source, {
        skipParsingBodyAsJson: true,
        skipConvertingDate: true,
        ...this.autoRenew,
      });
      this.receivers.set(key, receiver);
    }
    return receiver;
  }

  private hold(receiver: ServiceBusReceiver, message: ServiceBusReceivedMessage): LockedBusMessage {
    const locked: LockedBusMessage = {
      ...fromSdkMessage(message),
      lockToken: message.lockToken ?? '',
      lockedUntil: message.lockedUntilUtc ?? new Date(0),
    };
    this.held.set(locked, { receiver, message });
    return locked;
  }

  private heldOf(message: LockedBusMessage): Held {
    const held = this.held.get(message);
    if (!held)
      throw new ValidationError(
        'settling a message this bus did not receive in peek-lock (pass the object receive() returned)',
      );
    return held;
  }
}

type ReceiverOptions = {
  skipParsingBodyAsJson: true;
  skipConvertingDate?: true;
  maxAutoLockRenewalDurationInMs?: number;
};

function createReceiver(
  client: ServiceBusClient,
  source: BusSource,
  options: ReceiverOptions,
): ServiceBusReceiver {
  const opts = {
    ...options,
    ...(source.subQueue === 'deadLetter' ? { subQueueType: 'deadLetter' as const } : {}),
  };
  if ('queue' in source) {
    checkEntity(source.queue);
    return client.createReceiver(source.queue, opts);
  }
  checkEntity(source.topic);
  checkEntity(source.subscription);
  return client.createReceiver(source.topic, source.subscription, opts);
}

function describeSource(source: BusSource): string {
  const base = 'queue' in source ? source.queue : `${source.topic}/Subscriptions/${source.subscription}`;
  return source.subQueue === 'deadLetter' ? `${base}/$DeadLetterQueue` : base;
}

function checkEntity(name: string): void {
  if (typeof name !== 'string' || !ENTITY_NAME.test(name)) {
    throw new ValidationError(`'${String(name)}' is not a Service Bus entity name`, [
      `entity: '${String(name)}'`,
    ]);
  }
}

function sequenceLong(value: string): Long {
  if (typeof value !== 'string' || !/^\d{1,19}$/.test(value)) {
    throw new ValidationError(`'${String(value)}' is not a sequence number (decimal digits)`);
  }
  const long = Long.fromString(value);
  if (long.isNegative() || long.toString() !== value.replace(/^0+(?=\d)/, '')) {
    throw new ValidationError(`'${value}' is out of the sequence number range`);
  }
  return long;
}

async function call<T>(doing: string, metadata: Record<string, string>, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw fromServiceBusError(error, doing, metadata);
  }
}

function checkProperties(properties: Record<string, unknown>, where: string): string[] {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(properties)) {
    const ok =
      value === null ||
      typeof value === 'string' ||
      typeof value === 'boolean' ||
      (typeof value === 'number' && Number.isFinite(value)) ||
      (value instanceof Date && !Number.isNaN(value.getTime()));
    if (!ok) problems.push(`${where}.${key}: must be a string, a finite number, a boolean, a date or null`);
  }
  if (problems.length > 0) throw new ValidationError(`invalid ${where}`, problems);
  return problems;
}

/** The SDK message for an outgoing one, checked first (a bad message is a 4xx, never half sent). */
function toSdkMessage(message: OutgoingBusMessage, index: number): ServiceBusMessage | AmqpAnnotatedMessage {
  const where = `messages[${index}]`;
  const problems: string[] = [];
  for (const key of ['messageId', 'sessionId', 'partitionKey', 'replyToSessionId'] as const) {
    const value = message[key];
    if (value !== undefined && (typeof value !== 'string' || value.length > MAX_ID_LENGTH)) {
      problems.push(`${where}.${key}: must be a string of at most ${MAX_ID_LENGTH} characters`);
    }
  }
  if (
    message.sessionId !== undefined &&
    message.partitionKey !== undefined &&
    message.sessionId !== message.partitionKey
  ) {
    problems.push(`${where}: partitionKey must equal sessionId when both are set`);
  }
  if (
    message.timeToLiveMs !== undefined &&
    !(Number.isFinite(message.timeToLiveMs) && message.timeToLiveMs > 0)
  ) {
    problems.push(`${where}.timeToLiveMs: must be a positive number`);
  }
  if (message.scheduledEnqueueTime !== undefined && Number.isNaN(message.scheduledEnqueueTime.getTime?.())) {
    problems.push(`${where}.scheduledEnqueueTime: must be a valid date`);
  }
  const body = message.body;
  if (!body || !['data', 'value', 'sequence'].includes(body.type))
    problems.push(`${where}.body: must be data, value or sequence`);
  else if (body.type === 'data' && !(body.bytes instanceof Uint8Array))
    problems.push(`${where}.body.bytes: must be bytes`);
  else if (body.type === 'sequence' && !Array.isArray(body.sequences))
    problems.push(`${where}.body.sequences: must be a list`);
  try {
    if (message.applicationProperties)
      checkProperties(message.applicationProperties, `${where}.applicationProperties`);
  } catch (error) {
    if (error instanceof ValidationError) problems.push(...error.problems);
    else throw error;
  }
  if (problems.length > 0) throw new ValidationError(`invalid message ${index}`, problems);

  if (body.type === 'data') {
    const sdk: ServiceBusMessage = {
      body: Buffer.from(body.bytes.buffer, body.bytes.byteOffset, body.bytes.byteLength),
    };
    if (message.messageId !== undefined) sdk.messageId = message.messageId;
    if (message.contentType !== undefined) sdk.contentType = message.contentType;
    if (message.correlationId !== undefined) sdk.correlationId = message.correlationId;
    if (message.sessionId !== undefined) sdk.sessionId = message.sessionId;
    if (message.replyToSessionId !== undefined) sdk.replyToSessionId = message.replyToSessionId;
    if (message.subject !== undefined) sdk.subject = message.subject;
    if (message.to !== undefined) sdk.to = message.to;
    if (message.replyTo !== undefined) sdk.replyTo = message.replyTo;
    if (message.partitionKey !== undefined) sdk.partitionKey = message.partitionKey;
    if (message.timeToLiveMs !== undefined) sdk.timeToLive = message.timeToLiveMs;
    if (message.scheduledEnqueueTime !== undefined)
      sdk.scheduledEnqueueTimeUtc = message.scheduledEnqueueTime;
    if (message.applicationProperties) sdk.applicationProperties = { ...message.applicationProperties };
    return sdk;
  }
  // A value or sequence body goes as an AMQP message, so its section type survives the replay.
  const annotations: Record<string, unknown> = {};
  if (message.partitionKey !== undefined) annotations['x-opt-partition-key'] = message.partitionKey;
  if (message.scheduledEnqueueTime !== undefined)
    annotations['x-opt-scheduled-enqueue-time'] = message.scheduledEnqueueTime;
  return {
    body: body.type === 'value' ? body.value : body.sequences,
    bodyType: body.type,
    properties: {
      ...(message.messageId === undefined ? {} : { messageId: message.messageId }),
      ...(message.contentType === undefined ? {} : { contentType: message.contentType }),
      ...(message.correlationId === undefined ? {} : { correlationId: message.correlationId }),
      ...(message.sessionId === undefined ? {} : { groupId: message.sessionId }),
      ...(message.replyToSessionId === undefined ? {} : { replyToGroupId: message.replyToSessionId }),
      ...(message.subject === undefined ? {} : { subject: message.subject }),
      ...(message.to === undefined ? {} : { to: message.to }),
      ...(message.replyTo === undefined ? {} : { replyTo: message.replyTo }),
    },
    ...(message.timeToLiveMs === undefined ? {} : { header: { timeToLive: message.timeToLiveMs } }),
    ...(message.applicationProperties ? { applicationProperties: { ...message.applicationProperties } } : {}),
    ...(Object.keys(annotations).length > 0 ? { messageAnnotations: annotations } : {}),
  } as AmqpAnnotatedMessage;
}

/** The port's view of a received message: the dead-letter properties as fields, not application properties. */
function fromSdkMessage(message: ServiceBusReceivedMessage): ReceivedBusMessage {
  const properties: Record<string, ApplicationPropertyValue> = {};
  for (const [key, value] of Object.entries(message.applicationProperties ?? {})) {
    if (key === 'DeadLetterReason' || key === 'DeadLetterErrorDescription') continue;
    properties[key] = value as ApplicationPropertyValue;
  }
  const received: ReceivedBusMessage = {
    body: bodyOf(message),
    messageId: String(message.messageId ?? ''),
    sequenceNumber: message.sequenceNumber?.toString() ?? '',
    enqueuedTime: message.enqueuedTimeUtc ?? new Date(0),
    deliveryCount: message.deliveryCount ?? 0,
    state: message.state,
    applicationProperties: properties,
  };
  const optional: Array<[keyof ReceivedBusMessage, unknown]> = [
    ['contentType', message.contentType],
    ['correlationId', message.correlationId === undefined ? undefined : String(message.correlationId)],
    ['sessionId', message.sessionId],
    ['replyToSessionId', message.replyToSessionId],
    ['subject', message.subject],
    ['to', message.to],
    ['replyTo', message.replyTo],
    ['partitionKey', message.partitionKey],
    ['timeToLiveMs', message.timeToLive],
    ['expiresAt', message.expiresAtUtc],
    ['deadLetterReason', message.deadLetterReason],
    ['deadLetterErrorDescription', message.deadLetterErrorDescription],
    ['deadLetterSource', message.deadLetterSource],
  ];
  for (const [key, value] of optional) {
    if (value !== undefined && value !== null) (received as unknown as Record<string, unknown>)[key] = value;
  }
  return received;
}

function bodyOf(message: ServiceBusReceivedMessage): BusMessageBody {
  const type = message._rawAmqpMessage?.bodyType ?? 'data';
  const body = message.body as unknown;
  if (type === 'value') return { type, value: body };
  if (type === 'sequence') return { type, sequences: body as unknown[][] };
  if (Buffer.isBuffer(body) || body instanceof Uint8Array)
    return { type: 'data', bytes: new Uint8Array(body) };
  if (Array.isArray(body) && body.every((part) => part instanceof Uint8Array)) {
    return { type: 'data', bytes: new Uint8Array(Buffer.concat(body as Uint8Array[])) };
  }
  // A data body the SDK decoded anyway (a string): its UTF-8 bytes.
  return {
    type: 'data',
    bytes: new Uint8Array(Buffer.from(typeof body === 'string' ? body : (JSON.stringify(body) ?? ''))),
  };
}

function fromSdkRule(rule: RuleProperties): SubscriptionRule {
  const filter = rule.filter as SqlRuleFilter | CorrelationRuleFilter;
  const result: SubscriptionRule =
    'sqlExpression' in filter && typeof filter.sqlExpression === 'string'
      ? { name: rule.name, filter: { sql: filter.sqlExpression } }
      : { name: rule.name, filter: { correlation: correlationOf(filter as CorrelationRuleFilter) } };
  const action = rule.action?.sqlExpression;
  if (typeof action === 'string' && action !== '') result.action = action;
  return result;
}

function correlationOf(filter: CorrelationRuleFilter): CorrelationFilter {
  const out: CorrelationFilter = {};
  for (const key of [
    'correlationId',
    'messageId',
    'to',
    'replyTo',
    'subject',
    'sessionId',
    'replyToSessionId',
    'contentType',
  ] as const) {
    const value = filter[key];
    if (value !== undefined && value !== null) out[key] = value;
  }
  if (filter.applicationProperties && Object.keys(filter.applicationProperties).length > 0) {
    out.applicationProperties = {
      ...filter.applicationProperties,
    } as CorrelationFilter['applicationProperties'];
  }
  return out;
}
