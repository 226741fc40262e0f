import { QueueClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHostConfig } from '../../../src/local/host/hostConfig';
import { formatTimeSpan } from '../../../src/local/host/invoker';
import { type RunningLocalHost, startLocalHost } from '../../../src/local/host/localHost';
import { listenerFactories } from '../../../src/local/host/triggers';
import { storageConnectionString, uniquePrefix } from '../../support/storage';
import { captureLogger, eventually } from './support';

// host.json functionTimeout on the real local host: the invocation fails as the runtime's does
// (FunctionTimeoutException, the host's log lines, the worker "restarted"), its late result and
// output are discarded, and the trigger settles it as a failure (HTTP 500, queue retry and poison).

const TIMEOUT_MS = 300;
const queueName = uniquePrefix('tmo');
const logger = captureLogger();
/** What the handlers did, in order (the hanging ones record when they finally end). */
const events: string[] = [];
const dequeueCounts: number[] = [];
/** Ends the hanging HTTP handler. */
let releaseHttp: () => void = () => {};
let host: RunningLocalHost;

beforeAll(async () => {
  await new QueueClient(storageConnectionString(), queueName).createIfNotExists();
  host = await startLocalHost({
    port: 0,
    startTimers: false,
    logger,
    listenerFactories,
    env: { AzureWebJobsStorage: storageConnectionString(), HANG_QUEUE: queueName },
    hostConfig: {
      ...parseHostConfig({
        version: '2.0',
        extensions: {
          queues: {
            maxPollingInterval: '00:00:00.200',
            visibilityTimeout: '00:00:00',
            maxDequeueCount: 2,
            messageEncoding: 'base64',
          },
        },
      }),
      functionTimeoutMs: TIMEOUT_MS,
    },
    appEntry: async () => {
      const { app } = await import('@azure/functions');
      app.hook.postInvocation((context) => {
        events.push(`postInvocation ${context.invocationContext.functionName}`);
      });
      app.http('hang', {
        methods: ['GET'],
        authLevel: 'anonymous',
        handler: async (_request, context) => {
          await new Promise<void>((resolve) => {
            releaseHttp = resolve;
          });
          context.log('handler still talking after its timeout');
          events.push('hang returned');
          return { body: 'too late' };
        },
      });
      app.http('quick', {
        methods: ['GET'],
        authLevel: 'anonymous',
        handler: async () => ({ body: 'in time' }),
      });
      app.storageQueue('hangOnQueue', {
        queueName: '%HANG_QUEUE%',
        connection: 'AzureWebJobsStorage',
        handler: async (_message, context) => {
          dequeueCounts.push(Number(context.triggerMetadata?.dequeueCount));
          await new Promise(() => {}); // never ends
        },
      });
    },
  });
});

afterAll(async () => {
  releaseHttp();
  await host?.stop();
});

describe('functionTimeout on the local host', () => {
  it('fails an HTTP invocation past the limit with the runtime error, and discards its late result', async () => {
    // Prepare
    events.length = 0;
    const before = logger.lines.length;

    // Act
    const timedOut = await fetch(`${host.url}/api/hang`);
    const body = await timedOut.text();
    const quick = await fetch(`${host.url}/api/quick`);
    releaseHttp();
    await eventually(() => events.includes('hang returned'), 'the hanging handler ended');
    await eventually(
      () => logger.lines.slice(before).some((l) => l.includes('handler still talking')),
      'the late log line',
    );

    // Assess
    expect(timedOut.status).toBe(500);
    expect(body).not.toContain('too late');
    expect(quick.status).toBe(200);
    const lines = logger.lines.slice(before);
    const limit = formatTimeSpan(TIMEOUT_MS);
    expect(limit).toBe('00:00:00.3000000');
    const initiating = lines.find((l) =>
      l.startsWith(`error [hang] Timeout value of ${limit} exceeded by function 'Functions.hang' (Id: '`),
    );
    expect(initiating, lines.join('\n')).toMatch(/\(Id: '[0-9a-f-]{36}'\)\. Initiating cancellation\.$/);
    const id = /\(Id: '([0-9a-f-]{36})'\)/.exec(initiating!)![1];
    expect(lines).toContain(
      `error [hang] invocation ${id} failed: FunctionTimeoutException: Timeout value of ${limit} was exceeded by function: Functions.hang.`,
    );
    expect(
      lines.some((l) =>
        l.startsWith(
          `warn [hang] A function timeout has occurred. Restarting worker process executing invocationId '${id}'.`,
        ),
      ),
    ).toBe(true);
    // The restarted worker runs no post-invocation hook for it; the quick one ran its own.
    expect(events).toEqual(['postInvocation quick', 'hang returned']);
    expect(lines).toContain(
      'info [hang] (after its timeout: lost in Azure) handler still talking after its timeout',
    );
  });

  it('puts a timed-out queue message back on the queue, then on the poison queue after maxDequeueCount', async () => {
    // Prepare
    const poison = new QueueClient(storageConnectionString(), `${queueName}-poison`);

    // Act
    await new QueueClient(storageConnectionString(), queueName).sendMessage(
      Buffer.from('{"job":"slow"}').toString('base64'),
    );
    await eventually(
      async () =>
        (await poison.exists()) && ((await poison.getProperties()).approximateMessagesCount ?? 0) > 0,
      'the message reached the poison queue',
    );

    // Assess
    expect(dequeueCounts).toEqual([1, 2]);
    const timeouts = logger.lines.filter(
      (l) => l.startsWith('error [hangOnQueue] invocation ') && l.includes('FunctionTimeoutException'),
    );
    expect(timeouts).toHaveLength(2);
    expect(
      logger.lines.some(
        (l) =>
          l.startsWith('warn [hangOnQueue]') &&
          l.includes(
            `Message has reached MaxDequeueCount of 2. Moving message to queue '${queueName}-poison'.`,
          ),
      ),
    ).toBe(true);
    const [poisoned] = (await poison.receiveMessages()).receivedMessageItems;
    expect(Buffer.from(poisoned!.messageText, 'base64').toString('utf8')).toBe('{"job":"slow"}');
  });
});

describe('formatTimeSpan', () => {
  it('prints durations as .NET TimeSpans, as the host does', () => {
    expect(formatTimeSpan(10 * 60_000)).toBe('00:10:00');
    expect(formatTimeSpan(26 * 3_600_000 + 1)).toBe('1.02:00:00.0010000');
    expect(formatTimeSpan(50)).toBe('00:00:00.0500000');
  });
});
