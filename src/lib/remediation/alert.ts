import { ValidationError } from '../core/errors';
import { parseIsoTime } from '../core/time';

/**
 * Azure Monitor alerts in the common alert schema (action group webhooks with
 * `useCommonAlertSchema: true`), normalized for the remediation capability.
 *
 * Published shape: https://learn.microsoft.com/azure/azure-monitor/alerts/alerts-common-schema and
 * https://learn.microsoft.com/azure/azure-monitor/alerts/alerts-common-schema-test-action-definitions
 */
export const COMMON_ALERT_SCHEMA_ID = 'azureMonitorCommonAlertSchema';

export const ALERT_SEVERITIES = ['Sev0', 'Sev1', 'Sev2', 'Sev3', 'Sev4'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];
export const SIGNAL_TYPES = ['Metric', 'Log', 'Activity Log'] as const;
export type SignalType = (typeof SIGNAL_TYPES)[number];
export const MONITOR_CONDITIONS = ['Fired', 'Resolved'] as const;
export type MonitorCondition = (typeof MONITOR_CONDITIONS)[number];

/** One criterion of the alert rule, as evaluated when the alert fired (`alertContext.condition.allOf[]`). */
export interface AlertCondition {
  /** `metric`: metric alerts; `logQuery`: log search alerts (V2 `allOf[]`, or the V1 PascalCase context). */
  kind: 'metric' | 'logQuery';
  metricName?: string;
  metricNamespace?: string;
  /** Without spaces: `GreaterThan`, `LessThan`, `LowerThan`... (Log Alerts V1 says `Greater Than`). */
  operator?: string;
  /** Always a number (the payloads carry it as a string: `"25"`); the computed one for dynamic thresholds. */
  threshold?: number;
  /** The value that crossed the threshold (V1 log alerts: the result count). */
  metricValue?: number;
  timeAggregation?: string;
  dimensions: Array<{ name: string; value: string }>;
  /** Log search alerts: the query (clipped). */
  searchQuery?: string;
}

/** The part of an activity log alert's context worth keeping. Token `claims` are deliberately dropped. */
export interface ActivityLogContext {
  operationName?: string;
  status?: string;
  subStatus?: string;
  level?: string;
  eventSource?: string;
  caller?: string;
  correlationId?: string;
  eventTimestamp?: string;
  eventDataId?: string;
  /** `"Activity Log Event Description"` (a key with spaces in the published payloads). */
  description?: string;
}

/** A Log Alerts V1 context (PascalCase keys), without its embedded search results. */
export interface LogV1Context {
  alertType?: string;
  workspaceId?: string;
  applicationId?: string;
  /** As published: ISO or `3/22/2019 1:36:31 PM`; kept as text, never interpreted. */
  searchIntervalStartTimeUtc?: string;
  searchIntervalEndTimeUtc?: string;
  /** Whether the payload embedded the results (`IncludedSearchResults`: `"True"` / `true`). */
  includedSearchResults?: boolean;
  linkToSearchResultsApi?: string;
}

/** A common-schema alert, normalized and bounded (no raw payload, no search results, no claims). */
export interface MonitorAlert {
  /** `/subscriptions/{sub}/providers/Microsoft.AlertsManagement/alerts/{guid}`: one alert instance. */
  alertId: string;
  alertRule: string;
  severity: AlertSeverity;
  signalType: SignalType;
  monitorCondition: MonitorCondition;
  /** `Platform`, `Log Analytics`, `Log Alerts V2`, `Activity Log - Administrative`, ... */
  monitoringService: string;
  /** ARM ids of the affected resources (`alertTargetIDs` or `alertTargetIds`), as published (case kept). */
  targetResourceIds: string[];
  /** How many targets the payload listed (the list above is bounded). */
  targetResourceCount: number;
  configurationItems: string[];
  originAlertId?: string;
  firedDateTime: Date;
  resolvedDateTime?: Date;
  description?: string;
  essentialsVersion?: string;
  alertContextVersion?: string;
  /** `SingleResourceMultipleMetricCriteria`, `DynamicThresholdCriteria`, `LogQueryCriteria`, ... */
  conditionType?: string;
  /** ISO 8601 duration, e.g. `PT5M`. */
  windowSize?: string;
  windowStartTime?: Date;
  windowEndTime?: Date;
  conditions: AlertCondition[];
  /** Log Alerts V1 only. */
  log?: LogV1Context;
  /** Activity log alerts only. */
  activityLog?: ActivityLogContext;
  /** `data.customProperties` merged over `alertContext.properties` (bounded, string values). */
  customProperties: Record<string, string>;
}

/** Bounds: an alert never holds more than this, whatever the payload carried. */
export const ALERT_LIMITS = {
  id: 1024,
  name: 260,
  text: 2000,
  query: 1000,
  targets: 50,
  configurationItems: 50,
  conditions: 20,
  dimensions: 20,
  customProperties: 20,
  problems: 50,
} as const;

type Json = Record<string, unknown>;

/**
 * Parses an action group webhook body in the common alert schema into a `MonitorAlert`, or throws a
 * `ValidationError` listing every problem (each `path: message`). Tolerates the published quirks:
 * `alertTargetIDs` / `alertTargetIds`, thresholds as strings, the PascalCase Log Alerts V1 context
 * (`SearchIntervalEndtimeUtc`), keys with spaces, activity-log `claims` as a JSON string (dropped),
 * numbers where strings are usual (service health `level: 3`). Keeps nothing unbounded: strings are
 * clipped, lists capped, search results and token claims are not kept. Pure: no I/O.
 */
export function parseCommonAlert(raw: unknown): MonitorAlert {
  if (!isObject(raw)) {
    throw new ValidationError('the alert is not a JSON object', ['(body): expected a JSON object']);
  }
  const problems: string[] = [];
  const root = keyed(raw);
  const schemaId = str(root.get('schemaid'), ALERT_LIMITS.name);
  if (schemaId === undefined) {
    problems.push(
      `schemaId: required ('${COMMON_ALERT_SCHEMA_ID}': enable the common alert schema on the action group's webhook)`,
    );
  } else if (schemaId.toLowerCase() !== COMMON_ALERT_SCHEMA_ID.toLowerCase()) {
    problems.push(
      `schemaId: '${clip(schemaId)}' is not '${COMMON_ALERT_SCHEMA_ID}' (enable the common alert schema on the action group's webhook)`,
    );
  }
  const data = root.get('data');
  if (!isObject(data)) {
    problems.push('data: required object with essentials and alertContext');
    throw invalid(problems, undefined, undefined);
  }
  const d = keyed(data);
  const essentialsRaw = d.get('essentials');
  if (!isObject(essentialsRaw)) {
    problems.push('data.essentials: required object');
    throw invalid(problems, undefined, undefined);
  }
  const e = keyed(essentialsRaw);
  const at = (key: string) => `data.essentials.${key}`;

  const alertId = required(e.get('alertid'), at('alertId'), ALERT_LIMITS.id, problems);
  const alertRule = required(e.get('alertrule'), at('alertRule'), ALERT_LIMITS.name, problems);
  const severity = oneOf(e.get('severity'), ALERT_SEVERITIES, at('severity'), problems);
  const signalType = oneOf(e.get('signaltype'), SIGNAL_TYPES, at('signalType'), problems);
  const monitorCondition = oneOf(
    e.get('monitorcondition'),
    MONITOR_CONDITIONS,
    at('monitorCondition'),
    problems,
  );
  const monitoringService = optional(
    e.get('monitoringservice'),
    at('monitoringService'),
    ALERT_LIMITS.name,
    problems,
  );
  const targets = stringList(e.get('alerttargetids'), at('alertTargetIDs'), ALERT_LIMITS.targets, problems);
  const configurationItems = stringList(
    e.get('configurationitems'),
    at('configurationItems'),
    ALERT_LIMITS.configurationItems,
    problems,
  );
  const originAlertId = optional(e.get('originalertid'), at('originAlertId'), ALERT_LIMITS.id, problems);
  const firedDateTime = time(e.get('fireddatetime'), at('firedDateTime'), true, problems);
  const resolvedDateTime = time(e.get('resolveddatetime'), at('resolvedDateTime'), false, problems);
  const description = optional(e.get('description'), at('description'), ALERT_LIMITS.text, problems);
  const essentialsVersion = optional(e.get('essentialsversion'), at('essentialsVersion'), 20, problems);
  const alertContextVersion = optional(e.get('alertcontextversion'), at('alertContextVersion'), 20, problems);
  if (monitorCondition === 'Fired' && resolvedDateTime) {
    problems.push(`${at('resolvedDateTime')}: must be absent while monitorCondition is Fired`);
  }
  if (firedDateTime && resolvedDateTime && resolvedDateTime < firedDateTime) {
    problems.push(`${at('resolvedDateTime')}: must not be before firedDateTime`);
  }

  const contextRaw = d.get('alertcontext');
  if (contextRaw !== undefined && contextRaw !== null && !isObject(contextRaw)) {
    problems.push('data.alertContext: expected an object or null');
  }
  const context = isObject(contextRaw) ? parseContext(contextRaw, signalType, problems) : emptyContext();

  // In metric and log alert contexts `properties` holds the rule's custom properties; in activity
  // log contexts it is the event's own properties (entity, hierarchy...), not custom ones.
  const contextProperties =
    isObject(contextRaw) && signalType !== 'Activity Log' ? keyed(contextRaw).get('properties') : undefined;
  const customProperties = { ...properties(contextProperties), ...properties(d.get('customproperties')) };

  if (problems.length > 0) throw invalid(problems, alertId, alertRule);
  return {
    alertId: alertId!,
    alertRule: alertRule!,
    severity: severity!,
    signalType: signalType!,
    monitorCondition: monitorCondition!,
    monitoringService: monitoringService ?? 'unknown',
    targetResourceIds: targets.values,
    targetResourceCount: targets.count,
    configurationItems: configurationItems.values,
    ...defined({
      originAlertId,
      resolvedDateTime,
      description,
      essentialsVersion,
      alertContextVersion,
    }),
    firedDateTime: firedDateTime!,
    ...context,
    customProperties,
  };
}

type ContextPart = Pick<
  MonitorAlert,
  'conditionType' | 'windowSize' | 'windowStartTime' | 'windowEndTime' | 'conditions' | 'log' | 'activityLog'
>;

function emptyContext(): ContextPart {
  return { conditions: [] };
}

function parseContext(raw: Json, signalType: SignalType | undefined, problems: string[]): ContextPart {
  const c = keyed(raw);
  const at = (key: string) => `data.alertContext.${key}`;
  const out: ContextPart = { conditions: [] };

  // Log Alerts V1 (and Application Insights log alerts): PascalCase, no `condition`.
  if (c.has('searchquery') && !c.has('condition')) {
    const threshold = num(c.get('threshold'), at('Threshold'), problems);
    const resultCount = num(c.get('resultcount'), at('ResultCount'), problems);
    const query = optional(c.get('searchquery'), at('SearchQuery'), ALERT_LIMITS.query, problems);
    out.conditions.push({
      kind: 'logQuery',
      ...defined({
        operator: operator(c.get('operator'), at('Operator'), problems),
        threshold,
        metricValue: resultCount,
        searchQuery: query,
      }),
      dimensions: dimensions(c.get('dimensions'), at('Dimensions'), problems),
    });
    const included = c.get('includedsearchresults');
    out.log = defined({
      alertType: optional(c.get('alerttype'), at('AlertType'), ALERT_LIMITS.name, problems),
      workspaceId: optional(c.get('workspaceid'), at('WorkspaceId'), ALERT_LIMITS.name, problems),
      applicationId: optional(c.get('applicationid'), at('ApplicationId'), ALERT_LIMITS.name, problems),
      searchIntervalStartTimeUtc: optional(
        c.get('searchintervalstarttimeutc'),
        at('SearchIntervalStartTimeUtc'),
        60,
        problems,
      ),
      searchIntervalEndTimeUtc: optional(
        c.get('searchintervalendtimeutc'),
        at('SearchIntervalEndtimeUtc'),
        60,
        problems,
      ),
      includedSearchResults:
        included === undefined || included === null
          ? undefined
          : included === true || (typeof included === 'string' && included.trim().toLowerCase() === 'true'),
      linkToSearchResultsApi: optional(
        c.get('linktosearchresultsapi'),
        at('LinkToSearchResultsAPI'),
        ALERT_LIMITS.text,
        problems,
      ),
    });
    return out;
  }

  out.conditionType = optional(c.get('conditiontype'), at('conditionType'), ALERT_LIMITS.name, problems);
  const conditionRaw = c.get('condition');
  if (conditionRaw !== undefined && conditionRaw !== null) {
    if (!isObject(conditionRaw)) {
      problems.push(`${at('condition')}: expected an object`);
    } else {
      const cond = keyed(conditionRaw);
      out.windowSize = optional(cond.get('windowsize'), at('condition.windowSize'), 40, problems);
      out.windowStartTime = time(
        cond.get('windowstarttime'),
        at('condition.windowStartTime'),
        false,
        problems,
      );
      out.windowEndTime = time(cond.get('windowendtime'), at('condition.windowEndTime'), false, problems);
      const allOf = cond.get('allof');
      if (allOf !== undefined && allOf !== null && !Array.isArray(allOf)) {
        problems.push(`${at('condition.allOf')}: expected an array`);
      } else if (Array.isArray(allOf)) {
        allOf.slice(0, ALERT_LIMITS.conditions).forEach((item, i) => {
          const path = at(`condition.allOf[${i}]`);
          if (!isObject(item)) {
            problems.push(`${path}: expected an object`);
            return;
          }
          out.conditions.push(criterion(keyed(item), path, problems));
        });
      }
    }
  }
  if (signalType === 'Metric' && out.conditionType && out.conditions.length === 0 && c.has('condition')) {
    problems.push(`${at('condition.allOf')}: a metric alert needs at least one criterion`);
  }

  if (signalType === 'Activity Log') {
    // `claims` is the caller's token claims (a JSON string in the published payloads): identity
    // data stampkeeper has no use for, so it is neither parsed nor kept.
    const text = (key: string, name: string, max: number = ALERT_LIMITS.name) =>
      scalar(c.get(key), at(name), max, problems);
    out.activityLog = defined({
      operationName: text('operationname', 'operationName'),
      status: text('status', 'status'),
      subStatus: text('substatus', 'subStatus'),
      level: text('level', 'level'),
      eventSource: text('eventsource', 'eventSource'),
      caller: text('caller', 'caller'),
      correlationId: text('correlationid', 'correlationId'),
      eventTimestamp: text('eventtimestamp', 'eventTimestamp', 60),
      eventDataId: text('eventdataid', 'eventDataId'),
      description: text('activitylogeventdescription', 'Activity Log Event Description', ALERT_LIMITS.text),
    });
  }
  return out;
}

function criterion(item: Map<string, unknown>, path: string, problems: string[]): AlertCondition {
  const searchQuery = optional(item.get('searchquery'), `${path}.searchQuery`, ALERT_LIMITS.query, problems);
  return {
    kind: item.has('searchquery') ? 'logQuery' : 'metric',
    ...defined({
      metricName: optional(item.get('metricname'), `${path}.metricName`, ALERT_LIMITS.name, problems),
      metricNamespace: optional(
        item.get('metricnamespace'),
        `${path}.metricNamespace`,
        ALERT_LIMITS.name,
        problems,
      ),
      operator: operator(item.get('operator'), `${path}.operator`, problems),
      threshold: num(item.get('threshold'), `${path}.threshold`, problems),
      metricValue: num(item.get('metricvalue'), `${path}.metricValue`, problems),
      timeAggregation: optional(item.get('timeaggregation'), `${path}.timeAggregation`, 40, problems),
      searchQuery,
    }),
    dimensions: dimensions(item.get('dimensions'), `${path}.dimensions`, problems),
  };
}

function dimensions(value: unknown, path: string, problems: string[]): AlertCondition['dimensions'] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.push(`${path}: expected an array of { name, value }`);
    return [];
  }
  const out: AlertCondition['dimensions'] = [];
  value.slice(0, ALERT_LIMITS.dimensions).forEach((entry, i) => {
    const d = isObject(entry) ? keyed(entry) : undefined;
    const name = d ? scalar(d.get('name'), `${path}[${i}].name`, ALERT_LIMITS.name, problems) : undefined;
    const dimValue = d
      ? scalar(d.get('value'), `${path}[${i}].value`, ALERT_LIMITS.name, problems)
      : undefined;
    if (name === undefined) {
      if (!d) problems.push(`${path}[${i}]: expected an object { name, value }`);
      else if (!d.has('name') || d.get('name') === null) problems.push(`${path}[${i}].name: required`);
      return;
    }
    out.push({ name, value: dimValue ?? '' });
  });
  return out;
}

function properties(value: unknown): Record<string, string> {
  if (!isObject(value)) return {};
  const out: Record<string, string> = {};
  for (const [key, inner] of Object.entries(value).slice(0, ALERT_LIMITS.customProperties)) {
    const k = key.trim().slice(0, ALERT_LIMITS.name);
    if (!k) continue;
    if (typeof inner === 'string') out[k] = inner.slice(0, 512);
    else if (typeof inner === 'number' || typeof inner === 'boolean') out[k] = String(inner);
  }
  return out;
}

/** Keys compared case-insensitively and without whitespace (`alertTargetIDs`, `"Activity Log Event Description"`). */
function keyed(value: Json): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [key, inner] of Object.entries(value)) {
    const k = key.replace(/\s+/g, '').toLowerCase();
    if (!out.has(k)) out.set(k, inner);
  }
  return out;
}

function required(value: unknown, path: string, max: number, problems: string[]): string | undefined {
  if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) {
    problems.push(`${path}: required`);
    return undefined;
  }
  return optional(value, path, max, problems);
}

function optional(value: unknown, path: string, max: number, problems: string[]): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    problems.push(`${path}: expected a string`);
    return undefined;
  }
  const trimmed = value.trim();
  return trimmed ? trimmed.slice(0, max) : undefined;
}

/** A string, or a number / boolean given where a string is usual (service health: `level: 3`). */
function scalar(value: unknown, path: string, max: number, problems: string[]): string | undefined {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return optional(value, path, max, problems);
}

function oneOf<T extends string>(
  value: unknown,
  allowed: readonly T[],
  path: string,
  problems: string[],
): T | undefined {
  if (value === undefined || value === null || value === '') {
    problems.push(`${path}: required (one of ${allowed.join(', ')})`);
    return undefined;
  }
  if (typeof value !== 'string') {
    problems.push(`${path}: expected one of ${allowed.join(', ')}`);
    return undefined;
  }
  const wanted = value.replace(/\s+/g, '').toLowerCase();
  const found = allowed.find((a) => a.replace(/\s+/g, '').toLowerCase() === wanted);
  if (!found) problems.push(`${path}: '${clip(value)}' is not one of ${allowed.join(', ')}`);
  return found;
}

function operator(value: unknown, path: string, problems: string[]): string | undefined {
  return optional(value, path, 40, problems)?.replace(/\s+/g, '');
}

/** A finite number, given as a JSON number or a numeric string (`"25"`, `"0.3"`); absent / null -> undefined. */
function num(value: unknown, path: string, problems: string[]): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '' && value.trim().length <= 40) {
    const n = Number(value.trim());
    if (Number.isFinite(n)) return n;
  }
  problems.push(`${path}: expected a number (or a numeric string)`);
  return undefined;
}

function time(value: unknown, path: string, isRequired: boolean, problems: string[]): Date | undefined {
  if (value === undefined || value === null || value === '') {
    if (isRequired) problems.push(`${path}: required (ISO 8601 time)`);
    return undefined;
  }
  const date = parseIsoTime(value);
  if (!date) problems.push(`${path}: must be an ISO 8601 time with a zone (e.g. 2021-11-16T08:29:01.29Z)`);
  return date;
}

function stringList(
  value: unknown,
  path: string,
  max: number,
  problems: string[],
): { values: string[]; count: number } {
  if (value === undefined || value === null) return { values: [], count: 0 };
  if (!Array.isArray(value)) {
    problems.push(`${path}: expected an array of strings`);
    return { values: [], count: 0 };
  }
  const values: string[] = [];
  value.slice(0, max).forEach((item, i) => {
    const s = optional(item, `${path}[${i}]`, ALERT_LIMITS.id, problems);
    if (s !== undefined) values.push(s);
  });
  return { values, count: value.length };
}

function invalid(
  problems: string[],
  alertId: string | undefined,
  alertRule: string | undefined,
): ValidationError {
  const listed = problems.slice(0, ALERT_LIMITS.problems);
  if (problems.length > listed.length) listed.push(`(and ${problems.length - listed.length} more problems)`);
  return new ValidationError(`invalid Azure Monitor alert: ${listed.join('; ')}`, listed, {
    metadata: { alertId: alertId ? clip(alertId) : null, alertRule: alertRule ? clip(alertRule) : null },
  });
}

/** `obj` without its undefined members (optional properties stay absent, not `undefined`). */
function defined<T extends Record<string, unknown>>(obj: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out as { [K in keyof T]?: Exclude<T[K], undefined> };
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown, max: number): string | undefined {
  return typeof value === 'string' && value.trim() ? value.trim().slice(0, max) : undefined;
}

function clip(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
