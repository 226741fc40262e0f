/**
 * Dead letters on the sandbox broker (real AMQP, real `@azure/service-bus`) and a local Azurite:
 *
 * 1. Archiving a burst: 10,000 messages dead-lettered by a simulated consumer, read from the
 *    dead-letter queue in batches of 100 (the trigger's `cardinality: 'many'`), archived by the real
 *    arrival (peek, classify, Table transactions), then completed. Prints messages per second and
 *    the Table / Blob HTTP calls per message (counted at Node's http layer).
 * 2. Bulk replay of 100,000 archived messages by filter, as the `deadletter-replay` run on the real
 *    engine and work queue, to a queue a simulated consumer drains. Prints messages per second,
 *    batch fill (bytes sent ÷ batch capacity) and the RSS over the run (peak, and first vs last
 *    tenth: the replay streams, so it stays flat).
 *
 * Figures only, never assertions. Run alone with `npx tsx bench/deadLetters.ts`
 * (`BENCH_DL_REPLAY=20000` for a shorter replay).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { ServiceBusClient } from '@azure/service-bus';
import { ServiceBusMessageBus } from '../src/lib/azure/serviceBusMessageBus';
import { parsePolicy } from '../src/lib/config/policy';
import { newId } from '../src/lib/core/ids';
import { silentLogger } from '../src/lib/core/logging';
import type { DeadLetterDeps } from '../src/lib/deadletters';
import { handleArrivals } from '../src/lib/deadletters/arrive';
import { bulkReplayKind, startBulkReplay } from '../src/lib/deadletters/bulkReplay';
import { createNotifier } from '../src/lib/notify/notifier';
import { systemClock } from '../src/lib/ports/clock';
import type { NewDeadLetter } from '../src/lib/ports/deadLetters';
import type { Notification, NotificationChannel } from '../src/lib/ports/notifier';
import { handleWorkMessage } from '../src/lib/runs';
import { RunEngine } from '../src/lib/runs/engine';
import { createStateStores } from '../src/lib/state';
import { startSandboxServiceBus } from '../src/local/sandbox/servicebus';
import { startAzurite } from '../test/support/azurite';

const BURST = Number(process.env.BENCH_DL_BURST ?? 10_000);
const TRIGGER_BATCH = 100;
const REPLAY = Number(process.env.BENCH_DL_REPLAY ?? 100_000);
const BODY = JSON.stringify({
  order: 0,
  items: Array.from({ length: 20 }, (_, i) => ({ sku: `sku-${i}`, qty: 1 })),
});
const NS =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/bench-sb';

class NullChannel implements NotificationChannel {
  readonly kind = 'null';
  readonly name = 'ops';
  async send(_notification: Notification): Promise<void> {}
}

/** HTTP requests per port (Azurite's blob, queue and table ports), counted while `counting`. */
function countRequests(): { counts: Map<string, number>; reset(): void } {
  const counts = new Map<string, number>();
  const original = http.request;
  (http as { request: typeof http.request }).request = ((...args: Parameters<typeof http.request>) => {
    const first = args[0] as { port?: string | number; path?: string } | string | URL;
    const port =
      typeof first === 'string'
        ? new URL(first).port
        : first instanceof URL
          ? first.port
          : String(first.port ?? '');
    counts.set(port, (counts.get(port) ?? 0) + 1);
    return original(...args);
  }) as typeof http.request;
  return { counts, reset: () => counts.clear() };
}

export async function main(): Promise<void> {
  const azurite = await startAzurite();
  const requests = countRequests();
  const serviceBus = await startSandboxServiceBus({
    scenario: {
      entities: [{ name: 'burst' }, { name: 'orders' }, { name: 'orders-replay' }],
      consumers: [
        {
          name: 'refuser',
          entity: 'burst',
          maxConcurrent: 50,
          fail: [{ share: 1, action: 'deadLetter', deadLetterReason: 'ValidationFailed' }],
        },
        { name: 'drain', entity: 'orders-replay', maxConcurrent: 50 },
      ],
    },
  });
  const client = new ServiceBusClient(serviceBus.connectionString);
  const bus = new ServiceBusMessageBus({ connectionString: serviceBus.connectionString });
  try {
    const stores = createStateStores({
      connectionString: azurite.connectionString,
      tablePrefix: `bdl${newId().slice(0, 6)}`,
      workQueueName: 'bench-dl-work',
      clock: systemClock,
    });
    await stores.ensure();
    const policy = parsePolicy(`version: 1
deadLetters:
  - { name: burst, namespaceId: ${NS}, queue: burst, owner: bench }
  - name: orders
    namespaceId: ${NS}
    queue: orders
    owner: bench
    replay: { targets: [{ queue: orders-replay }] }
notifications:
  defaults: [ops]
  channels: [{ name: ops, type: webhook, urlSetting: OPS_URL }]
`);
    const deps: DeadLetterDeps = {
      archive: stores.deadLetters,
      busFor: () => bus,
      metrics: { readMetrics: async () => Promise.reject(new Error('no metrics in the bench')) },
      notifier: createNotifier([{ channel: new NullChannel(), minSeverity: 'info' }], silentLogger),
      idempotency: stores.idempotency,
      audit: stores.audit,
      clock: systemClock,
      logger: silentLogger,
      policy,
      environment: 'bench',
      idempotencyTtlMs: 86_400_000,
      claimLeaseMs: 120_000,
      dryRun: false,
    };

    // 1. The burst.
    const sender = client.createSender('burst');
    let batch = await sender.createMessageBatch();
    for (let j = 0; j < BURST; j++) {
      const message = { messageId: `b-${j}`, body: BODY, contentType: 'application/json' };
      if (!batch.tryAddMessage(message)) {
        await sender.sendMessages(batch);
        batch = await sender.createMessageBatch();
        batch.tryAddMessage(message);
      }
    }
    if (batch.count > 0) await sender.sendMessages(batch);
    await sender.close();
    const dlq = serviceBus.broker.entities.get('burst');
    while (dlq.counts().deadLetter < BURST) await new Promise((r) => setTimeout(r, 50));
    requests.reset();
    let archived = 0;
    let invocations = 0;
    const t0 = performance.now();
    while (archived < BURST) {
      // A receiver per 1000 messages (the sandbox broker's session buffer: docs/bench.md).
      const receiver = client.createReceiver('burst', { subQueueType: 'deadLetter' });
      for (let round = 0; round < 1000 / TRIGGER_BATCH && archived < BURST; round++) {
        const messages = await receiver.receiveMessages(TRIGGER_BATCH, { maxWaitTimeInMs: 2000 });
        if (messages.length === 0) break;
        await handleArrivals(
          policy.deadLetters[0]!,
          messages.map((m) => ({
            sequenceNumber: m.sequenceNumber!.toString(),
            messageId: String(m.messageId),
          })),
          deps,
          { actor: 'system:bench', correlationId: newId() },
        );
        for (const m of messages) await receiver.completeMessage(m);
        archived += messages.length;
        invocations += 1;
      }
      await receiver.close();
    }
    const burstMs = performance.now() - t0;
    const [tablePort, blobPort] = [azurite.endpoints.table, azurite.endpoints.blob].map(
      (u) => new URL(u).port,
    );
    const tableCalls = requests.counts.get(tablePort!) ?? 0;
    const blobCalls = requests.counts.get(blobPort!) ?? 0;
    console.log(`deadLetters: archive burst of ${BURST} in ${invocations} batches of ${TRIGGER_BATCH}`);
    console.log(
      `  ${(BURST / (burstMs / 1000)).toFixed(0)} messages/s (${(burstMs / 1000).toFixed(1)} s, peek + classify + archive + alert + complete)`,
    );
    console.log(
      `  Table calls per message ${(tableCalls / BURST).toFixed(3)} (${tableCalls}), Blob calls per message ${(blobCalls / BURST).toFixed(3)} (${blobCalls})`,
    );

    // 2. The bulk replay: REPLAY archived messages (written straight to the archive, as arrivals).
    const enqueued = new Date();
    for (let i = 0; i < REPLAY; i += 1000) {
      const arrivals: NewDeadLetter[] = [];
      for (let j = i; j < Math.min(REPLAY, i + 1000); j++) {
        arrivals.push({
          path: 'orders',
          message: {
            messageId: `o-${j}`,
            sequenceNumber: String(j + 1),
            enqueuedTime: enqueued,
            deliveryCount: 10,
            contentType: 'application/json',
            subject: 'OrderPlaced',
            applicationProperties: { warehouse: 'berlin', n: j },
            deadLetterReason: 'MaxDeliveryCountExceeded',
          },
          body: { type: 'data', bytes: Buffer.from(BODY) },
          classification: {
            reasonClass: 'delivery-exhausted',
            messageType: 'OrderPlaced',
            decision: 'park',
            why: 'bench',
          },
          replayCount: 0,
          originalMessageId: `o-${j}`,
          deadLetteredAt: enqueued,
        });
      }
      await stores.deadLetters.archive('orders', arrivals);
    }
    const engine = new RunEngine({
      runs: stores.runs,
      queue: stores.workQueue,
      audit: stores.audit,
      clock: systemClock,
      logger: silentLogger,
      kinds: [bulkReplayKind(() => deps)],
      notify: {
        notifier: deps.notifier,
        idempotency: stores.idempotency,
        defaultChannels: ['ops'],
        idempotencyTtlMs: 86_400_000,
        claimLeaseMs: 120_000,
      },
    });
    global.gc?.();
    const rss: number[] = [];
    const sampler = setInterval(() => rss.push(process.memoryUsage().rss), 200);
    const t1 = performance.now();
    const run = await startBulkReplay(engine, {
      input: {
        entity: 'orders',
        filter: { reason: 'MaxDeliveryCountExceeded' },
        to: 'orders-replay',
        ratePerSecond: 5000,
      },
      dryRun: false,
      actor: 'system:bench',
      correlationId: newId(),
    });
    for (;;) {
      const current = await engine.getRun(run.id);
      if (current && ['succeeded', 'failed', 'cancelled'].includes(current.state)) break;
      const received = await stores.workQueue.receive({ maxMessages: 1, visibilityTimeoutMs: 300_000 });
      for (const item of received) {
        await handleWorkMessage(
          engine,
          item.message ?? '',
          { messageId: item.messageId, invocationId: newId() },
          silentLogger,
        );
        await stores.workQueue.delete(item);
      }
      if (received.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    const replayMs = performance.now() - t1;
    clearInterval(sampler);
    const done = (await engine.getRun(run.id))!;
    const progress = done.steps.find((s) => s.name === 'replay')?.output as
      | { replayed: number; batches: number; bytes: number; capacity: number; chunks: number }
      | undefined;
    const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;
    const tenth = Math.max(1, Math.floor(rss.length / 10));
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    console.log(`deadLetters: bulk replay of ${REPLAY} archived messages (run ${done.state})`);
    console.log(
      `  ${((progress?.replayed ?? 0) / (replayMs / 1000)).toFixed(0)} messages/s (${(replayMs / 1000).toFixed(1)} s, rate limit 5000/s, ${progress?.chunks} pages)`,
    );
    console.log(
      `  batch fill ${(((progress?.bytes ?? 0) / (progress?.capacity || 1)) * 100).toFixed(1)} % (${progress?.batches} batches, ${mb(progress?.bytes ?? 0)} sent)`,
    );
    console.log(
      `  RSS peak ${mb(Math.max(...rss))}, first tenth ${mb(avg(rss.slice(0, tenth)))}, last tenth ${mb(avg(rss.slice(-tenth)))}`,
    );
  } finally {
    await bus.close();
    await client.close();
    await serviceBus.stop();
    await azurite.stop();
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
