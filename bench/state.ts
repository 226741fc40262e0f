/**
 * State on Table Storage, measured against a local in-memory Azurite: audit appends per second
 * (sequential and concurrent), audit query latency, idempotency claims per second, and three-step
 * runs driven through the real work queue. Figures only; Azurite is not Azure, so read them as
 * relative numbers (did a change make it slower?), not as production capacity.
 *
 * Run alone with `npx tsx bench/state.ts`.
 */
import { performance } from 'node:perf_hooks';
import { newId } from '../src/lib/core/ids';
import { systemClock } from '../src/lib/ports/clock';
import type { AuditRecord } from '../src/lib/ports/state';
import { RunEngine } from '../src/lib/runs/engine';
import { createStateStores, type StateStores } from '../src/lib/state';
import { startAzurite } from '../test/support/azurite';

const AUDIT_RECORDS = 1000;
const CONCURRENCY = 16;
const QUERY_REPEATS = 20;
const CLAIMS = 500;
const RUNS = 50;

export async function main(): Promise<void> {
  const azurite = await startAzurite();
  try {
    const stores = createStateStores({
      connectionString: azurite.connectionString,
      tablePrefix: 'bench',
      workQueueName: 'bench-work',
      clock: systemClock,
    });
    await stores.ensure();
    await benchAudit(stores);
    await benchIdempotency(stores);
    await benchRuns(stores);
  } finally {
    await azurite.stop();
  }
}

async function benchAudit(stores: StateStores): Promise<void> {
  const base = Date.now();
  const make = (i: number): AuditRecord => ({
    id: newId(),
    time: new Date(base + i),
    actor: 'system:bench',
    action: 'bench.append',
    target: `vaults/kv/secrets/s${i % 20}`,
    before: { version: `v${i}` },
    after: { version: `v${i + 1}`, tags: { owner: 'bench' } },
    outcome: 'succeeded',
    correlationId: newId(),
  });

  let t = performance.now();
  for (let i = 0; i < AUDIT_RECORDS / 2; i++) await stores.audit.append(make(i));
  report('audit append, sequential', AUDIT_RECORDS / 2, performance.now() - t);

  t = performance.now();
  await inParallel(AUDIT_RECORDS / 2, CONCURRENCY, (i) => stores.audit.append(make(AUDIT_RECORDS / 2 + i)));
  report(`audit append, ${CONCURRENCY} concurrent`, AUDIT_RECORDS / 2, performance.now() - t);

  const since = new Date(base - 1000);
  const until = new Date(base + AUDIT_RECORDS + 1000);
  const latencies = async (label: string, query: () => Promise<unknown>) => {
    const times: number[] = [];
    for (let i = 0; i < QUERY_REPEATS; i++) {
      const q = performance.now();
      await query();
      times.push(performance.now() - q);
    }
    times.sort((a, b) => a - b);
    console.log(
      `${label.padEnd(44)} p50 ${ms(times[Math.floor(times.length / 2)]!)}  p95 ${ms(times[Math.floor(times.length * 0.95)]!)}`,
    );
  };
  await latencies('audit query, window, limit 100', () => stores.audit.query({ since, until, limit: 100 }));
  await latencies('audit query, window, limit 1000', () => stores.audit.query({ since, until, limit: 1000 }));
  await latencies('audit query, window + target', () =>
    stores.audit.query({ since, until, target: 'vaults/kv/secrets/s7' }),
  );
  await latencies('audit query, default 30-day window', () => stores.audit.query({ limit: 100 }));
}

async function benchIdempotency(stores: StateStores): Promise<void> {
  let t = performance.now();
  await inParallel(CLAIMS, CONCURRENCY, (i) =>
    stores.idempotency.claim(`bench-${i}`, { owner: 'bench', leaseMs: 60_000 }),
  );
  report(`idempotency claim, distinct keys, ${CONCURRENCY} concurrent`, CLAIMS, performance.now() - t);

  t = performance.now();
  await inParallel(CLAIMS, CONCURRENCY, (i) =>
    stores.idempotency.claim('bench-hot', { owner: `w${i}`, leaseMs: 60_000 }),
  );
  report(`idempotency claim, one hot key, ${CONCURRENCY} concurrent`, CLAIMS, performance.now() - t);
}

async function benchRuns(stores: StateStores): Promise<void> {
  const engine = new RunEngine({
    runs: stores.runs,
    queue: stores.workQueue,
    audit: stores.audit,
    clock: systemClock,
    kinds: [
      {
        kind: 'bench',
        steps: ['one', 'two', 'three'].map((name) => ({
          name,
          run: async () => ({ status: 'done' as const, output: { name } }),
        })),
      },
    ],
  });
  const t = performance.now();
  await inParallel(RUNS, CONCURRENCY, (i) =>
    engine.startRun('bench', { target: `t${i}`, correlationId: newId() }),
  );
  let advanced = 0;
  for (;;) {
    const received = await stores.workQueue.receive({ maxMessages: 32 });
    if (received.length === 0) break;
    await Promise.all(
      received.map(async (item) => {
        if (item.message) {
          await engine.advanceRun(item.message.runId, { owner: 'bench', ticket: item.message.ticket });
          advanced++;
        }
        await stores.workQueue.delete(item);
      }),
    );
  }
  const elapsed = performance.now() - t;
  report('runs of 3 steps through the queue', RUNS, elapsed);
  report('  of which step advances', advanced, elapsed);
}

async function inParallel(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

function report(label: string, count: number, elapsedMs: number): void {
  console.log(
    `${label.padEnd(44)} ${String(count).padStart(5)} in ${ms(elapsedMs)}  = ${((count * 1000) / elapsedMs).toFixed(0)}/s`,
  );
}

function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
