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
} from 'rhea';
import { handleManagement, isManagementAddress } from './management';
import { type BrokerEntityConfig, type BrokerTier, type Entity, Namespace, SendRefused } from './namespace';
import type { CorrelationFilterFields, RuleFilter } from './rules';
import type { ANY_SESSION, Consumer, MessageLock, MessageView, StoredMessage, SubQueue } from './store';
import { type BrokerClock, createBrokerTime } from './time';
import { lockTokenTag, outgoingMessage, ticksOf } from './wire';

export type { BrokerEntityConfig, BrokerSubscriptionConfig, BrokerTier } from './namespace';
export type { BrokerClock } from './time';
export { fireAt } from './time';

/**
 * A Service Bus broker for the sandbox: a loopback AMQP 1.0 listener (built on `rhea`) that speaks
 * enough of the Service Bus dialect for `@azure/service-bus` 7.x connected with a
 * `UseDevelopmentEmulator=true` connection string (plain AMQP, no TLS). It serves queues and
 * topics with subscriptions and their rules, peek-lock and receive-and-delete, complete / abandon /
 * defer / dead-letter, lock renewal, peek, lock expiry, `maxDeliveryCount`, the `$DeadLetterQueue`
 * sub-queues, sessions, duplicate detection, time to live and the tier's message size limit.
 * See docs/servicebus-broker.md for what differs from the real service.
 */

export interface StartServiceBusBrokerOptions {
  /** Loopback port to listen on; 0 or absent picks a free one. */
  port?: number;
  entities: BrokerEntityConfig[];
  /** `standard` (default): 256 KB messages. `premium`: each entity's `maxMessageSizeInKilobytes` (1 MB default, up to 100 MB). */
  tier?: BrokerTier;
  /**
   * The clock of message times (enqueued time, expiry, duplicate detection window, scheduled
   * enqueue). Default: wall time. A sandbox clock also fires scheduled messages as it moves.
   * Locks always run on wall time.
   */
  clock?: BrokerClock;
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
  /** Counts, cheap to take whatever the depth. */
  counts(): EntityCounts;
  /** A subscription's rules (undefined for a queue). */
  rules(): RuleView[] | undefined;
  /** The first `limit` messages of the path or its dead-letter queue (bounded inspection). */
  head(which: 'active' | 'deadLetter', limit: number): MessageView[];
  /** What the path is: its entity's type and options. */
  describe(): EntityDescription;
}

export interface EntityDescription {
  path: string;
  entity: string;
  type: 'queue' | 'subscription';
  requiresSession: boolean;
  maxDeliveryCount: number;
  lockDurationMs: number;
  deadLetteringOnMessageExpiration: boolean;
  defaultMessageTimeToLiveMs?: number;
  duplicateDetectionHistoryTimeWindowMs?: number;
  maxMessageSizeInBytes: number;
}

export interface EntityCounts {
  active: number;
  deferred: number;
  locked: number;
  deadLetter: number;
  scheduled: number;
  /** Messages the entity (queue or topic) dropped as duplicates since start. */
  duplicatesDropped: number;
}

export interface RuleView {
  name: string;
  filter: { sql: string } | { correlation: CorrelationFilterFields } | { filter: 'true' | 'false' };
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
  readonly tier: BrokerTier;
  /** Inspection per path: `queue` or `topic/Subscriptions/sub` (case-insensitive). */
  readonly entities: {
    get(path: string): EntityInspection;
    /** Every queue and subscription path. */
    paths(): string[];
  };
  /**
   * Attaches an in-process consumer to a queue or subscription (or its dead-letter queue): what
   * the sandbox's simulated consumers use. Returns the store's path object to settle through.
   */
  attachConsumer(path: string, consumer: Consumer): SubQueue;
  stop(): Promise<void>;
}

const BATCH_FORMAT = 0x80013700;
const STOP_GRACE_MS = 1_000;
const LOCK_LOST_CONDITION = 'com.microsoft:message-lock-lost';
const SESSION_FILTER = 'com.microsoft:session-filter';
/** What `$cbs` links negotiate: tokens are small. */
const CBS_MAX_MESSAGE_SIZE = 256 * 1024;

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

/**
 * Starts the broker on 127.0.0.1. Entities are fixed at start-up (a bad entity list is refused
 * before anything listens); subscription rules change through `$management`. Every message lives
 * in memory only.
 */
export async function startServiceBusBroker(
  options: StartServiceBusBrokerOptions,
): Promise<ServiceBusBroker> {
  const time = createBrokerTime(options.clock);
  const namespace = new Namespace(options.entities, { tier: options.tier ?? 'standard', time });
  const { paths } = namespace;
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
    if (source === '$cbs' || isManagementAddress(source)) {
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
      links.set(`source:${(source ?? '').toLowerCase()}`, sender);
      return;
    }
    const queue = source === undefined ? undefined : paths.get(source.toLowerCase());
    if (!queue || source === undefined) {
      sender.close({
        condition: 'amqp:not-found',
        description: `The messaging entity '${source ?? ''}' could not be found in the sandbox broker.`,
      });
      return;
    }
    const filter = internals(sender).remote.attach?.source?.filter;
    const sessionful = filter !== undefined && filter !== null && SESSION_FILTER in filter;
    const refusal = sessionRefusal(queue, sessionful);
    if (refusal) {
      // Answered without the session filter the client asked for: no session was accepted.
      sender.set_source({ address: source });
      sender.close({ condition: 'amqp:not-allowed', description: refusal });
      return;
    }
    const consumer = new LinkConsumer(sender, queue.path, (delivery, token) =>
      deliveries.set(delivery, { queue, token }),
    );
    if (sessionful) {
      const requested = filter[SESSION_FILTER];
      const accepted = queue.acceptSession(
        consumer,
        requested === undefined || requested === null ? undefined : String(requested),
      );
      if (!accepted.ok) {
        // The attach is answered without the session (the SDK reads that as not locked), then detached.
        sender.set_source({ address: source });
        sender.close(
          accepted.reason === 'locked'
            ? {
                condition: 'com.microsoft:session-cannot-be-locked',
                description: `The requested session '${String(requested)}' cannot be accepted. It may be locked by another receiver.`,
              }
            : {
                condition: 'com.microsoft:timeout',
                description:
                  'The operation did not complete within the allocated time: no session with available messages.',
              },
        );
        return;
      }
      consumer.sessionId = accepted.sessionId;
      sender.set_source({ address: source, filter: { [SESSION_FILTER]: accepted.sessionId } } as Parameters<
        typeof sender.set_source
      >[0]);
      internals(sender).local.attach['properties'] = {
        'com.microsoft:locked-until-utc': ticksOf(accepted.lockedUntil),
      };
    }
    consumers.set(sender, consumer);
    queue.addConsumer(consumer);
  });

  const pumpFor = (context: EventContext) => {
    const sender = context.sender;
    if (!sender) return;
    const consumer = consumers.get(sender);
    if (consumer) paths.get(consumer.path.toLowerCase())?.pump();
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
    paths.get(consumer.path.toLowerCase())?.removeConsumer(consumer);
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
    // The SDK's peek-lock receivers settle in mode `second`: their outcome comes unsettled, and once
    // the broker settles, the sender may forget the delivery (AMQP 1.0, 2.6.12) and the receiver
    // sends nothing more. rhea keeps a sent delivery until the peer settles it too, so without this
    // one link stops after its session buffer (2,048 deliveries) although every message was settled.
    // Set after `update`, which queued the settled disposition the client is waiting for.
    (delivery as Delivery & { remote_settled: boolean }).remote_settled = true;
  };
  for (const event of ['accepted', 'released', 'rejected', 'modified']) container.on(event, onOutcome);

  container.on('receiver_open', (context: EventContext) => {
    const receiver = context.receiver!;
    mirrorAttach(receiver);
    const target = targetAddress(receiver);
    if (target === '$cbs') {
      internals(receiver).local.attach['max_message_size'] = CBS_MAX_MESSAGE_SIZE;
      return;
    }
    const entityPath =
      target !== undefined && isManagementAddress(target) ? target.slice(0, -'/$management'.length) : target;
    const entity = entityPath === undefined ? undefined : namespace.entity(entityPath);
    // The link's max-message-size is what the SDK's `createMessageBatch` fills up to.
    internals(receiver).local.attach['max_message_size'] = entity?.maxMessageSize ?? CBS_MAX_MESSAGE_SIZE;
    if (isManagementAddress(target)) return;
    if (!entity) {
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
    try {
      if (target === '$cbs') {
        respond(replyLinkFor(context.connection, context.message, target), context.message!, {
          application_properties: { 'status-code': 200, 'status-description': 'OK' },
        });
        delivery.accept();
        return;
      }
      if (isManagementAddress(target)) {
        const entityPath = target.toLowerCase().slice(0, -'/$management'.length);
        const reply = handleManagement(namespace, entityPath, context.message!);
        respond(replyLinkFor(context.connection, context.message, target), context.message!, reply);
        delivery.accept();
        return;
      }
      const entity = namespace.entity(target);
      if (!entity) throw new Error(`unknown entity '${target}'`);
      const format = (context as { format?: number }).format ?? 0;
      const size =
        format === BATCH_FORMAT
          ? (context.message as unknown as Buffer).length
          : rheaMessage.encode(context.message!).length;
      if (size > entity.maxMessageSize) {
        delivery.reject({
          condition: 'amqp:link:message-size-exceeded',
          description: `The received message (delivery-id:${(delivery as { id?: number }).id ?? 0}, size:${size} bytes) exceeds the limit (${entity.maxMessageSize} bytes) currently allowed on the link.`,
        });
        return;
      }
      const messages =
        format === BATCH_FORMAT ? unpackBatch(context.message as unknown as Buffer) : [context.message!];
      namespace.send(entity, messages);
      delivery.accept();
    } catch (error) {
      if (error instanceof SendRefused) {
        delivery.reject({ condition: error.condition, description: error.message });
        return;
      }
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
    tier: namespace.tier,
    entities: {
      get(path: string): EntityInspection {
        const found = namespace.target(path);
        if (!found) throw new Error(`The sandbox broker has no queue or subscription '${path}'.`);
        const { entity, target } = found;
        const queue = target.queue;
        return {
          path: queue.path,
          active: () => queue.list(),
          deadLetter: () => queue.deadLetter?.list() ?? [],
          scheduled: () => scheduledOf(entity),
          counts: () => ({
            ...queue.counts(),
            deadLetter: queue.deadLetter?.size ?? 0,
            scheduled: entity.scheduled.size,
            duplicatesDropped: entity.duplicatesDropped,
          }),
          rules: () =>
            target.rules?.map((rule) => ({ name: rule.name, filter: ruleFilterView(rule.filter) })),
          head: (which, limit) =>
            which === 'active' ? queue.head(limit) : (queue.deadLetter?.head(limit) ?? []),
          describe: () => {
            const caps = [target.defaultTtlMs, entity.defaultTtlMs].filter(
              (v): v is number => v !== undefined,
            );
            const ttl = caps.length === 0 ? undefined : Math.min(...caps);
            return {
              path: queue.path,
              entity: entity.name,
              type: entity.type === 'queue' ? 'queue' : 'subscription',
              requiresSession: queue.requiresSession,
              maxDeliveryCount: queue.options.maxDeliveryCount ?? 0,
              lockDurationMs: queue.options.lockDurationMs,
              deadLetteringOnMessageExpiration: queue.options.deadLetteringOnMessageExpiration === true,
              ...(ttl === undefined ? {} : { defaultMessageTimeToLiveMs: ttl }),
              ...(entity.duplicateWindowMs === undefined
                ? {}
                : { duplicateDetectionHistoryTimeWindowMs: entity.duplicateWindowMs }),
              maxMessageSizeInBytes: entity.maxMessageSize,
            };
          },
        };
      },
      paths: () => [...namespace.entities.values()].flatMap((e) => e.targets.map((t) => t.queue.path)),
    },
    attachConsumer(path: string, consumer: Consumer): SubQueue {
      const queue = paths.get(path.toLowerCase());
      if (!queue) throw new Error(`The sandbox broker has no queue or subscription '${path}'.`);
      if (queue.requiresSession && consumer.sessionId === undefined) {
        throw new Error(`'${queue.path}' requires sessions: its consumer must take sessions (ANY_SESSION).`);
      }
      queue.addConsumer(consumer);
      queue.pump();
      return queue;
    },
    async stop(): Promise<void> {
      for (const connection of open) {
        try {
          connection.close();
        } catch {
          // already gone
        }
      }
      namespace.dispose();
      time.dispose();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Clients get a moment to answer the close; a silent one is cut off.
      const grace = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
      }, STOP_GRACE_MS);
      await closed;
      clearTimeout(grace);
    },
  };
}

function scheduledOf(entity: Entity): ScheduledView[] {
  return [...entity.scheduled.entries()]
    .sort(([a], [b]) => a - b)
    .map(([sequenceNumber, entry]) => ({
      sequenceNumber,
      ...(entry.message.message_id === undefined ? {} : { messageId: String(entry.message.message_id) }),
      scheduledEnqueueTime: new Date(entry.at),
    }));
}

function ruleFilterView(filter: RuleFilter): RuleView['filter'] {
  switch (filter.kind) {
    case 'true':
    case 'false':
      return { filter: filter.kind };
    case 'sql':
      return { sql: filter.expression };
    case 'correlation': {
      const { kind: _kind, ...fields } = filter;
      return { correlation: fields };
    }
  }
}

/**
 * Why a receiver may not attach, in Service Bus's words: a session-enabled entity takes session
 * receivers only, other entities and every dead-letter queue take none (the dead-letter queue of
 * a session-enabled entity is read with an ordinary receiver).
 */
function sessionRefusal(queue: SubQueue, sessionful: boolean): string | undefined {
  if (sessionful && queue.deadLetter === undefined) return 'Cannot create a MessageSession for a sub-queue.';
  if (sessionful && !queue.requiresSession) {
    return 'A sessionful message receiver cannot be created on an entity that does not require sessions. Ensure RequiresSession is set to true when creating a Queue or Subscription to enable sessionful behavior.';
  }
  if (!sessionful && queue.requiresSession) {
    return 'It is not possible for an entity that requires sessions to create a non-sessionful message receiver.';
  }
  return undefined;
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
  /** Set once the link's session is accepted (session receivers only). */
  sessionId?: string | typeof ANY_SESSION;

  constructor(
    private readonly sender: Sender,
    readonly path: string,
    private readonly track: (delivery: Delivery, token: string) => void,
  ) {
    const remote = internals(sender).remote.attach;
    this.receiveAndDelete = remote?.snd_settle_mode === 1;
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

  /** The session's lock expired: the link is detached as Service Bus does, so the receiver knows. */
  sessionLost(sessionId: string): void {
    this.closed = true;
    if (!this.sender.is_open()) return;
    this.sender.close({
      condition: 'com.microsoft:session-lock-lost',
      description: `The session lock has expired on the MessageSession '${sessionId}'. Accept a new MessageSession.`,
    });
  }
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

function respond(link: Sender | undefined, request: Message, reply: Partial<Message>): void {
  if (!link) return;
  link.send({
    ...reply,
    to: request.reply_to,
    correlation_id: request.message_id,
  } as Message);
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
