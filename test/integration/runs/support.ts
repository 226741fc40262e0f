/**
 * Support of the run engine's integration tests: the real engine on the real stores (Azurite),
 * a poller that plays the Functions queue trigger (receive, handle, delete or release, poison after
 * five dequeues), a channel that records what it was sent, and fault injection around the real
 * stores (a call that fails or hangs, as a network or a process would).
 */
import { newId } from '../../../src/lib/core/ids';
import { createLogger, type Logger, silentLogger } from '../../../src/lib/core/logging';
import { createNotifier } from '../../../src/lib/notify/notifier';
import type { Clock } from '../../../src/lib/ports/clock';
import type { Notification, NotificationChannel } from '../../../src/lib/ports/notifier';
import type { ReceivedWork } from '../../../src/lib/ports/runs';
import {
  type AdvanceOutcome,
  handleWorkMessage,
  RunEngine,
  type RunEngineOptions,
  type RunKindDefinition,
  type RunNotifyDeps,
} from '../../../src/lib/runs';
import type { StateStores } from '../../../src/lib/state';
import { freshStores, TestClock } from '../state/helpers';

export { freshStores, TestClock };

/** A notification channel that keeps what it was sent. */
export class RecordingChannel implements NotificationChannel {
  readonly kind = 'recording';
  readonly sent: Notification[] = [];
  constructor(readonly name = 'ops') {}
  async send(notification: Notification): Promise<void> {
    this.sent.push(structuredClone(notification));
  }
}

/** Notifications through the real notifier and the real idempotency store to recording channels. */
export function notifyDeps(
  stores: StateStores,
  channel = new RecordingChannel(),
): RunNotifyDeps & { channel: RecordingChannel } {
  return {
    channel,
    notifier: createNotifier([{ channel, minSeverity: 'info' }], silentLogger),
    idempotency: stores.idempotency,
    defaultChannels: [channel.name],
    idempotencyTtlMs: 86_400_000,
    claimLeaseMs: 60_000,
  };
}

export interface EngineSetup {
  clock: Clock;
  stores: StateStores;
  engine: RunEngine;
  channel: RecordingChannel;
  /** A new engine over the same stores (another instance, another deployment). */
  engineWith(kinds: RunKindDefinition[], options?: RunEngineOptions): RunEngine;
}

/** The engine on fresh tables and queues of the test run's Azurite. */
export async function setupEngine(
  kinds: RunKindDefinition[],
  options: RunEngineOptions = {},
  clock: Clock = new TestClock(),
  logger: Logger = silentLogger,
): Promise<EngineSetup> {
  const stores = await freshStores(clock);
  const notify = notifyDeps(stores);
  const engineWith = (k: RunKindDefinition[], o: RunEngineOptions = options) =>
    new RunEngine({
      runs: stores.runs,
      queue: stores.workQueue,
      audit: stores.audit,
      clock,
      logger,
      kinds: k,
      notify,
      options: o,
    });
  return { clock, stores, engine: engineWith(kinds), channel: notify.channel, engineWith };
}

/** What a poll did with each message. */
export interface Delivery {
  received: ReceivedWork;
  outcome?: AdvanceOutcome;
  error?: unknown;
}

/**
 * Plays the Functions queue trigger over the real work queue: receives visible messages, hands
 * each to `handleWorkMessage` with its message id and a new invocation id, deletes it on success,
 * makes it visible again on a thrown (retryable) error, and moves it to `poison` after five
 * dequeues (host.json's `maxDequeueCount`).
 */
export class QueueTrigger {
  readonly poison: ReceivedWork[] = [];
  readonly deliveries: Delivery[] = [];

  constructor(
    private readonly stores: StateStores,
    private readonly engine: () => RunEngine,
    private readonly logger: Logger = silentLogger,
  ) {}

  /** Handles up to `max` visible messages, one at a time; returns how many it received. */
  async poll(max = 32): Promise<number> {
    const received = await this.stores.workQueue.receive({ maxMessages: Math.min(32, max) });
    for (const item of received) await this.handle(item);
    return received.length;
  }

  /** Polls until no message is visible (at most `rounds` polls). */
  async drain(rounds = 100): Promise<void> {
    for (let i = 0; i < rounds; i++) if ((await this.poll()) === 0) return;
  }

  async handle(item: ReceivedWork): Promise<Delivery> {
    const delivery: Delivery = { received: item };
    this.deliveries.push(delivery);
    try {
      delivery.outcome = await handleWorkMessage(
        this.engine(),
        item.message ?? 'not a work message',
        { messageId: item.messageId, invocationId: newId() },
        this.logger,
      );
    } catch (error) {
      delivery.error = error;
      if (item.dequeueCount >= 5) {
        this.poison.push(item);
        await this.stores.workQueue.delete(item);
      } else {
        await this.stores.workQueue.release(item);
      }
      return delivery;
    }
    await this.stores.workQueue.delete(item);
    return delivery;
  }
}

/** A logger that keeps its lines (parsed) for assertions. */
export function recordingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const push = (line: unknown) => lines.push(JSON.parse(String(line)) as Record<string, unknown>);
  return { logger: createLogger({ debug: push, info: push, warn: push, error: push }), lines };
}

/** The audit records of a run, oldest first (a window of about a month around the test clock's start). */
export async function auditOf(
  stores: StateStores,
  runId: string,
  window: { since?: Date; until?: Date } = {},
) {
  const records = await stores.audit.query({
    since: window.since ?? new Date('2026-11-26T00:00:00Z'),
    until: window.until ?? new Date('2026-12-31T00:00:00Z'),
    limit: 1000,
  });
  return records.filter((r) => r.runId === runId);
}
