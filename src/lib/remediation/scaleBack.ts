/**
 * The scale-back timer's use case: for each playbook with a `scaleBack` section, lower what
 * stampkeeper raised by one step once its signal stayed low for the window since the last change.
 * It decides cheaply and starts a `remediation` run (direction `lower`) that applies the guardrails
 * again and changes the value: the timer never changes anything itself.
 *
 * A target is left alone while a run of it is active, when stampkeeper never changed it, when its
 * value is not the one stampkeeper set (a person changed it: it is theirs), at its floor, when the
 * last change is more recent than the window, and when any minute of the window has no data or is
 * not below the threshold (missing data never counts as low).
 */
import { type Playbook, playbookTarget, type ScalingPlaybook } from '../config/playbooks';
import type { UseCaseContext } from '../core/context';
import { describeError, type Logger } from '../core/logging';
import type { CapacityPorts } from '../ports/capacity';
import type { Clock } from '../ports/clock';
import type { MetricsReader } from '../ports/monitoring';
import type { RunEngine } from '../runs';
import { isTerminal } from '../runs/types';
import { nextDown } from './plan';
import { priorLedger, REMEDIATION_KIND, type RemediationInput } from './playbookRun';
import { scalerFor } from './scalers';
import { allBelow, readSignal } from './signal';

const MINUTE_MS = 60_000;
/**
 * Platform metrics arrive a few minutes late (about 3): the window ends this long before now, so
 * that its last minutes have had time to arrive instead of reading as missing.
 */
export const INGESTION_MARGIN_MS = 5 * MINUTE_MS;
/** Runs read per target: enough to find the last change (see `priorLedger`). */
const HISTORY_LIMIT = 100;

export interface ScaleBackDeps {
  playbooks: readonly Playbook[];
  capacity: CapacityPorts;
  metrics: MetricsReader;
  runs: Pick<RunEngine, 'startRun' | 'runsForTarget'>;
  playbookChannels(playbook: Playbook): string[];
  clock: Clock;
  logger: Logger;
  dryRun: boolean;
}

export interface ScaleBackReport {
  playbook: string;
  target: string;
  /** `started` (a run lowers it), or why not. */
  outcome:
    | 'started'
    | 'active'
    | 'neverChanged'
    | 'changedOutside'
    | 'atFloor'
    | 'tooRecent'
    | 'notLow'
    | 'failed';
  runId?: string;
  detail?: string;
}

/**
 * Looks at every playbook that scales back, one after the other (the policy holds a few); a
 * playbook whose look fails is reported and the others go on. Needs the permissions of the reads
 * (the capacity ports' read actions, Monitoring Reader on the signal's resource).
 */
export async function scaleBackPlaybooks(
  deps: ScaleBackDeps,
  ctx: UseCaseContext,
): Promise<ScaleBackReport[]> {
  const reports: ScaleBackReport[] = [];
  for (const playbook of deps.playbooks) {
    if (playbook.action === 'notify-only' || !playbook.scaleBack) continue;
    const target = playbookTarget(playbook.target);
    try {
      reports.push(await scaleBackOne(playbook, target, deps, ctx));
    } catch (error) {
      deps.logger.warn('scale-back look failed', {
        playbook: playbook.name,
        target,
        error: describeError(error),
      });
      reports.push({
        playbook: playbook.name,
        target,
        outcome: 'failed',
        detail: error instanceof Error ? error.message : String(error),
      });
    }
  }
  return reports;
}

async function scaleBackOne(
  playbook: ScalingPlaybook,
  target: string,
  deps: ScaleBackDeps,
  ctx: UseCaseContext,
): Promise<ScaleBackReport> {
  const scaleBack = playbook.scaleBack!;
  const report = (outcome: ScaleBackReport['outcome'], detail?: string, runId?: string): ScaleBackReport => ({
    playbook: playbook.name,
    target,
    outcome,
    ...(detail ? { detail } : {}),
    ...(runId ? { runId } : {}),
  });
  const now = deps.clock.now();
  const runs = await deps.runs.runsForTarget(
    REMEDIATION_KIND,
    target,
    { limit: HISTORY_LIMIT },
    {
      abortSignal: ctx.abortSignal,
    },
  );
  const latest = runs[0];
  if (latest && !isTerminal(latest.state))
    return report('active', `run ${latest.id} is ${latest.state}`, latest.id);
  const ledger = priorLedger(runs, '', now);
  const last = ledger.changes.at(-1);
  if (!last) return report('neverChanged');
  const window = scaleBack.forMinutes * MINUTE_MS;
  const since = now.getTime() - Date.parse(last.at);
  if (since < window + INGESTION_MARGIN_MS)
    return report('tooRecent', `the last change (${last.at}) is ${Math.floor(since / MINUTE_MS)} min old`);
  const reading = await scalerFor(playbook, deps.capacity).read({ abortSignal: ctx.abortSignal });
  if (reading.value !== last.to)
    return report('changedOutside', `the value is ${reading.value}, stampkeeper set ${last.to}`);
  if (nextDown(reading, playbook) === undefined) return report('atFloor', `${reading.value} ${reading.unit}`);
  const end = new Date(now.getTime() - INGESTION_MARGIN_MS);
  const points = await readSignal(
    deps.metrics,
    playbook.signal,
    { start: new Date(end.getTime() - window), end },
    ctx.abortSignal,
  );
  const low = allBelow(points, scaleBack.below);
  if (!low.low) {
    return report(
      'notLow',
      low.missing > 0
        ? `${low.missing} of ${points.length} minutes have no data`
        : `highest ${low.highest} is not below ${scaleBack.below}`,
    );
  }
  const input: RemediationInput = {
    playbook: playbook as RemediationInput['playbook'],
    direction: 'lower',
    trigger: 'scale-back',
    alert: null,
    evidence: { highest: low.highest!, below: scaleBack.below, forMinutes: scaleBack.forMinutes },
    channels: deps.playbookChannels(playbook),
  };
  const { run, created } = await deps.runs.startRun(
    REMEDIATION_KIND,
    {
      target,
      input,
      dryRun: deps.dryRun || playbook.dryRun,
      actor: ctx.actor,
      correlationId: ctx.correlationId,
      // Two ticks before the run ends find the same run: one step down per change.
      idempotencyKey: `scale-back|${target}|${last.runId}|${last.at}|${reading.value}`,
    },
    { abortSignal: ctx.abortSignal },
  );
  deps.logger.info(created ? 'scale-back started' : 'scale-back already started', {
    playbook: playbook.name,
    target,
    runId: run.id,
  });
  return report('started', `${reading.value} ${reading.unit}: highest ${low.highest}`, run.id);
}
