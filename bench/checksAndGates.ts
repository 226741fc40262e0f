/**
 * Maintenance checks and health gates on the real app: `startLocalApp` on the default scenario and
 * the bundled policy (storage on an in-memory Azurite, timers off), the same estate `npm start` shows.
 *
 * Prints, per check, the time `POST /api/checks/{name}/run` takes (read the estate through the real
 * SDK clients on the sandbox, store the report, audit, notify); for the gate, the time of one
 * evaluation in the request (two KQL queries and one metrics batch), sequential and 8 at a time;
 * and the waiting mode: from the clock move that makes the data pass to the status URL saying
 * `passed` (a queue message, an evaluation, a run update). Figures only, never assertions: Azurite
 * and the in-process sandbox are not Azure, and the app shares its thread with them here.
 *
 * Run alone with `npx tsx bench/checksAndGates.ts`, or `npm run bench -- checksAndGates`.
 */
import { performance } from 'node:perf_hooks';
import { newId } from '../src/lib/core/ids';
import { type RunningLocalApp, startLocalApp } from '../src/local/app';
import type { HostLogger } from '../src/local/host/types';
import { startAzurite } from '../test/support/azurite';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const CHECKS = ['backupReadiness', 'quotaHeadroom', 'platformVersions', 'credentialHygiene'];
const WORKSPACE = '6a1f3c2e-8b4d-4e5f-9a7b-1c2d3e4f5a6b';

export async function main(): Promise<void> {
  const azurite = await startAzurite();
  const prefix = `c${newId().replace(/-/g, '').slice(0, 10)}`.toLowerCase();
  const restoreConsole = silenceConsole();
  let app: RunningLocalApp | undefined;
  const lines: string[] = [];
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
    });
    const url = app.url;
    const post = (path: string, body?: unknown) =>
      fetch(`${url}${path}`, {
        method: 'POST',
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });

    // Warm-up: the first call of each loads its SDK chunk.
    for (const check of CHECKS) await (await post(`/api/checks/${check}/run`)).text();
    await (await post('/api/gates/stamp-health', {})).text();

    for (const check of CHECKS) {
      const times: number[] = [];
      let status = '';
      for (let i = 0; i < Math.max(1, RUNS / 4); i++) {
        const t = performance.now();
        const answer = (await (await post(`/api/checks/${check}/run`)).json()) as { status: string };
        times.push(performance.now() - t);
        status = answer.status;
      }
      lines.push(row(`check ${check} (${status})`, times));
    }

    const sequential: number[] = [];
    let verdict = '';
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      verdict = ((await (await post('/api/gates/stamp-health', {})).json()) as { verdict: string }).verdict;
      sequential.push(performance.now() - t);
    }
    lines.push(row(`gate stamp-health, one at a time (${verdict})`, sequential));

    const parallel: number[] = [];
    const wall = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < Math.ceil(RUNS / 8); i++) {
          const t = performance.now();
          await (await post('/api/gates/stamp-health', {})).text();
          parallel.push(performance.now() - t);
        }
      }),
    );
    const wallMs = performance.now() - wall;
    lines.push(
      `${row('gate stamp-health, 8 at a time', parallel)}  (${((parallel.length * 1000) / wallMs).toFixed(1)}/s)`,
    );

    // The waiting mode: failing data, a waiting evaluation, then data that passes and a clock move.
    await post('/sandbox/monitor/logs/result', {
      workspaceId: WORKSPACE,
      query: 'stamp-failure-rate',
      result: 'fail',
    });
    const started = (await (
      await post('/api/gates/stamp-health', { wait: { timeoutMinutes: 30 } })
    ).json()) as {
      statusUrl: string;
    };
    await until(
      async () =>
        ((await (await fetch(started.statusUrl)).json()) as { evaluations: number }).evaluations >= 1,
    );
    await post('/sandbox/monitor/logs/result', {
      workspaceId: WORKSPACE,
      query: 'stamp-failure-rate',
      result: 'pass',
    });
    const moved = performance.now();
    await post('/sandbox/clock/advance', { minutes: 1 });
    await until(
      async () => ((await (await fetch(started.statusUrl)).json()) as { status: string }).status === 'passed',
    );
    lines.push(`  ${'waiting gate: clock move -> passed'.padEnd(44)} ${ms(performance.now() - moved)}`);
  } finally {
    await app?.stop();
    await azurite.stop();
    restoreConsole();
  }
  console.log(`Checks and gates on the default scenario (${RUNS} gate evaluations per line)`);
  for (const line of lines) console.log(line);
}

function row(label: string, times: number[]): string {
  const sorted = [...times].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
  return `  ${label.padEnd(44)} n=${String(sorted.length).padEnd(3)} p50 ${ms(pct(0.5))}  p95 ${ms(pct(0.95))}  worst ${ms(sorted.at(-1) ?? 0)}`;
}

async function until(probe: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2400; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('gave up waiting (60 s)');
}

const quietLogger: HostLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** The app's own loggers write to the console; they would drown the figures. */
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
