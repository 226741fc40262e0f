/**
 * Support of the dead-letter integration tests: the sandbox broker (real AMQP, real
 * `@azure/service-bus` clients) on a sandbox clock, the real archive on Azurite, the real notifier
 * to a recording channel, and a "host" that receives a dead-letter queue in peek-lock as the
 * Functions host does and settles (or crashes before settling).
 */
import { ServiceBusClient, type ServiceBusReceiver } from '@azure/service-bus';
import { ServiceBusMessageBus } from '../../../src/lib/azure/serviceBusMessageBus';
import { type Policy, parsePolicy } from '../../../src/lib/config/policy';
import { silentLogger } from '../../../src/lib/core/logging';
import type { DeadLetterDeps } from '../../../src/lib/deadletters';
import { handleArrivals } from '../../../src/lib/deadletters/arrive';
import { createNotifier } from '../../../src/lib/notify/notifier';
import type { StateStores } from '../../../src/lib/state';
import { createSandboxClock, type SandboxClock } from '../../../src/local/sandbox/clock';
import {
  type BrokerEntityConfig,
  type ServiceBusBroker,
  startServiceBusBroker,
} from '../../../src/local/sandbox/servicebus/broker';
import { RecordingChannel } from '../runs/support';
import { freshStores } from '../state/helpers';

export const NS =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/sandbox-sb';
export const T0 = new Date('2026-01-01T00:00:00.000Z');

export interface DeadLetterSetup {
  clock: SandboxClock;
  broker: ServiceBusBroker;
  client: ServiceBusClient;
  bus: ServiceBusMessageBus;
  stores: StateStores;
  channel: RecordingChannel;
  policy: Policy;
  deps: DeadLetterDeps;
  close(): Promise<void>;
}

/** A broker with `entities`, a policy (its `deadLetters` YAML), the stores and the deps of the use cases. */
export async function setupDeadLetters(
  entities: BrokerEntityConfig[],
  deadLetters: string,
  options: { tier?: 'standard' | 'premium' } = {},
): Promise<DeadLetterSetup> {
  const clock = createSandboxClock(T0);
  const broker = await startServiceBusBroker({
    entities,
    clock,
    ...(options.tier ? { tier: options.tier } : {}),
  });
  const client = new ServiceBusClient(broker.connectionString);
  const bus = new ServiceBusMessageBus({ connectionString: broker.connectionString });
  const stores = await freshStores(clock);
  const channel = new RecordingChannel('ops');
  const policy = parsePolicy(`version: 1
deadLetters:
${deadLetters}
notifications:
  defaults: [ops]
  channels:
    - { name: ops, type: webhook, urlSetting: OPS_URL }
`);
  const deps: DeadLetterDeps = {
    archive: stores.deadLetters,
    busFor: () => bus,
    metrics: {
      readMetrics: async () => {
        throw new Error('no metrics in this test');
      },
    },
    notifier: createNotifier([{ channel, minSeverity: 'info' }], silentLogger),
    idempotency: stores.idempotency,
    audit: stores.audit,
    clock,
    logger: silentLogger,
    policy,
    environment: 'test',
    idempotencyTtlMs: 86_400_000,
    claimLeaseMs: 60_000,
    dryRun: false,
  };
  return {
    clock,
    broker,
    client,
    bus,
    stores,
    channel,
    policy,
    deps,
    async close() {
      await bus.close();
      await client.close();
      await broker.stop();
    },
  };
}

/** Sends `count` messages to `entity` and dead-letters them with `reason` (as a consumer would). */
export async function deadLetterMessages(
  setup: DeadLetterSetup,
  entity: string,
  count: number,
  options: {
    reason?: string;
    subscription?: string;
    properties?: (i: number) => Record<string, string | number | boolean>;
    prefix?: string;
  } = {},
): Promise<void> {
  const sender = setup.client.createSender(entity);
  for (let i = 0; i < count; i += 500) {
    const batch = await sender.createMessageBatch();
    for (let j = i; j < Math.min(count, i + 500); j++) {
      batch.tryAddMessage({
        messageId: `${options.prefix ?? 'm'}-${j}`,
        body: Buffer.from(JSON.stringify({ n: j })),
        contentType: 'application/json',
        subject: 'OrderPlaced',
        applicationProperties: options.properties?.(j) ?? { n: j },
      });
    }
    await sender.sendMessages(batch);
  }
  await sender.close();
  let done = 0;
  while (done < count) {
    const receiver = options.subscription
      ? setup.client.createReceiver(entity, options.subscription)
      : setup.client.createReceiver(entity);
    let round = 0;
    while (done < count && round < 1000) {
      const messages = await receiver.receiveMessages(Math.min(500, count - done, 1000 - round), {
        maxWaitTimeInMs: 2000,
      });
      for (const message of messages) {
        await receiver.deadLetterMessage(message, {
          deadLetterReason: options.reason ?? 'ValidationFailed',
          deadLetterErrorDescription: 'refused by the test consumer',
        });
      }
      done += messages.length;
      round += messages.length;
      if (messages.length === 0) break;
    }
    await receiver.close();
    if (round === 0) break;
  }
}

/**
 * Plays the host's dead-letter trigger once: receives a batch from the dead-letter queue in
 * peek-lock, runs the arrival, then completes the batch (success), or "crashes" (closes the
 * receiver without settling: the locks are given back), or abandons it (the arrival failed).
 */
export async function triggerOnce(
  setup: DeadLetterSetup,
  entityName: string,
  options: { maxMessages?: number; crashAfterArrival?: boolean } = {},
): Promise<{ received: number; error?: unknown }> {
  const entity = setup.policy.deadLetters.find((e) => e.name === entityName)!;
  const receiver: ServiceBusReceiver =
    'queue' in entity.source
      ? setup.client.createReceiver(entity.source.queue, { subQueueType: 'deadLetter' })
      : setup.client.createReceiver(entity.source.topic, entity.source.subscription, {
          subQueueType: 'deadLetter',
        });
  try {
    const messages = await receiver.receiveMessages(options.maxMessages ?? 1000, { maxWaitTimeInMs: 1000 });
    if (messages.length === 0) return { received: 0 };
    let error: unknown;
    try {
      await handleArrivals(
        entity,
        messages.map((m) => ({
          sequenceNumber: m.sequenceNumber!.toString(),
          messageId: String(m.messageId),
        })),
        setup.deps,
        { actor: 'system:servicebus', correlationId: 'test' },
      );
    } catch (e) {
      error = e;
    }
    if (options.crashAfterArrival) return { received: messages.length, ...(error ? { error } : {}) };
    for (const message of messages) {
      if (error) await receiver.abandonMessage(message);
      else await receiver.completeMessage(message);
    }
    return { received: messages.length, ...(error ? { error } : {}) };
  } finally {
    await receiver.close();
  }
}

/** Runs the trigger until the dead-letter queue of `path` is empty (bounded). */
export async function drain(setup: DeadLetterSetup, entityName: string, path: string): Promise<number> {
  let total = 0;
  for (let i = 0; i < 100 && setup.broker.entities.get(path).counts().deadLetter > 0; i++) {
    const { received, error } = await triggerOnce(setup, entityName);
    if (error) throw error;
    total += received;
  }
  return total;
}
