/**
 * The run engine under chaos, longer than the CI test (test/chaos/chaos.test.ts): the same harness
 * (test/chaos/harness.ts) on a local in-memory Azurite, with 1, 4 and 8 workers, plus a quiet
 * baseline (same workload, no faults). Prints runs per second, Table operations per recorded step
 * (everything included: starts, sweeps, audit, outboxes, injections) and the invariants' counts,
 * which must all be 0. Figures only; Azurite is not Azure.
 *
 * Run alone with `npx tsx bench/chaos.ts`, or `npm run bench -- chaos`.
 */
import { type ChaosReport, runChaos } from '../test/chaos/harness';
import { startAzurite } from '../test/support/azurite';

const SEED = 20261127;

export async function main(): Promise<void> {
  const azurite = await startAzurite();
  try {
    const common = {
      connectionString: azurite.connectionString,
      seed: SEED,
      runs: 100,
      legacyRuns: 5,
      sweepers: 2,
      // All runs start within 2 s: runs per second then measures the workers, not the start rate.
      startSpreadMs: 2_000,
      chaosMs: 20_000,
      calmMs: 40_000,
      faultRate: 0.03,
    };
    report('quiet, 4 workers', await runChaos({ ...common, workers: 4, quiet: true }));
    for (const workers of [1, 4, 8]) {
      report(`chaos, ${workers} worker${workers === 1 ? '' : 's'}`, await runChaos({ ...common, workers }));
    }
  } finally {
    await azurite.stop();
  }
}

function report(label: string, r: ChaosReport): void {
  const invariants = Object.entries(r.invariants)
    .map(([name, list]) => `${name} ${list.length}`)
    .join(', ');
  const injected = Object.entries(r.injected)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, count]) => `${name} ${count}`)
    .join(', ');
  const outcomes = Object.entries(r.outcomes)
    .map(([name, count]) => `${name} ${count}`)
    .join(', ');
  console.log(`${label} (seed ${r.seed})`);
  console.log(
    `  runs (runs/s to the last end)     ${r.runs} (${r.runsPerSecond.toFixed(2)} runs/s; harness ${(r.wallMs / 1000).toFixed(1)} s)`,
  );
  console.log(`  outcomes                          ${outcomes}`);
  console.log(
    `  steps recorded                    ${r.stepsRecorded} = ${r.stepsPerSecond.toFixed(1)} steps/s`,
  );
  console.log(
    `  Table operations per step         ${r.tableOpsPerStep.toFixed(1)} (${r.tableOps} Table, ${r.queueOps} queue requests)`,
  );
  console.log(`  deliveries / poisoned             ${r.deliveries} / ${r.poisoned}`);
  console.log(`  migrations / deferrals            ${r.migrations} / ${r.deferrals}`);
  console.log(`  injected                          ${injected || 'nothing'}`);
  console.log(`  invariants (all must be 0)        ${invariants}`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
