/**
 * The adapters dead letters need (a MessageBus per namespace connection, the metrics reader),
 * built from the settings and the platform and loaded the first time they are used: importing the
 * app loads neither `@azure/service-bus` nor `@azure/monitor-query-metrics`.
 */
import type { Platform } from '../azure/platform';
import type { DeadLetterEntity, Policy } from '../config/policy';
import { type Settings, serviceBusConnectionOf } from '../config/settings';
import { ConfigurationError } from '../core/errors';
import type {
  ApplicationPropertyValue,
  BusSource,
  LockedBusMessage,
  MessageBus,
  OutgoingBusMessage,
  ReceivedBusMessage,
  SendOptions,
  SendReport,
  SettleBySequenceReport,
  SubscriptionRule,
} from '../ports/messageBus';
import type { MetricsQuery, MetricsReader, MetricsReadResult } from '../ports/monitoring';

/** A MessageBus whose adapter (and SDK) loads on its first call. */
export class LazyMessageBus implements MessageBus {
  private instance: Promise<MessageBus> | undefined;
  constructor(private readonly build: () => Promise<MessageBus>) {}
  private get(): Promise<MessageBus> {
    this.instance ??= this.build().catch((error: unknown) => {
      this.instance = undefined;
      throw error;
    });
    return this.instance;
  }
  async send(
    entity: string,
    messages: Iterable<OutgoingBusMessage> | AsyncIterable<OutgoingBusMessage>,
    options?: SendOptions,
  ): Promise<SendReport> {
    return (await this.get()).send(entity, messages, options);
  }
  async peek(
    source: BusSource,
    options: { maxCount: number; fromSequenceNumber?: string; abortSignal?: AbortSignal },
  ): Promise<ReceivedBusMessage[]> {
    return (await this.get()).peek(source, options);
  }
  async receive(
    source: BusSource,
    options: { maxCount: number; maxWaitMs: number; abortSignal?: AbortSignal },
  ): Promise<LockedBusMessage[]> {
    return (await this.get()).receive(source, options);
  }
  async receiveDeferred(source: BusSource, sequenceNumbers: string[]): Promise<LockedBusMessage[]> {
    return (await this.get()).receiveDeferred(source, sequenceNumbers);
  }
  async settleBySequenceNumber(
    source: BusSource,
    sequenceNumbers: string[],
    action: { complete: true } | { deadLetter: { reason: string; description: string } },
    options: { maxScan: number; maxWaitMs: number },
  ): Promise<SettleBySequenceReport> {
    return (await this.get()).settleBySequenceNumber(source, sequenceNumbers, action, options);
  }
  async complete(message: LockedBusMessage): Promise<void> {
    return (await this.get()).complete(message);
  }
  async abandon(
    message: LockedBusMessage,
    properties?: Record<string, ApplicationPropertyValue>,
  ): Promise<void> {
    return (await this.get()).abandon(message, properties);
  }
  async deadLetter(
    message: LockedBusMessage,
    details: { reason: string; description: string },
  ): Promise<void> {
    return (await this.get()).deadLetter(message, details);
  }
  async defer(message: LockedBusMessage): Promise<void> {
    return (await this.get()).defer(message);
  }
  async renewLock(message: LockedBusMessage): Promise<Date> {
    return (await this.get()).renewLock(message);
  }
  async listRules(topic: string, subscription: string): Promise<SubscriptionRule[]> {
    return (await this.get()).listRules(topic, subscription);
  }
  async createRule(topic: string, subscription: string, rule: SubscriptionRule): Promise<void> {
    return (await this.get()).createRule(topic, subscription, rule);
  }
  async deleteRule(topic: string, subscription: string, name: string): Promise<void> {
    return (await this.get()).deleteRule(topic, subscription, name);
  }
  async ensureReplayIsolation(
    topic: string,
    subscription: string,
  ): Promise<{ created: string[]; deleted: string[] }> {
    return (await this.get()).ensureReplayIsolation(topic, subscription);
  }
  async close(): Promise<void> {
    if (!this.instance) return;
    const bus = await this.instance.catch(() => undefined);
    this.instance = undefined;
    await bus?.close();
  }
}

export interface DeadLetterAdapters {
  /** The bus of an entity's namespace (one per connection setting, kept for the process). */
  busFor(entity: DeadLetterEntity): MessageBus;
  /** Reads the namespaces' metrics in the regions the policy names. */
  metrics: MetricsReader;
}

/**
 * One MessageBus per connection the policy uses: `<connection>__fullyQualifiedNamespace` with the
 * platform's credential (the app identity in Azure), or the `<connection>` connection string (the
 * sandbox broker). The metrics reader knows the regions of the policy's entities only.
 */
export function deadLetterAdapters(
  settings: Settings,
  policy: Policy,
  platform: Platform,
): DeadLetterAdapters {
  const buses = new Map<string, MessageBus>();
  const regions = [...new Set(policy.deadLetters.flatMap((e) => (e.region ? [e.region] : [])))];
  let reader: Promise<MetricsReader> | undefined;
  const metrics: MetricsReader = {
    async readMetrics(query: MetricsQuery): Promise<MetricsReadResult> {
      reader ??= import('../azure/metricsReader.js')
        .then(
          ({ AzureMonitorMetricsReader, metricsEndpointFor }) =>
            new AzureMonitorMetricsReader(platform.credential, {
              endpoints: Object.fromEntries(regions.map((r) => [r, metricsEndpointFor(r)])),
              ...(platform.httpClient ? { httpClient: platform.httpClient } : {}),
            }),
        )
        .catch((error: unknown) => {
          reader = undefined;
          throw error;
        });
      return (await reader).readMetrics(query);
    },
  };
  return {
    metrics,
    busFor(entity) {
      let bus = buses.get(entity.connection);
      if (!bus) {
        bus = new LazyMessageBus(async () => {
          const connection = serviceBusConnectionOf(settings, entity.connection);
          if (!connection)
            throw new ConfigurationError(
              `the Service Bus connection ${entity.connection} of ${entity.name} is not set (${entity.connection}__fullyQualifiedNamespace or ${entity.connection})`,
            );
          const { ServiceBusMessageBus } = await import('../azure/serviceBusMessageBus.js');
          return new ServiceBusMessageBus(
            'connectionString' in connection
              ? connection
              : {
                  fullyQualifiedNamespace: connection.fullyQualifiedNamespace,
                  credential: platform.credential,
                },
          );
        });
        buses.set(entity.connection, bus);
      }
      return bus;
    },
  };
}
