/**
 * The Azure Monitor metrics data plane as `MetricsClient` of `@azure/monitor-query-metrics` 1.0.0 calls
 * it: `POST https://{region}.metrics.monitor.azure.com/subscriptions/{subscriptionId}/metrics:getBatch
 * ?metricnamespace=&metricnames=&starttime=&endtime=&interval=&aggregation=&top=&orderby=&filter=
 * &rollupby=&api-version=2024-02-01` with the body `{ "resourceids": [...] }`, a bearer token for the
 * audience `https://metrics.monitor.azure.com` (the REST spec's OAuth2 scope). Answers in the shape of
 * `specification/monitor/data-plane/Microsoft.Insights/stable/2024-02-01` (examples/MetricBatchExample.json):
 * a top-level `values`, lower-case `starttime` / `resourceid` / `resourceregion` / `namespace`,
 * `timeStamp` points without milliseconds, aggregation keys omitted for intervals without data, and
 * dimension names lower-cased in `metadatavalues`. Errors are the spec's `ErrorResponse`
 * (`{ error: { code, message } }`); the texts follow the ARM metrics API's.
 */
import type { SandboxCredential } from '../credential';
import { bearerToken } from '../credential';
import { azureError, type SandboxReply, type SandboxRequest } from '../http';
import type { ServiceEmulator } from '../router';
import { parseMetricsFilter } from './filter';
import { type Accumulator, aggregate, emptyAccumulator, type MetricsStore, RETENTION_MS } from './metrics';
import {
  AGGREGATIONS,
  type Aggregation,
  namespaceOfResourceId,
  type ResolvedMetricDefinition,
  subscriptionOfResourceId,
} from './scenario';
import { floorTo, MINUTE_MS, parseInstant } from './time';

export const METRICS_HOST_SUFFIX = '.metrics.monitor.azure.com';
/** The audience of the metrics data plane (metricBatch.json: scope `https://metrics.monitor.azure.com/.default`). */
export const METRICS_AUDIENCE = 'https://metrics.monitor.azure.com';
export const METRICS_API_VERSIONS = ['2023-05-01-preview', '2023-10-01', '2024-02-01'] as const;

/** The time grains of platform metrics, in minutes (`FULL` is one interval for the whole timespan). */
const TIME_GRAINS: Record<string, number> = {
  PT1M: 1,
  PT5M: 5,
  PT15M: 15,
  PT30M: 30,
  PT1H: 60,
  PT6H: 360,
  PT12H: 720,
  P1D: 1440,
};
/** metrics:getBatch takes at most 50 resources (Azure Monitor documentation, "Batching restrictions"). */
export const MAX_BATCH_RESOURCES = 50;
/** Sandbox bounds, checked before any work: points per series, and minute samples read per request. */
export const MAX_POINTS_PER_SERIES = 50_000;
export const MAX_MINUTES_READ = 1_000_000;
const MAX_TOP = 1000;
const DEFAULT_TOP = 10;
const DEFAULT_SPAN_MS = 60 * MINUTE_MS;

/** One request as the metrics emulation saw it (for tests and inspection). */
export interface MetricsRequestRecord {
  method: string;
  path: string;
  region: string;
  authenticated: boolean;
  status: number;
  metricNames: string[];
  resourceCount: number;
}

const LOWER_AGGREGATION: Record<string, Aggregation> = Object.fromEntries(
  AGGREGATIONS.map((a) => [a.toLowerCase(), a]),
);

function badRequest(message: string): SandboxReply {
  return azureError(400, 'BadRequest', message);
}

function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

export class MetricsEmulator implements ServiceEmulator {
  readonly name = 'monitor-metrics';
  private readonly log: MetricsRequestRecord[] = [];

  constructor(
    readonly store: MetricsStore,
    private readonly credential: SandboxCredential,
    private readonly now: () => number,
  ) {}

  matches(hostname: string): boolean {
    return hostname.endsWith(METRICS_HOST_SUFFIX);
  }

  /** The regions of the scenario's resources (and `global`) have an endpoint; any other name does not resolve. */
  resolves(hostname: string): boolean {
    const region = hostname.slice(0, -METRICS_HOST_SUFFIX.length);
    return region === 'global' || this.store.regions().has(region);
  }

  requests(): MetricsRequestRecord[] {
    return this.log.map((r) => ({ ...r, metricNames: [...r.metricNames] }));
  }

  async handle(req: SandboxRequest): Promise<SandboxReply> {
    const record: MetricsRequestRecord = {
      method: req.method,
      path: req.url.pathname,
      region: req.url.hostname.slice(0, -METRICS_HOST_SUFFIX.length),
      authenticated: req.headers.get('authorization') !== undefined,
      status: 0,
      metricNames: [],
      resourceCount: 0,
    };
    const reply = this.route(req, record);
    record.status = reply.status;
    this.log.push(record);
    if (this.log.length > 10_000) this.log.shift();
    return reply;
  }

  private authenticate(req: SandboxRequest): SandboxReply | undefined {
    const authorization = req.headers.get('authorization');
    if (!authorization) {
      return azureError(
        401,
        'AuthenticationFailed',
        "Authentication failed. The 'Authorization' header is missing.",
        {
          headers: {
            'www-authenticate':
              'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", error_description="The authentication failed because of missing \'Authorization\' header."',
          },
        },
      );
    }
    const token = bearerToken(authorization);
    const info = token ? this.credential.inspect(token) : undefined;
    if (!info) return azureError(401, 'InvalidAuthenticationToken', 'The access token is invalid.');
    if (info.expiresOnTimestamp <= Date.now())
      return azureError(
        401,
        'ExpiredAuthenticationToken',
        'The access token expiry UTC time is earlier than current UTC time.',
      );
    if (info.audience !== METRICS_AUDIENCE) {
      return azureError(
        401,
        'InvalidAuthenticationTokenAudience',
        `The access token has been obtained for wrong audience or resource '${info.audience}'. It should exactly match with one of the allowed audiences '${METRICS_AUDIENCE}','${METRICS_AUDIENCE}/'.`,
      );
    }
    return undefined;
  }

  private route(req: SandboxRequest, record: MetricsRequestRecord): SandboxReply {
    const unauthenticated = this.authenticate(req);
    if (unauthenticated) return unauthenticated;
    const path = req.url.pathname.replace(/%3A/gi, ':');
    const match = /^\/subscriptions\/([^/]+)\/metrics:getBatch\/?$/i.exec(path);
    if (!match)
      return azureError(404, 'NotFound', `The requested resource ${req.url.pathname} was not found.`);
    if (req.method !== 'POST')
      return azureError(
        405,
        'MethodNotAllowed',
        `The requested resource does not support http method '${req.method}'.`,
      );
    const params = new Map<string, string>();
    for (const [key, value] of req.url.searchParams) {
      if (!params.has(key.toLowerCase())) params.set(key.toLowerCase(), value);
    }
    const apiVersion = params.get('api-version');
    if (!apiVersion)
      return azureError(
        400,
        'MissingApiVersionParameter',
        'The api-version query parameter (?api-version=) is required for all requests.',
      );
    if (!(METRICS_API_VERSIONS as readonly string[]).includes(apiVersion)) {
      return azureError(
        400,
        'InvalidApiVersionParameter',
        `The api-version '${apiVersion}' is invalid. The supported versions are '${METRICS_API_VERSIONS.join(',')}'.`,
      );
    }
    try {
      return this.query(req, match[1]!.toLowerCase(), params, record);
    } catch (err) {
      if (err instanceof RequestProblem) return err.reply;
      throw err;
    }
  }

  private query(
    req: SandboxRequest,
    subscriptionId: string,
    params: Map<string, string>,
    record: MetricsRequestRecord,
  ): SandboxReply {
    const region = record.region;
    const namespace = params.get('metricnamespace');
    if (!namespace) return badRequest('The metricnamespace query parameter is required.');
    const metricNames = (params.get('metricnames') ?? '').split(',').map((m) => m.trim());
    if (metricNames.length === 0 || metricNames.some((m) => m === ''))
      return badRequest(
        'The metricnames query parameter must name at least one metric (comma separated, none empty).',
      );
    record.metricNames = metricNames;

    const now = this.now();
    const span = this.timespan(params, now);
    const grain = this.interval(params.get('interval'));
    const aggregations = this.aggregations(params.get('aggregation'));
    const filter = params.get('filter');
    const conditions = filter === undefined ? undefined : parseMetricsFilter(filter);
    if (conditions && !conditions.ok) return badRequest(conditions.error);
    const top = this.top(params.get('top'));
    const orderBy = this.orderBy(params.get('orderby'));
    const rollUp = (params.get('rollupby') ?? '')
      .split(',')
      .map((d) => d.trim().toLowerCase())
      .filter((d) => d !== '');

    let body: unknown;
    try {
      body = req.bodyText === undefined || req.bodyText.trim() === '' ? undefined : JSON.parse(req.bodyText);
    } catch {
      return badRequest('The request body is not valid JSON.');
    }
    const ids = (body as { resourceids?: unknown } | undefined)?.resourceids;
    if (!Array.isArray(ids) || ids.length === 0 || ids.some((id) => typeof id !== 'string'))
      return badRequest(
        'The request body must be { "resourceids": [ <resource id>, ... ] } with at least one resource id.',
      );
    if (ids.length > MAX_BATCH_RESOURCES)
      return badRequest(
        `A batch can query at most ${MAX_BATCH_RESOURCES} resources; ${ids.length} were given.`,
      );
    record.resourceCount = ids.length;

    const resources = [];
    for (const id of ids as string[]) {
      const ns = namespaceOfResourceId(id);
      if (ns === undefined) return badRequest(`'${id}' is not a valid resource id.`);
      if (subscriptionOfResourceId(id) !== subscriptionId)
        return badRequest(
          `All resources of a batch must be in the subscription of the request (${subscriptionId}); '${id}' is not.`,
        );
      if (ns.toLowerCase() !== namespace.toLowerCase())
        return badRequest(
          `The resource '${id}' (${ns}) does not belong to the metric namespace '${namespace}': all resources of a batch must be of the same type.`,
        );
      const resource = this.store.resource(id);
      if (!resource) {
        const [, , , rg, , provider, ...rest] = id.split('/');
        return azureError(
          404,
          'ResourceNotFound',
          `The Resource '${provider}/${rest.join('/')}' under resource group '${rg}' was not found.`,
        );
      }
      if (resource.region !== region)
        return badRequest(
          `The resource '${id}' is in region '${resource.region}', not '${region}': query it on https://${resource.region}${METRICS_HOST_SUFFIX}.`,
        );
      if (resource.access === 'denied') {
        return azureError(
          403,
          'AuthorizationFailed',
          `The client does not have authorization to perform action 'Microsoft.Insights/metrics/read' over scope '${id}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
        );
      }
      resources.push({ requestedId: id, resource });
    }

    const definitions: ResolvedMetricDefinition[] = [];
    for (const name of metricNames) {
      const definition = this.store.metricDefinition(namespace, name);
      if (!definition) {
        const [provider, ...types] = namespace.split('/');
        return badRequest(
          `Failed to find metric configuration for provider: ${provider}, resource Type: ${types.join('/')}, metric: ${name}, Valid metrics: ${this.store
            .metricsOf(namespace)
            .map((d) => d.name)
            .join(',')}`,
        );
      }
      for (const condition of conditions?.ok ? conditions.conditions : []) {
        if (!definition.dimensions.some((d) => d.toLowerCase() === condition.name.toLowerCase())) {
          return badRequest(
            `Metric: ${definition.name} does not support requested dimension combination: ${condition.name}, supported ones are: ${definition.dimensions.join(',') || '(none)'}`,
          );
        }
      }
      if (orderBy && !(aggregations ?? [definition.aggregation]).includes(orderBy.aggregation))
        return badRequest(
          `The orderby aggregation '${orderBy.aggregation}' must be one of the requested aggregations.`,
        );
      definitions.push(definition);
    }

    // The intervals: from the start (to the minute) in steps of the grain; the last may be partial.
    const firstMinute = floorTo(span.start, MINUTE_MS);
    const endMinute = floorTo(span.end, MINUTE_MS);
    if (endMinute <= firstMinute) return badRequest('The timespan must cover at least one minute.');
    const stepMs = grain === 'FULL' ? endMinute - firstMinute : TIME_GRAINS[grain]! * MINUTE_MS;
    const intervals = Math.ceil((endMinute - firstMinute) / stepMs);
    if (intervals > MAX_POINTS_PER_SERIES)
      return badRequest(
        `The query asks for ${intervals} points per series: at most ${MAX_POINTS_PER_SERIES} (sandbox bound); use a coarser interval or a shorter timespan.`,
      );
    // Minutes whose data exists: ended (plus the ingestion delay), and within the retention.
    const lastVisible = floorTo(now - this.store.ingestionDelayMs, MINUTE_MS) - MINUTE_MS;
    const from = Math.max(firstMinute, floorTo(now - RETENTION_MS, MINUTE_MS));
    const to = Math.min(endMinute - MINUTE_MS, lastVisible);
    const minutes = to >= from ? (to - from) / MINUTE_MS + 1 : 0;

    this.store.sampleSources();
    const work = resources.flatMap(({ resource }) =>
      definitions.map((definition) => ({
        resource,
        definition,
        series: this.store.sampledSeries(resource, definition),
      })),
    );
    const reads = work.reduce((n, w) => n + w.series.length * minutes, 0);
    if (reads > MAX_MINUTES_READ)
      return badRequest(
        `The query would read ${reads} minute samples: at most ${MAX_MINUTES_READ} (sandbox bound); query fewer resources, metrics or a shorter timespan.`,
      );

    const values = resources.map(({ requestedId, resource }) => ({
      starttime: span.startText,
      endtime: span.endText,
      interval: grain,
      value: work
        .filter((w) => w.resource === resource)
        .map(({ definition, series }) => {
          const requested = aggregations ?? [definition.aggregation];
          const groups = this.group(
            series,
            definition,
            conditions?.ok ? conditions.conditions : undefined,
            rollUp,
          );
          for (const group of groups) {
            for (const member of group.members) {
              for (let m = from; m <= to; m += MINUTE_MS) {
                const index = Math.floor((m - firstMinute) / stepMs);
                let interval = group.intervals[index];
                if (!interval) {
                  interval = emptyAccumulator();
                  group.intervals[index] = interval;
                }
                member.samplesAt(m, interval);
              }
            }
          }
          let shown = groups;
          if (conditions?.ok) {
            if (orderBy) shown = sortGroups(groups, orderBy);
            shown = shown.slice(0, top);
          }
          return {
            id: `${requestedId}/providers/Microsoft.Insights/metrics/${definition.name}`,
            type: 'Microsoft.Insights/metrics',
            name: { value: definition.name, localizedValue: definition.displayName },
            displayDescription: definition.description,
            unit: definition.unit,
            timeseries: shown.map((group) => ({
              metadatavalues: group.metadata.map(({ name, value }) => ({
                name: { value: name.toLowerCase(), localizedValue: name.toLowerCase() },
                value,
              })),
              data: Array.from({ length: intervals }, (_, i) =>
                point(firstMinute + i * stepMs, group.intervals[i], requested, definition),
              ),
            })),
            errorCode: 'Success',
          };
        }),
      namespace: resource.namespace.toLowerCase(),
      resourceregion: resource.region,
      resourceid: requestedId,
    }));
    return { status: 200, body: { values } };
  }

  /** Groups the series by the values of the split dimensions (those the filter names, minus rolled-up ones). */
  private group(
    series: ReturnType<MetricsStore['sampledSeries']>,
    definition: ResolvedMetricDefinition,
    conditions: Array<{ name: string; values: '*' | string[] }> | undefined,
    rollUp: string[],
  ): Array<{
    metadata: Array<{ name: string; value: string }>;
    members: typeof series;
    intervals: Array<Accumulator | undefined>;
  }> {
    if (conditions === undefined) return [{ metadata: [], members: series, intervals: [] }];
    const matching = series.filter((s) =>
      conditions.every((c) => {
        if (c.values === '*') return true;
        const value = s.dimensions.get(c.name.toLowerCase())?.toLowerCase();
        return c.values.some((v) => v.toLowerCase() === value);
      }),
    );
    const split = conditions.filter((c) => !rollUp.includes(c.name.toLowerCase()));
    const groups = new Map<
      string,
      {
        metadata: Array<{ name: string; value: string }>;
        members: typeof series;
        intervals: Array<Accumulator | undefined>;
      }
    >();
    for (const s of matching) {
      const metadata = split.map((c) => {
        const dim = definition.dimensions.find((d) => d.toLowerCase() === c.name.toLowerCase())!;
        return { name: c.name, value: s.original[dim] ?? '' };
      });
      const key = JSON.stringify(metadata.map((m) => m.value.toLowerCase()));
      const group = groups.get(key);
      if (group) group.members.push(s);
      else groups.set(key, { metadata, members: [s], intervals: [] });
    }
    return [...groups.values()];
  }

  private timespan(
    params: Map<string, string>,
    now: number,
  ): { start: number; end: number; startText: string; endText: string } {
    const startText = params.get('starttime');
    const endText = params.get('endtime');
    if (endText !== undefined && startText === undefined)
      throw new RequestProblem(
        badRequest('The starttime query parameter is required when endtime is given.'),
      );
    const parse = (text: string, name: string): number => {
      const ms = parseInstant(text);
      if (ms === undefined)
        throw new RequestProblem(
          badRequest(`The ${name} '${text}' is not a valid time; use the format yyyy-MM-ddTHH:mm:ss.fffZ.`),
        );
      return ms;
    };
    const end = endText === undefined ? now : parse(endText, 'endtime');
    const start = startText === undefined ? end - DEFAULT_SPAN_MS : parse(startText, 'starttime');
    if (start >= end)
      throw new RequestProblem(
        badRequest(
          `Invalid time range: the starttime (${new Date(start).toISOString()}) must be before the endtime (${new Date(end).toISOString()}).`,
        ),
      );
    return {
      start,
      end,
      startText: startText ?? new Date(start).toISOString(),
      endText: endText ?? new Date(end).toISOString(),
    };
  }

  private interval(text: string | undefined): string {
    if (text === undefined) return 'PT1M';
    const grain = text.toUpperCase();
    if (grain !== 'FULL' && !(grain in TIME_GRAINS))
      throw new RequestProblem(
        badRequest(
          `Invalid time grain '${text}': supported values are ${Object.keys(TIME_GRAINS).join(', ')} and FULL.`,
        ),
      );
    return grain;
  }

  private aggregations(text: string | undefined): Aggregation[] | undefined {
    if (text === undefined || text.trim() === '') return undefined;
    const out: Aggregation[] = [];
    for (const part of text.split(',')) {
      const aggregation = LOWER_AGGREGATION[part.trim().toLowerCase()];
      if (!aggregation)
        throw new RequestProblem(
          badRequest(
            `Invalid aggregation type '${part.trim()}': use average, minimum, maximum, total or count.`,
          ),
        );
      if (!out.includes(aggregation)) out.push(aggregation);
    }
    return out;
  }

  private top(text: string | undefined): number {
    if (text === undefined) return DEFAULT_TOP;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > MAX_TOP)
      throw new RequestProblem(badRequest(`Invalid top '${text}': a whole number from 1 to ${MAX_TOP}.`));
    return n;
  }

  private orderBy(text: string | undefined): { aggregation: Aggregation; descending: boolean } | undefined {
    if (text === undefined || text.trim() === '') return undefined;
    const [name, direction, ...rest] = text.trim().split(/\s+/);
    const aggregation = LOWER_AGGREGATION[(name ?? '').toLowerCase()];
    const dir = (direction ?? 'asc').toLowerCase();
    if (!aggregation || rest.length > 0 || (dir !== 'asc' && dir !== 'desc'))
      throw new RequestProblem(
        badRequest(`Invalid orderby '${text}': <aggregation> asc|desc, e.g. 'total desc'.`),
      );
    return { aggregation, descending: dir === 'desc' };
  }
}

class RequestProblem extends Error {
  constructor(readonly reply: SandboxReply) {
    super('bad request');
  }
}

function point(
  at: number,
  acc: Accumulator | undefined,
  aggregations: Aggregation[],
  definition: ResolvedMetricDefinition,
): Record<string, unknown> {
  const out: Record<string, unknown> = { timeStamp: timestamp(at) };
  for (const aggregation of aggregations) {
    if (acc && acc.count > 0) out[aggregation.toLowerCase()] = aggregate(acc, aggregation);
    else if (definition.fillGapWithZero) out[aggregation.toLowerCase()] = 0;
  }
  return out;
}

function sortGroups<T extends { intervals: Array<Accumulator | undefined> }>(
  groups: T[],
  orderBy: { aggregation: Aggregation; descending: boolean },
): T[] {
  const score = (group: T): number | undefined => {
    const whole = group.intervals.reduce<Accumulator | undefined>(
      (acc, i) =>
        i === undefined || i.count === 0
          ? acc
          : {
              sum: (acc?.sum ?? 0) + i.sum,
              count: (acc?.count ?? 0) + i.count,
              min: Math.min(acc?.min ?? Number.POSITIVE_INFINITY, i.min),
              max: Math.max(acc?.max ?? Number.NEGATIVE_INFINITY, i.max),
            },
      undefined,
    );
    return whole === undefined ? undefined : aggregate(whole, orderBy.aggregation);
  };
  return groups
    .map((group) => ({ group, score: score(group) }))
    .sort((a, b) => {
      if (a.score === undefined) return b.score === undefined ? 0 : 1;
      if (b.score === undefined) return -1;
      return orderBy.descending ? b.score - a.score : a.score - b.score;
    })
    .map(({ group }) => group);
}
