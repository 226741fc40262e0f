/**
 * A playbook's execution, as a run of the step machine (`remediation`): plan (read the target,
 * apply the guardrails) → [approval] → act (check, then change once) → verify (the signal recovers,
 * the alert resolves, or the time runs out) → finish. One run per target at a time (exclusive
 * target), so a target's episode is serialized: alerts that arrive while a raise is under way join
 * it instead of raising again. Every step reads the service before it acts: a retry after a crash
 * never changes a value twice.
 *
 * The guardrails' memory is the target's ledger: each run records the changes of the last 24 hours
 * (its plan reads the previous run's), so the cooldown and the daily cap hold across runs without
 * another store. A run that may have acted but did not record it (its act step failed or was
 * cancelled mid-way) is counted as having acted.
 */
import type { Playbook, ScalingPlaybook } from '../config/playbooks';
import type { CapacityPorts } from '../ports/capacity';
import type { MetricsReader } from '../ports/monitoring';
import type { AuditLog } from '../ports/state';
import type { RunKindDefinition, StepContext, StepResult } from '../runs';
import type { JsonObject, Run } from '../runs/types';
import {
  type Decision,
  EMPTY_LEDGER,
  type Ledger,
  type LedgerEntry,
  planLower,
  planRaise,
  type Reading,
  trimLedger,
  withChange,
} from './plan';
import { type Scaler, scalerFor } from './scalers';
import { latestPoint, readSignal } from './signal';

export const REMEDIATION_KIND = 'remediation';
/** The audit action the intake records every alert delivery under (see handleAlert.ts). */
export const ALERT_RECEIVE_ACTION = 'alert.receive';

const MINUTE_MS = 60_000;
/** An approval not given within this time cancels the run: the alert it answered is stale by then. */
const APPROVAL_EXPIRES_MS = 4 * 60 * MINUTE_MS;
/** Approval (4 h) + verification (at most a day) + retries. */
const DEADLINE_MS = 3 * 24 * 60 * MINUTE_MS;
/** How often verification looks at the signal. */
const VERIFY_POLL_MS = MINUTE_MS;
/** Runs looked at for the ledger (newest first): far more than one day's runs of a target. */
const HISTORY_LIMIT = 100;

/** The alert a run answers, as recorded in its input: identity and what it measured, no payload. */
export interface AlertFacts extends JsonObject {
  alertId: string;
  alertRule: string;
  severity: string;
  monitorCondition: string;
  firedDateTime: string;
  /** The alert's first target, lower-cased (its audit target). */
  target: string;
  metric: string | null;
  value: number | null;
  threshold: string | null;
}

export interface RemediationInput extends JsonObject {
  /** The playbook as the policy said when the run started. */
  playbook: Playbook & JsonObject;
  direction: 'raise' | 'lower' | 'notify';
  trigger: 'alert' | 'scale-back';
  alert: AlertFacts | null;
  /** Scale-back: what the signal showed over the window (the reason). */
  evidence: { highest: number; below: number; forMinutes: number } | null;
  channels: string[];
}

/** One thing a run tells people and the audit, at most once per run and label. */
export interface RemediationNotice {
  /** `act`, `finish`... unique within a run. */
  label: string;
  /** Sent to the run's channels; false: audited only. */
  notify: boolean;
  eventType: string;
  severity: 'info' | 'warning' | 'critical';
  title: string;
  summary: string;
  facts: Record<string, string>;
  audit: {
    action: string;
    outcome: 'succeeded' | 'failed' | 'skipped' | 'planned' | 'reported';
    before?: Record<string, unknown>;
    after?: Record<string, unknown>;
    reason: string;
  };
}

/** What the remediation steps need; built once per process (`AppDeps`). */
export interface RemediationDeps {
  capacity: CapacityPorts;
  metrics: MetricsReader;
  audit: AuditLog;
  /** The runs of a target, newest first (`runsForTarget`). */
  history(target: string, limit: number): Promise<Run[]>;
  /** Tells the run's channels and the audit, once per (run, notice label). */
  announce(run: Readonly<Run>, notice: RemediationNotice, abortSignal?: AbortSignal): Promise<void>;
  environment: string;
}

export interface PlanOutput extends JsonObject {
  decision: Decision;
  reading: (Pick<Reading, 'value' | 'unit' | 'minimum' | 'limit'> & JsonObject) | null;
  ledger: Ledger;
  because: string;
}

export interface ActOutput extends JsonObject {
  applied: boolean;
  dryRun: boolean;
  at: string;
  before: number;
  after: number;
  unit: string;
  ledger: Ledger;
  /** Set when the value had already been changed by an earlier attempt of this step. */
  already: boolean;
  /** Set when the value changed between plan and act: nothing was done. */
  changedSincePlan: boolean;
}

export function inputOf(run: Readonly<Run>): RemediationInput {
  return run.input as RemediationInput;
}

function scaling(input: RemediationInput): ScalingPlaybook {
  return input.playbook as ScalingPlaybook;
}

function planOf(ctx: StepContext): PlanOutput | undefined {
  return ctx.outputs.plan as PlanOutput | undefined;
}

/** The run's plan, read from the run itself (for the approval's `when`). */
function recordedPlan(run: Readonly<Run>): PlanOutput | undefined {
  return run.steps.find((s) => s.name === 'plan')?.output as PlanOutput | undefined;
}

/**
 * The ledger before this run: the previous run's (its act's, or its plan's when it did not act),
 * plus a change it may have made without recording it. Runs are newest first.
 */
export function priorLedger(runs: readonly Run[], currentId: string, now: Date): Ledger {
  for (const run of runs) {
    if (run.id === currentId) continue;
    const plan = run.steps.find((s) => s.name === 'plan');
    const act = run.steps.find((s) => s.name === 'act');
    const planned = plan?.output as PlanOutput | undefined;
    if (!planned?.ledger) continue;
    const acted = act?.output as ActOutput | undefined;
    if (acted?.ledger) return trimLedger(acted.ledger, now);
    const decision = planned.decision;
    // The act step ran (or was running) and recorded nothing: assume it changed the value.
    if (
      decision.act &&
      !run.dryRun &&
      act &&
      (act.status === 'failed' || act.status === 'cancelled' || act.status === 'running') &&
      act.attempts > 0
    ) {
      const change: LedgerEntry = {
        at: (act.startedOn ?? run.updatedOn).toISOString(),
        direction: decision.migrate ? 'migrate' : decision.direction,
        from: decision.from,
        to: decision.to,
        runId: run.id,
      };
      return withChange(planned.ledger, change, now);
    }
    return trimLedger(planned.ledger, now);
  }
  return EMPTY_LEDGER;
}

/** Whether the audit holds a Resolved delivery of `alertId` (or, without one, of any alert of the playbook) since `since`. */
export async function resolvedSince(
  audit: AuditLog,
  query: { target: string; since: Date; until: Date; alertId?: string; playbook: string },
  abortSignal?: AbortSignal,
): Promise<{ alertId: string; at: Date } | undefined> {
  const records = await audit.query(
    { target: query.target, since: query.since, until: query.until, limit: 1000 },
    { abortSignal },
  );
  for (const r of records) {
    if (r.action !== ALERT_RECEIVE_ACTION) continue;
    const before = r.before ?? {};
    if (before.monitorCondition !== 'Resolved') continue;
    const alertId = typeof before.alertId === 'string' ? before.alertId : '';
    const playbook = (r.after as { playbook?: unknown } | undefined)?.playbook;
    if (
      query.alertId !== undefined
        ? alertId.toLowerCase() === query.alertId.toLowerCase()
        : playbook === query.playbook
    )
      return { alertId, at: r.time };
  }
  return undefined;
}

function becauseOf(input: RemediationInput): string {
  if (input.alert) {
    const a = input.alert;
    const measured =
      a.metric && a.value !== null
        ? `: ${a.metric} was ${a.value}${a.threshold ? ` (threshold ${a.threshold})` : ''}`
        : '';
    return `alert ${a.alertRule} (${a.severity}) fired at ${a.firedDateTime}${measured}`;
  }
  if (input.evidence) {
    const e = input.evidence;
    return `${scaling(input).signal.metric} stayed below ${e.below} for ${e.forMinutes} min (highest ${e.highest})`;
  }
  return 'asked for';
}

function readingFacts(reading: Reading): PlanOutput['reading'] {
  return {
    value: reading.value,
    unit: reading.unit,
    minimum: reading.minimum,
    limit: reading.limit ?? null,
  } as PlanOutput['reading'];
}

/** The `remediation` run kind. */
export function remediationKind(deps: RemediationDeps): RunKindDefinition {
  const scalers = new Map<string, Scaler>();
  const scalerOf = (playbook: ScalingPlaybook): Scaler => {
    // Keyed by the playbook as the run carries it: a policy change never reuses an older one.
    const key = JSON.stringify(playbook);
    let scaler = scalers.get(key);
    if (!scaler) {
      scaler = scalerFor(playbook, deps.capacity);
      if (scalers.size > 100) scalers.clear();
      scalers.set(key, scaler);
    }
    return scaler;
  };

  const plan = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    const input = inputOf(run);
    if (input.direction === 'notify') return { status: 'done', output: { notify: true } };
    const playbook = scaling(input);
    const because = becauseOf(input);
    const history = await deps.history(run.target, HISTORY_LIMIT);
    const ledger = priorLedger(history, run.id, ctx.now);
    if (input.direction === 'raise' && input.alert) {
      // Out of order: the alert's Resolved came first. Acting on a condition already gone would
      // only have to be undone.
      const resolved = await resolvedSince(
        deps.audit,
        {
          target: input.alert.target,
          alertId: input.alert.alertId,
          playbook: playbook.name,
          since: new Date(Date.parse(input.alert.firedDateTime) - MINUTE_MS),
          until: new Date(ctx.now.getTime() + MINUTE_MS),
        },
        ctx.abortSignal,
      );
      if (resolved) {
        const decision: Decision = {
          act: false,
          code: 'resolved',
          why: `the alert was already resolved (${resolved.at.toISOString()}) when the run planned: nothing to raise`,
          severity: 'info',
        };
        return {
          status: 'done',
          output: { decision, reading: null, ledger, because } as PlanOutput,
        };
      }
    }
    const reading = await scalerOf(playbook).read({ abortSignal: ctx.abortSignal });
    const decision =
      input.direction === 'raise'
        ? planRaise({ reading, playbook, ledger, now: ctx.now, because })
        : planLower({ reading, playbook, ledger, now: ctx.now, because });
    ctx.logger.info('remediation planned', {
      playbook: playbook.name,
      target: run.target,
      act: decision.act,
      ...(decision.act ? { from: decision.from, to: decision.to } : { code: decision.code }),
    });
    return {
      status: 'done',
      output: { decision, reading: readingFacts(reading), ledger, because } as PlanOutput,
    };
  };

  const act = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    const input = inputOf(run);
    if (input.direction === 'notify') {
      await deps.announce(run, notifyOnlyNotice(input, run, deps.environment), ctx.abortSignal);
      return { status: 'done', output: { notified: input.channels } };
    }
    const p = planOf(ctx);
    const decision = p?.decision;
    if (!p || !decision?.act) return { status: 'skip' };
    const playbook = scaling(input);
    const scaler = scalerOf(playbook);
    const base = {
      at: ctx.now.toISOString(),
      before: decision.from,
      unit: decision.unit,
      already: false,
      changedSincePlan: false,
    };
    if (ctx.dryRun) {
      const output: ActOutput = {
        ...base,
        applied: false,
        dryRun: true,
        after: decision.to,
        ledger: p.ledger,
      };
      await deps.announce(
        run,
        actNotice(input, run, decision, output, scaler, deps.environment),
        ctx.abortSignal,
      );
      return { status: 'done', output };
    }
    // Check, then act: an earlier attempt may have changed it and died before recording it.
    const current = await scaler.read({ abortSignal: ctx.abortSignal });
    let after: Reading;
    let already = false;
    if (decision.migrate ? current.mode === 'autoscale' : current.value === decision.to) {
      after = current;
      already = true;
    } else if (current.value !== decision.from || current.busy) {
      const output: ActOutput = {
        ...base,
        applied: false,
        dryRun: false,
        after: current.value,
        ledger: p.ledger,
        changedSincePlan: true,
      };
      await deps.announce(
        run,
        actNotice(input, run, decision, output, scaler, deps.environment),
        ctx.abortSignal,
      );
      return { status: 'done', output };
    } else {
      after = await scaler.apply(
        { to: decision.to, migrate: decision.migrate },
        { abortSignal: ctx.abortSignal },
      );
    }
    const change: LedgerEntry = {
      at: ctx.now.toISOString(),
      direction: decision.migrate ? 'migrate' : decision.direction,
      from: decision.from,
      to: after.value,
      runId: run.id,
    };
    const output: ActOutput = {
      ...base,
      applied: true,
      dryRun: false,
      after: after.value,
      unit: after.unit,
      already,
      ledger: withChange(p.ledger, change, ctx.now),
    };
    await deps.announce(
      run,
      actNotice(input, run, decision, output, scaler, deps.environment),
      ctx.abortSignal,
    );
    return { status: 'done', output };
  };

  const verify = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    const input = inputOf(run);
    if (input.direction !== 'raise') return { status: 'skip' };
    const acted = ctx.outputs.act as ActOutput | undefined;
    if (!acted?.applied) return { status: 'skip' };
    const playbook = scaling(input);
    const actedAt = new Date(acted.at);
    const deadline = actedAt.getTime() + playbook.signal.verifyMinutes * MINUTE_MS;
    const resolved = input.alert
      ? await resolvedSince(
          deps.audit,
          {
            target: input.alert.target,
            playbook: playbook.name,
            since: new Date(run.createdOn.getTime() - MINUTE_MS),
            until: new Date(ctx.now.getTime() + MINUTE_MS),
          },
          ctx.abortSignal,
        )
      : undefined;
    if (resolved) {
      return {
        status: 'done',
        output: {
          recovered: true,
          closedBy: 'resolved',
          alertId: resolved.alertId,
          at: resolved.at.toISOString(),
        },
      };
    }
    const points = await readSignal(
      deps.metrics,
      playbook.signal,
      { start: actedAt, end: ctx.now },
      ctx.abortSignal,
    );
    const latest = latestPoint(points);
    if (latest && latest.value < playbook.signal.recoveredBelow) {
      return {
        status: 'done',
        output: { recovered: true, closedBy: 'signal', value: latest.value, at: latest.at.toISOString() },
      };
    }
    if (ctx.now.getTime() >= deadline) {
      return {
        status: 'done',
        output: {
          recovered: false,
          closedBy: 'timeout',
          value: latest?.value ?? null,
          at: latest?.at.toISOString() ?? null,
        },
      };
    }
    return {
      status: 'wait',
      delayMs: Math.min(VERIFY_POLL_MS, deadline - ctx.now.getTime()),
      output: { latest: latest ? { value: latest.value, at: latest.at.toISOString() } : null },
    };
  };

  const finish = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    const input = inputOf(run);
    if (input.direction === 'notify') return { status: 'done', output: { notified: true } };
    const p = planOf(ctx);
    if (!p) return { status: 'skip' };
    const notice = finishNotice(input, run, p, ctx.outputs, deps.environment);
    if (notice) await deps.announce(run, notice, ctx.abortSignal);
    return {
      status: 'done',
      output: {
        playbook: input.playbook.name,
        direction: input.direction,
        acted: Boolean((ctx.outputs.act as ActOutput | undefined)?.applied),
        decision: p.decision.act ? 'changed' : p.decision.code,
      },
    };
  };

  return {
    kind: REMEDIATION_KIND,
    version: 1,
    target: { exclusive: true },
    deadlineMs: DEADLINE_MS,
    retry: { maxAttempts: 5, baseDelayMs: 10_000, maxDelayMs: 120_000 },
    channels: (run) => inputOf(run).channels,
    steps: [
      { name: 'plan', run: plan },
      {
        name: 'act',
        run: act,
        approval: {
          expiresAfterMs: APPROVAL_EXPIRES_MS,
          onExpiry: 'cancel',
          when: (run) => {
            const decision = recordedPlan(run)?.decision;
            return !run.dryRun && decision?.act === true && decision.approval;
          },
        },
      },
      { name: 'verify', run: verify },
      { name: 'finish', run: finish },
    ],
  };
}

// ---- what people are told ----------------------------------------------------------------------

function factsOf(input: RemediationInput, run: Readonly<Run>, environment: string): Record<string, string> {
  const facts: Record<string, string> = {
    Playbook: input.playbook.name,
    Run: run.id,
    Environment: environment,
  };
  if (input.alert) {
    facts.Alert = `${input.alert.alertRule} (${input.alert.severity})`;
    if (input.alert.metric) facts.Metric = input.alert.metric;
    if (input.alert.value !== null) facts.Value = String(input.alert.value);
  }
  if (run.dryRun) facts['Dry run'] = 'yes: nothing was changed';
  return facts;
}

function verb(decision: Extract<Decision, { act: true }>): string {
  if (decision.migrate) return 'Migrated to autoscale';
  return decision.direction === 'raise' ? 'Raised' : 'Lowered';
}

function actNotice(
  input: RemediationInput,
  run: Readonly<Run>,
  decision: Extract<Decision, { act: true }>,
  output: ActOutput,
  scaler: Scaler,
  environment: string,
): RemediationNotice {
  const playbook = scaling(input);
  const action = decision.migrate ? 'remediation.migrate' : `remediation.${decision.direction}`;
  const facts = {
    ...factsOf(input, run, environment),
    Resource: scaler.describe,
    Before: `${output.before} ${output.unit}`,
    After: `${output.after} ${output.unit}`,
    Bounds: `${playbook.bounds.floor} to ${playbook.bounds.ceiling}`,
  };
  const audit = {
    action,
    before: { value: output.before, unit: output.unit, playbook: playbook.name },
    after: { value: output.after, unit: output.unit, applied: output.applied, already: output.already },
    reason: decision.why,
  };
  if (output.changedSincePlan) {
    return {
      label: 'act',
      notify: true,
      eventType: 'com.stampkeeper.remediation.skipped',
      severity: 'warning',
      title: `Not changed: ${scaler.describe} moved since it was planned`,
      summary: `Playbook ${playbook.name} planned to change ${scaler.describe} from ${decision.from} to ${decision.to} ${decision.unit}, but it is now ${output.after}: someone or something else changed it, so stampkeeper did nothing.`,
      facts,
      audit: {
        ...audit,
        outcome: 'skipped',
        reason: `changed since planned (${output.after}); ${decision.why}`,
      },
    };
  }
  const what = output.dryRun ? `Would have ${verb(decision).toLowerCase()}` : verb(decision);
  const next =
    decision.direction === 'raise'
      ? ` Next: stampkeeper checks that ${playbook.signal.metric} goes below ${playbook.signal.recoveredBelow} within ${playbook.signal.verifyMinutes} min${
          playbook.scaleBack
            ? `, and lowers it again one step at a time once ${playbook.signal.metric} stays below ${playbook.scaleBack.below} for ${playbook.scaleBack.forMinutes} min`
            : ''
        }.`
      : '';
  return {
    label: 'act',
    notify: true,
    eventType: output.dryRun
      ? 'com.stampkeeper.remediation.planned'
      : `com.stampkeeper.remediation.${decision.migrate ? 'migrated' : decision.direction === 'raise' ? 'raised' : 'lowered'}`,
    severity: 'info',
    title: `${what} ${scaler.describe}: ${output.before} → ${output.after} ${output.unit}`,
    summary: `${what} ${scaler.describe} from ${output.before} to ${output.after} ${output.unit} (playbook ${playbook.name}, bounds ${playbook.bounds.floor}-${playbook.bounds.ceiling}). Why: ${decision.why}.${next}`,
    facts,
    audit: { ...audit, outcome: output.dryRun ? 'planned' : 'succeeded' },
  };
}

function finishNotice(
  input: RemediationInput,
  run: Readonly<Run>,
  plan: PlanOutput,
  outputs: Record<string, unknown>,
  environment: string,
): RemediationNotice | undefined {
  const playbook = scaling(input);
  const facts = factsOf(input, run, environment);
  const decision = plan.decision;
  if (!decision.act) {
    const warn = decision.severity === 'warning';
    return {
      label: 'finish',
      notify: warn,
      eventType: 'com.stampkeeper.remediation.held',
      severity: warn ? 'warning' : 'info',
      title: `No ${input.direction === 'raise' ? 'raise' : 'scale-back'} by ${playbook.name}: ${decision.code}`,
      summary: `Playbook ${playbook.name} did not change anything. Why: ${decision.why}. Asked because ${plan.because}.${
        warn ? ' A person should look at it.' : ''
      }`,
      facts: { ...facts, Decision: decision.code },
      audit: {
        action: 'remediation.hold',
        outcome: 'skipped',
        before: plan.reading ? { value: plan.reading.value, unit: plan.reading.unit } : undefined,
        reason: `${decision.code}: ${decision.why}`,
      },
    };
  }
  const verified = outputs.verify as
    | { recovered: boolean; closedBy: string; value?: number | null; at?: string | null }
    | undefined;
  const acted = outputs.act as ActOutput | undefined;
  if (!acted?.applied || !verified) return undefined;
  const recovered = verified.recovered;
  return {
    label: 'finish',
    // A Resolved alert was announced when it arrived: its closing is not told twice.
    notify: !recovered || verified.closedBy !== 'resolved',
    eventType: recovered
      ? 'com.stampkeeper.remediation.recovered'
      : 'com.stampkeeper.remediation.unrecovered',
    severity: recovered ? 'info' : 'warning',
    title: recovered
      ? `Recovered: ${playbook.name} (${verified.closedBy === 'resolved' ? 'the alert resolved' : `${playbook.signal.metric} ${verified.value}`})`
      : `Not recovered after ${playbook.signal.verifyMinutes} min: ${playbook.name}`,
    summary: recovered
      ? `After the raise to ${acted.after} ${acted.unit}, ${
          verified.closedBy === 'resolved'
            ? 'the alert resolved: the episode is closed'
            : `${playbook.signal.metric} went below ${playbook.signal.recoveredBelow} (${verified.value} at ${verified.at})`
        }.`
      : `After the raise to ${acted.after} ${acted.unit}, ${playbook.signal.metric} is still not below ${playbook.signal.recoveredBelow}${
          verified.value !== null && verified.value !== undefined
            ? ` (last: ${verified.value})`
            : ' (no data)'
        }. A next alert raises again once the cooldown (${playbook.cooldownMinutes} min) has passed, up to ${playbook.bounds.ceiling}.`,
    facts: { ...facts, After: `${acted.after} ${acted.unit}` },
    audit: {
      action: 'remediation.verify',
      outcome: recovered ? 'succeeded' : 'failed',
      after: { recovered, closedBy: verified.closedBy, value: verified.value ?? null },
      reason: recovered ? `recovered (${verified.closedBy})` : 'not recovered in time',
    },
  };
}

function notifyOnlyNotice(
  input: RemediationInput,
  run: Readonly<Run>,
  environment: string,
): RemediationNotice {
  const a = input.alert;
  const facts = factsOf(input, run, environment);
  if (a) {
    facts.Fired = a.firedDateTime;
    facts.Resource = a.target;
    if (a.threshold) facts.Threshold = a.threshold;
  }
  const resolved = a?.monitorCondition === 'Resolved';
  const severity = resolved
    ? 'info'
    : a && (a.severity === 'Sev0' || a.severity === 'Sev1')
      ? 'critical'
      : a?.severity === 'Sev2'
        ? 'warning'
        : 'info';
  return {
    label: 'act',
    notify: true,
    eventType: resolved ? 'com.stampkeeper.alert.resolved' : 'com.stampkeeper.alert.fired',
    severity,
    title: `Alert ${resolved ? 'resolved' : 'fired'}: ${a?.alertRule ?? 'unknown'} (${a?.severity ?? '?'}) on ${
      a?.target.split('/').pop() ?? 'its scope'
    }`,
    summary: `${resolved ? `alert ${a?.alertRule} resolved` : becauseOf(input)}. Playbook ${input.playbook.name} routes it to you and changes nothing.`,
    facts,
    audit: {
      action: 'remediation.notify',
      outcome: 'reported',
      before: a ? { alertId: a.alertId, alertRule: a.alertRule, target: a.target } : undefined,
      reason: `playbook ${input.playbook.name} (notify-only)`,
    },
  };
}
