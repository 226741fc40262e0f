/**
 * The listener factories of the local host for trigger types it does not serve itself:
 * `queueTrigger` (Storage queues) and `serviceBusTrigger`. `startLocalHost({ listenerFactories })`
 * looks them up by trigger type; each maps host.json (`extensions.queues`,
 * `extensions.serviceBus`) and the app settings onto its listener's options.
 */
import { type HostConfig, hostJsonDurationMs } from './hostConfig';
import type { ListenerContext, ListenerFactories } from './listeners';
import { type QueueHostConfig, startQueueListener } from './queueTrigger';
import { type ServiceBusHostConfig, startServiceBusListener } from './serviceBusTrigger';

export const listenerFactories: ListenerFactories = {
  queueTrigger: (fn, context) =>
    startQueueListener(fn, {
      invoker: context.invoker,
      resolveSetting: settingsOf(context),
      hostConfig: queueConfigFromHost(context.hostConfig),
      logger: context.logger,
      stopTimeoutMs: context.stopTimeoutMs,
    }),
  serviceBusTrigger: (fn, context) =>
    startServiceBusListener(fn, {
      invoker: context.invoker,
      resolveSetting: settingsOf(context),
      hostConfig: serviceBusConfigFromHost(context.hostConfig),
      logger: context.logger,
      stopTimeoutMs: context.stopTimeoutMs,
    }),
};

function settingsOf(context: ListenerContext): (name: string) => string | undefined {
  return (name) => context.env[name];
}

/** host.json `extensions.queues` (TimeSpan strings) as the queue listener's options. */
export function queueConfigFromHost(hostConfig: HostConfig): Partial<QueueHostConfig> {
  const q = hostConfig.queues ?? {};
  const encoding = q['messageEncoding'];
  return {
    maxPollingIntervalMs: hostJsonDurationMs(q.maxPollingInterval, 'extensions.queues.maxPollingInterval'),
    visibilityTimeoutMs: hostJsonDurationMs(q.visibilityTimeout, 'extensions.queues.visibilityTimeout'),
    batchSize: q.batchSize,
    newBatchThreshold: q.newBatchThreshold,
    maxDequeueCount: q.maxDequeueCount,
    messageEncoding:
      typeof encoding === 'string'
        ? (encoding.toLowerCase() as QueueHostConfig['messageEncoding'])
        : undefined,
  };
}

/**
 * host.json `extensions.serviceBus` as the Service Bus listener's options, with the names the
 * Service Bus extension 5.x (extension bundle 4.x) reads. The 4.x `messageHandlerOptions` is
 * ignored there, and so it is here (`ignoredHostJsonKeys` reports it at start-up).
 */
export function serviceBusConfigFromHost(hostConfig: HostConfig): Partial<ServiceBusHostConfig> {
  const sb = hostConfig.serviceBus ?? {};
  return {
    prefetchCount: sb.prefetchCount,
    maxConcurrentCalls: sb.maxConcurrentCalls,
    autoCompleteMessages: sb.autoCompleteMessages,
    maxAutoLockRenewalDurationMs: hostJsonDurationMs(
      sb.maxAutoLockRenewalDuration,
      'extensions.serviceBus.maxAutoLockRenewalDuration',
    ),
    maxMessageBatchSize: sb.maxMessageBatchSize,
  };
}
