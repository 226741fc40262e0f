/**
 * Event Grid's largest batch on the real app: 5,000 `Microsoft.KeyVault.SecretNearExpiry` events in
 * one delivery to `/runtime/webhooks/eventgrid?functionName=keyVaultEvents` of the local host
 * (`startLocalApp`, on the sandbox, storage on an in-memory Azurite), while a client polls
 * `GET /api/health` one request after the other.
 *
 * Prints the time to the answer of the batch (Event Grid waits 30 s before it counts a delivery as
 * failed), the events handled per second, and the health requests answered meanwhile with their
 * latency (p50, p95, worst). Figures only, never assertions: Azurite and the in-process sandbox are
 * not Azure (the app and the host share one Node.js thread here, unlike the Functions worker).
 *
 * The events name 5,000 secrets of the sandbox vault, not named by the policy, so each is reported
 * to the default channels (Event Grid topic and Teams webhook). At ~600 bytes an event, the body is
 * larger than the 1 MB Event Grid puts in one delivery; it measures the app's per-event cost at the
 * largest event count.
 *
 * Run alone with `npx tsx bench/eventGridBatch.ts`, or `npm run bench -- eventGridBatch`.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { newId } from '../src/lib/core/ids';
import { type RunningLocalApp, startLocalApp } from '../src/local/app';
import type { HostLogger } from '../src/local/host/types';
import type { Scenario } from '../src/local/sandbox';
import { type RunningAzurite, startAzurite } from '../test/support/azurite';

/** Event Grid's largest batch. */
const EVENTS = Number(process.env.BENCH_EVENTS ?? 5_000);
const VAULT = 'stampkeeper-sandbox';
const START = '2026-01-01T00:00:00Z';

export async function main(): Promise<void> {
  const azurite = await startAzurite();
  try {
    await benchBatch(azurite);
  } finally {
    await azurite.stop();
  }
}

/**
 * 5,000 secrets expiring inside the 30-day window. No Event Grid subscription: the sandbox's own
 * near-expiry events go nowhere, the bench delivers them itself in one batch.
 */
function scenario(): Scenario {
  return {
    clock: { start: START },
    keyVault: {
      vaults: [
        {
          name: VAULT,
          secrets: Array.from({ length: EVENTS }, (_, i) => ({
            name: `batch-secret-${String(i).padStart(4, '0')}`,
            expiresInDays: 20,
            tags: { purpose: 'bench' },
          })),
        },
      ],
    },
    eventGrid: { subscriptions: [] },
  };
}

async function benchBatch(azurite: RunningAzurite): Promise<void> {
  const prefix = `g${newId().replace(/-/g, '').slice(0, 10)}`.toLowerCase();
  const restoreConsole = silenceConsole();
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
      sandbox: { scenario: scenario() },
    });
    const sandbox = app.sandbox!;
    const body = JSON.stringify(nearExpiryEvents(sandbox.estate(), sandbox.clock.now()));
    // One request first, so that start-up work (tables, queues) is not measured.
    await fetch(`${app.url}/api/health`).then((r) => r.text());

    const health = pollHealth(app.url);
    const t = performance.now();
    const response = await fetch(`${app.url}/runtime/webhooks/eventgrid?functionName=keyVaultEvents`, {
      method: 'POST',
      headers: { 'aeg-event-type': 'Notification', 'content-type': 'application/json' },
      body,
    });
    await response.text();
    const wallMs = performance.now() - t;
    const latencies = await health.stop();

    // The same size of junk: unknown event types and events naming a vault the app may not call.
    const junk = JSON.stringify(junkEvents(EVENTS, sandbox.clock.now()));
    const tj = performance.now();
    const junkResponse = await fetch(`${app.url}/runtime/webhooks/eventgrid?functionName=keyVaultEvents`, {
      method: 'POST',
      headers: { 'aeg-event-type': 'Notification', 'content-type': 'application/json' },
      body: junk,
    });
    await junkResponse.text();
    const junkMs = performance.now() - tj;
    const rejections = (await fetch(`${app.url}/api/rejections`).then((r) => r.json())) as {
      count: number;
      total: number;
    };

    const bench = (text: string) => text.includes('batch-secret-');
    figures = {
      junk: {
        status: junkResponse.status,
        wallMs: junkMs,
        buckets: rejections.count,
        counted: rejections.total,
      },
      status: response.status,
      bytes: Buffer.byteLength(body),
      wallMs,
      published: sandbox.eventGrid.published().filter((p) => bench(JSON.stringify(p.event))).length,
      cards: sandbox.webhooks().filter((w) => bench(JSON.stringify(w.body))).length,
      health: latencies.sort((a, b) => a - b),
    };
  } finally {
    await app?.stop();
    restoreConsole();
  }
  print(figures);
}

interface Figures {
  junk: { status: number; wallMs: number; buckets: number; counted: number };
  status: number;
  bytes: number;
  wallMs: number;
  published: number;
  cards: number;
  health: number[];
}

type Estate = ReturnType<NonNullable<RunningLocalApp['sandbox']>['estate']>;

/** One SecretNearExpiry per bench secret, for its current version, as Key Vault publishes it. */
function nearExpiryEvents(estate: Estate, now: Date): Array<Record<string, unknown>> {
  const vault = estate.keyVault.vaults.find((v) => v.name === VAULT);
  if (!vault) throw new Error(`the sandbox has no vault ${VAULT}`);
  return vault.secrets
    .filter((s) => s.name.startsWith('batch-secret-'))
    .map((secret) => {
      const current = secret.versions.find((v) => v.current)!;
      const epoch = (iso: string | undefined) => (iso ? Math.floor(Date.parse(iso) / 1000) : null);
      return {
        id: randomUUID(),
        topic: vault.resourceId,
        subject: secret.name,
        eventType: 'Microsoft.KeyVault.SecretNearExpiry',
        eventTime: now.toISOString(),
        data: {
          Id: current.id,
          VaultName: VAULT,
          ObjectType: 'Secret',
          ObjectName: secret.name,
          Version: current.version,
          NBF: epoch(current.notBefore),
          EXP: epoch(current.expires),
        },
        dataVersion: '1',
        metadataVersion: '1',
      };
    });
}

/** `count` junk events: half of an unhandled type, half naming a vault outside the policy. */
function junkEvents(count: number, now: Date): Array<Record<string, unknown>> {
  return Array.from({ length: count }, (_, i) => ({
    id: randomUUID(),
    topic: '/subscriptions/0/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/somewhere-else',
    subject: `junk-${i}`,
    eventType: i % 2 === 0 ? 'Microsoft.KeyVault.KeyNearExpiry' : 'Microsoft.KeyVault.SecretNearExpiry',
    eventTime: now.toISOString(),
    data: {
      Id: `https://somewhere-else.vault.azure.net/secrets/junk-${i}/0123456789abcdef0123456789abcdef`,
      VaultName: 'somewhere-else',
      ObjectType: i % 2 === 0 ? 'Key' : 'Secret',
      ObjectName: `junk-${i}`,
      Version: '0123456789abcdef0123456789abcdef',
      NBF: null,
      EXP: Math.floor(now.getTime() / 1000) + 86_400,
    },
    dataVersion: '1',
    metadataVersion: '1',
  }));
}

/** GET /api/health, one request after the other, until stopped; resolves with each latency. */
function pollHealth(url: string): { stop(): Promise<number[]> } {
  const latencies: number[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t = performance.now();
      await fetch(`${url}/api/health`).then((r) => r.text());
      latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return latencies;
    },
  };
}

function print(f: Figures): void {
  const line = (label: string, value: string) => console.log(`  ${label.padEnd(34)} ${value}`);
  const pct = (p: number) => f.health[Math.min(f.health.length - 1, Math.floor(f.health.length * p))] ?? 0;
  console.log(
    `${EVENTS} SecretNearExpiry events in one delivery (${(f.bytes / 1024 / 1024).toFixed(2)} MiB)`,
  );
  line('answer', `${f.status} after ${ms(f.wallMs)}  = ${((EVENTS * 1000) / f.wallMs).toFixed(0)} events/s`);
  line(
    'GET /api/health meanwhile',
    `${f.health.length} answered  p50 ${ms(pct(0.5))}  p95 ${ms(pct(0.95))}  worst ${ms(f.health.at(-1) ?? 0)}`,
  );
  line(
    `${EVENTS} junk events (rejected)`,
    `${f.junk.status} after ${ms(f.junk.wallMs)}; ${f.junk.counted} counted in ${f.junk.buckets} bucket(s) (one audit record each)`,
  );
  const ok = f.published === EVENTS && f.cards === EVENTS;
  line(
    'check: notifications',
    `${f.published} Event Grid + ${f.cards} Teams (expected ${EVENTS} each)  ${ok ? 'OK' : 'MISMATCH'}`,
  );
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

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
