import { QueueClient } from '@azure/storage-queue';
import { describe, expect, it } from 'vitest';
import { parseHostConfig } from '../../../src/local/host/hostConfig';
import { startLocalHost } from '../../../src/local/host/localHost';
import { listenerFactories } from '../../../src/local/host/triggers';
import { storageConnectionString, uniquePrefix } from '../../support/storage';
import { captureLogger, eventually } from './support';

// A handler that never ends must not hang the host's stop (nor Ctrl-C of `npm start`).

describe('stopping the local host', () => {
  it('resolves although a queue and a timer handler never end, and says what it abandoned', async () => {
    // Prepare
    const queueName = uniquePrefix('stopq');
    await new QueueClient(storageConnectionString(), queueName).createIfNotExists();
    const started = new Set<string>();
    const release: Array<() => void> = [];
    const never = (name: string) => async () => {
      started.add(name);
      await new Promise<void>((resolve) => release.push(resolve));
    };
    const logger = captureLogger();
    const host = await startLocalHost({
      port: 0,
      logger,
      listenerFactories,
      drainTimeoutMs: 200,
      env: { AzureWebJobsStorage: storageConnectionString(), STOP_QUEUE: queueName },
      hostConfig: parseHostConfig({
        version: '2.0',
        extensions: { queues: { maxPollingInterval: '00:00:00.200' } },
      }),
      appEntry: async () => {
        const { app } = await import('@azure/functions');
        app.storageQueue('hungQueue', {
          queueName: '%STOP_QUEUE%',
          connection: 'AzureWebJobsStorage',
          handler: never('hungQueue'),
        });
        app.timer('hungTimer', { schedule: '0 0 0 1 1 *', runOnStartup: true, handler: never('hungTimer') });
      },
    });
    await new QueueClient(storageConnectionString(), queueName).sendMessage(
      Buffer.from('"stuck"').toString('base64'),
    );
    await eventually(() => started.size === 2, 'both handlers running');

    // Act
    await host.stop();

    // Assess
    for (const resolve of release) resolve();
    const warnings = logger.lines.filter((l) => l.startsWith('warn'));
    expect(warnings.some((l) => l.startsWith('warn [hungQueue] stopped without waiting'))).toBe(true);
    expect(warnings.some((l) => l.startsWith('warn [hungTimer] stopped without waiting'))).toBe(true);
    expect(warnings.some((l) => l.includes('Stopped without waiting for 2 running invocation(s)'))).toBe(
      true,
    );
    await expect(fetch(`${host.url}/admin/host/status`)).rejects.toThrow();
  });
});
