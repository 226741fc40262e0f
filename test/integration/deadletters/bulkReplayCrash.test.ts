/**
 * A bulk replay whose worker dies mid-way, on the real pieces (the sandbox broker through
 * `@azure/service-bus`, the archive on Azurite, the run engine over the real work queue and its
 * queue trigger): once after part of a chunk was sent and before the sends were marked (the step
 * records nothing), once after the marks and before the run's record. The redelivered work message
 * runs the chunk again. Into an entity with duplicate detection the consumer then sees every
 * archived message exactly once; without it, the messages sent before the first death arrive twice
 * ("when in doubt, act": a duplicate is possible there, a loss never is). The report counts each
 * record once and the audit has one record of the bulk replay.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TransientError } from '../../../src/lib/core/errors';
import { silentLogger } from '../../../src/lib/core/logging';
import { bulkReplayKind, startBulkReplay } from '../../../src/lib/deadletters/bulkReplay';
import { replayMessageId } from '../../../src/lib/deadletters/replayMessage';
import type { DeadLetterArchive, DeadLetterRecord } from '../../../src/lib/ports/deadLetters';
import type { MessageBus, OutgoingBusMessage } from '../../../src/lib/ports/messageBus';
import { RunEngine } from '../../../src/lib/runs';
import { auditOf, notifyDeps, QueueTrigger } from '../runs/support';
import { type DeadLetterSetup, deadLetterMessages, drain, NS, setupDeadLetters } from './support';

let setup: DeadLetterSetup | undefined;
afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

const COUNT = 250;
/** Messages of the second chunk that reach the broker before the worker dies. */
const SENT_BEFORE_DEATH = 40;

/**
 * The worker's deaths: the 2nd send sends its first messages then dies (before the `sent` marks);
 * the 3rd chunk's `sent` marks are written, then the worker dies (before the step's record).
 * A death is a thrown `TransientError`: the work message is delivered again, as when the process dies.
 */
function dyingWorker(s: DeadLetterSetup) {
  const state = { sends: 0, sentMarks: 0, deaths: 0 };
  const bus = Object.create(s.bus) as MessageBus;
  bus.send = async (entity, messages, options) => {
    state.sends++;
    if (state.sends !== 2) return s.bus.send(entity, messages, options);
    const all: OutgoingBusMessage[] = [];
    for await (const m of messages as Iterable<OutgoingBusMessage>) all.push(m);
    await s.bus.send(entity, all.slice(0, SENT_BEFORE_DEATH), options);
    state.deaths++;
    throw new TransientError('the worker died in the middle of the send');
  };
  const archive = Object.create(s.stores.deadLetters) as DeadLetterArchive;
  archive.markReplays = async (marks, options) => {
    const written = await s.stores.deadLetters.markReplays(marks, options);
    if (marks[0]?.attempt.status === 'sent' && ++state.sentMarks === 2) {
      state.deaths++;
      throw new TransientError('the worker died after the marks, before the run record');
    }
    return written;
  };
  s.deps = { ...s.deps, archive, busFor: () => bus };
  return state;
}

async function bulkReplayWithDeaths(
  s: DeadLetterSetup,
  filter: Record<string, string>,
): Promise<{ runId: string; deaths: number }> {
  await deadLetterMessages(s, 'orders', COUNT, { reason: 'ConsumerTimeout' });
  await drain(s, 'orders', 'orders');
  const worker = dyingWorker(s);
  const engine = new RunEngine({
    runs: s.stores.runs,
    queue: s.stores.workQueue,
    audit: s.stores.audit,
    clock: s.clock,
    logger: silentLogger,
    // A one-second backoff instead of ten (the retry's work message is delayed on the real queue).
    kinds: [{ ...bulkReplayKind(() => s.deps), retry: { baseDelayMs: 1000, maxDelayMs: 1000 } }],
    notify: notifyDeps(s.stores),
  });
  const trigger = new QueueTrigger(s.stores, () => engine);
  const run = await startBulkReplay(engine, {
    input: { entity: 'orders', filter, to: 'orders-retry', ratePerSecond: 100 },
    dryRun: false,
    actor: 'user:ops@contoso.example',
    correlationId: 'test',
  });
  // Chunks of 100 at 100/s: each waits up to a second (its work message is delayed on the real
  // queue), the sandbox clock is moved past it. Bounded: at most 120 rounds.
  for (let i = 0; i < 120; i++) {
    await trigger.drain(50);
    const now = await engine.getRun(run.id);
    if (now?.state !== 'running' && now?.state !== 'pending' && now?.state !== 'waiting') break;
    await s.clock.advance(1000);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { runId: run.id, deaths: worker.deaths };
}

async function consumed(s: DeadLetterSetup): Promise<string[]> {
  const ids: string[] = [];
  const receiver = s.client.createReceiver('orders-retry', { receiveMode: 'receiveAndDelete' });
  for (let i = 0; i < 20; i++) {
    const got = await receiver.receiveMessages(500, { maxWaitTimeInMs: 300 });
    if (got.length === 0) break;
    for (const m of got) ids.push(String(m.messageId));
  }
  await receiver.close();
  return ids;
}

async function archived(s: DeadLetterSetup): Promise<DeadLetterRecord[]> {
  return (await s.stores.deadLetters.list({ entity: 'orders' }, { limit: 1000 })).records;
}

async function assessRunAndAudit(s: DeadLetterSetup, runId: string) {
  const run = await s.stores.runs.get(runId);
  expect(run).toMatchObject({ state: 'succeeded' });
  expect(run!.steps.find((x) => x.name === 'replay')!.output).toMatchObject({
    replayed: COUNT,
    skipped: 0,
    chunks: 3,
  });
  expect(run!.steps.find((x) => x.name === 'report')!.output).toMatchObject({ replayed: COUNT, skipped: 0 });
  const records = await archived(s);
  expect(records).toHaveLength(COUNT);
  for (const r of records) expect(r).toMatchObject({ state: 'replayed', replays: 1 });
  const audits = (
    await auditOf(s.stores, runId, { since: new Date('2025-12-01'), until: new Date('2026-02-01') })
  ).filter((a) => a.action === 'deadletters.bulkReplay');
  expect(audits).toHaveLength(1);
  expect(audits[0]).toMatchObject({ outcome: 'succeeded', target: 'deadletters/orders' });
  const reports = s.channel.sent.filter((n) => n.type === 'com.stampkeeper.deadletters.replayed');
  expect(reports).toHaveLength(1);
  return records;
}

const ORDERS = `  - name: orders
    namespaceId: ${NS}
    queue: orders
    owner: team-orders
    replay:
      targets: [{ queue: orders-retry }]`;

describe('a bulk replay whose worker dies mid-way', { timeout: 180_000 }, () => {
  it('reaches a consumer behind duplicate detection exactly once per archived message, a state filter notwithstanding', async () => {
    // Prepare: the target de-duplicates; the filter names the state the replay moves records out of.
    setup = await setupDeadLetters(
      [{ name: 'orders' }, { name: 'orders-retry', requiresDuplicateDetection: true }],
      ORDERS,
    );

    // Act
    const { runId, deaths } = await bulkReplayWithDeaths(setup, {
      reason: 'ConsumerTimeout',
      state: 'parked',
    });
    const ids = await consumed(setup);

    // Assess: both deaths happened; each archived message arrived once, under its attempt's id.
    expect(deaths).toBe(2);
    const records = await assessRunAndAudit(setup, runId);
    expect(ids).toHaveLength(COUNT);
    expect(new Set(ids)).toEqual(new Set(records.map((r) => replayMessageId(r, 1))));
  });

  it('without duplicate detection loses none and delivers only what was sent before the death twice', async () => {
    // Prepare: a target without duplicate detection, no state filter.
    setup = await setupDeadLetters([{ name: 'orders' }, { name: 'orders-retry' }], ORDERS);

    // Act
    const { runId, deaths } = await bulkReplayWithDeaths(setup, { reason: 'ConsumerTimeout' });
    const ids = await consumed(setup);

    // Assess: every message at least once; the duplicates are exactly those the dying send let out.
    expect(deaths).toBe(2);
    const records = await assessRunAndAudit(setup, runId);
    expect(new Set(ids)).toEqual(new Set(records.map((r) => replayMessageId(r, 1))));
    expect(ids).toHaveLength(COUNT + SENT_BEFORE_DEATH);
  });
});
