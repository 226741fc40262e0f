import { randomUUID } from 'node:crypto';
import type { AddressInfo, Server, Socket } from 'node:net';
import {
  type Connection,
  create_container,
  type Delivery,
  type EventContext,
  type Message,
  type Receiver,
  message as rheaMessage,
  type Sender,
  string_to_uuid,
  types,
} from 'rhea';
import { type Consumer, type MessageLock, type MessageView, type StoredMessage, SubQueue } from './store';

/**
 * A Service Bus broker for the sandbox: a loopback AMQP 1.0 listener (built on `rhea`) that speaks
 * enough of the Service Bus dialect for `@azure/service-bus` 7.x connected with a
 * `UseDevelopmentEmulator=true` connection string (plain AMQP, no TLS). It serves queues and
 * topics with subscriptions, peek-lock and receive-and-delete, complete / abandon / defer /
 * dead-letter, lock renewal, peek, lock expiry, `maxDeliveryCount` and the `$DeadLetterQueue`
 * sub-queues. See docs/servicebus-broker.md for what differs from the real service.
 */

export interface BrokerEntityConfig {
  name: string;
  type?: 'queue' | 'topic';
  /** Subscriptions of a topic. */
  subscriptions?: string[];
  /** Delivery attempts before a message is dead-lettered with `MaxDeliveryCountExceeded` (default 10). */
  maxDeliveryCount?: number;
  /** Peek-lock duration (default 60 s, as Service Bus). */
  lockDurationMs?: number;
}

export interface StartServiceBusBrokerOptions {
  /** Loopback port to listen on; 0 or absent picks a free one. */
  port?: number;
  entities: BrokerEntityConfig[];
}

/** Read-only inspection of one receivable path (queue or subscription) and its dead-letter queue. */
export interface EntityInspection {
  readonly path: string;
  /** Active (and deferred) messages, locked or not, without removing or locking them. */
  active(): MessageView[];
  /** Dead-lettered messages, without removing them. */
  deadLetter(): MessageView[];
  /** Messages of the path's entity waiting for their scheduled enqueue time, by sequence number. */
  scheduled(): ScheduledView[];
}

/** A message waiting for its scheduled enqueue time. */
export interface ScheduledView {
  sequenceNumber: number;
  messageId?: string;
  scheduledEnqueueTime: Date;
}

export interface ServiceBusBroker {
  /** A connection string for `@azure/service-bus` (`UseDevelopmentEmulator=true`, key is a placeholder). */
  readonly connectionString: string;
  readonly port: number;
  /** Inspection per path: `queue` or `topic/Subscriptions/sub` (case-insensitive). */
  readonly entities: {
    get(path: string): EntityInspection;
    paths(): string[];
  };
  stop(): Promise<void>;
}

const DEFAULT_MAX_DELIVERY_COUNT = 10;
const DEFAULT_LOCK_DURATION_MS = 60_000;
const BATCH_FORMAT = 0x80013700;
const MAX_MESSAGE_SIZE = 256 * 1024;
const STOP_GRACE_MS = 1_000;
const DEAD_LETTER_QUEUE = '$deadletterqueue';
const LOCK_LOST_CONDITION = 'com.microsoft:message-lock-lost';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,259}$/;

/** The parts of rhea's link internals the broker reads (not in rhea's typings). */
interface LinkInternals {
  name: string;
  remote: {
    attach?: {
      source?: { address?: string; filter?: Record<string, unknown> } & object;
      target?: { address?: string } & object;
      snd_settle_mode?: number;
      rcv_settle_mode?: number;
    };
  };
  local: { attach: Record<string, unknown> };
}

function internals(link: Sender | Receiver): LinkInternals {
  return link as unknown as LinkInternals;
}

/** rhea's outcome constructors (present at runtime, missing from its typings). */
const outcomes = rheaMessage as unknown as {
  accepted(): { described(): unknown };
  released(): { described(): unknown };
  rejected(fields: object): { described(): unknown };
  modified(fields: object): { described(): unknown };
};

interface Entity {
  name: string;
  type: 'queue' | 'topic';
  /** Receivable paths of the entity (the queue itself, or each subscription), lower-cased. */
  targets: SubQueue[];
  nextSequenceNumber: number;
  /** Messages waiting for their scheduled enqueue time, by sequence number. */
  scheduled: Map<number, ScheduledEntry>;
}

interface ScheduledEntry {
  message: Message;
  at: number;
  timer: LongTimer;
}

/** setTimeout's limit: a longer delay overflows and fires at once (with a TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2_147_483_647;

/** A timer that can wait longer than setTimeout allows. */
interface LongTimer {
  cancel(): void;
}

/**
 * Runs `fire` at epoch-ms `at`, however far ahead (a message may be scheduled weeks out): a delay
 * beyond setTimeout's 2^31-1 ms is waited out in chunks, re-armed until the rest fits. Unref'd, so
 * a pending schedule never keeps the process alive.
 */
export function fireAt(at: number, fire: () => void): LongTimer {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const remaining = at - Date.now();
    timer =
      remaining > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(fire, Math.max(0, remaining));
    timer.unref();
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}

/**
 * Starts the broker on 127.0.0.1. Entities are fixed at start-up (a bad entity list is refused
 * before anything listens). Every message lives in memory only.
 */
export async function startServiceBusBroker(
  options: StartServiceBusBrokerOptions,
): Promise<ServiceBusBroker> {
  const { entities, paths } = buildEntities(options.entities);
  const container = create_container({
    id: 'stampkeeper-servicebus-sandbox',
    // Settlement is decided by the broker: never let rhea accept, settle or re-dispatch on its own.
    autoaccept: false,
    autosettle: false,
    treat_modified_as_released: false,
  } as Record<string, unknown>);
  container.sasl_server_mechanisms.enable_anonymous();

  const consumers = new WeakMap<Sender, LinkConsumer>();
  const deliveries = new WeakMap<Delivery, { queue: SubQueue; token: string }>();
  const replyLinks = new WeakMap<Connection, Map<string, Sender>>();

  const replyLinkFor = (connection: Connection, request: Message | undefined, requestTarget: string) => {
    const links = replyLinks.get(connection);
    const address = request?.reply_to;
    return (
      (address === undefined ? undefined : links?.get(address)) ??
      links?.get(`source:${requestTarget.toLowerCase()}`)
    );
  };

  container.on('sender_open', (context: EventContext) => {
    const sender = context.sender!;
    const source = sourceAddress(sender);
    mirrorAttach(sender);
    if (source === '$cbs' || source?.toLowerCase().endsWith('/$management')) {
      const target = targetAddress(sender);
      const connection = context.connection;
      let links = replyLinks.get(connection);
      if (!links) {
        links = new Map();
        replyLinks.set(connection, links);
      }
      // The reply address is the link's target for `$management`; the CBS client leaves the target
      // empty and names the link after its reply address. The source is the last resort.
      // Replies go pre-settled: nothing waits on their outcome, and unsettled ones would pile up.
      internals(sender).local.attach['snd_settle_mode'] = 1;
      if (target !== undefined) links.set(target, sender);
      links.set(sender.name, sender);
      links.set(`source:${source.toLowerCase()}`, sender);
      return;
    }
    const queue = source === undefined ? undefined : paths.get(source.toLowerCase());
    if (!queue) {
      sender.close({
        condition: 'amqp:not-found',
        description: `The messaging entity '${source ?? ''}' could not be found in the sandbox broker.`,
      });
      return;
    }
    const filter = internals(sender).remote.attach?.source?.filter;
    if (filter && 'com.microsoft:session-filter' in filter) {
      sender.close({
        condition: 'amqp:not-implemented',
        description: 'Sessions are not supported by the sandbox Service Bus broker.',
      });
      return;
    }
    const consumer = new LinkConsumer(sender, (delivery, token) =>
      deliveries.set(delivery, { queue, token }),
    );
    consumers.set(sender, consumer);
    queue.addConsumer(consumer);
  });

  const pumpFor = (context: EventContext) => {
    const sender = context.sender;
    if (!sender) return;
    const consumer = consumers.get(sender);
    if (consumer) paths.get(consumer.path)?.pump();
  };
  container.on('sendable', pumpFor);
  container.on('sender_draining', (context: EventContext) => {
    // Hand over what is available, then give back the rest of the credit: the SDK's batching
    // receiver waits for the drain to complete and drops the link when it does not.
    pumpFor(context);
    context.sender?.set_drained(true);
  });

  const dropConsumer = (sender: Sender) => {
    const consumer = consumers.get(sender);
    if (!consumer) return;
    consumers.delete(sender);
    consumer.closed = true;
    paths.get(consumer.path)?.removeConsumer(consumer);
  };
  container.on('sender_close', (context: EventContext) => {
    if (context.sender) dropConsumer(context.sender);
  });
  const dropConnection = (context: EventContext) => {
    const connection = context.connection;
    for (const link of connectionSenders(connection)) dropConsumer(link);
  };
  container.on('connection_close', dropConnection);
  container.on('disconnected', dropConnection);

  // Outcomes the receiving client sends for a peek-locked delivery; the broker then settles it.
  const onOutcome = (context: EventContext) => {
    const delivery = context.delivery;
    if (!delivery || delivery.settled) return;
    const known = deliveries.get(delivery);
    const state = delivery.remote_state as OutcomeState | undefined;
    if (!known || !state) return;
    const result = applyOutcome(known.queue, known.token, state);
    delivery.update(
      true,
      result.ok
        ? settledOutcome(state)
        : outcomes
            .rejected({
              error: {
                condition: LOCK_LOST_CONDITION,
                description:
                  'The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.',
              },
            })
            .described(),
    );
  };
  for (const event of ['accepted', 'released', 'rejected', 'modified']) container.on(event, onOutcome);

  container.on('receiver_open', (context: EventContext) => {
    const receiver = context.receiver!;
    mirrorAttach(receiver);
    internals(receiver).local.attach['max_message_size'] = MAX_MESSAGE_SIZE;
    const target = targetAddress(receiver);
    if (target === '$cbs' || target?.toLowerCase().endsWith('/$management')) return;
    if (target === undefined || !entities.has(target.toLowerCase())) {
      receiver.close({
        condition: 'amqp:not-found',
        description: `The messaging entity '${target ?? ''}' could not be found in the sandbox broker.`,
      });
    }
  });

  container.on('message', (context: EventContext) => {
    const receiver = context.receiver!;
    const delivery = context.delivery!;
    const target = targetAddress(receiver) ?? '';
    const lowered = target.toLowerCase();
    try {
      if (target === '$cbs') {
        respond(replyLinkFor(context.connection, context.message, target), context.message!, {
          application_properties: { 'status-code': 200, 'status-description': 'OK' },
        });
        delivery.accept();
        return;
      }
      if (lowered.endsWith('/$management')) {
        const entityPath = lowered.slice(0, -'/$management'.length);
        const reply = handleManagement(entityPath, context.message!);
        respond(replyLinkFor(context.connection, context.message, target), context.message!, reply);
        delivery.accept();
        return;
      }
      const entity = entities.get(lowered);
      if (!entity) throw new Error(`unknown entity '${target}'`);
      const format = (context as { format?: number }).format ?? 0;
      const messages =
        format === BATCH_FORMAT ? unpackBatch(context.message as unknown as Buffer) : [context.message!];
      for (const message of messages) enqueue(entity, message);
      delivery.accept();
    } catch (error) {
      delivery.reject({
        condition: 'amqp:internal-error',
        description: error instanceof Error ? error.message : String(error),
      });
    }
  });

  const server = (container as unknown as { listen(options: object): Server }).listen({
    host: '127.0.0.1',
    port: options.port ?? 0,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const open = new Set<Connection>();
  container.on('connection_open', (context: EventContext) => open.add(context.connection));
  container.on('disconnected', (context: EventContext) => open.delete(context.connection));

  return {
    connectionString: `Endpoint=sb://127.0.0.1:${port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true`,
    port,
    entities: {
      get(path: string): EntityInspection {
        const queue = paths.get(path.toLowerCase());
        if (!queue || path.toLowerCase().endsWith(`/${DEAD_LETTER_QUEUE}`)) {
          throw new Error(`The sandbox broker has no queue or subscription '${path}'.`);
        }
        const entity = [...entities.values()].find((e) => e.targets.includes(queue));
        return {
          path: queue.path,
          active: () => queue.list(),
          deadLetter: () => queue.deadLetter?.list() ?? [],
          scheduled: () =>
            [...(entity?.scheduled ?? new Map<number, ScheduledEntry>()).entries()]
              .sort(([a], [b]) => a - b)
              .map(([sequenceNumber, entry]) => ({
                sequenceNumber,
                ...(entry.message.message_id === undefined
                  ? {}
                  : { messageId: String(entry.message.message_id) }),
                scheduledEnqueueTime: new Date(entry.at),
              })),
        };
      },
      paths: () => [...paths.values()].filter((q) => q.deadLetter !== undefined).map((q) => q.path),
    },
    async stop(): Promise<void> {
      for (const connection of open) {
        try {
          connection.close();
        } catch {
          // already gone
        }
      }
      for (const queue of paths.values()) queue.dispose();
      for (const entity of entities.values())
        for (const scheduled of entity.scheduled.values()) scheduled.timer.cancel();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Clients get a moment to answer the close; a silent one is cut off.
      const grace = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
      }, STOP_GRACE_MS);
      await closed;
      clearTimeout(grace);
    },
  };

  /** `$management` requests: entity-level ones (schedule) first, then per receivable path. */
  function handleManagement(entityPath: string, request: Message): ManagementReply {
    const operation = String(request.application_properties?.['operation'] ?? '');
    const body = (request.body ?? {}) as Record<string, unknown>;
    const entity = entities.get(entityPath);
    if (
      operation === 'com.microsoft:schedule-message' ||
      operation === 'com.microsoft:cancel-scheduled-message'
    ) {
      if (!entity)
        return failure(404, 'amqp:not-found', `The messaging entity '${entityPath}' could not be found.`);
      if (operation === 'com.microsoft:schedule-message') {
        const sequenceNumbers = asArray(body['messages']).map((item) => {
          const encoded = (item as { message?: unknown }).message;
          return enqueue(
            entity,
            rheaMessage.decode(Buffer.from(encoded as Uint8Array)) as unknown as Message,
          );
        });
        return ok({ 'sequence-numbers': types.wrap_array(sequenceNumbers, 0x81, undefined) });
      }
      for (const value of asArray(body['sequence-numbers'])) {
        const sequenceNumber = longValue(value);
        const scheduled = sequenceNumber === undefined ? undefined : entity.scheduled.get(sequenceNumber);
        if (scheduled && sequenceNumber !== undefined) {
          scheduled.timer.cancel();
          entity.scheduled.delete(sequenceNumber);
        }
      }
      return ok({});
    }
    const queue = paths.get(entityPath);
    if (!queue)
      return failure(404, 'amqp:not-found', `The messaging entity '${entityPath}' could not be found.`);
    return handleQueueManagement(queue, request);
  }

  /**
   * Numbers a sent message and adds it to every receivable path of the entity, now or at its
   * `x-opt-scheduled-enqueue-time`. Returns its sequence number.
   */
  function enqueue(entity: Entity, message: Message): number {
    const sequenceNumber = entity.nextSequenceNumber++;
    // Service Bus stamps a message id on messages sent without one (the JS SDK relies on it,
    // e.g. for lock renewal bookkeeping).
    if (message.message_id === undefined || message.message_id === null) {
      message.message_id = randomUUID().replace(/-/g, '');
    }
    const at = scheduledTime(message);
    if (at !== undefined && at > Date.now()) {
      const timer = fireAt(at, () => {
        entity.scheduled.delete(sequenceNumber);
        deliverNow(entity, message, sequenceNumber);
      });
      entity.scheduled.set(sequenceNumber, { message, at, timer });
      return sequenceNumber;
    }
    deliverNow(entity, message, sequenceNumber);
    return sequenceNumber;
  }

  function deliverNow(entity: Entity, message: Message, sequenceNumber: number): void {
    const enqueuedTime = new Date();
    for (const target of entity.targets) {
      const entry: StoredMessage = {
        sequenceNumber,
        message: { ...message },
        enqueuedTime,
        deliveryCount: 0,
        state: 'active',
      };
      target.enqueue(entry);
    }
  }
}

/** The outcome the broker settles with, echoing what the client asked for. */
function settledOutcome(state: OutcomeState): unknown {
  switch (state.constructor.composite_type) {
    case 'accepted':
      return outcomes.accepted().described();
    case 'rejected':
      // Echoing `rejected` would carry the dead-letter "error" back, and the SDK reads any error in
      // the settled state as a failed settlement: settle as rejected without the error instead.
      return outcomes.rejected({}).described();
    case 'modified':
      return outcomes
        .modified({
          delivery_failed: true,
          undeliverable_here: state.undeliverable_here ?? false,
        })
        .described();
    default:
      return outcomes.released().described();
  }
}

type OutcomeState = {
  constructor: { composite_type?: string };
  error?: { condition?: string; info?: Record<string, unknown> };
  undeliverable_here?: boolean;
  message_annotations?: Record<string, unknown>;
};

function applyOutcome(queue: SubQueue, token: string, state: OutcomeState) {
  const kind = state.constructor.composite_type;
  switch (kind) {
    case 'accepted':
      return queue.complete(token);
    case 'rejected': {
      const info = { ...(state.error?.info ?? {}) };
      const reason = info['DeadLetterReason'];
      const description = info['DeadLetterErrorDescription'];
      delete info['DeadLetterReason'];
      delete info['DeadLetterErrorDescription'];
      return queue.deadLetterByToken(
        token,
        typeof reason === 'string' ? reason : undefined,
        typeof description === 'string' ? description : undefined,
        info,
      );
    }
    case 'modified':
      return state.undeliverable_here
        ? queue.defer(token, state.message_annotations)
        : queue.abandon(token, state.message_annotations);
    default:
      return queue.abandon(token);
  }
}

/** One peek-lock or receive-and-delete receiver link of a client. */
class LinkConsumer implements Consumer {
  closed = false;
  readonly receiveAndDelete: boolean;
  readonly path: string;

  constructor(
    private readonly sender: Sender,
    private readonly track: (delivery: Delivery, token: string) => void,
  ) {
    const remote = internals(sender).remote.attach;
    this.receiveAndDelete = remote?.snd_settle_mode === 1;
    this.path = (sourceAddress(sender) ?? '').toLowerCase();
  }

  canTake(): boolean {
    return !this.closed && this.sender.is_open() && this.sender.sendable();
  }

  take(entry: StoredMessage, lock: MessageLock | undefined): void {
    const message = outgoingMessage(entry, lock?.lockedUntil);
    if (lock) {
      const delivery = this.sender.send(message, lockTokenTag(lock.token));
      this.track(delivery, lock.token);
    } else {
      // The link's snd-settle-mode is `settled` (mirrored from the client): sent pre-settled.
      this.sender.send(message, Buffer.alloc(0));
    }
  }
}

/** The message as a receiver gets it: the sent message plus the broker's annotations and header. */
function outgoingMessage(entry: StoredMessage, lockedUntil: Date | undefined): Message {
  const annotations: Record<string, unknown> = {
    ...(entry.message.message_annotations ?? {}),
    'x-opt-sequence-number': types.wrap_long(entry.sequenceNumber),
    'x-opt-enqueue-sequence-number': types.wrap_long(entry.sequenceNumber),
    'x-opt-enqueued-time': entry.enqueuedTime,
    'x-opt-message-state': types.wrap_int(entry.state === 'deferred' ? 1 : 0),
  };
  if (lockedUntil) annotations['x-opt-locked-until'] = lockedUntil;
  if (entry.deadLetterSource) annotations['x-opt-deadletter-source'] = entry.deadLetterSource;
  return {
    ...entry.message,
    delivery_count: entry.deliveryCount,
    message_annotations: annotations,
  } as Message;
}

/**
 * The delivery tag carrying a lock token. The SDK reads the tag as a .NET-ordered GUID
 * (`reorderLockToken`), so the first three groups are byte-swapped here to round-trip.
 */
function lockTokenTag(token: string): Buffer {
  return reorderGuidBytes(Buffer.from(string_to_uuid(token)));
}

function reorderGuidBytes(b: Buffer): Buffer {
  return Buffer.from([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8)]);
}

function uuidBytesToString(value: unknown): string {
  const hex = Buffer.from(value as Uint8Array).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A batch envelope's body is one data section per encoded message. */
function unpackBatch(raw: Buffer): Message[] {
  const envelope = rheaMessage.decode(raw) as unknown as { body?: { content?: unknown; multiple?: boolean } };
  const body = envelope.body;
  const sections = body?.multiple
    ? (body.content as Buffer[])
    : body?.content
      ? [body.content as Buffer]
      : [];
  return sections.map((section) => rheaMessage.decode(Buffer.from(section)) as unknown as Message);
}

interface ManagementReply {
  application_properties: Record<string, unknown>;
  body?: unknown;
}

function ok(body?: unknown): ManagementReply {
  return { application_properties: { statusCode: 200, statusDescription: 'OK' }, body };
}

function failure(statusCode: number, errorCondition: string, statusDescription: string): ManagementReply {
  return { application_properties: { statusCode, statusDescription, errorCondition } };
}

/** The `$management` operations the SDK's receivers use. */
/** The `$management` operations on a receivable path (queue, subscription, dead-letter queue). */
function handleQueueManagement(queue: SubQueue, request: Message): ManagementReply {
  const operation = String(request.application_properties?.['operation'] ?? '');
  const body = (request.body ?? {}) as Record<string, unknown>;
  switch (operation) {
    case 'com.microsoft:renew-lock': {
      const tokens = asArray(body['lock-tokens']).map(uuidBytesToString);
      const expirations: Date[] = [];
      for (const token of tokens) {
        const until = queue.renewLock(token);
        if (!until) return failure(410, LOCK_LOST_CONDITION, `The lock ${token} is lost or expired.`);
        expirations.push(until);
      }
      return ok({ expirations });
    }
    case 'com.microsoft:peek-message': {
      const from = Number(longValue(body['from-sequence-number']) ?? 0);
      const count = Number(body['message-count'] ?? 1);
      const found = queue.peek(from, count);
      if (found.length === 0) {
        return { application_properties: { statusCode: 204, statusDescription: 'No messages' }, body: {} };
      }
      return ok({
        messages: found.map((entry) => ({
          message: rheaMessage.encode(outgoingMessage(entry, entry.lock?.lockedUntil)),
        })),
      });
    }
    case 'com.microsoft:update-disposition': {
      const tokens = asArray(body['lock-tokens']).map(uuidBytesToString);
      const status = String(body['disposition-status'] ?? '');
      const properties = (body['properties-to-modify'] ?? undefined) as Record<string, unknown> | undefined;
      for (const token of tokens) {
        const result =
          status === 'completed'
            ? queue.complete(token)
            : status === 'abandoned'
              ? queue.abandon(token, properties)
              : status === 'defered'
                ? queue.defer(token, properties)
                : status === 'suspended'
                  ? queue.deadLetterByToken(
                      token,
                      body['deadletter-reason'] as string | undefined,
                      body['deadletter-description'] as string | undefined,
                      properties,
                    )
                  : undefined;
        if (!result) return failure(400, 'amqp:invalid-field', `Unknown disposition status '${status}'.`);
        if (!result.ok) return failure(410, LOCK_LOST_CONDITION, `The lock ${token} is lost or expired.`);
      }
      return ok({});
    }
    case 'com.microsoft:receive-by-sequence-number': {
      const receiveAndDelete = Number(body['receiver-settle-mode'] ?? 1) === 0;
      const messages: Array<{ message: Buffer; 'lock-token'?: unknown }> = [];
      for (const value of asArray(body['sequence-numbers'])) {
        const sequenceNumber = longValue(value);
        const entry = sequenceNumber === undefined ? undefined : queue.findDeferred(sequenceNumber);
        if (!entry) {
          return failure(
            404,
            'com.microsoft:message-not-found',
            `No deferred message with sequence number ${String(sequenceNumber)}.`,
          );
        }
        const taken = queue.takeDeferred(entry, receiveAndDelete);
        if (taken === undefined) {
          return failure(
            400,
            'com.microsoft:message-lock-lost',
            `Deferred message ${sequenceNumber} is locked by another receiver.`,
          );
        }
        const lock = taken === 'removed' ? undefined : taken;
        messages.push({
          message: rheaMessage.encode(outgoingMessage(entry, lock?.lockedUntil)),
          ...(lock ? { 'lock-token': types.wrap_uuid(Buffer.from(string_to_uuid(lock.token))) } : {}),
        });
      }
      return ok({ messages });
    }
    default:
      return failure(
        501,
        'amqp:not-implemented',
        `The sandbox Service Bus broker does not implement '${operation}'.`,
      );
  }
}

function respond(link: Sender | undefined, request: Message, reply: Partial<Message>): void {
  if (!link) return;
  link.send({
    ...reply,
    to: request.reply_to,
    correlation_id: request.message_id,
  } as Message);
}

function scheduledTime(message: Message): number | undefined {
  const value = (message.message_annotations as Record<string, unknown> | undefined)?.[
    'x-opt-scheduled-enqueue-time'
  ];
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number') return value;
  return undefined;
}

function asArray(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (value === undefined || value === null) return [];
  return [value];
}

function longValue(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (Buffer.isBuffer(value)) return Number(value.readBigInt64BE(0));
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}

function sourceAddress(link: Sender | Receiver): string | undefined {
  return internals(link).remote.attach?.source?.address ?? undefined;
}

function targetAddress(link: Sender | Receiver): string | undefined {
  return internals(link).remote.attach?.target?.address ?? undefined;
}

/** Answers an attach with the peer's own terminus and settle modes, as Service Bus does. */
function mirrorAttach(link: Sender | Receiver): void {
  const remote = internals(link).remote.attach;
  if (!remote) return;
  if (remote.source) link.set_source(remote.source as Parameters<typeof link.set_source>[0]);
  if (remote.target) link.set_target(remote.target as Parameters<typeof link.set_target>[0]);
  const local = internals(link).local.attach;
  if (remote.snd_settle_mode !== undefined) local['snd_settle_mode'] = remote.snd_settle_mode;
  if (remote.rcv_settle_mode !== undefined) local['rcv_settle_mode'] = remote.rcv_settle_mode;
}

function connectionSenders(connection: Connection): Sender[] {
  const found: Sender[] = [];
  const sessions =
    (connection as unknown as { local_channel_map?: Record<string, unknown> }).local_channel_map ?? {};
  for (const session of Object.values(sessions)) {
    const links = (session as { links?: Record<string, Sender | Receiver> }).links ?? {};
    for (const link of Object.values(links)) if (link.is_sender()) found.push(link as Sender);
  }
  return found;
}

function buildEntities(configs: BrokerEntityConfig[]): {
  entities: Map<string, Entity>;
  paths: Map<string, SubQueue>;
} {
  if (!Array.isArray(configs) || configs.length === 0) {
    throw new TypeError('startServiceBusBroker: `entities` must list at least one queue or topic.');
  }
  const entities = new Map<string, Entity>();
  const paths = new Map<string, SubQueue>();
  for (const config of configs) {
    const name = config?.name;
    if (typeof name !== 'string' || !NAME_RE.test(name)) {
      throw new TypeError(
        `startServiceBusBroker: entity name '${String(name)}' is not a valid Service Bus entity name (letters, digits, '.', '-', '_').`,
      );
    }
    if (entities.has(name.toLowerCase())) {
      throw new TypeError(`startServiceBusBroker: entity '${name}' is listed twice.`);
    }
    const maxDeliveryCount = config.maxDeliveryCount ?? DEFAULT_MAX_DELIVERY_COUNT;
    const lockDurationMs = config.lockDurationMs ?? DEFAULT_LOCK_DURATION_MS;
    if (!Number.isInteger(maxDeliveryCount) || maxDeliveryCount < 1) {
      throw new TypeError(`startServiceBusBroker: maxDeliveryCount of '${name}' must be an integer >= 1.`);
    }
    if (!Number.isFinite(lockDurationMs) || lockDurationMs <= 0) {
      throw new TypeError(`startServiceBusBroker: lockDurationMs of '${name}' must be a positive number.`);
    }
    const type = config.type ?? 'queue';
    const receivable =
      type === 'queue'
        ? [name]
        : (config.subscriptions ?? []).map((subscription) => {
            if (!NAME_RE.test(subscription)) {
              throw new TypeError(
                `startServiceBusBroker: subscription '${subscription}' of '${name}' is not valid.`,
              );
            }
            return `${name}/Subscriptions/${subscription}`;
          });
    const targets = receivable.map((path) => {
      const dlq = new SubQueue(`${path}/$DeadLetterQueue`, { lockDurationMs }, undefined);
      const queue = new SubQueue(path, { maxDeliveryCount, lockDurationMs }, dlq);
      paths.set(path.toLowerCase(), queue);
      paths.set(`${path}/${DEAD_LETTER_QUEUE}`.toLowerCase(), dlq);
      return queue;
    });
    entities.set(name.toLowerCase(), { name, type, targets, nextSequenceNumber: 1, scheduled: new Map() });
  }
  return { entities, paths };
}
