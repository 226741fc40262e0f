/**
 * Evaluating a health gate for one of its targets: every condition over the gate's window, each
 * answering passed, failed, noData, partial or error with its evidence (the query sent or the metric
 * read, the value, the threshold). The gate passes only when every condition passed: missing data, a
 * partial answer or an unreachable workspace never pass.
 */
import type { GateCondition, GatePolicy, GateTarget, Policy, ThresholdOperator } from '../config/policy';
import { isStampkeeperError } from '../core/errors';
import { stableHash } from '../core/ids';
import { redactText } from '../core/redact';
import type { Clock } from '../ports/clock';
import { type LogsReader, type MetricsReader, summarizeSeries, type TimeWindow } from '../ports/monitoring';
import type { AuditLog } from '../ports/state';

/** Metrics land a few minutes late (about 3 in Azure): a metric window ends this long before now. */
export const METRIC_DELAY_MINUTES = 5;
/** How long the query API may run one gate query. */
const QUERY_TIMEOUT_SECONDS = 60;
const MINUTE_MS = 60_000;

export type ConditionStatus = 'passed' | 'failed' | 'noData' | 'partial' | 'error';

export interface ConditionEvidence {
  name: string;
  type: 'logs' | 'metric';
  status: ConditionStatus;
  /** The value compared with the threshold; null when there was none. */
  value: number | null;
  operator: ThresholdOperator;
  threshold: number;
  /** What was found, in words (why it did not pass). */
  detail: string;
  window: { start: string; end: string };
  /** Logs: the workspace and the KQL as sent (the target's parameters declared first). */
  workspace?: { name: string; workspaceId: string };
  query?: string;
  rows?: number;
  /** Metric: what was read. */
  metric?: {
    resourceId: string;
    region: string;
    namespace: string;
    name: string;
    aggregation: string;
    reduce: string;
    interval: string;
    dimensions: Array<{ dimension: string; values: string[] }>;
    series: Array<{
      dimensions: Record<string, string>;
      value: number | null;
      points: number;
      missingPoints: number;
    }>;
  };
}

export interface GateEvaluation {
  gate: string;
  target: string;
  verdict: 'pass' | 'fail';
  /** Why it failed (the conditions that did not pass), or that every condition passed. */
  reason: string;
  evaluatedAt: string;
  windowMinutes: number;
  conditions: ConditionEvidence[];
}

export interface GateDeps {
  policy: Policy;
  logs: LogsReader;
  metrics: MetricsReader;
  clock: Clock;
  audit: AuditLog;
}

export interface EvaluationContext {
  actor: string;
  correlationId: string;
  /** Identifies this evaluation among those of one request or run (its audit record's id). */
  sequence: string;
  runId?: string;
  abortSignal?: AbortSignal;
}

const SYMBOLS: Record<ThresholdOperator, string> = {
  lessThan: '<',
  lessThanOrEqual: '<=',
  greaterThan: '>',
  greaterThanOrEqual: '>=',
  equal: '==',
};

export function compare(value: number, operator: ThresholdOperator, threshold: number): boolean {
  switch (operator) {
    case 'lessThan':
      return value < threshold;
    case 'lessThanOrEqual':
      return value <= threshold;
    case 'greaterThan':
      return value > threshold;
    case 'greaterThanOrEqual':
      return value >= threshold;
    case 'equal':
      return value === threshold;
  }
}

/**
 * The KQL a logs condition sends for a target: its parameters declared first (`let name = 'value';`;
 * the policy allows no quote or backslash in a value, so a value cannot end its string), then the
 * condition's query.
 */
export function queryText(target: GateTarget, condition: Extract<GateCondition, { type: 'logs' }>): string {
  const lets = Object.entries(target.parameters).map(([name, value]) => `let ${name} = '${value}';`);
  return [...lets, condition.query].join('\n');
}

const failureText = (error: unknown) =>
  redactText(
    isStampkeeperError(error)
      ? `${error.code}: ${error.message}`
      : `UnexpectedError: ${error instanceof Error ? error.message : String(error)}`,
  );

async function logsCondition(
  condition: Extract<GateCondition, { type: 'logs' }>,
  target: GateTarget,
  window: TimeWindow,
  deps: GateDeps,
  abortSignal?: AbortSignal,
): Promise<ConditionEvidence> {
  const workspace = deps.policy.monitoring.workspaces.find((w) => w.name === condition.workspace)!;
  const query = queryText(target, condition);
  const base = {
    name: condition.name,
    type: 'logs' as const,
    operator: condition.operator,
    threshold: condition.threshold,
    window: { start: window.start.toISOString(), end: window.end.toISOString() },
    workspace: { name: workspace.name, workspaceId: workspace.workspaceId },
    query,
  };
  let result: Awaited<ReturnType<LogsReader['query']>>;
  try {
    result = await deps.logs.query({
      target: { workspaceId: workspace.workspaceId },
      query,
      window,
      serverTimeoutSeconds: QUERY_TIMEOUT_SECONDS,
      abortSignal,
    });
  } catch (error) {
    return {
      ...base,
      status: 'error',
      value: null,
      detail: `the query could not run: ${failureText(error)}`,
    };
  }
  const table = result.tables[0];
  const rows = table?.rows.length ?? 0;
  if (result.status === 'partial') {
    return {
      ...base,
      status: 'partial',
      value: null,
      rows,
      detail: `the workspace answered partially (${result.error.code}: ${[result.error.message, ...result.error.details].join('; ')}): rows may be missing, so the value cannot be trusted`,
    };
  }
  if (!table || rows < condition.minRows) {
    return {
      ...base,
      status: 'noData',
      value: null,
      rows,
      detail: `the query answered ${rows} row(s), at least ${condition.minRows} needed`,
    };
  }
  const column = table.columns.findIndex((c) => c.name === condition.column);
  if (column < 0) {
    return {
      ...base,
      status: 'error',
      value: null,
      rows,
      detail: `the query answers no column ${condition.column} (columns: ${table.columns.map((c) => c.name).join(', ')})`,
    };
  }
  const cell = table.rows[0]![column];
  if (cell === null || cell === undefined) {
    return {
      ...base,
      status: 'noData',
      value: null,
      rows,
      detail: `${condition.column} is empty in the first row`,
    };
  }
  if (typeof cell !== 'number' || Number.isNaN(cell)) {
    return {
      ...base,
      status: 'error',
      value: null,
      rows,
      detail: `${condition.column} is not a number in the first row`,
    };
  }
  const passed = compare(cell, condition.operator, condition.threshold);
  return {
    ...base,
    status: passed ? 'passed' : 'failed',
    value: cell,
    rows,
    detail:
      `${condition.column} = ${cell} ${passed ? '' : 'not '}${SYMBOLS[condition.operator]} ${condition.threshold}`.replace(
        '  ',
        ' ',
      ),
  };
}

async function metricCondition(
  condition: Extract<GateCondition, { type: 'metric' }>,
  target: GateTarget,
  window: TimeWindow,
  deps: GateDeps,
  abortSignal?: AbortSignal,
): Promise<ConditionEvidence> {
  const resourceId = target.resources[condition.resource]!;
  const region = target.region!;
  const metric = {
    resourceId,
    region,
    namespace: condition.namespace,
    name: condition.metric,
    aggregation: condition.aggregation,
    reduce: condition.reduce,
    interval: condition.interval,
    dimensions: condition.dimensions,
    series: [] as NonNullable<ConditionEvidence['metric']>['series'],
  };
  const base = {
    name: condition.name,
    type: 'metric' as const,
    operator: condition.operator,
    threshold: condition.threshold,
    window: { start: window.start.toISOString(), end: window.end.toISOString() },
    metric,
  };
  let result: Awaited<ReturnType<MetricsReader['readMetrics']>>;
  try {
    result = await deps.metrics.readMetrics({
      region,
      resourceIds: [resourceId],
      namespace: condition.namespace,
      metrics: [condition.metric],
      window,
      interval: condition.interval,
      aggregations: [condition.aggregation],
      // The service returns 10 series by default: ask for one per combination of the named values
      // (the policy allows at most 5 dimensions of 20 values; the API at most 1000 series).
      ...(condition.dimensions.length > 0
        ? {
            filter: condition.dimensions,
            top: Math.min(
              1000,
              condition.dimensions.reduce((n, d) => n * d.values.length, 1),
            ),
          }
        : {}),
      abortSignal,
    });
  } catch (error) {
    return {
      ...base,
      status: 'error',
      value: null,
      detail: `the metric could not be read: ${failureText(error)}`,
    };
  }
  if (result.series.length === 0) {
    const why = result.missing.map((m) => m.reason).join('; ') || 'no series';
    return { ...base, status: 'noData', value: null, detail: `no data for ${condition.metric}: ${why}` };
  }
  // Every series (one per dimension value with a filter) must pass on its own.
  let decisive: { value: number | null; status: ConditionStatus; detail: string } | undefined;
  for (const series of result.series) {
    const summary = summarizeSeries(series.points, condition.aggregation, condition.reduce);
    const label = Object.entries(series.dimensions)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
    metric.series.push({
      dimensions: series.dimensions,
      value: summary.value ?? null,
      points: summary.points,
      missingPoints: summary.missingPoints,
    });
    let outcome: { value: number | null; status: ConditionStatus; detail: string };
    if (summary.value === undefined || summary.points === 0) {
      outcome = {
        value: null,
        status: 'noData',
        detail: `${label || condition.metric}: no interval had data`,
      };
    } else if (summary.missingPoints > condition.maxMissingPoints) {
      outcome = {
        value: summary.value,
        status: 'noData',
        detail: `${label || condition.metric}: ${summary.missingPoints} of ${summary.points} interval(s) without data (at most ${condition.maxMissingPoints})`,
      };
    } else {
      const passed = compare(summary.value, condition.operator, condition.threshold);
      outcome = {
        value: summary.value,
        status: passed ? 'passed' : 'failed',
        detail:
          `${label ? `${label}: ` : ''}${condition.reduce} of ${condition.aggregation} = ${summary.value} ${passed ? '' : 'not '}${SYMBOLS[condition.operator]} ${condition.threshold}`.replace(
            '  ',
            ' ',
          ),
      };
    }
    if (!decisive || rank(outcome.status) > rank(decisive.status)) decisive = outcome;
  }
  // The service answers series only for the dimension values it has data for (a filter matching none
  // answers `timeseries: []`): a value the condition names with no series of its own is missing data,
  // not a pass on the strength of the other values' series.
  for (const { dimension, values } of condition.dimensions) {
    const name = dimension.toLowerCase();
    for (const value of values) {
      if (value === '*') continue;
      const answered = result.series.some((s) =>
        Object.entries(s.dimensions).some(
          ([k, v]) => k.toLowerCase() === name && v.toLowerCase() === value.toLowerCase(),
        ),
      );
      if (answered) continue;
      const outcome = {
        value: null,
        status: 'noData' as const,
        detail: `${name}=${value}: no series (the service has no data for it)`,
      };
      if (!decisive || rank(outcome.status) > rank(decisive.status)) decisive = outcome;
    }
  }
  return { ...base, ...decisive! };
}

/** How bad a status is, for picking the decisive series: anything but passed outranks passed. */
function rank(status: ConditionStatus): number {
  return { passed: 0, failed: 1, noData: 2, partial: 3, error: 4 }[status];
}

/**
 * Evaluates `gate` for `target` now, audits the evaluation (`gate.evaluate`, outcome `succeeded` for a
 * pass, `failed` otherwise, with every condition's value and threshold) and returns it. Conditions
 * are evaluated one after the other (a gate has at most 20). Throws only when the audit cannot be
 * written (the evaluation then did not happen as far as anyone can tell).
 */
export async function evaluateGate(
  gate: GatePolicy,
  target: GateTarget,
  deps: GateDeps,
  context: EvaluationContext,
): Promise<GateEvaluation> {
  const now = deps.clock.now();
  const minute = Math.floor(now.getTime() / MINUTE_MS) * MINUTE_MS;
  const logsWindow = { start: new Date(now.getTime() - gate.windowMinutes * MINUTE_MS), end: now };
  const metricEnd = new Date(minute - METRIC_DELAY_MINUTES * MINUTE_MS);
  const metricWindow = {
    start: new Date(metricEnd.getTime() - gate.windowMinutes * MINUTE_MS),
    end: metricEnd,
  };
  const conditions: ConditionEvidence[] = [];
  for (const condition of gate.conditions) {
    conditions.push(
      condition.type === 'logs'
        ? await logsCondition(condition, target, logsWindow, deps, context.abortSignal)
        : await metricCondition(condition, target, metricWindow, deps, context.abortSignal),
    );
  }
  const notPassed = conditions.filter((c) => c.status !== 'passed');
  const evaluation: GateEvaluation = {
    gate: gate.name,
    target: target.name,
    verdict: notPassed.length === 0 ? 'pass' : 'fail',
    reason:
      notPassed.length === 0
        ? `every condition passed (${conditions.map((c) => c.name).join(', ')})`
        : notPassed.map((c) => `${c.name}: ${c.status} (${c.detail})`).join('; '),
    evaluatedAt: now.toISOString(),
    windowMinutes: gate.windowMinutes,
    conditions,
  };
  await deps.audit.append(
    {
      id: stableHash('gate-evaluate', gate.name, target.name, context.correlationId, context.sequence),
      time: now,
      actor: context.actor,
      action: 'gate.evaluate',
      target: `gates/${gate.name}/${target.name}`,
      outcome: evaluation.verdict === 'pass' ? 'succeeded' : 'failed',
      correlationId: context.correlationId,
      ...(context.runId ? { runId: context.runId } : {}),
      ...(evaluation.verdict === 'fail' ? { reason: evaluation.reason.slice(0, 2000) } : {}),
      after: {
        verdict: evaluation.verdict,
        windowMinutes: gate.windowMinutes,
        conditions: conditions.map((c) => ({
          name: c.name,
          status: c.status,
          value: c.value,
          operator: c.operator,
          threshold: c.threshold,
          window: c.window,
          ...(c.query ? { query: c.query.slice(0, 2000), workspace: c.workspace?.name } : {}),
          ...(c.metric ? { resourceId: c.metric.resourceId, metric: c.metric.name } : {}),
        })),
      },
    },
    { abortSignal: context.abortSignal },
  );
  return evaluation;
}

/** A compact evaluation (no query text, short details) that fits a run's step output. */
export function compactEvaluation(evaluation: GateEvaluation) {
  return {
    verdict: evaluation.verdict,
    evaluatedAt: evaluation.evaluatedAt,
    reason: evaluation.reason.slice(0, 600),
    conditions: evaluation.conditions.map((c) => ({
      name: c.name,
      status: c.status,
      value: c.value,
      operator: c.operator,
      threshold: c.threshold,
      detail: c.detail.slice(0, 160),
      window: c.window,
    })),
  };
}
