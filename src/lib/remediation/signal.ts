/**
 * A playbook's signal: the metric that says whether a change worked and whether the target may go
 * back down, read minute by minute through the `MetricsReader` port. Missing data is never read as
 * low: a minute without data neither proves a recovery nor counts toward a scale-back window.
 */
import type { PlaybookSignal } from '../config/playbooks';
import type { MetricsReader } from '../ports/monitoring';

const MINUTE_MS = 60_000;

export interface SignalPoint {
  at: Date;
  /** Undefined: the service had no data for this minute (yet: metrics arrive a few minutes late). */
  value: number | undefined;
}

/** `Microsoft.DocumentDB/databaseAccounts` from an ARM id (the metric namespace of its resource). */
export function metricNamespaceOf(resourceId: string): string {
  const parts = resourceId.split('/').filter(Boolean);
  const at = parts.findIndex((p) => p.toLowerCase() === 'providers');
  const types = parts.slice(at + 2).filter((_, i) => i % 2 === 0);
  return `${parts[at + 1]}/${types.join('/')}`;
}

/**
 * The signal's minutes from `start` to `end` (whole minutes, end excluded). With dimensions, the
 * series of those values; several series (a dimension the policy left open) are merged minute by
 * minute on their highest value, so one hot entity is enough to say "not low".
 */
export async function readSignal(
  metrics: MetricsReader,
  signal: PlaybookSignal,
  window: { start: Date; end: Date },
  abortSignal?: AbortSignal,
): Promise<SignalPoint[]> {
  const start = new Date(Math.floor(window.start.getTime() / MINUTE_MS) * MINUTE_MS);
  const end = new Date(
    Math.max(start.getTime() + MINUTE_MS, Math.floor(window.end.getTime() / MINUTE_MS) * MINUTE_MS),
  );
  const dimensions = Object.entries(signal.dimensions);
  const result = await metrics.readMetrics({
    region: signal.region,
    resourceIds: [signal.resourceId],
    namespace: metricNamespaceOf(signal.resourceId),
    metrics: [signal.metric],
    window: { start, end },
    interval: 'PT1M',
    aggregations: [signal.aggregation],
    ...(dimensions.length > 0
      ? { filter: dimensions.map(([dimension, value]) => ({ dimension, values: [value] })) }
      : {}),
    abortSignal,
  });
  const byMinute = new Map<number, number | undefined>();
  for (let t = start.getTime(); t < end.getTime(); t += MINUTE_MS) byMinute.set(t, undefined);
  for (const series of result.series) {
    for (const point of series.points) {
      const t = Math.floor(point.at.getTime() / MINUTE_MS) * MINUTE_MS;
      if (!byMinute.has(t)) continue;
      const value = point.values[signal.aggregation];
      if (typeof value !== 'number' || Number.isNaN(value)) continue;
      const seen = byMinute.get(t);
      byMinute.set(t, seen === undefined ? value : Math.max(seen, value));
    }
  }
  return [...byMinute.entries()].map(([t, value]) => ({ at: new Date(t), value }));
}

/** The last minute with data, or undefined when no minute had any. */
export function latestPoint(points: SignalPoint[]): { at: Date; value: number } | undefined {
  for (let i = points.length - 1; i >= 0; i--) {
    const p = points[i]!;
    if (p.value !== undefined) return { at: p.at, value: p.value };
  }
  return undefined;
}

/**
 * Whether every minute of `points` has data below `below` (an empty list is not low), with the
 * highest value seen and the minutes without data, for the reason a decision gives.
 */
export function allBelow(
  points: SignalPoint[],
  below: number,
): { low: boolean; highest: number | undefined; missing: number } {
  let highest: number | undefined;
  let missing = 0;
  for (const p of points) {
    if (p.value === undefined) missing++;
    else highest = highest === undefined ? p.value : Math.max(highest, p.value);
  }
  const low = points.length > 0 && missing === 0 && highest !== undefined && highest < below;
  return { low, highest, missing };
}
