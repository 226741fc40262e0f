import type { InvocationContext } from '@azure/functions';
import { QueueClient } from '@azure/storage-queue';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeBase64Strict, startQueueListener } from '../../../src/local/host/queueTrigger';
import type { TriggerListener } from '../../../src/local/host/types';
import { storageConnectionString, uniquePrefix } from '../../support/storage';
import { createTestHost, eventually, type TestHost } from './support';

// The queue listener against Azurite, invoking through the local host's real LocalInvoker.

interface Call {
  message: unknown;
  metadata: Record<string, unknown>;
}

let host: TestHost;
const calls = new Map<string, Call[]>();
const listeners: TriggerListener[] = [];
const names = {
  ok: uniquePrefix('qok'),
  failing: uniquePrefix('qfail'),
  plain: uniquePrefix('qplain'),
  undecodable: uniquePrefix('qbad'),
  binary: uniquePrefix('qbin'),
  renewing: uniquePrefix('qrenew'),
  hung: uniquePrefix('qhung'),
  pastMax: uniquePrefix('qpast'),
};
/** Lets the handler of `queueHung` end (it waits for this when the test starts it). */
let releaseHung: () => void = () => {};

function record(fnName: string) {
  return (message: unknown, context: InvocationContext) => {
    const list = calls.get(fnName) ?? [];
    list.push({ message, metadata: { ...(context.triggerMetadata ?? {}) } });
    calls.set(fnName, list);
  };
}

const settings: Record<string, string | undefined> = {};
const resolveSetting = (name: string) => settings[name];
const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const queue = (name: string) => new QueueClient(storageConnectionString(), name);

async function queueLength(name: string): Promise<number> {
  const client = queue(name);
  if (!(await client.exists())) return 0;
  const props = await client.getProperties();
  return props.approximateMessagesCount ?? 0;
}

beforeAll(async () => {
  settings['AzureWebJobsStorage'] = storageConnectionString();
  settings['OtherStorage'] = storageConnectionString();
  settings['PLAIN_QUEUE'] = names.plain;
  host = await createTestHost();
  host.app.storageQueue('queueOk', { queueName: names.ok, connection: '', handler: record('queueOk') });
  host.app.storageQueue('queueFailing', {
    queueName: names.failing,
    connection: 'AzureWebJobsStorage',
    handler: (message, context) => {
      record('queueFailing')(message, context);
      throw new Error('handler refuses this message');
    },
  });
  host.app.storageQueue('queuePlain', {
    queueName: '%PLAIN_QUEUE%',
    connection: 'OtherStorage',
    handler: record('queuePlain'),
  });
  host.app.storageQueue('queueUndecodable', {
    queueName: names.undecodable,
    connection: 'AzureWebJobsStorage',
    handler: record('queueUndecodable'),
  });
  host.app.generic('queueBinary', {
    trigger: {
      type: 'queueTrigger',
      name: 'item',
      queueName: names.binary,
      connection: 'AzureWebJobsStorage',
      dataType: 'binary',
    },
    handler: record('queueBinary'),
  });
  host.app.storageQueue('queueRenewing', {
    queueName: names.renewing,
    connection: 'AzureWebJobsStorage',
    handler: (message, context) => {
      record('queueRenewing')(message, context);
      // Half the lease has passed: the listener's renewal starts now and is still in flight when
      // the handler returns.
      vi.advanceTimersByTime(300_000);
    },
  });
  host.app.storageQueue('queueHung', {
    queueName: names.hung,
    connection: 'AzureWebJobsStorage',
    handler: async (message, context) => {
      record('queueHung')(message, context);
      await new Promise<void>((resolve) => {
        releaseHung = resolve;
      });
    },
  });
  host.app.storageQueue('queuePastMax', {
    queueName: names.pastMax,
    connection: 'AzureWebJobsStorage',
    handler: record('queuePastMax'),
  });
  for (const name of Object.values(names)) await queue(name).createIfNotExists();
});

afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.stop()));
});

describe('queue trigger listener', () => {
  it('invokes with the decoded message and the host trigger metadata, then deletes the message', async () => {
    // Prepare
    const sent = await queue(names.ok).sendMessage(base64(JSON.stringify({ orderId: 42 })));
    listeners.push(
      await startQueueListener(host.fn('queueOk'), {
        invoker: host.invoker,
        resolveSetting,
        hostConfig: { maxPollingIntervalMs: 200 },
        logger: host.logger,
      }),
    );

    // Act
    await eventually(
      async () => (calls.get('queueOk')?.length ?? 0) > 0 && (await queueLength(names.ok)) === 0,
      'message handled',
    );

    // Assess
    const [call] = calls.get('queueOk')!;
    expect(call?.message).toEqual({ orderId: 42 });
    expect(call?.metadata['id']).toBe(sent.messageId);
    expect(call?.metadata['dequeueCount']).toBe(1);
    expect(call?.metadata['queueTrigger']).toEqual({ orderId: 42 });
    expect(typeof call?.metadata['popReceipt']).toBe('string');
    expect(call?.metadata['insertionTime']).toMatch(/^\d{4}-\d\d-\d\dT.*\+00:00$/);
    expect(call?.metadata['expirationTime']).toMatch(/\+00:00$/);
    expect(call?.metadata['nextVisibleTime']).toMatch(/\+00:00$/);
    expect(await queueLength(names.ok)).toBe(0);
  });

  it('retries a failing message with a growing dequeue count, then moves exactly one copy to <queue>-poison', async () => {
    // Prepare
    const text = base64('{"step":"charge"}');
    await queue(names.failing).sendMessage(text);
    listeners.push(
      await startQueueListener(host.fn('queueFailing'), {
        invoker: host.invoker,
        resolveSetting,
        hostConfig: { maxPollingIntervalMs: 200, maxDequeueCount: 3, visibilityTimeoutMs: 0 },
        logger: host.logger,
      }),
    );

    // Act
    await eventually(async () => (await queueLength(`${names.failing}-poison`)) > 0, 'poison copy');
    await listeners.pop()!.stop();

    // Assess
    expect(calls.get('queueFailing')?.map((c) => c.metadata['dequeueCount'])).toEqual([1, 2, 3]);
    const poison = await queue(`${names.failing}-poison`).peekMessages({ numberOfMessages: 32 });
    expect(poison.peekedMessageItems.map((m) => m.messageText)).toEqual([text]);
    expect(await queueLength(names.failing)).toBe(0);
    expect(
      host.logger.lines.some(
        (l) => l.includes('Message has reached MaxDequeueCount of 3') && l.includes('-poison'),
      ),
    ).toBe(true);
  });

  it('passes plain text through with messageEncoding "none" and resolves %setting% queue names', async () => {
    // Prepare
    await queue(names.plain).sendMessage('plain text, not base64');
    listeners.push(
      await startQueueListener(host.fn('queuePlain'), {
        invoker: host.invoker,
        resolveSetting,
        hostConfig: { maxPollingIntervalMs: 200, messageEncoding: 'none' },
        logger: host.logger,
      }),
    );

    // Act
    await eventually(() => (calls.get('queuePlain')?.length ?? 0) > 0, 'plain message handled');

    // Assess
    expect(calls.get('queuePlain')?.[0]?.message).toBe('plain text, not base64');
  });

  it('moves a message that is not base64 to the poison queue without invoking (messageEncoding "base64")', async () => {
    // Prepare
    await queue(names.undecodable).sendMessage('HelloWorld');
    listeners.push(
      await startQueueListener(host.fn('queueUndecodable'), {
        invoker: host.invoker,
        resolveSetting,
        hostConfig: { maxPollingIntervalMs: 200 },
        logger: host.logger,
      }),
    );

    // Act
    await eventually(async () => (await queueLength(`${names.undecodable}-poison`)) > 0, 'poison copy');

    // Assess
    expect(calls.get('queueUndecodable')).toBeUndefined();
    expect(await queueLength(names.undecodable)).toBe(0);
    const poison = await queue(`${names.undecodable}-poison`).peekMessages();
    expect(poison.peekedMessageItems[0]?.messageText).toBe('HelloWorld');
  });

  it('moves a message already dequeued more than maxDequeueCount times to the poison queue before any invocation', async () => {
    // Prepare: a message whose earlier attempts never settled (a host that crashed mid-invocation
    // twice), so that its next dequeue count is 3, past maxDequeueCount 2.
    const text = base64('{"step":"left over"}');
    await queue(names.pastMax).sendMessage(text);
    for (let attempt = 0; attempt < 2; attempt++) {
      const [received] = (await queue(names.pastMax).receiveMessages()).receivedMessageItems;
      await queue(names.pastMax).updateMessage(received!.messageId, received!.popReceipt, undefined, 0);
    }
    listeners.push(
      await startQueueListener(host.fn('queuePastMax'), {
        invoker: host.invoker,
        resolveSetting,
        hostConfig: { maxPollingIntervalMs: 200, maxDequeueCount: 2 },
        logger: host.logger,
      }),
    );

    // Act
    await eventually(async () => (await queueLength(`${names.pastMax}-poison`)) > 0, 'poison copy');
    await listeners.pop()!.stop();

    // Assess
    expect(calls.get('queuePastMax')).toBeUndefined();
    expect(await queueLength(names.pastMax)).toBe(0);
    const poison = await queue(`${names.pastMax}-poison`).peekMessages({ numberOfMessages: 32 });
    expect(poison.peekedMessageItems.map((m) => m.messageText)).toEqual([text]);
    expect(
      host.logger.lines.some((l) =>
        l.includes(
          `Message has reached MaxDequeueCount of 2. Moving message to queue '${names.pastMax}-poison'.`,
        ),
      ),
    ).toBe(true);
  });

  it('hands a dataType "binary" binding the decoded bytes', async () => {
    // Prepare
    await queue(names.binary).sendMessage(Buffer.from([0xff, 0x00, 0x7b]).toString('base64'));
    listeners.push(
      await startQueueListener(host.fn('queueBinary'), {
        invoker: host.invoker,
        resolveSetting,
        hostConfig: { maxPollingIntervalMs: 200 },
        logger: host.logger,
      }),
    );

    // Act
    await eventually(() => (calls.get('queueBinary')?.length ?? 0) > 0, 'binary message handled');

    // Assess
    expect(calls.get('queueBinary')?.[0]?.message).toEqual(Buffer.from([0xff, 0x00, 0x7b]));
  });

  it('settles a message with the pop receipt of a lease renewal still running when the handler ends', async () => {
    // Prepare
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      await queue(names.renewing).sendMessage(base64('{"long":"job"}'));
      listeners.push(
        await startQueueListener(host.fn('queueRenewing'), {
          invoker: host.invoker,
          resolveSetting,
          hostConfig: { maxPollingIntervalMs: 200 },
          logger: host.logger,
        }),
      );

      // Act
      await eventually(
        async () =>
          (calls.get('queueRenewing')?.length ?? 0) > 0 && (await queueLength(names.renewing)) === 0,
        'message handled and deleted',
      );
      await listeners.pop()!.stop();
    } finally {
      vi.useRealTimers();
    }

    // Assess
    expect(calls.get('queueRenewing')).toHaveLength(1);
    expect(host.logger.lines.filter((l) => l.includes('queueRenewing') && !l.startsWith('info'))).toEqual([]);
  });

  it('stops without waiting for ever for a handler that never ends, and names the abandoned message', async () => {
    // Prepare
    const sent = await queue(names.hung).sendMessage(base64('{"never":"ends"}'));
    const listener = await startQueueListener(host.fn('queueHung'), {
      invoker: host.invoker,
      resolveSetting,
      hostConfig: { maxPollingIntervalMs: 200 },
      logger: host.logger,
      stopTimeoutMs: 100,
    });
    await eventually(() => (calls.get('queueHung')?.length ?? 0) > 0, 'hung handler started');

    // Act
    await listener.stop();

    // Assess
    releaseHung();
    expect(
      host.logger.lines.some(
        (l) =>
          l.startsWith('warn [queueHung] stopped without waiting for 1 running invocation') &&
          l.includes(sent.messageId),
      ),
    ).toBe(true);
  });

  it('refuses a missing connection setting or a bad queue name, naming what is wrong', async () => {
    // Prepare
    const fn = host.fn('queueOk');
    const bad = { ...fn, trigger: { ...fn.trigger, queueName: 'Bad_Name' } };
    const unset = { ...fn, trigger: { ...fn.trigger, connection: 'MissingStorage' } };
    const options = { invoker: host.invoker, resolveSetting, logger: host.logger };

    // Act
    const badName = startQueueListener(bad, options);
    const missing = startQueueListener(unset, options);

    // Assess
    await expect(badName).rejects.toThrow(/queueName 'Bad_Name' is not a valid Storage queue name/);
    await expect(missing).rejects.toThrow(/connection setting 'MissingStorage' is not set/);
  });

  it('does not serve an identity-based connection, and says so', async () => {
    // Prepare
    settings['IdentityStorage__queueServiceUri'] = 'https://example.queue.core.windows.net';
    const fn = host.fn('queueOk');
    const identity = { ...fn, trigger: { ...fn.trigger, connection: 'IdentityStorage' } };

    // Act
    const listener = await startQueueListener(identity, {
      invoker: host.invoker,
      resolveSetting,
      logger: host.logger,
    });
    await listener.stop();

    // Assess
    expect(
      host.logger.lines.some(
        (l) => l.startsWith('warn') && l.includes('"queueOk"') && l.includes('identity-based'),
      ),
    ).toBe(true);
  });
});

describe('decodeBase64Strict', () => {
  it('decodes valid base64 and refuses text .NET would refuse', () => {
    // Assess
    expect(decodeBase64Strict('aGVsbG8=')).toBe('hello');
    expect(decodeBase64Strict('aGVs\nbG8=')).toBe('hello');
    expect(decodeBase64Strict('HelloWorld')).toBeUndefined();
    expect(decodeBase64Strict('aGVsbG8=x')).toBeUndefined();
    expect(decodeBase64Strict('a=GV')).toBeUndefined();
  });
});
