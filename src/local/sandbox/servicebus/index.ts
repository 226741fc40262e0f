/**
 * The sandbox's Service Bus: the AMQP broker, started from a scenario's `serviceBus` section with
 * its simulated consumers, on the sandbox clock. See docs/servicebus-broker.md.
 */
import { ServiceBusClient } from '@azure/service-bus';
import { ValidationError } from '../../../lib/core/errors';
import { type ServiceBusBroker, startServiceBusBroker } from './broker';
import { SimulatedConsumer } from './consumer';
import { createServiceBusInspector, type ServiceBusInspector } from './inspect';
import { type ResolvedServiceBusScenario, resolveServiceBusSection } from './scenario';
import type { BrokerClock } from './time';

export {
  type BrokerClock,
  type EntityCounts,
  type EntityDescription,
  type EntityInspection,
  type RuleView,
  type ScheduledView,
  type ServiceBusBroker,
  type StartServiceBusBrokerOptions,
  startServiceBusBroker,
} from './broker';
export { type ConsumerOutcome, type ConsumerStats, SimulatedConsumer } from './consumer';
export { createServiceBusInspector, type ServiceBusInspector, type ServiceBusSummary } from './inspect';
export type { BrokerEntityConfig, BrokerSubscriptionConfig, BrokerTier } from './namespace';
export type { CorrelationFilterFields, RuleConfig } from './rules';
export {
  type ConsumerConfig,
  type ConsumerFailRule,
  type ResolvedServiceBusScenario,
  resolveServiceBusSection,
  type ScenarioMessage,
} from './scenario';
export type { MessageView } from './store';

export interface StartSandboxServiceBusOptions {
  /** The scenario's `serviceBus` section, resolved (`sandbox.scenario.serviceBus`) or as written. */
  scenario: ResolvedServiceBusScenario | unknown;
  /** The sandbox clock (message times, expiry, duplicate window, scheduled messages). Default: wall time. */
  clock?: BrokerClock;
  /** Loopback port; 0 or absent picks a free one. */
  port?: number;
}

export interface SandboxServiceBus {
  readonly broker: ServiceBusBroker;
  /** For `@azure/service-bus` (and the app's Service Bus connection setting) on the sandbox. */
  readonly connectionString: string;
  readonly consumers: readonly SimulatedConsumer[];
  readonly inspector: ServiceBusInspector;
  /** Stops the consumers, then the broker. */
  stop(): Promise<void>;
}

/**
 * Starts the broker of a scenario's `serviceBus` section and attaches its simulated consumers.
 * Throws a `ValidationError` naming every problem of a section written by hand.
 */
export async function startSandboxServiceBus(
  options: StartSandboxServiceBusOptions,
): Promise<SandboxServiceBus> {
  // Resolved again even when it comes resolved: resolving is idempotent, and a hand-written
  // section is never trusted.
  const scenario = resolveOrThrow(options.scenario);
  const broker = await startServiceBusBroker({
    entities: scenario.entities,
    tier: scenario.tier,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.port === undefined ? {} : { port: options.port }),
  });
  const now = options.clock ? () => options.clock!.now().getTime() : () => Date.now();
  const consumers = scenario.consumers.map((config) => {
    const consumer = new SimulatedConsumer(
      config,
      now,
      broker.entities.get(config.entity).describe().requiresSession,
    );
    const queue = broker.attachConsumer(config.entity, consumer);
    consumer.bind(queue);
    queue.pump();
    return consumer;
  });
  await sendScenarioMessages(broker.connectionString, scenario.messages ?? []);
  return {
    broker,
    connectionString: broker.connectionString,
    consumers,
    inspector: createServiceBusInspector(broker, () => consumers.map((c) => c.stats())),
    async stop() {
      for (const consumer of consumers) consumer.stop();
      await broker.stop();
    },
  };
}

/** The scenario's messages, sent in order through the real client (as the workload would send them). */
async function sendScenarioMessages(
  connectionString: string,
  messages: NonNullable<ResolvedServiceBusScenario['messages']>,
): Promise<void> {
  if (messages.length === 0) return;
  const client = new ServiceBusClient(connectionString);
  try {
    for (const m of messages) {
      const sender = client.createSender(m.entity);
      await sender.sendMessages({
        messageId: m.messageId,
        body: typeof m.body === 'string' ? Buffer.from(m.body) : Buffer.from(JSON.stringify(m.body)),
        contentType: m.contentType ?? (typeof m.body === 'string' ? 'text/plain' : 'application/json'),
        ...(m.subject ? { subject: m.subject } : {}),
        ...(m.correlationId ? { correlationId: m.correlationId } : {}),
        ...(m.sessionId ? { sessionId: m.sessionId } : {}),
        ...(m.properties ? { applicationProperties: { ...m.properties } } : {}),
      });
      await sender.close();
    }
  } finally {
    await client.close();
  }
}

function resolveOrThrow(section: unknown): ResolvedServiceBusScenario {
  const problems: string[] = [];
  const resolved = resolveServiceBusSection(section, problems);
  if (problems.length > 0 || !resolved) {
    throw new ValidationError(
      `scenario: invalid serviceBus section\n  - ${(problems.length > 0 ? problems : ['serviceBus: the section is missing']).join('\n  - ')}`,
      problems,
    );
  }
  return resolved;
}
