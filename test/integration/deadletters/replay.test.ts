/**
 * Replays on the real pieces (the sandbox broker through `@azure/service-bus`, the archive on
 * Azurite, the run engine over the real work queue): a retried replay attempt is dropped by
 * duplicate detection while a new one is not; a subscription's replay through its topic reaches it
 * alone, or is refused while the rules would leak it; a bulk replay of thousands streams in
 * batches as a run, its dry run sends nothing, and it never sends a record twice.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/lib/core/logging';
import { BULK_REPLAY_KIND, bulkReplayKind, startBulkReplay } from '../../../src/lib/deadletters/bulkReplay';
import { replayDeadLetter } from '../../../src/lib/deadletters/operate';
import { replayRecords } from '../../../src/lib/deadletters/replay';
import { replayCopy, replayMessageId, replayTargetOf } from '../../../src/lib/deadletters/replayMessage';
import { RunEngine } from '../../../src/lib/runs';
import { notifyDeps, QueueTrigger } from '../runs/support';
import { type DeadLetterSetup, deadLetterMessages, drain, NS, setupDeadLetters } from './support';

let setup: DeadLetterSetup | undefined;
afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

const ORDERS = `  - name: orders
    namespaceId: ${NS}
    queue: orders
    owner: team-orders`;
const BILLING = `  - name: billing
    namespaceId: ${NS}
    topic: events
    subscription: billing
    topicSubscriptions: [audit]
    owner: team-billing`;
const ctx = { actor: 'user:ops@contoso.example', correlationId: 'test' };

/** Message ids in a queue or subscription, from its first sequence number (peek changes nothing). */
async function activeIds(s: DeadLetterSetup, path: string): Promise<string[]> {
  const [topic, , subscription] = path.split('/');
  const peeked = await s.bus.peek(subscription ? { topic: topic!, subscription } : { queue: path }, {
    maxCount: 250,
    fromSequenceNumber: '0',
  });
  return peeked.map((m) => m.messageId);
}

// Bounds, not speed checks: the broker, Azurite and the tests share a 2-core machine.
describe('replay', { timeout: 120_000 }, () => {
  it('sends a retried attempt under the same message id (dropped by duplicate detection) and a new replay under a new one', async () => {
    // Prepare: one archived dead letter of a queue with duplicate detection.
    setup = await setupDeadLetters([{ name: 'orders', requiresDuplicateDetection: true }], ORDERS);
    await deadLetterMessages(setup, 'orders', 1);
    await drain(setup, 'orders', 'orders');
    const [record] = (await setup.stores.deadLetters.list({ entity: 'orders' }, { limit: 10 })).records;
    const entity = setup.policy.deadLetters[0]!;
    // A replay whose send went out but whose "sent" was never recorded (the process died): the
    // attempt is recorded `sending` first, then the copy sent.
    const attempt = {
      attempt: 1,
      messageId: replayMessageId(record!, 1),
      target: 'orders',
      revision: 0,
      status: 'sending' as const,
      requestedOn: setup.clock.now(),
      actor: ctx.actor,
    };
    const [sending] = await setup.stores.deadLetters.markReplays([{ record: record!, attempt }]);
    const original = await setup.stores.deadLetters.revision(sending!, 0);
    await setup.bus.send('orders', [
      replayCopy(sending!, original.revision.message, original.body, {
        attempt: 1,
        target: replayTargetOf(entity),
      }),
    ]);

    // Act: the operator asks again (the retry of the pending attempt), then replays once more.
    const retried = await replayDeadLetter(record!.id, {}, setup.deps, ctx);
    const afterRetry = await activeIds(setup, 'orders');
    const again = await replayDeadLetter(record!.id, {}, setup.deps, ctx);
    const afterNew = await activeIds(setup, 'orders');

    // Assess
    expect(retried.attempt).toMatchObject({ attempt: 1, messageId: attempt.messageId, status: 'sent' });
    expect(afterRetry).toEqual([attempt.messageId]);
    expect(again.attempt).toMatchObject({ attempt: 2, messageId: replayMessageId(record!, 2) });
    expect(afterNew).toEqual([attempt.messageId, replayMessageId(record!, 2)]);
    const stored = await setup.stores.deadLetters.get(record!.id);
    expect(stored).toMatchObject({
      state: 'replayed',
      replays: 2,
      lastReplay: { attempt: 2, status: 'sent' },
    });
  });

  it("replays a subscription's dead letter through its topic to that subscription alone, and refuses while another would get it", async () => {
    // Prepare: a topic whose two subscriptions take everything (the default true filter).
    setup = await setupDeadLetters(
      [{ name: 'events', type: 'topic', subscriptions: ['billing', 'audit'] }],
      BILLING,
    );
    await deadLetterMessages(setup, 'events', 1, { subscription: 'billing' });
    // The audit subscription got its own copy; take it out so only replays are left to see.
    const auditReceiver = setup.client.createReceiver('events', 'audit', { receiveMode: 'receiveAndDelete' });
    await auditReceiver.receiveMessages(10, { maxWaitTimeInMs: 500 });
    await auditReceiver.close();
    await drain(setup, 'billing', 'events/Subscriptions/billing');
    const [record] = (await setup.stores.deadLetters.list({ entity: 'billing' }, { limit: 10 })).records;

    // Act
    const refused = await replayDeadLetter(record!.id, {}, setup.deps, ctx).catch((e: unknown) => e);
    const unchanged = await setup.stores.deadLetters.get(record!.id);
    await setup.bus.ensureReplayIsolation('events', 'billing');
    await setup.bus.ensureReplayIsolation('events', 'audit');
    const replayed = await replayDeadLetter(record!.id, {}, setup.deps, ctx);

    // Assess
    expect(refused).toMatchObject({ status: 409 });
    expect(String((refused as Error).message)).toMatch(
      /would not reach billing alone: .*events\/Subscriptions\/audit: rule '\$Default' admits replays meant for other subscriptions/,
    );
    expect(unchanged).toMatchObject({ state: 'parked', replays: 0 });
    expect(replayed.target).toEqual({ entity: 'events', replayTo: 'billing' });
    expect(await activeIds(setup, 'events/Subscriptions/billing')).toEqual([replayed.attempt.messageId]);
    expect(await activeIds(setup, 'events/Subscriptions/audit')).toEqual([]);
  });

  it('replays thousands by filter as a run: the dry run sends nothing, the run streams batches and sends each record once', async () => {
    // Prepare: 2500 dead letters for one reason, 20 for another (not in the filter).
    setup = await setupDeadLetters(
      [{ name: 'orders' }, { name: 'orders-retry' }],
      `${ORDERS}
    replay:
      targets: [{ queue: orders-retry }]`,
    );
    await deadLetterMessages(setup, 'orders', 2500, { reason: 'ConsumerTimeout' });
    await deadLetterMessages(setup, 'orders', 20, { reason: 'ValidationFailed', prefix: 'v' });
    await drain(setup, 'orders', 'orders');
    const s = setup;
    const engine = new RunEngine({
      runs: s.stores.runs,
      queue: s.stores.workQueue,
      audit: s.stores.audit,
      clock: s.clock,
      logger: silentLogger,
      kinds: [bulkReplayKind(() => s.deps)],
      notify: notifyDeps(s.stores),
    });
    const trigger = new QueueTrigger(s.stores, () => engine);
    const input = {
      entity: 'orders',
      filter: { reason: 'ConsumerTimeout' },
      to: 'orders-retry',
      ratePerSecond: 5000,
    };

    // Act: a dry run, then the run; a second start while it runs is refused.
    const dry = await startBulkReplay(engine, { input, dryRun: true, ...ctx });
    await trigger.drain(50);
    const dryDone = await engine.getRun(dry.id);
    const sentByDryRun = s.broker.entities.get('orders-retry').counts().active;
    const real = await startBulkReplay(engine, { input, dryRun: false, ...ctx });
    const second = await startBulkReplay(engine, { input, dryRun: false, ...ctx }).catch((e: unknown) => e);
    await trigger.drain(200);
    const done = await engine.getRun(real.id);

    // Assess
    expect(dryDone).toMatchObject({ kind: BULK_REPLAY_KIND, state: 'succeeded', dryRun: true });
    expect(dryDone!.steps.find((x) => x.name === 'plan')!.output).toMatchObject({
      matched: 2500,
      replayable: 2500,
      complete: true,
      byReason: { ConsumerTimeout: 2500 },
      target: 'orders-retry',
    });
    expect(sentByDryRun).toBe(0);
    expect(second).toMatchObject({ status: 409 });
    expect(done).toMatchObject({ state: 'succeeded' });
    const progress = done!.steps.find((x) => x.name === 'replay')!.output as Record<string, number>;
    expect(progress).toMatchObject({ replayed: 2500, skipped: 0, chunks: 3 });
    expect(progress.batches).toBeLessThan(2500);
    const received: string[] = [];
    const receiver = s.client.createReceiver('orders-retry', { receiveMode: 'receiveAndDelete' });
    for (let i = 0; i < 20; i++) {
      const got = await receiver.receiveMessages(1000, { maxWaitTimeInMs: 300 });
      if (got.length === 0) break;
      for (const m of got) received.push(String(m.messageId));
    }
    await receiver.close();
    expect(received).toHaveLength(2500);
    expect(new Set(received).size).toBe(2500);
    expect(s.broker.entities.get('orders').counts().active).toBe(0);
    const remaining = await s.stores.deadLetters.list({ entity: 'orders', state: 'parked' }, { limit: 100 });
    expect(remaining.records.map((r) => r.deadLetterReason)).toEqual(Array(20).fill('ValidationFailed'));
    expect(done!.steps.find((x) => x.name === 'report')!.output).toMatchObject({
      replayed: 2500,
      target: 'orders-retry',
    });
    expect(s.channel.sent.some((n) => n.type === 'com.stampkeeper.deadletters.replayed')).toBe(true);
    // A bound, not a speed check: 2500 messages through a shared 2-core machine.
  }, 180_000);

  it('leaves a discarded record and a pending replay to elsewhere alone, saying why', async () => {
    // Prepare
    setup = await setupDeadLetters([{ name: 'orders' }], ORDERS);
    await deadLetterMessages(setup, 'orders', 2);
    await drain(setup, 'orders', 'orders');
    const [a, b] = (await setup.stores.deadLetters.list({ entity: 'orders' }, { limit: 10 })).records;
    const discarded = await setup.stores.deadLetters.setState(
      a!,
      'discarded',
      'test order',
      setup.clock.now(),
    );

    // Act
    const { results } = await replayRecords(
      setup.policy.deadLetters[0]!,
      { records: [discarded, b!], actor: ctx.actor },
      setup.deps,
    );

    // Assess
    expect(results.map((r) => [r.id, r.status])).toEqual([
      [a!.id, 'skipped'],
      [b!.id, 'replayed'],
    ]);
    expect(results[0]!.reason).toMatch(/was discarded \(test order\)/);
  });
});
