import type { QueueClient } from '@azure/storage-queue';
import { ValidationError } from '../core/errors';
import type { CallOptions, ReceivedWork, WorkMessage, WorkQueue } from '../ports/runs';
import { parseWorkMessage } from '../runs/messages';
import { storageCall } from './tables';

/** Storage queues hide a message for at most 7 days. Longer waits are reached in hops by the engine. */
export const MAX_VISIBILITY_DELAY_MS = 7 * 24 * 3_600_000;
const MAX_RECEIVE = 32;

export type MessageEncoding = 'base64' | 'none';

/**
 * The work queue on Azure Storage. Messages are JSON, base64-encoded by default because that is
 * what the Functions queue trigger expects (`messageEncoding` in host.json); `receive` accepts
 * either. Messages never expire (TTL -1), so a long wait is never lost. Needs
 * `Storage Queue Data Message Sender` (send) and `... Processor` (receive / delete). Storage
 * failures surface as `TransientError` (retry) or `DependencyError`.
 */
export class StorageWorkQueue implements WorkQueue {
  constructor(
    private readonly queue: QueueClient,
    private readonly encoding: MessageEncoding = 'base64',
  ) {}

  get name(): string {
    return this.queue.name;
  }

  async send(
    message: WorkMessage,
    options: CallOptions & { visibilityDelayMs?: number } = {},
  ): Promise<void> {
    const body = JSON.stringify(parseWorkMessage(message));
    const delayMs = options.visibilityDelayMs ?? 0;
    if (!Number.isFinite(delayMs) || delayMs < 0) {
      throw new ValidationError('Invalid work message delay', ['visibilityDelayMs must be >= 0']);
    }
    // Visibility is in whole seconds; round up so a message never shows before it is due.
    const visibilityTimeout = Math.ceil(Math.min(delayMs, MAX_VISIBILITY_DELAY_MS) / 1000);
    await storageCall('work queue send', () =>
      this.queue.sendMessage(
        this.encoding === 'base64' ? Buffer.from(body, 'utf8').toString('base64') : body,
        {
          visibilityTimeout,
          messageTimeToLive: -1,
          abortSignal: options.abortSignal,
        },
      ),
    );
  }

  async receive(
    options: CallOptions & { maxMessages?: number; visibilityTimeoutMs?: number } = {},
  ): Promise<ReceivedWork[]> {
    const response = await storageCall('work queue receive', () =>
      this.queue.receiveMessages({
        numberOfMessages: Math.min(MAX_RECEIVE, Math.max(1, options.maxMessages ?? 1)),
        visibilityTimeout: Math.max(1, Math.ceil((options.visibilityTimeoutMs ?? 30_000) / 1000)),
        abortSignal: options.abortSignal,
      }),
    );
    return response.receivedMessageItems.map((item) => ({
      message: decode(item.messageText),
      messageId: item.messageId,
      popReceipt: item.popReceipt,
      dequeueCount: item.dequeueCount,
    }));
  }

  async delete(
    received: Pick<ReceivedWork, 'messageId' | 'popReceipt'>,
    options: CallOptions = {},
  ): Promise<void> {
    await storageCall('work queue delete', () =>
      this.queue.deleteMessage(received.messageId, received.popReceipt, { abortSignal: options.abortSignal }),
    );
  }

  /**
   * Makes a received message visible again after `visibilityDelayMs`, as the Functions host does
   * with a message whose invocation failed (its dequeue count grows on the next receive). For
   * pollers (tests, the chaos harness).
   */
  async release(
    received: Pick<ReceivedWork, 'messageId' | 'popReceipt'>,
    options: CallOptions & { visibilityDelayMs?: number } = {},
  ): Promise<void> {
    const seconds = Math.ceil(Math.min(options.visibilityDelayMs ?? 0, MAX_VISIBILITY_DELAY_MS) / 1000);
    await storageCall('work queue release', () =>
      this.queue.updateMessage(received.messageId, received.popReceipt, undefined, seconds, {
        abortSignal: options.abortSignal,
      }),
    );
  }

  /** Messages in the queue, visible or not (approximate, as Storage reports it). */
  async approximateCount(options: CallOptions = {}): Promise<number> {
    const properties = await storageCall('work queue properties', () =>
      this.queue.getProperties({ abortSignal: options.abortSignal }),
    );
    return properties.approximateMessagesCount ?? 0;
  }
}

/** Decodes a message body: JSON, or base64 of JSON. `undefined` when it is neither a work message. */
export function decode(text: string): WorkMessage | undefined {
  const candidates = [text];
  if (!text.trimStart().startsWith('{')) candidates.push(Buffer.from(text, 'base64').toString('utf8'));
  for (const candidate of candidates) {
    try {
      return parseWorkMessage(candidate);
    } catch {
      // try the next reading
    }
  }
  return undefined;
}
