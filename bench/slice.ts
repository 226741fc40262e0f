/**
 * The first slice end to end, under load: the local host runs the app's real registrations on the
 * sandbox over an in-memory Azurite; N secrets of the sandbox vault expire 31..40 days after the
 * clock start, and one clock advance of 41 days raises N `SecretNearExpiry` and N `SecretExpired`
 * events, which the sandbox delivers (about half of them twice) to the host's Event Grid endpoint.
 *
 * Prints, per N: the wall time of the advance (it returns once every delivery has been answered),
 * events and deliveries per second, delivery latency percentiles, peak RSS and heap, and a check
 * that the work was correct (one audit record per distinct event, one notification per channel).
 * Figures only, never assertions; Azurite and the in-process sandbox are not Azure, so read them
 * as relative numbers (did a change make the slice slower?), not as production capacity.
 *
 * Run alone with `npx tsx bench/slice.ts`, or with the others: `npm run bench -- slice`.
 */
import { performance } from 'node:perf_hooks';
import { newId } from '../src/lib/core/ids';
import { systemClock } from '../src/lib/ports/clock';
import { createStateStores } from '../src/lib/state';
import { type RunningLocalApp, startLocalApp } from '../src/local/app';
import type { HostLogger } from '../src/local/host/types';
import { type Scenario, seededRandom } from '../src/local/sandbox';
import { type RunningAzurite, startAzurite } from '../test/support/azurite';

const SIZES = [100, 500];
/** The vault the app's policy manages; the bench secrets are not named by it, so they are reported. */
const VAULT = 'stampkeeper-sandbox';
const START = '2026-01-01T00:00:00Z';
const DAY_MS = 86_400_000;
const ADVANCE_DAYS = 41;
const SAMPLE_MS = 50;
const NOTIFY_ACTIONS = new Set(['secret.nearExpiry.notify', 'secret.expired.notify']);
const DELIVERY_PATH = '/runtime/webhooks/eventgrid';

export async function main(): Promise<void> {
  const azurite = await startAzurite();
  try {
    console.log(
      `Each run: N secrets expiring 31..40 days out, one advance of ${ADVANCE_DAYS} days -> 2N events, ~half delivered twice.`,
    );
    for (const n of SIZES) await benchSlice(azurite, n);
  } finally {
    await azurite.stop();
  }
}

/** A scenario with `n` secrets of the managed vault, expiring between 31 and 40 days after the start. */
function scenarioOf(n: number): Scenario {
  return {
    clock: { start: START },
    keyVault: {
      vaults: [
        {
          name: VAULT,
          secrets: Array.from({ length: n }, (_, i) => ({
            name: secretName(i),
            // Spread over 10 days and across each day, so the events arrive at many distinct instants.
            expiresInDays: 31 + (i % 10) + Math.floor((i / n) * 24) / 24,
            tags: { purpose: 'bench' },
          })),
        },
      ],
    },
    eventGrid: {
      subscriptions: [
        {
          name: 'keyvault-secret-events',
          vault: '*',
          eventTypes: ['Microsoft.KeyVault.SecretNearExpiry', 'Microsoft.KeyVault.SecretExpired'],
          endpoint: { functionName: 'keyVaultEvents' },
          schema: 'EventGridSchema',
        },
      ],
    },
    delivery: { duplicateProbability: 0.5, maxAttempts: 5 },
  };
}

function secretName(i: number): string {
  return `bench-secret-${String(i).padStart(4, '0')}`;
}

async function benchSlice(azurite: RunningAzurite, n: number): Promise<void> {
  const prefix = `b${newId().replace(/-/g, '').slice(0, 10)}`.toLowerCase();
  const restoreConsole = silenceConsole();
  const latencies: number[] = [];
  const restoreFetch = timeDeliveries(latencies);
  const memory = sampleMemory();
  let app: RunningLocalApp | undefined;
  let figures: Figures;
  try {
    app = await startLocalApp({
      port: 0,
      startTimers: false,
      logger: quietLogger,
      env: {
        AzureWebJobsStorage: azurite.connectionString,
        STAMPKEEPER_TABLE_PREFIX: prefix,
        STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
      },
      sandbox: { scenario: scenarioOf(n), random: seededRandom(20260101 + n) },
    });
    const sandbox = app.sandbox!;
    // Start-up work (host, storage resources, the settle) is not part of the measurement.
    latencies.length = 0;
    memory.reset();

    const t = performance.now();
    await sandbox.advance({ days: ADVANCE_DAYS });
    const wallMs = performance.now() - t;

    const peak = memory.stop();
    const deliveries = sandbox.deliveries();
    const handledEvents = new Set(deliveries.filter((d) => d.outcome === 'delivered').map((d) => d.eventId))
      .size;
    const benchTarget = (subject: unknown) =>
      typeof subject === 'string' && subject.startsWith(`vaults/${VAULT}/secrets/bench-secret-`);
    const published = sandbox.eventGrid.published().filter((p) => benchTarget(p.event.subject)).length;
    const cards = sandbox.webhooks().filter((w) => JSON.stringify(w.body).includes('bench-secret-')).length;
    figures = {
      n,
      wallMs,
      raised: sandbox.events().length,
      handledEvents,
      deliveries: deliveries.length,
      duplicates: deliveries.filter((d) => d.copy === 2).length,
      failed: deliveries.filter((d) => d.outcome !== 'delivered').length,
      audit: await countAudit(azurite, prefix),
      published,
      cards,
      latencies: [...latencies].sort((a, b) => a - b),
      peak,
    };
  } finally {
    memory.stop();
    restoreFetch();
    await app?.stop();
    restoreConsole();
  }
  print(figures);
}

interface Figures {
  n: number;
  wallMs: number;
  raised: number;
  handledEvents: number;
  deliveries: number;
  duplicates: number;
  failed: number;
  audit: number;
  published: number;
  cards: number;
  latencies: number[];
  peak: { rss: number; heapUsed: number };
}

/** Audit records of the bench secrets' notifications, read straight from the run's tables. */
async function countAudit(azurite: RunningAzurite, prefix: string): Promise<number> {
  const stores = createStateStores({
    connectionString: azurite.connectionString,
    tablePrefix: prefix,
    workQueueName: `${prefix}-work`,
    clock: systemClock,
  });
  const start = Date.parse(START);
  // Two windows (near-expiry days 1..10, expiries days 31..40) keep each query under the 1000 cap.
  const windows = [
    [start - DAY_MS, start + 20 * DAY_MS],
    [start + 20 * DAY_MS, start + (ADVANCE_DAYS + 1) * DAY_MS],
  ] as const;
  let count = 0;
  for (const [since, until] of windows) {
    const records = await stores.audit.query({ since: new Date(since), until: new Date(until), limit: 1000 });
    count += records.filter(
      (r) => NOTIFY_ACTIONS.has(r.action) && r.target.startsWith(`vaults/${VAULT}/secrets/bench-secret-`),
    ).length;
  }
  return count;
}

function print(f: Figures): void {
  const perSecond = (count: number) => ((count * 1000) / f.wallMs).toFixed(0);
  const pct = (p: number) =>
    f.latencies[Math.min(f.latencies.length - 1, Math.floor(f.latencies.length * p))];
  const line = (label: string, value: string) => console.log(`  ${label.padEnd(34)} ${value}`);
  console.log(`N = ${f.n} secrets`);
  line('advance wall time', ms(f.wallMs));
  line(
    'events raised / handled',
    `${f.raised} / ${f.handledEvents}  = ${perSecond(f.handledEvents)} events/s`,
  );
  line(
    'deliveries (of which duplicates)',
    `${f.deliveries} (${f.duplicates})  = ${perSecond(f.deliveries)} deliveries/s${f.failed ? `, ${f.failed} not delivered` : ''}`,
  );
  if (f.latencies.length > 0) {
    const mean = f.latencies.reduce((a, b) => a + b, 0) / f.latencies.length;
    line(
      'delivery latency',
      `p50 ${ms(pct(0.5)!)}  p95 ${ms(pct(0.95)!)}  p99 ${ms(pct(0.99)!)}  max ${ms(f.latencies.at(-1)!)}  mean ${ms(mean)}`,
    );
  }
  line('peak RSS / heap used', `${mb(f.peak.rss)} / ${mb(f.peak.heapUsed)}`);
  const auditOk = f.audit === f.handledEvents;
  const notifyOk = f.published + f.cards === 2 * f.handledEvents && f.published === f.cards;
  line(
    'check: audit records',
    `${f.audit} for ${f.handledEvents} distinct events  ${auditOk ? 'OK' : 'MISMATCH'}`,
  );
  line(
    'check: notifications',
    `${f.published} Event Grid + ${f.cards} Teams = ${f.published + f.cards} (expected ${2 * f.handledEvents})  ${notifyOk ? 'OK' : 'MISMATCH'}`,
  );
}

/**
 * Times each delivery the sandbox posts to the host (request sent to response read), by observing
 * the global `fetch` the local app's delivery target uses: the sandbox itself records only
 * sandbox-clock times. Returns the restore function.
 */
function timeDeliveries(into: number[]): () => void {
  const original = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.includes(DELIVERY_PATH)) return original(input, init);
    const t = performance.now();
    const response = await original(input, init);
    const body = await response.text();
    into.push(performance.now() - t);
    return new Response(body, { status: response.status, headers: response.headers });
  };
  return () => {
    globalThis.fetch = original;
  };
}

/** Samples `process.memoryUsage()` every 50 ms; `stop()` returns the peaks since the last `reset()`. */
function sampleMemory() {
  const peak = { rss: 0, heapUsed: 0 };
  const sample = () => {
    const m = process.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss);
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
  };
  let timer: NodeJS.Timeout | undefined = setInterval(sample, SAMPLE_MS);
  return {
    reset() {
      peak.rss = 0;
      peak.heapUsed = 0;
      sample();
    },
    stop() {
      if (timer) {
        sample();
        clearInterval(timer);
        timer = undefined;
      }
      return { ...peak };
    },
  };
}

const quietLogger: HostLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** The app's own loggers write to the console; under load that would drown the figures. */
function silenceConsole(): () => void {
  const methods = ['log', 'info', 'warn', 'debug'] as const;
  const saved = methods.map((m) => [m, console[m]] as const);
  for (const m of methods) console[m] = () => undefined;
  return () => {
    for (const [m, original] of saved) console[m] = original;
  };
}

function ms(value: number): string {
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`;
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
