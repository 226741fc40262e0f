import { describe, expect, it } from 'vitest';
import { parseHostConfig } from '../../../src/local/host/hostConfig';
import { queueConfigFromHost, serviceBusConfigFromHost } from '../../../src/local/host/triggers';

// How host.json settings reach the queue and Service Bus listeners.

describe('listener settings from host.json', () => {
  it('reads extensions.queues TimeSpans and encoding', () => {
    // Prepare
    const host = parseHostConfig({
      version: '2.0',
      extensions: {
        queues: {
          maxPollingInterval: '00:00:02',
          visibilityTimeout: '00:00:30',
          batchSize: 8,
          newBatchThreshold: 4,
          maxDequeueCount: 3,
          messageEncoding: 'None',
        },
      },
    });

    // Act
    const config = queueConfigFromHost(host);

    // Assess
    expect(config).toEqual({
      maxPollingIntervalMs: 2_000,
      visibilityTimeoutMs: 30_000,
      batchSize: 8,
      newBatchThreshold: 4,
      maxDequeueCount: 3,
      messageEncoding: 'none',
    });
  });

  it('reads extensions.serviceBus with the names of the Service Bus extension 5.x', () => {
    // Prepare
    const host = parseHostConfig({
      version: '2.0',
      extensions: {
        serviceBus: {
          maxConcurrentCalls: 4,
          autoCompleteMessages: false,
          maxAutoLockRenewalDuration: '00:01:00',
          maxMessageBatchSize: 50,
        },
      },
    });

    // Act
    const config = serviceBusConfigFromHost(host);

    // Assess
    expect(config).toMatchObject({
      maxConcurrentCalls: 4,
      autoCompleteMessages: false,
      maxAutoLockRenewalDurationMs: 60_000,
      maxMessageBatchSize: 50,
    });
  });

  it('ignores the 4.x messageHandlerOptions, as extension bundle 4.x does', () => {
    // Prepare
    const host = parseHostConfig({
      version: '2.0',
      extensions: {
        serviceBus: { messageHandlerOptions: { autoComplete: false, maxAutoRenewDuration: '00:02:00' } },
      },
    });

    // Act
    const config = serviceBusConfigFromHost(host);

    // Assess
    expect(config.autoCompleteMessages).toBeUndefined();
    expect(config.maxAutoLockRenewalDurationMs).toBeUndefined();
  });

  it('names the setting when a duration is not a TimeSpan', () => {
    // Prepare
    const host = parseHostConfig({ version: '2.0', extensions: { queues: { maxPollingInterval: 'soon' } } });

    // Act
    const read = () => queueConfigFromHost(host);

    // Assess
    expect(read).toThrow(/extensions\.queues\.maxPollingInterval must be a TimeSpan/);
  });
});
