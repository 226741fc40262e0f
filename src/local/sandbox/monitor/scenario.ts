/**
 * The `monitor` section of a scenario: Azure Monitor metric definitions (per resource type), the
 * resources whose metrics the sandbox serves with their time series, and Log Analytics workspaces with
 * the queries they answer. Validated here with every problem reported at once, each with its path
 * (`monitor.metrics.resources[0].series[2].steps[1].at: ...`), through the scenario's problem list.
 */
import { parseScenarioInstant, type ScenarioInstant } from './time';

/** Units of the metrics data plane (`MetricUnit` of metricBatch.json 2024-02-01). */
export const METRIC_UNITS = [
  'Count',
  'Bytes',
  'Seconds',
  'CountPerSecond',
  'BytesPerSecond',
  'Percent',
  'MilliSeconds',
  'ByteSeconds',
  'Unspecified',
  'Cores',
  'MilliCores',
  'NanoCores',
  'BitsPerSecond',
] as const;
export type MetricUnit = (typeof METRIC_UNITS)[number];

export const AGGREGATIONS = ['Average', 'Minimum', 'Maximum', 'Total', 'Count'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

/** Log Analytics column types (the query API's `columns[].type`). */
export const LOGS_COLUMN_TYPES = [
  'bool',
  'datetime',
  'dynamic',
  'int',
  'long',
  'real',
  'string',
  'guid',
  'decimal',
  'timespan',
] as const;
export type LogsColumnType = (typeof LOGS_COLUMN_TYPES)[number];

export const WORKSPACE_STATES = ['available', 'empty', 'forbidden', 'unavailable', 'unreachable'] as const;
/**
 * `available`: answers queries; `empty`: 204 with no body (a workspace without any data, as the API
 * documents); `forbidden`: 403 InsufficientAccessError (no Log Analytics Reader); `unavailable`: 503;
 * `unreachable`: no answer at all (the transport fails, as with a network outage).
 */
export type WorkspaceState = (typeof WORKSPACE_STATES)[number];

// ---- as written -------------------------------------------------------------------------------

export interface ScenarioMetricDefinition {
  /** The name in the REST API (`DeadletteredMessages`). */
  name: string;
  /** The `localizedValue` Azure answers (`Count of dead-lettered messages in a Queue/Topic.`). Default: `name`. */
  displayName?: string;
  description?: string;
  /** Default `Count`. */
  unit?: MetricUnit;
  /** The primary aggregation, answered when a request names none. Default `Average`. */
  aggregation?: Aggregation;
  dimensions?: string[];
  /** The resource provider's `fillGapWithZero`: intervals without data answer 0 instead of nothing. */
  fillGapWithZero?: boolean;
}

export interface ScenarioPoint {
  /** ISO 8601, or relative to the clock start: `+2h`, `-30m`, `+1d2h`. */
  at: string;
  /** `null`: no data from this instant on. */
  value: number | null;
}

export interface ScenarioSeries {
  metric: string;
  /** One value per dimension of the metric. */
  dimensions?: Record<string, string>;
  /** A constant, at every minute. */
  value?: number;
  /** Holds each value from its instant to the next (no data before the first). */
  steps?: ScenarioPoint[];
  /** Linear between consecutive points (no data before the first; the last value holds after it). */
  ramp?: ScenarioPoint[];
  /** Windows without data. */
  gaps?: Array<{ from: string; to: string }>;
}

export interface ScenarioMetricResource {
  /** ARM resource id; its provider and type are the metric namespace. */
  id: string;
  /** The region whose endpoint (`https://{region}.metrics.monitor.azure.com`) serves it. */
  region: string;
  /** `denied`: the caller has no Monitoring Reader on it (403 AuthorizationFailed). Default `allowed`. */
  access?: 'allowed' | 'denied';
  series?: ScenarioSeries[];
}

export interface ScenarioLogsTable {
  /** Default `PrimaryResult`. */
  name?: string;
  columns: Array<{ name: string; type: LogsColumnType }>;
  rows?: unknown[][];
}

export interface ScenarioLogsResult {
  tables?: ScenarioLogsTable[];
  /** Answer the tables with a `PartialError` (HTTP 200, `error` beside `tables`). */
  partialError?: { message?: string };
  /** Answer an error instead: `syntax` / `semantic` (400 BadArgumentError) or an explicit one. */
  error?: 'syntax' | 'semantic' | { status: number; code: string; message: string };
  /** Keep only the rows whose value in this datetime column falls inside the query's timespan. */
  windowColumn?: string;
}

export interface ScenarioLogsQuery {
  name: string;
  /** `tag`: the query carries `// stampkeeper:query=<tag>`; `text`: equal once normalised (docs/sandbox.md). */
  match: { tag: string } | { text: string };
  results: Record<string, ScenarioLogsResult>;
  /** The result answered now. Default: the first of `results`. */
  result?: string;
  /** From each instant on, answer that result instead (in time order). */
  schedule?: Array<{ from: string; result: string }>;
}

export interface ScenarioWorkspace {
  /** The workspace id (customer id, a GUID) the query API takes. */
  id: string;
  name?: string;
  resourceGroup?: string;
  /** ARM ids whose resource-centric queries (`/v1/{resourceId}/query`) this workspace answers. */
  resources?: string[];
  state?: WorkspaceState;
  /** Cells of long/int/real/decimal/bool columns as strings ("1", "1.5", "true"), as the REST spec's example. Default true. */
  numbersAsStrings?: boolean;
  queries?: ScenarioLogsQuery[];
}

export interface MonitorScenario {
  metrics?: {
    /** Minutes after a minute ends before its data is served (Azure: typically a few). Default 0. */
    ingestionDelayMinutes?: number;
    /** Metric definitions per namespace (resource provider/type, e.g. `Microsoft.ServiceBus/namespaces`). */
    definitions?: Record<string, ScenarioMetricDefinition[]>;
    resources?: ScenarioMetricResource[];
  };
  logAnalytics?: { workspaces?: ScenarioWorkspace[] };
}

// ---- resolved ---------------------------------------------------------------------------------

export interface ResolvedMetricDefinition {
  name: string;
  displayName: string;
  description: string;
  unit: MetricUnit;
  aggregation: Aggregation;
  dimensions: string[];
  fillGapWithZero: boolean;
}

export type ResolvedShape =
  | { kind: 'constant'; value: number }
  | { kind: 'steps' | 'ramp'; points: Array<{ at: ScenarioInstant; value: number | null }> };

export interface ResolvedSeries {
  metric: string;
  dimensions: Record<string, string>;
  shape: ResolvedShape;
  gaps: Array<{ from: ScenarioInstant; to: ScenarioInstant }>;
}

export interface ResolvedMetricResource {
  id: string;
  namespace: string;
  region: string;
  access: 'allowed' | 'denied';
  series: ResolvedSeries[];
}

export interface ResolvedLogsTable {
  name: string;
  columns: Array<{ name: string; type: LogsColumnType }>;
  rows: unknown[][];
}

export interface ResolvedLogsResult {
  tables: ResolvedLogsTable[];
  partialError: { message: string } | undefined;
  error: 'syntax' | 'semantic' | { status: number; code: string; message: string } | undefined;
  windowColumn: string | undefined;
}

export interface ResolvedLogsQuery {
  name: string;
  match: { tag: string } | { text: string };
  results: Record<string, ResolvedLogsResult>;
  result: string;
  schedule: Array<{ from: ScenarioInstant; result: string }>;
}

export interface ResolvedWorkspace {
  id: string;
  name: string;
  resourceGroup: string | undefined;
  resources: string[];
  state: WorkspaceState;
  numbersAsStrings: boolean;
  queries: ResolvedLogsQuery[];
}

export interface ResolvedMonitorScenario {
  metrics: {
    ingestionDelayMinutes: number;
    definitions: Array<{ namespace: string; metrics: ResolvedMetricDefinition[] }>;
    resources: ResolvedMetricResource[];
  };
  logAnalytics: { workspaces: ResolvedWorkspace[] };
}

// ---- validation -------------------------------------------------------------------------------

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const REGION = /^[a-z][a-z0-9]{1,39}$/;
const NAMESPACE = /^[A-Za-z][A-Za-z0-9]*\.[A-Za-z0-9.]+\/[A-Za-z][A-Za-z0-9]*(\/[A-Za-z][A-Za-z0-9]*)*$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_./ -]{0,127}$/;
const WORKSPACE_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$/;
const DEFAULT_TABLE = 'PrimaryResult';

/** Bounds checked before anything is built: a scenario is an input too. */
export const MONITOR_LIMITS = {
  definitionsPerNamespace: 500,
  dimensionsPerMetric: 10,
  resources: 1000,
  seriesPerResource: 1000,
  pointsPerSeries: 10_000,
  gapsPerSeries: 1000,
  workspaces: 100,
  queriesPerWorkspace: 500,
  resultsPerQuery: 50,
  tablesPerResult: 10,
  columnsPerTable: 500,
  rowsPerTable: 10_000,
  queryTextLength: 100_000,
  ingestionDelayMinutes: 24 * 60,
} as const;

type Problems = string[];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function checkKeys(obj: Record<string, unknown>, allowed: string[], path: string, problems: Problems): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key))
      problems.push(`${path}.${key}: unknown key (expected one of ${allowed.join(', ')})`);
  }
}

function list(value: unknown, path: string, max: number, problems: Problems): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.push(`${path}: must be a list`);
    return [];
  }
  if (value.length > max) {
    problems.push(`${path}: at most ${max} entries, got ${value.length}`);
    return [];
  }
  return value;
}

function text(
  obj: Record<string, unknown>,
  key: string,
  path: string,
  problems: Problems,
  required = false,
): string | undefined {
  const value = obj[key];
  if (value === undefined) {
    if (required) problems.push(`${path}.${key}: is required`);
    return undefined;
  }
  if (typeof value !== 'string' || value.trim() === '') {
    problems.push(`${path}.${key}: must be a non-empty string`);
    return undefined;
  }
  return value;
}

function oneOf<T extends string>(
  value: unknown,
  allowed: readonly T[],
  path: string,
  problems: Problems,
): T | undefined {
  if (value === undefined) return undefined;
  const found =
    typeof value === 'string' ? allowed.find((a) => a.toLowerCase() === value.toLowerCase()) : undefined;
  if (found === undefined) problems.push(`${path}: must be one of ${allowed.join(', ')}`);
  return found;
}

function instant(value: unknown, path: string, problems: Problems): ScenarioInstant | undefined {
  const parsed = parseScenarioInstant(value);
  if (parsed === undefined) {
    problems.push(
      `${path}: must be an ISO 8601 date-time (2026-01-01T00:00:00Z) or relative to the clock start (+2h, -30m, +1d2h)`,
    );
  }
  return parsed;
}

/** `/subscriptions/{guid}/resourceGroups/{rg}/providers/{Provider}/{type}/{name}[/{type}/{name}]...` -> namespace. */
export function namespaceOfResourceId(id: string): string | undefined {
  const match =
    /^\/subscriptions\/([0-9a-f-]{36})\/resourceGroups\/([^/]+)\/providers\/([A-Za-z][A-Za-z0-9.]*)\/((?:[^/]+\/[^/]+)(?:\/[^/]+\/[^/]+)*)$/i.exec(
      id,
    );
  if (!match || !GUID.test(match[1]!)) return undefined;
  const pairs = match[4]!.split('/');
  const types = pairs.filter((_, i) => i % 2 === 0);
  return `${match[3]}/${types.join('/')}`;
}

export function subscriptionOfResourceId(id: string): string | undefined {
  return /^\/subscriptions\/([0-9a-f-]{36})\//i.exec(id)?.[1]?.toLowerCase();
}

/** Validates one metric definition (pushes problems with their path); undefined when unusable. */
export function resolveMetricDefinition(
  raw: unknown,
  path: string,
  problems: Problems,
): ResolvedMetricDefinition | undefined {
  if (!isObject(raw)) {
    problems.push(`${path}: must be a mapping`);
    return undefined;
  }
  checkKeys(
    raw,
    ['name', 'displayName', 'description', 'unit', 'aggregation', 'dimensions', 'fillGapWithZero'],
    path,
    problems,
  );
  const name = text(raw, 'name', path, problems, true);
  if (name !== undefined && !NAME.test(name))
    problems.push(`${path}.name: '${name}' is not a metric name (letters, digits, _ . / - and spaces)`);
  const unit = oneOf(raw.unit, METRIC_UNITS, `${path}.unit`, problems) ?? 'Count';
  const aggregation = oneOf(raw.aggregation, AGGREGATIONS, `${path}.aggregation`, problems) ?? 'Average';
  const dimensions: string[] = [];
  for (const [i, d] of list(
    raw.dimensions,
    `${path}.dimensions`,
    MONITOR_LIMITS.dimensionsPerMetric,
    problems,
  ).entries()) {
    if (typeof d !== 'string' || !NAME.test(d)) {
      problems.push(`${path}.dimensions[${i}]: must be a dimension name`);
      continue;
    }
    if (dimensions.some((x) => x.toLowerCase() === d.toLowerCase()))
      problems.push(`${path}.dimensions[${i}]: duplicate dimension '${d}'`);
    dimensions.push(d);
  }
  if (raw.fillGapWithZero !== undefined && typeof raw.fillGapWithZero !== 'boolean')
    problems.push(`${path}.fillGapWithZero: must be true or false`);
  if (name === undefined) return undefined;
  return {
    name,
    displayName: text(raw, 'displayName', path, problems) ?? name,
    description: text(raw, 'description', path, problems) ?? '',
    unit,
    aggregation,
    dimensions,
    fillGapWithZero: raw.fillGapWithZero === true,
  };
}

function resolvePoints(
  raw: unknown,
  path: string,
  problems: Problems,
  clockStart: number,
): Array<{ at: ScenarioInstant; value: number | null }> {
  const points: Array<{ at: ScenarioInstant; value: number | null }> = [];
  const entries = list(raw, path, MONITOR_LIMITS.pointsPerSeries, problems);
  if (Array.isArray(raw) && raw.length === 0) problems.push(`${path}: needs at least one point`);
  let previous: number | undefined;
  for (const [i, p] of entries.entries()) {
    const ppath = `${path}[${i}]`;
    if (!isObject(p)) {
      problems.push(`${ppath}: must be a mapping { at, value }`);
      continue;
    }
    checkKeys(p, ['at', 'value'], ppath, problems);
    const at = p.at === undefined ? undefined : instant(p.at, `${ppath}.at`, problems);
    if (p.at === undefined) problems.push(`${ppath}.at: is required`);
    const value = p.value;
    if (value !== null && (typeof value !== 'number' || !Number.isFinite(value))) {
      problems.push(`${ppath}.value: must be a finite number, or null for no data`);
      continue;
    }
    if (at === undefined) continue;
    const ms = 'at' in at ? at.at : clockStart + at.offset;
    if (previous !== undefined && ms <= previous)
      problems.push(`${ppath}.at: points must be in increasing time order`);
    previous = ms;
    points.push({ at, value });
  }
  return points;
}

function resolveSeries(
  raw: unknown,
  path: string,
  problems: Problems,
  definitions: ResolvedMetricDefinition[] | undefined,
  namespace: string | undefined,
  clockStart: number,
): ResolvedSeries | undefined {
  if (!isObject(raw)) {
    problems.push(`${path}: must be a mapping`);
    return undefined;
  }
  checkKeys(raw, ['metric', 'dimensions', 'value', 'steps', 'ramp', 'gaps'], path, problems);
  const metricName = text(raw, 'metric', path, problems, true);
  const definition =
    metricName === undefined
      ? undefined
      : definitions?.find((d) => d.name.toLowerCase() === metricName.toLowerCase());
  if (metricName !== undefined && namespace !== undefined && definition === undefined) {
    problems.push(
      `${path}.metric: '${metricName}' is not defined for ${namespace} (add it under monitor.metrics.definitions['${namespace}'])`,
    );
  }
  const dimensions: Record<string, string> = {};
  if (raw.dimensions !== undefined && !isObject(raw.dimensions))
    problems.push(`${path}.dimensions: must be a map of dimension names to values`);
  const given = isObject(raw.dimensions) ? raw.dimensions : {};
  if (definition) {
    for (const [key, value] of Object.entries(given)) {
      const dim = definition.dimensions.find((d) => d.toLowerCase() === key.toLowerCase());
      if (!dim) {
        problems.push(
          `${path}.dimensions.${key}: '${definition.name}' has no such dimension (${definition.dimensions.join(', ') || 'it has none'})`,
        );
      } else if (typeof value !== 'string' || value === '') {
        problems.push(`${path}.dimensions.${key}: must be a non-empty string`);
      } else dimensions[dim] = value;
    }
    for (const dim of definition.dimensions) {
      if (!Object.keys(given).some((k) => k.toLowerCase() === dim.toLowerCase()))
        problems.push(`${path}.dimensions.${dim}: is required (every series names a value per dimension)`);
    }
  }
  const kinds = (['value', 'steps', 'ramp'] as const).filter((k) => raw[k] !== undefined);
  if (kinds.length !== 1) {
    problems.push(`${path}: give exactly one of value (a constant), steps or ramp`);
    return undefined;
  }
  let shape: ResolvedShape | undefined;
  if (kinds[0] === 'value') {
    if (typeof raw.value !== 'number' || !Number.isFinite(raw.value))
      problems.push(`${path}.value: must be a finite number`);
    else shape = { kind: 'constant', value: raw.value };
  } else {
    const kind = kinds[0]!;
    shape = { kind, points: resolvePoints(raw[kind], `${path}.${kind}`, problems, clockStart) };
  }
  const gaps: ResolvedSeries['gaps'] = [];
  for (const [i, g] of list(raw.gaps, `${path}.gaps`, MONITOR_LIMITS.gapsPerSeries, problems).entries()) {
    const gpath = `${path}.gaps[${i}]`;
    if (!isObject(g)) {
      problems.push(`${gpath}: must be a mapping { from, to }`);
      continue;
    }
    checkKeys(g, ['from', 'to'], gpath, problems);
    const from = instant(g.from, `${gpath}.from`, problems);
    const to = instant(g.to, `${gpath}.to`, problems);
    if (from && to) {
      const a = 'at' in from ? from.at : clockStart + from.offset;
      const b = 'at' in to ? to.at : clockStart + to.offset;
      if (b <= a) problems.push(`${gpath}: 'to' must be after 'from'`);
      else gaps.push({ from, to });
    }
  }
  if (metricName === undefined || shape === undefined) return undefined;
  return { metric: definition?.name ?? metricName, dimensions, shape, gaps };
}

function resolveCell(type: LogsColumnType, value: unknown, path: string, problems: Problems): unknown {
  if (value === null || value === undefined) return null;
  const bad = (expected: string) => {
    problems.push(`${path}: a ${type} cell must be ${expected} (or null)`);
    return null;
  };
  switch (type) {
    case 'bool':
      return typeof value === 'boolean' ? value : bad('true or false');
    case 'int':
    case 'long':
      return typeof value === 'number' && Number.isSafeInteger(value) ? value : bad('an integer');
    case 'real':
    case 'decimal':
      return typeof value === 'number' && Number.isFinite(value) ? value : bad('a finite number');
    case 'datetime': {
      const parsed = parseScenarioInstant(value);
      return parsed === undefined
        ? bad('an ISO 8601 date-time or a time relative to the clock start')
        : parsed;
    }
    case 'dynamic':
      return value;
    default:
      return typeof value === 'string' ? value : bad('a string');
  }
}

function resolveResult(raw: unknown, path: string, problems: Problems): ResolvedLogsResult | undefined {
  if (!isObject(raw)) {
    problems.push(`${path}: must be a mapping { tables, partialError?, error?, windowColumn? }`);
    return undefined;
  }
  checkKeys(raw, ['tables', 'partialError', 'error', 'windowColumn'], path, problems);
  const tables: ResolvedLogsTable[] = [];
  for (const [t, rawTable] of list(
    raw.tables,
    `${path}.tables`,
    MONITOR_LIMITS.tablesPerResult,
    problems,
  ).entries()) {
    const tpath = `${path}.tables[${t}]`;
    if (!isObject(rawTable)) {
      problems.push(`${tpath}: must be a mapping { name?, columns, rows }`);
      continue;
    }
    checkKeys(rawTable, ['name', 'columns', 'rows'], tpath, problems);
    const columns: ResolvedLogsTable['columns'] = [];
    for (const [c, col] of list(
      rawTable.columns,
      `${tpath}.columns`,
      MONITOR_LIMITS.columnsPerTable,
      problems,
    ).entries()) {
      const cpath = `${tpath}.columns[${c}]`;
      if (!isObject(col)) {
        problems.push(`${cpath}: must be a mapping { name, type }`);
        continue;
      }
      checkKeys(col, ['name', 'type'], cpath, problems);
      const name = text(col, 'name', cpath, problems, true);
      const type = oneOf(col.type, LOGS_COLUMN_TYPES, `${cpath}.type`, problems);
      if (col.type === undefined) problems.push(`${cpath}.type: is required`);
      // A column with a bad type still counts, so that the rows are checked against the columns written.
      columns.push({ name: name ?? `column${c}`, type: type ?? 'string' });
    }
    if (rawTable.columns === undefined) problems.push(`${tpath}.columns: is required`);
    const rows: unknown[][] = [];
    for (const [r, row] of list(
      rawTable.rows,
      `${tpath}.rows`,
      MONITOR_LIMITS.rowsPerTable,
      problems,
    ).entries()) {
      const rpath = `${tpath}.rows[${r}]`;
      if (!Array.isArray(row)) {
        problems.push(`${rpath}: must be a list of cells`);
        continue;
      }
      if (row.length !== columns.length) {
        problems.push(`${rpath}: has ${row.length} cells for ${columns.length} columns`);
        continue;
      }
      rows.push(row.map((cell, k) => resolveCell(columns[k]!.type, cell, `${rpath}[${k}]`, problems)));
    }
    tables.push({ name: text(rawTable, 'name', tpath, problems) ?? DEFAULT_TABLE, columns, rows });
  }
  let partialError: ResolvedLogsResult['partialError'];
  if (raw.partialError !== undefined) {
    if (raw.partialError === true) partialError = { message: '' };
    else if (!isObject(raw.partialError)) problems.push(`${path}.partialError: must be true or { message? }`);
    else {
      checkKeys(raw.partialError, ['message'], `${path}.partialError`, problems);
      partialError = { message: text(raw.partialError, 'message', `${path}.partialError`, problems) ?? '' };
    }
  }
  let error: ResolvedLogsResult['error'];
  if (raw.error !== undefined) {
    if (raw.error === 'syntax' || raw.error === 'semantic') error = raw.error;
    else if (!isObject(raw.error))
      problems.push(`${path}.error: must be syntax, semantic or { status, code, message }`);
    else {
      const epath = `${path}.error`;
      checkKeys(raw.error, ['status', 'code', 'message'], epath, problems);
      const status = raw.error.status;
      if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599)
        problems.push(`${epath}.status: must be an HTTP error status (400-599)`);
      const code = text(raw.error, 'code', epath, problems, true);
      const message = text(raw.error, 'message', epath, problems, true);
      if (typeof status === 'number' && code !== undefined && message !== undefined)
        error = { status, code, message };
    }
  }
  const windowColumn = text(raw, 'windowColumn', path, problems);
  if (windowColumn !== undefined) {
    for (const [t, table] of tables.entries()) {
      const column = table.columns.find((c) => c.name === windowColumn);
      if (!column) problems.push(`${path}.windowColumn: tables[${t}] has no column '${windowColumn}'`);
      else if (column.type !== 'datetime')
        problems.push(`${path}.windowColumn: '${windowColumn}' must be a datetime column`);
    }
  }
  if (error === undefined && raw.tables === undefined)
    problems.push(`${path}.tables: is required (or give an error)`);
  return { tables, partialError, error, windowColumn };
}

function resolveQuery(raw: unknown, path: string, problems: Problems): ResolvedLogsQuery | undefined {
  if (!isObject(raw)) {
    problems.push(`${path}: must be a mapping`);
    return undefined;
  }
  checkKeys(raw, ['name', 'match', 'results', 'result', 'schedule'], path, problems);
  const name = text(raw, 'name', path, problems, true);
  let match: ResolvedLogsQuery['match'] | undefined;
  if (!isObject(raw.match))
    problems.push(`${path}.match: is required, as { tag: <name> } or { text: <KQL> }`);
  else {
    checkKeys(raw.match, ['tag', 'text'], `${path}.match`, problems);
    const tag = text(raw.match, 'tag', `${path}.match`, problems);
    const kql = text(raw.match, 'text', `${path}.match`, problems);
    if ((tag === undefined) === (kql === undefined))
      problems.push(`${path}.match: give exactly one of tag or text`);
    else if (tag !== undefined) {
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(tag))
        problems.push(`${path}.match.tag: letters, digits, _ . - only (it is written in a KQL comment)`);
      match = { tag };
    } else if (kql !== undefined) {
      if (kql.length > MONITOR_LIMITS.queryTextLength)
        problems.push(`${path}.match.text: at most ${MONITOR_LIMITS.queryTextLength} characters`);
      match = { text: kql };
    }
  }
  const results: Record<string, ResolvedLogsResult> = {};
  if (!isObject(raw.results))
    problems.push(`${path}.results: is required, as a map of result names to results`);
  else {
    const entries = Object.entries(raw.results);
    if (entries.length === 0) problems.push(`${path}.results: needs at least one result`);
    if (entries.length > MONITOR_LIMITS.resultsPerQuery)
      problems.push(`${path}.results: at most ${MONITOR_LIMITS.resultsPerQuery} results`);
    else
      for (const [key, value] of entries) {
        const resolved = resolveResult(value, `${path}.results.${key}`, problems);
        if (resolved) results[key] = resolved;
      }
  }
  const names = Object.keys(results);
  const result = text(raw, 'result', path, problems) ?? names[0];
  if (result !== undefined && isObject(raw.results) && !(result in raw.results))
    problems.push(`${path}.result: '${result}' is not one of results (${names.join(', ')})`);
  const schedule: ResolvedLogsQuery['schedule'] = [];
  for (const [i, s] of list(
    raw.schedule,
    `${path}.schedule`,
    MONITOR_LIMITS.pointsPerSeries,
    problems,
  ).entries()) {
    const spath = `${path}.schedule[${i}]`;
    if (!isObject(s)) {
      problems.push(`${spath}: must be a mapping { from, result }`);
      continue;
    }
    checkKeys(s, ['from', 'result'], spath, problems);
    const from = instant(s.from, `${spath}.from`, problems);
    const target = text(s, 'result', spath, problems, true);
    if (target !== undefined && isObject(raw.results) && !(target in raw.results))
      problems.push(`${spath}.result: '${target}' is not one of results (${names.join(', ')})`);
    if (from && target !== undefined) schedule.push({ from, result: target });
  }
  if (name === undefined || match === undefined || result === undefined) return undefined;
  return { name, match, results, result, schedule };
}

function resolveWorkspace(raw: unknown, path: string, problems: Problems): ResolvedWorkspace | undefined {
  if (!isObject(raw)) {
    problems.push(`${path}: must be a mapping`);
    return undefined;
  }
  checkKeys(
    raw,
    ['id', 'name', 'resourceGroup', 'resources', 'state', 'numbersAsStrings', 'queries'],
    path,
    problems,
  );
  const id = text(raw, 'id', path, problems, true);
  if (id !== undefined && !GUID.test(id))
    problems.push(`${path}.id: must be a GUID (the workspace's customer id)`);
  const name = text(raw, 'name', path, problems);
  if (name !== undefined && !WORKSPACE_NAME.test(name))
    problems.push(
      `${path}.name: 4-63 letters, digits and hyphens, starting and ending with a letter or digit`,
    );
  const resources: string[] = [];
  for (const [i, r] of list(
    raw.resources,
    `${path}.resources`,
    MONITOR_LIMITS.resources,
    problems,
  ).entries()) {
    if (typeof r !== 'string' || namespaceOfResourceId(r) === undefined)
      problems.push(
        `${path}.resources[${i}]: must be an ARM resource id (/subscriptions/{guid}/resourceGroups/...)`,
      );
    else resources.push(r);
  }
  const state = oneOf(raw.state, WORKSPACE_STATES, `${path}.state`, problems) ?? 'available';
  if (raw.numbersAsStrings !== undefined && typeof raw.numbersAsStrings !== 'boolean')
    problems.push(`${path}.numbersAsStrings: must be true or false`);
  const queries: ResolvedLogsQuery[] = [];
  for (const [i, q] of list(
    raw.queries,
    `${path}.queries`,
    MONITOR_LIMITS.queriesPerWorkspace,
    problems,
  ).entries()) {
    const resolved = resolveQuery(q, `${path}.queries[${i}]`, problems);
    if (!resolved) continue;
    if (queries.some((x) => x.name === resolved.name))
      problems.push(`${path}.queries[${i}].name: duplicate query '${resolved.name}'`);
    queries.push(resolved);
  }
  if (id === undefined) return undefined;
  return {
    id: id.toLowerCase(),
    name: name ?? `law-${id.slice(0, 8).toLowerCase()}`,
    resourceGroup: text(raw, 'resourceGroup', path, problems),
    resources,
    state,
    numbersAsStrings: raw.numbersAsStrings !== false,
    queries,
  };
}

/**
 * Validates the `monitor` section and fills in defaults; problems are pushed to `problems` with
 * their path under `monitor`. `clockStart` orders relative and absolute instants for the checks.
 */
/** How late a minute's metric data becomes visible by default (Azure: typically 1 to 3 minutes). */
export const DEFAULT_INGESTION_DELAY_MINUTES = 3;

export function resolveMonitorScenario(
  input: unknown,
  problems: Problems,
  clockStart: number,
): ResolvedMonitorScenario {
  const empty: ResolvedMonitorScenario = {
    // Azure's platform metrics show up a few minutes after the minute they describe: the sandbox is
    // no kinder by default (a scenario may set 0 for tests that do not care).
    metrics: { ingestionDelayMinutes: DEFAULT_INGESTION_DELAY_MINUTES, definitions: [], resources: [] },
    logAnalytics: { workspaces: [] },
  };
  if (input === undefined || input === null) return empty;
  if (!isObject(input)) {
    problems.push('monitor: must be a mapping { metrics?, logAnalytics? }');
    return empty;
  }
  checkKeys(input, ['metrics', 'logAnalytics'], 'monitor', problems);
  const metrics = input.metrics ?? {};
  const resolved = empty;
  if (!isObject(metrics)) problems.push('monitor.metrics: must be a mapping');
  else {
    checkKeys(metrics, ['ingestionDelayMinutes', 'definitions', 'resources'], 'monitor.metrics', problems);
    const delay = metrics.ingestionDelayMinutes;
    if (delay !== undefined) {
      if (
        typeof delay !== 'number' ||
        !Number.isInteger(delay) ||
        delay < 0 ||
        delay > MONITOR_LIMITS.ingestionDelayMinutes
      )
        problems.push(
          `monitor.metrics.ingestionDelayMinutes: must be an integer from 0 to ${MONITOR_LIMITS.ingestionDelayMinutes}`,
        );
      else resolved.metrics.ingestionDelayMinutes = delay;
    }
    if (metrics.definitions !== undefined && !isObject(metrics.definitions))
      problems.push(
        'monitor.metrics.definitions: must be a map of namespaces to lists of metric definitions',
      );
    for (const [namespace, defs] of Object.entries(
      isObject(metrics.definitions) ? metrics.definitions : {},
    )) {
      const path = `monitor.metrics.definitions['${namespace}']`;
      if (!NAMESPACE.test(namespace))
        problems.push(
          `${path}: '${namespace}' is not a metric namespace (Provider.Name/type, e.g. Microsoft.ServiceBus/namespaces)`,
        );
      if (resolved.metrics.definitions.some((d) => d.namespace.toLowerCase() === namespace.toLowerCase()))
        problems.push(`${path}: duplicate namespace (namespaces are case-insensitive)`);
      const out: ResolvedMetricDefinition[] = [];
      for (const [i, d] of list(defs, path, MONITOR_LIMITS.definitionsPerNamespace, problems).entries()) {
        const def = resolveMetricDefinition(d, `${path}[${i}]`, problems);
        if (!def) continue;
        if (out.some((x) => x.name.toLowerCase() === def.name.toLowerCase()))
          problems.push(`${path}[${i}].name: duplicate metric '${def.name}'`);
        out.push(def);
      }
      resolved.metrics.definitions.push({ namespace, metrics: out });
    }
    const ids = new Set<string>();
    for (const [i, r] of list(
      metrics.resources,
      'monitor.metrics.resources',
      MONITOR_LIMITS.resources,
      problems,
    ).entries()) {
      const path = `monitor.metrics.resources[${i}]`;
      if (!isObject(r)) {
        problems.push(`${path}: must be a mapping`);
        continue;
      }
      checkKeys(r, ['id', 'region', 'access', 'series'], path, problems);
      const id = text(r, 'id', path, problems, true);
      const namespace = id === undefined ? undefined : namespaceOfResourceId(id);
      if (id !== undefined && namespace === undefined)
        problems.push(
          `${path}.id: must be an ARM resource id (/subscriptions/{guid}/resourceGroups/{rg}/providers/{Provider}/{type}/{name})`,
        );
      if (id !== undefined && ids.has(id.toLowerCase()))
        problems.push(`${path}.id: duplicate resource '${id}'`);
      if (id !== undefined) ids.add(id.toLowerCase());
      const region = text(r, 'region', path, problems, true);
      if (region !== undefined && !REGION.test(region))
        problems.push(`${path}.region: '${region}' is not a region name (lower case, e.g. westeurope)`);
      const access = oneOf(r.access, ['allowed', 'denied'] as const, `${path}.access`, problems) ?? 'allowed';
      const definitions =
        namespace === undefined
          ? undefined
          : (resolved.metrics.definitions.find((d) => d.namespace.toLowerCase() === namespace.toLowerCase())
              ?.metrics ?? []);
      const series: ResolvedSeries[] = [];
      const seen = new Set<string>();
      for (const [j, s] of list(
        r.series,
        `${path}.series`,
        MONITOR_LIMITS.seriesPerResource,
        problems,
      ).entries()) {
        const one = resolveSeries(s, `${path}.series[${j}]`, problems, definitions, namespace, clockStart);
        if (!one) continue;
        const key = seriesKey(one.metric, one.dimensions);
        if (seen.has(key))
          problems.push(`${path}.series[${j}]: duplicate series (same metric and dimension values)`);
        seen.add(key);
        series.push(one);
      }
      if (id !== undefined && namespace !== undefined && region !== undefined)
        resolved.metrics.resources.push({ id, namespace, region, access, series });
    }
  }
  const logs = input.logAnalytics ?? {};
  if (!isObject(logs)) problems.push('monitor.logAnalytics: must be a mapping');
  else {
    checkKeys(logs, ['workspaces'], 'monitor.logAnalytics', problems);
    const aliases = new Set<string>();
    for (const [i, w] of list(
      logs.workspaces,
      'monitor.logAnalytics.workspaces',
      MONITOR_LIMITS.workspaces,
      problems,
    ).entries()) {
      const path = `monitor.logAnalytics.workspaces[${i}]`;
      const workspace = resolveWorkspace(w, path, problems);
      if (!workspace) continue;
      if (resolved.logAnalytics.workspaces.some((x) => x.id === workspace.id))
        problems.push(`${path}.id: duplicate workspace '${workspace.id}'`);
      for (const r of workspace.resources) {
        if (aliases.has(r.toLowerCase()))
          problems.push(`${path}.resources: '${r}' is already answered by another workspace`);
        aliases.add(r.toLowerCase());
      }
      resolved.logAnalytics.workspaces.push(workspace);
    }
  }
  return resolved;
}

/** The identity of a series: metric name and dimension values, case-insensitive as in Azure Monitor. */
export function seriesKey(metric: string, dimensions: Record<string, string>): string {
  const dims = Object.entries(dimensions)
    .map(([k, v]) => [k.toLowerCase(), v.toLowerCase()] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([metric.toLowerCase(), dims]);
}
