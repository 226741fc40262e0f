/**
 * Azure Monitor reads, as ports: metrics of resources (dead-letter depth, RU consumption, queue depth,
 * failure rates) and Log Analytics / Application Insights queries (KQL). Both make the absence of data
 * explicit: a metric interval without data has no value (never a zero), and a partial query result is
 * a different status from a complete one, so that no caller can read missing data as healthy.
 */

export type MetricAggregation = 'Average' | 'Total' | 'Minimum' | 'Maximum' | 'Count';
export const METRIC_AGGREGATIONS: readonly MetricAggregation[] = [
  'Average',
  'Total',
  'Minimum',
  'Maximum',
  'Count',
];

/** Time grains of platform metrics; `FULL` is one interval for the whole window. */
export const METRIC_INTERVALS = [
  'PT1M',
  'PT5M',
  'PT15M',
  'PT30M',
  'PT1H',
  'PT6H',
  'PT12H',
  'P1D',
  'FULL',
] as const;
export type MetricInterval = (typeof METRIC_INTERVALS)[number];

/** A time window: `start` included, `end` excluded. */
export interface TimeWindow {
  start: Date;
  end: Date;
}

/** Series per value of one dimension. */
export interface DimensionFilter {
  /** The dimension's name (`EntityName`, `StatusCode`, `CollectionName`). */
  dimension: string;
  /** The values to read, each as its own series, or `'*'`: every value, each as its own series. */
  values: string[] | '*';
}

export interface MetricsQuery {
  /** The region whose metrics endpoint serves the resources; it must be one the reader was configured with. */
  region: string;
  /** ARM ids of 1 to 50 resources of one type, in one subscription and in `region`. */
  resourceIds: string[];
  /** The resources' provider and type (`Microsoft.ServiceBus/namespaces`, `Microsoft.DocumentDB/databaseAccounts`). */
  namespace: string;
  /** Metric names as in the REST API (`DeadletteredMessages`), never display names. 1 to 20. */
  metrics: string[];
  window: TimeWindow;
  interval: MetricInterval;
  aggregations: MetricAggregation[];
  /** Omitted: one series per resource and metric, every dimension value together. */
  filter?: DimensionFilter[];
  /** With a filter: at most this many series per resource and metric (the service's default is 10). */
  top?: number;
  abortSignal?: AbortSignal;
}

export interface MetricPoint {
  /** The start of the interval. */
  at: Date;
  /** The value of each requested aggregation. Absent: the service had no data for this interval. */
  values: Partial<Record<MetricAggregation, number>>;
}

export interface MetricSeries {
  resourceId: string;
  /** The metric's REST API name, as requested (not the localized display name the service also sends). */
  metric: string;
  unit: string;
  /** The values of the filtered dimensions, by dimension name as the service answers it (lower case). */
  dimensions: Record<string, string>;
  points: MetricPoint[];
}

export interface MetricsReadResult {
  window: TimeWindow;
  interval: MetricInterval;
  series: MetricSeries[];
  /**
   * Resource and metric pairs without any series: the service reported an error for them, left them
   * out, or (with a filter) had no dimension value with data. Missing, not zero.
   */
  missing: Array<{ resourceId: string; metric: string; reason: string }>;
}

export interface MetricsReader {
  /**
   * Reads metrics of resources over a window. Bad queries throw a `ValidationError` before any call;
   * a region without a configured endpoint, a `ConfigurationError`.
   */
  readMetrics(query: MetricsQuery): Promise<MetricsReadResult>;
}

/** What a series says once reduced to one number, with how much of it was there. */
export interface SeriesSummary {
  /** Undefined when no interval had data for the aggregation. */
  value: number | undefined;
  /** Intervals in the series. */
  points: number;
  /** Intervals without data for the aggregation. */
  missingPoints: number;
  /** The start of the last interval with data. */
  latestAt: Date | undefined;
}

/**
 * Reduces the points of a series to one value of `aggregation`: `latest` (the last interval with data),
 * `minimum`, `maximum`, `mean` (of the intervals' values) or `sum`. Intervals without data are counted
 * in `missingPoints` and never taken as zero.
 */
export function summarizeSeries(
  points: MetricPoint[],
  aggregation: MetricAggregation,
  reduce: 'latest' | 'minimum' | 'maximum' | 'mean' | 'sum',
): SeriesSummary {
  const present: Array<{ at: Date; value: number }> = [];
  for (const point of points) {
    const value = point.values[aggregation];
    if (typeof value === 'number' && !Number.isNaN(value)) present.push({ at: point.at, value });
  }
  const summary = {
    points: points.length,
    missingPoints: points.length - present.length,
    latestAt: present.at(-1)?.at,
  };
  if (present.length === 0) return { value: undefined, ...summary };
  const values = present.map((p) => p.value);
  let value: number;
  switch (reduce) {
    case 'latest':
      value = values.at(-1)!;
      break;
    case 'minimum':
      value = Math.min(...values);
      break;
    case 'maximum':
      value = Math.max(...values);
      break;
    case 'sum':
      value = values.reduce((a, b) => a + b, 0);
      break;
    case 'mean':
      value = values.reduce((a, b) => a + b, 0) / values.length;
      break;
  }
  return { value, ...summary };
}

/** Log Analytics column types. */
export type LogsColumnType =
  | 'bool'
  | 'datetime'
  | 'dynamic'
  | 'int'
  | 'long'
  | 'real'
  | 'string'
  | 'guid'
  | 'decimal'
  | 'timespan';

/**
 * A cell, typed by its column: `bool` -> boolean; `int` / `long` / `real` / `decimal` -> number;
 * `datetime` -> Date; `dynamic` -> the parsed JSON value; `string` / `guid` / `timespan` -> string;
 * an empty cell -> null.
 */
export type LogsCell = string | number | boolean | Date | null | JsonValue[] | { [key: string]: JsonValue };

/** A parsed `dynamic` value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface LogsTable {
  name: string;
  columns: Array<{ name: string; type: LogsColumnType | string }>;
  rows: LogsCell[][];
}

export interface LogsQuery {
  /**
   * A Log Analytics workspace (its workspace id, a GUID), or a resource whose logs to query (the ARM
   * id of, for example, an Application Insights component or any resource sending diagnostics).
   */
  target: { workspaceId: string } | { resourceId: string };
  /** KQL. */
  query: string;
  window: TimeWindow;
  /** Other workspaces the query spans (ids, names or ARM ids). */
  additionalWorkspaces?: string[];
  /** How long the service may run the query (default 180 s, at most 600 s). */
  serverTimeoutSeconds?: number;
  abortSignal?: AbortSignal;
}

/** A query's answer. A partial answer is never complete: check `status` before reading `tables`. */
export type LogsQueryResult =
  | { status: 'complete'; tables: LogsTable[] }
  | {
      status: 'partial';
      /** What came back before the failure: incomplete, possibly missing rows. */
      tables: LogsTable[];
      error: { code: string; message: string; details: string[] };
    };

export interface LogsReader {
  /** Runs a KQL query over a window. Bad queries throw a `ValidationError` before any call. */
  query(query: LogsQuery): Promise<LogsQueryResult>;
}
