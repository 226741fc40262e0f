import { ServiceBusClient } from '@azure/service-bus';
import { QueueClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHostConfig } from '../../../src/local/host/hostConfig';
import { type RunningLocalHost, startLocalHost } from '../../../src/local/host/localHost';
import { listenerFactories } from '../../../src/local/host/triggers';
import { type ServiceBusBroker, startServiceBusBroker } from '../../../src/local/sandbox/servicebus/broker';
import { storageConnectionString, uniquePrefix } from '../../support/storage';
import { captureLogger, eventually } from './support';

// The listener factories as the local host uses them: host.json settings, app settings by name,
// the app's own `app.*` registrations.

const queueName = uniquePrefix('lhq');
const received: Array<{ fn: string; value: unknown }> = [];
let broker: ServiceBusBroker;
let host: RunningLocalHost;
const logger = captureLogger();

beforeAll(async () => {
  broker = await startServiceBusBroker({ entities: [{ name: 'work', maxDeliveryCount: 2 }] });
  await new QueueClient(storageConnectionString(), queueName).createIfNotExists();
  host = await startLocalHost({
    port: 0,
    startTimers: false,
    logger,
    listenerFactories,
    env: {
      AzureWebJobsStorage: storageConnectionString(),
      SandboxServiceBus: broker.connectionString,
      WORK_QUEUE: queueName,
    },
    hostConfig: parseHostConfig({
      version: '2.0',
      extensions: {
        queues: { maxPollingInterval: '00:00:00.200', maxDequeueCount: 2, messageEncoding: 'base64' },
        serviceBus: { autoCompleteMessages: true, maxConcurrentCalls: 2 },
      },
    }),
    appEntry: async () => {
      const { app } = await import('@azure/functions');
      app.storageQueue('fromQueue', {
        queueName: '%WORK_QUEUE%',
        connection: 'AzureWebJobsStorage',
        handler: (value) => {
          received.push({ fn: 'fromQueue', value });
        },
      });
      app.serviceBusQueue('fromServiceBus', {
        queueName: 'work',
        connection: 'SandboxServiceBus',
        handler: (value) => {
          received.push({ fn: 'fromServiceBus', value });
        },
      });
    },
  });
});

afterAll(async () => {
  await host?.stop();
  await broker?.stop();
});

describe('listener factories in the local host', () => {
  it('serves queue and Service Bus triggers from host.json and app settings', async () => {
    // Prepare
    const serviceBus = new ServiceBusClient(broker.connectionString);
    const sender = serviceBus.createSender('work');

    // Act
    await new QueueClient(storageConnectionString(), queueName).sendMessage(
      Buffer.from('{"job":"rotate"}').toString('base64'),
    );
    await sender.sendMessages({ body: { job: 'replay' } });
    await eventually(() => received.length === 2, 'both triggers invoked');

    // Assess
    expect(host.notServed).toEqual([]);
    expect(received).toContainEqual({ fn: 'fromQueue', value: { job: 'rotate' } });
    expect(received).toContainEqual({ fn: 'fromServiceBus', value: { job: 'replay' } });
    await eventually(() => broker.entities.get('work').active().length === 0, 'completed');
    await sender.close();
    await serviceBus.close();
  });
});
