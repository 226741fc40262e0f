/**
 * The metrics of the sandbox's world: per resource and metric, time series per combination of
 * dimension values, on the sandbox clock. A series is defined (a constant, steps, a ramp, or a
 * function of time), recorded (raw samples, e.g. from a load generator), or sampled from a source (a
 * function another part of the sandbox provides, e.g. the Service Bus broker's entity counts).
 *
 * The model: a metric has at most one value per minute and series from a definition, any number of
 * recorded samples per minute, and aggregations over an interval are computed from the samples of its
 * minutes (Total = sum, Count = number of samples, Average = Total / Count, Minimum, Maximum). A minute's
 * data exists once the minute has ended (plus the scenario's ingestion delay) and for 93 days (Azure
 * Monitor's platform metrics retention).
 */
import type { SandboxClock } from '../clock';
import {
  type Aggregation,
  namespaceOfResourceId,
  type ResolvedMetricDefinition,
  type ResolvedMonitorScenario,
  type ResolvedShape,
  seriesKey,
} from './scenario';
import { MINUTE_MS, resolveInstant } from './time';

/** Platform metrics are kept 93 days. */
export const RETENTION_MS = 93 * 86_400_000;
/** Recorded samples kept per series (the oldest go first). */
export const MAX_RECORDED_PER_SERIES = 100_000;
/** Source snapshots kept per source (only changes are kept; the oldest go first). */
export const MAX_SNAPSHOTS_PER_SOURCE = 100_000;

export type Dimensions = Record<string, string>;

/** A series shape given through the sandbox API: as in a scenario, or a function of the sandbox time. */
export type SeriesDefinition =
  | { value: number }
  | { steps: Array<{ at: Date | string; value: number | null }> }
  | { ramp: Array<{ at: Date | string; value: number | null }> }
  | { fn: (at: Date) => number | undefined };

/**
 * What a source answers when sampled: one value (a metric without dimensions), one value per
 * combination of dimension values, or `undefined` (no data now).
 */
export type MetricSourceValue = number | undefined | Array<{ dimensions?: Dimensions; value: number }>;
export type MetricSource = (at: Date) => MetricSourceValue;

type CompiledShape =
  | { kind: 'constant'; value: number }
  | { kind: 'points'; linear: boolean; times: number[]; values: Array<number | null> }
  | { kind: 'fn'; fn: (at: Date) => number | undefined };

interface SeriesState {
  dimensions: Dimensions;
  shape: CompiledShape | undefined;
  gaps: Array<[number, number]>;
  /** Raw samples, in time order. */
  recorded: Array<{ t: number; v: number }>;
}

interface SourceState {
  fn: MetricSource;
  /** Snapshots in time order; a snapshot is kept only when it differs from the previous one. */
  snapshots: Array<{ t: number; values: Map<string, { dimensions: Dimensions; value: number }> }>;
}

interface ResourceState {
  id: string;
  namespace: string;
  region: string;
  access: 'allowed' | 'denied';
  /** metric (lower case) -> series key -> series */
  series: Map<string, Map<string, SeriesState>>;
  /** metric (lower case) -> source */
  sources: Map<string, SourceState>;
}

/** One accumulated interval: the samples of its minutes. */
export interface Accumulator {
  sum: number;
  count: number;
  min: number;
  max: number;
}

/** One output series of a query: split dimension values and one accumulator per interval. */
export interface QuerySeries {
  /** The split dimensions (as named in the filter) and their values. */
  metadata: Array<{ name: string; value: string }>;
  intervals: Array<Accumulator | undefined>;
}

export class MonitorFault extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function lower(dimensions: Dimensions): Map<string, string> {
  return new Map(Object.entries(dimensions).map(([k, v]) => [k.toLowerCase(), v]));
}

export class MetricsStore {
  private readonly definitions = new Map<string, Map<string, ResolvedMetricDefinition>>();
  private readonly resources = new Map<string, ResourceState>();
  readonly ingestionDelayMs: number;

  constructor(
    scenario: ResolvedMonitorScenario['metrics'],
    private readonly clock: SandboxClock,
    private readonly clockStart: number,
  ) {
    this.ingestionDelayMs = scenario.ingestionDelayMinutes * MINUTE_MS;
    for (const { namespace, metrics } of scenario.definitions) {
      for (const def of metrics) this.defineMetric(namespace, def);
    }
    for (const resource of scenario.resources) {
      this.addResource(resource.id, resource.region, resource.access);
      for (const s of resource.series) {
        const series = this.series(resource.id, s.metric, s.dimensions, true);
        series.shape = this.compile(s.shape);
        series.gaps = s.gaps.map((g) => [
          resolveInstant(g.from, clockStart),
          resolveInstant(g.to, clockStart),
        ]);
      }
    }
  }

  // ---- the world ----------------------------------------------------------------------------

  defineMetric(namespace: string, def: ResolvedMetricDefinition): void {
    const key = namespace.toLowerCase();
    let metrics = this.definitions.get(key);
    if (!metrics) {
      metrics = new Map();
      this.definitions.set(key, metrics);
    }
    metrics.set(def.name.toLowerCase(), { ...def, dimensions: [...def.dimensions] });
  }

  addResource(id: string, region: string, access: 'allowed' | 'denied' = 'allowed'): void {
    const namespace = namespaceOfResourceId(id);
    if (namespace === undefined) throw new RangeError(`sandbox monitor: '${id}' is not an ARM resource id`);
    if (!/^[a-z][a-z0-9]{1,39}$/.test(region))
      throw new RangeError(`sandbox monitor: '${region}' is not a region name (lower case, e.g. westeurope)`);
    const existing = this.resources.get(id.toLowerCase());
    if (existing) {
      existing.region = region;
      existing.access = access;
      return;
    }
    this.resources.set(id.toLowerCase(), {
      id,
      namespace,
      region,
      access,
      series: new Map(),
      sources: new Map(),
    });
  }

  resource(id: string): ResourceState | undefined {
    return this.resources.get(id.toLowerCase());
  }

  regions(): Set<string> {
    return new Set([...this.resources.values()].map((r) => r.region));
  }

  metricDefinition(namespace: string, metric: string): ResolvedMetricDefinition | undefined {
    return this.definitions.get(namespace.toLowerCase())?.get(metric.toLowerCase());
  }

  metricsOf(namespace: string): ResolvedMetricDefinition[] {
    return [...(this.definitions.get(namespace.toLowerCase())?.values() ?? [])];
  }

  /** Replaces the shape of one series (created if new); its recorded samples and gaps stay. */
  setSeries(resourceId: string, metric: string, dimensions: Dimensions, definition: SeriesDefinition): void {
    const shape = this.compileDefinition(definition);
    this.series(resourceId, metric, dimensions, true).shape = shape;
  }

  /** Adds a raw sample at `at` (default now); it counts once its minute has ended. */
  record(resourceId: string, metric: string, dimensions: Dimensions, value: number, at?: Date): void {
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw new RangeError('sandbox monitor: a recorded value must be a finite number');
    const now = this.clock.now().getTime();
    const t = at === undefined ? now : at.getTime();
    if (Number.isNaN(t)) throw new RangeError('sandbox monitor: the sample time is not a valid date');
    if (t > now)
      throw new RangeError(
        `sandbox monitor: a sample cannot be recorded in the future (${new Date(t).toISOString()} is after the sandbox time ${new Date(now).toISOString()})`,
      );
    const series = this.series(resourceId, metric, dimensions, true);
    const recorded = series.recorded;
    let i = recorded.length;
    while (i > 0 && recorded[i - 1]!.t > t) i--;
    recorded.splice(i, 0, { t, v: value });
    if (recorded.length > MAX_RECORDED_PER_SERIES) recorded.shift();
  }

  /** Makes `source` the origin of a metric of a resource: sampled at every clock stop and every query. */
  setSource(resourceId: string, metric: string, source: MetricSource): void {
    const resource = this.requireResource(resourceId);
    this.requireMetric(resource, metric);
    resource.sources.set(metric.toLowerCase(), { fn: source, snapshots: [] });
    this.sampleSource(resource, metric.toLowerCase(), this.clock.now().getTime());
  }

  removeSource(resourceId: string, metric: string): void {
    this.resource(resourceId)?.sources.delete(metric.toLowerCase());
  }

  /** Takes a snapshot of every source at the current instant (the clock's stops and each query call it). */
  sampleSources(): void {
    const now = this.clock.now().getTime();
    for (const resource of this.resources.values()) {
      for (const metric of resource.sources.keys()) this.sampleSource(resource, metric, now);
    }
  }

  private sampleSource(resource: ResourceState, metric: string, now: number): void {
    const source = resource.sources.get(metric);
    if (!source) return;
    const definition = this.requireMetric(resource, metric);
    const answer = source.fn(new Date(now));
    const values = new Map<string, { dimensions: Dimensions; value: number }>();
    const items = answer === undefined ? [] : typeof answer === 'number' ? [{ value: answer }] : answer;
    if (!Array.isArray(items))
      throw new TypeError(
        `sandbox monitor: the source of ${definition.name} answered neither a number nor a list`,
      );
    for (const item of items) {
      if (typeof item.value !== 'number' || !Number.isFinite(item.value)) continue;
      const dims = this.checkDimensions(definition, item.dimensions ?? {});
      values.set(seriesKey(definition.name, dims), { dimensions: dims, value: item.value });
    }
    const last = source.snapshots.at(-1);
    if (last && sameValues(last.values, values)) return;
    if (last && last.t === now) last.values = values;
    else source.snapshots.push({ t: now, values });
    if (source.snapshots.length > MAX_SNAPSHOTS_PER_SOURCE) source.snapshots.shift();
  }

  private requireResource(resourceId: string): ResourceState {
    const resource = this.resource(resourceId);
    if (!resource)
      throw new RangeError(
        `sandbox monitor: no resource '${resourceId}' (add it under monitor.metrics.resources or with addResource)`,
      );
    return resource;
  }

  private requireMetric(resource: ResourceState, metric: string): ResolvedMetricDefinition {
    const definition = this.metricDefinition(resource.namespace, metric);
    if (!definition)
      throw new RangeError(
        `sandbox monitor: '${metric}' is not defined for ${resource.namespace} (add it under monitor.metrics.definitions or with defineMetric)`,
      );
    return definition;
  }

  private checkDimensions(definition: ResolvedMetricDefinition, dimensions: Dimensions): Dimensions {
    const given = lower(dimensions);
    const out: Dimensions = {};
    for (const dim of definition.dimensions) {
      const value = given.get(dim.toLowerCase());
      if (typeof value !== 'string' || value === '')
        throw new RangeError(`sandbox monitor: ${definition.name} needs a value for its dimension ${dim}`);
      out[dim] = value;
    }
    for (const key of given.keys()) {
      if (!definition.dimensions.some((d) => d.toLowerCase() === key))
        throw new RangeError(`sandbox monitor: ${definition.name} has no dimension '${key}'`);
    }
    return out;
  }

  private series(resourceId: string, metric: string, dimensions: Dimensions, create = false): SeriesState {
    const resource = this.requireResource(resourceId);
    const definition = this.requireMetric(resource, metric);
    const dims = this.checkDimensions(definition, dimensions);
    const key = seriesKey(definition.name, dims);
    let byKey = resource.series.get(definition.name.toLowerCase());
    if (!byKey) {
      byKey = new Map();
      resource.series.set(definition.name.toLowerCase(), byKey);
    }
    let series = byKey.get(key);
    if (!series) {
      if (!create) throw new RangeError(`sandbox monitor: no such series of ${definition.name}`);
      series = { dimensions: dims, shape: undefined, gaps: [], recorded: [] };
      byKey.set(key, series);
    }
    return series;
  }

  private compile(shape: ResolvedShape): CompiledShape {
    if (shape.kind === 'constant') return shape;
    return {
      kind: 'points',
      linear: shape.kind === 'ramp',
      times: shape.points.map((p) => resolveInstant(p.at, this.clockStart)),
      values: shape.points.map((p) => p.value),
    };
  }

  private compileDefinition(definition: SeriesDefinition): CompiledShape {
    if ('fn' in definition) {
      if (typeof definition.fn !== 'function') throw new TypeError('sandbox monitor: fn must be a function');
      return { kind: 'fn', fn: definition.fn };
    }
    if ('value' in definition) {
      if (typeof definition.value !== 'number' || !Number.isFinite(definition.value))
        throw new RangeError('sandbox monitor: value must be a finite number');
      return { kind: 'constant', value: definition.value };
    }
    const linear = 'ramp' in definition;
    const points = 'ramp' in definition ? definition.ramp : definition.steps;
    if (!Array.isArray(points) || points.length === 0 || points.length > 10_000)
      throw new RangeError('sandbox monitor: steps / ramp need 1 to 10000 points');
    const times: number[] = [];
    const values: Array<number | null> = [];
    for (const [i, p] of points.entries()) {
      const t = p.at instanceof Date ? p.at.getTime() : Date.parse(p.at);
      if (Number.isNaN(t)) throw new RangeError(`sandbox monitor: point ${i} has no valid time`);
      if (i > 0 && t <= times[i - 1]!)
        throw new RangeError('sandbox monitor: points must be in increasing time order');
      if (p.value !== null && (typeof p.value !== 'number' || !Number.isFinite(p.value)))
        throw new RangeError(`sandbox monitor: point ${i} needs a finite value or null`);
      times.push(t);
      values.push(p.value);
    }
    return { kind: 'points', linear, times, values };
  }

  // ---- queries ------------------------------------------------------------------------------

  /**
   * The combinations of dimension values a metric of a resource has (defined, recorded or sampled),
   * each with a function giving its samples per minute. Minutes must be asked in increasing order.
   */
  sampledSeries(
    resource: ResourceState,
    metric: ResolvedMetricDefinition,
  ): Array<{
    dimensions: Map<string, string>;
    original: Dimensions;
    samplesAt: Sampler;
  }> {
    const out: Array<{
      dimensions: Map<string, string>;
      original: Dimensions;
      samplesAt: Sampler;
    }> = [];
    const source = resource.sources.get(metric.name.toLowerCase());
    // A source is the metric's only origin: series defined for it too would count twice.
    if (!source) {
      for (const series of resource.series.get(metric.name.toLowerCase())?.values() ?? []) {
        out.push({
          dimensions: lower(series.dimensions),
          original: series.dimensions,
          samplesAt: seriesSampler(series),
        });
      }
    } else {
      const keys = new Map<string, Dimensions>();
      for (const snapshot of source.snapshots) {
        for (const [key, { dimensions }] of snapshot.values) if (!keys.has(key)) keys.set(key, dimensions);
      }
      for (const [key, dimensions] of keys) {
        out.push({
          dimensions: lower(dimensions),
          original: dimensions,
          samplesAt: sourceSampler(source, key),
        });
      }
    }
    return out;
  }

  describe(): unknown {
    const now = this.clock.now().getTime();
    return {
      ingestionDelayMinutes: this.ingestionDelayMs / MINUTE_MS,
      definitions: [...this.definitions.entries()].map(([namespace, metrics]) => ({
        namespace,
        metrics: [...metrics.values()],
      })),
      resources: [...this.resources.values()].map((r) => ({
        id: r.id,
        namespace: r.namespace,
        region: r.region,
        access: r.access,
        series: [...r.series.entries()].flatMap(([metric, byKey]) =>
          [...byKey.values()].map((s) => ({
            metric: this.metricDefinition(r.namespace, metric)?.name ?? metric,
            dimensions: s.dimensions,
            shape: s.shape?.kind ?? 'recorded',
            recordedSamples: s.recorded.length,
          })),
        ),
        sources: [...r.sources.entries()].map(([metric, s]) => ({
          metric,
          snapshots: s.snapshots.length,
          latest: s.snapshots.at(-1)
            ? {
                at: new Date(s.snapshots.at(-1)!.t).toISOString(),
                values: [...s.snapshots.at(-1)!.values.values()],
              }
            : undefined,
        })),
      })),
      now: new Date(now).toISOString(),
    };
  }
}

function sameValues(a: Map<string, { value: number }>, b: Map<string, { value: number }>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, { value }] of a) if (b.get(key)?.value !== value) return false;
  return true;
}

/** Adds the samples of one minute into an interval's accumulator (no allocation per minute). */
export type Sampler = (minute: number, into: Accumulator) => void;

export function emptyAccumulator(): Accumulator {
  return { sum: 0, count: 0, min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY };
}

function add(into: Accumulator, v: number): void {
  into.sum += v;
  into.count += 1;
  if (v < into.min) into.min = v;
  if (v > into.max) into.max = v;
}

/** Samples of a defined / recorded series, minute by minute (ascending), with moving cursors. */
function seriesSampler(series: SeriesState): Sampler {
  let point = -1;
  let rec = 0;
  let lastMinute = Number.NEGATIVE_INFINITY;
  return (minute, into) => {
    if (minute < lastMinute) {
      point = -1;
      rec = 0;
    }
    lastMinute = minute;
    const gaps = series.gaps;
    for (let g = 0; g < gaps.length; g++) if (minute >= gaps[g]![0] && minute < gaps[g]![1]) return;
    const recorded = series.recorded;
    while (rec < recorded.length && recorded[rec]!.t < minute) rec++;
    let recordedHere = false;
    for (let k = rec; k < recorded.length && recorded[k]!.t < minute + MINUTE_MS; k++) {
      add(into, recorded[k]!.v);
      recordedHere = true;
    }
    const shape = series.shape;
    if (recordedHere || !shape) return;
    if (shape.kind === 'constant') {
      add(into, shape.value);
      return;
    }
    if (shape.kind === 'fn') {
      const v = shape.fn(new Date(minute));
      if (typeof v === 'number' && Number.isFinite(v)) add(into, v);
      return;
    }
    const { times, values } = shape;
    while (point + 1 < times.length && times[point + 1]! <= minute) point++;
    if (point < 0) return;
    const v0 = values[point]!;
    if (v0 === null) return;
    const v1 = shape.linear && point + 1 < times.length ? values[point + 1]! : null;
    if (v1 === null) {
      add(into, v0);
      return;
    }
    const t0 = times[point]!;
    add(into, v0 + ((v1 - v0) * (minute - t0)) / (times[point + 1]! - t0));
  };
}

/** Samples of a sourced series: the value of the latest snapshot taken before the minute ended. */
function sourceSampler(source: SourceState, key: string): Sampler {
  let idx = -1;
  let lastMinute = Number.NEGATIVE_INFINITY;
  return (minute, into) => {
    if (minute < lastMinute) idx = -1;
    lastMinute = minute;
    const snapshots = source.snapshots;
    while (idx + 1 < snapshots.length && snapshots[idx + 1]!.t < minute + MINUTE_MS) idx++;
    if (idx < 0) return;
    const value = snapshots[idx]!.values.get(key)?.value;
    if (value !== undefined) add(into, value);
  };
}

/** The value of one aggregation of an accumulated interval. */
export function aggregate(acc: Accumulator, aggregation: Aggregation): number {
  switch (aggregation) {
    case 'Average':
      return acc.sum / acc.count;
    case 'Total':
      return acc.sum;
    case 'Count':
      return acc.count;
    case 'Minimum':
      return acc.min;
    case 'Maximum':
      return acc.max;
  }
}
