import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient, PipelinePolicy, PipelineRequest, SendRequest } from '@azure/core-rest-pipeline';
import {
  type Metric,
  MetricsClient,
  type MetricsQueryResourcesOptions,
  type MetricsQueryResult,
} from '@azure/monitor-query-metrics';
import { ConfigurationError, ValidationError } from '../core/errors';
import {
  type DimensionFilter,
  METRIC_AGGREGATIONS,
  METRIC_INTERVALS,
  type MetricAggregation,
  type MetricPoint,
  type MetricSeries,
  type MetricsQuery,
  type MetricsReader,
  type MetricsReadResult,
} from '../ports/monitoring';
import { fromAzureError } from './errors';

/** The audience of the metrics data plane (the REST spec's scope `https://metrics.monitor.azure.com/.default`). */
export const METRICS_AUDIENCE = 'https://metrics.monitor.azure.com';
/** metrics:getBatch takes at most 50 resources of one subscription, region and type. */
export const MAX_METRICS_RESOURCES = 50;
export const MAX_METRIC_NAMES = 20;
const MAX_TOP = 1000;
const METRICS_SUFFIXES = [
  '.metrics.monitor.azure.com',
  '.metrics.monitor.azure.us',
  '.metrics.monitor.azure.cn',
];
const REGION = /^[a-z][a-z0-9]{1,39}$/;
const RESOURCE_ID =
  /^\/subscriptions\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/resourceGroups\/[^/]+\/providers\/([A-Za-z][A-Za-z0-9.]*)\/((?:[^/]+\/[^/]+)(?:\/[^/]+\/[^/]+)*)$/i;
const DIMENSION = /^[A-Za-z0-9_.\- ]{1,128}$/;
const METRIC_NAME = /^[^,'"]{1,256}$/;
const AGGREGATION_KEYS: Record<MetricAggregation, 'average' | 'total' | 'minimum' | 'maximum' | 'count'> = {
  Average: 'average',
  Total: 'total',
  Minimum: 'minimum',
  Maximum: 'maximum',
  Count: 'count',
};

export interface MetricsReaderOptions {
  /**
   * The metrics endpoint of each region the app reads, from settings or the policy, never from input:
   * `https://{region}.metrics.monitor.azure.com` (see `metricsEndpointFor`).
   */
  endpoints: Record<string, string>;
  /** `undefined` = the SDK's default transport (the sandbox passes its own). */
  httpClient?: HttpClient;
  /** Default `https://metrics.monitor.azure.com` (sovereign clouds: `https://metrics.monitor.azure.us` / `.cn`). */
  audience?: string;
  retryOptions?: { maxRetries?: number; retryDelayInMs?: number; maxRetryDelayInMs?: number };
}

/** `https://{region}.metrics.monitor.azure.com`, for a region name such as `westeurope`. */
export function metricsEndpointFor(region: string): string {
  if (!REGION.test(region))
    throw new ConfigurationError(
      `'${region}' is not an Azure region name (lower case letters and digits, e.g. westeurope)`,
    );
  return `https://${region}.metrics.monitor.azure.com`;
}

/** The provider and type of an ARM resource id (`Microsoft.ServiceBus/namespaces`), or undefined. */
function namespaceOf(resourceId: string): { subscription: string; namespace: string } | undefined {
  const match = RESOURCE_ID.exec(resourceId);
  if (!match) return undefined;
  const types = match[3]!.split('/').filter((_, i) => i % 2 === 0);
  return { subscription: match[1]!.toLowerCase(), namespace: `${match[2]}/${types.join('/')}` };
}

/** `Dim eq 'a' or Dim eq 'b' and Other eq '*'`, quotes in values doubled (OData). */
export function metricsFilterText(filter: DimensionFilter[]): string {
  return filter
    .map(({ dimension, values }) =>
      values === '*'
        ? `${dimension} eq '*'`
        : values.map((v) => `${dimension} eq '${v.replaceAll("'", "''")}'`).join(' or '),
    )
    .join(' and ');
}

/**
 * `MetricsReader` over `MetricsClient` of `@azure/monitor-query-metrics` (the metrics:getBatch data
 * plane). Needs **Monitoring Reader** (`Microsoft.Insights/metrics/read`) on the resources read, or on
 * their resource group / subscription.
 *
 * One client per configured region; the region of a query must be one of them, so that no input
 * decides where the app's token is sent. The token is asked for the data plane's own audience
 * (`https://metrics.monitor.azure.com`): `MetricsClient` 1.0.0 would otherwise ask for ARM's.
 */
export class AzureMonitorMetricsReader implements MetricsReader {
  private readonly clients = new Map<string, MetricsClient>();

  constructor(
    private readonly credential: TokenCredential,
    private readonly options: MetricsReaderOptions,
  ) {
    const problems: string[] = [];
    for (const [region, endpoint] of Object.entries(options.endpoints)) {
      let url: URL | undefined;
      try {
        url = new URL(endpoint);
      } catch {
        url = undefined;
      }
      const host = url?.hostname.toLowerCase() ?? '';
      if (!REGION.test(region)) problems.push(`'${region}' is not an Azure region name`);
      if (
        url?.protocol !== 'https:' ||
        url.pathname.replace(/\/+$/, '') !== '' ||
        url.search !== '' ||
        !METRICS_SUFFIXES.some((s) => host === `${region}${s}`)
      ) {
        problems.push(
          `the metrics endpoint of ${region} must be https://${region}.metrics.monitor.azure.com`,
        );
      }
    }
    if (problems.length > 0)
      throw new ConfigurationError(`metrics endpoints: ${problems.join('; ')}`, problems);
  }

  /**
   * Reads `query.metrics` of `query.resourceIds` over `query.window`: one series per resource and metric
   * (per dimension value with a filter), a point per interval, an absent value where the service had
   * no data. Throws `ValidationError` for a bad query (before any call), `ConfigurationError` for a region
   * without an endpoint or an endpoint that does not resolve, and the project's errors for the
   * service's answers (`fromAzureError`: 401/403 `ForbiddenError`, 429/5xx `TransientError`...).
   */
  async readMetrics(query: MetricsQuery): Promise<MetricsReadResult> {
    this.validate(query);
    const client = this.client(query.region);
    const requested = new Map(query.metrics.map((m) => [m.toLowerCase(), m]));
    let results: MetricsQueryResult[];
    try {
      // The public options type omits `abortSignal`, which the client passes on to the request (it
      // spreads the options into the operation's).
      const options: MetricsQueryResourcesOptions & { abortSignal?: AbortSignal } = {
        startTime: query.window.start,
        endTime: query.window.end,
        interval: query.interval,
        aggregation: query.aggregations.map((a) => AGGREGATION_KEYS[a]).join(','),
        ...(query.filter && query.filter.length > 0
          ? { filter: metricsFilterText(query.filter), top: query.top }
          : {}),
        abortSignal: query.abortSignal,
      };
      results = await client.queryResources(query.resourceIds, query.metrics, query.namespace, options);
    } catch (error) {
      throw fromAzureError(
        error,
        `reading metrics ${query.metrics.join(', ')} of ${query.resourceIds.length} resource(s) in ${query.region}`,
        { region: query.region, resources: query.resourceIds, metrics: query.metrics },
      );
    }

    const series: MetricSeries[] = [];
    const missing: MetricsReadResult['missing'] = [];
    const answered = new Map<string, Set<string>>();
    for (const result of results) {
      const resourceId =
        query.resourceIds.find((id) => id.toLowerCase() === result.resourceId?.toLowerCase()) ??
        result.resourceId ??
        '';
      const seen = answered.get(resourceId.toLowerCase()) ?? new Set<string>();
      answered.set(resourceId.toLowerCase(), seen);
      for (const metric of result.metrics) {
        const name = metricName(metric, requested);
        if (name === undefined) continue;
        seen.add(name.toLowerCase());
        if (metric.errorCode !== undefined && metric.errorCode !== 'Success') {
          missing.push({
            resourceId,
            metric: name,
            reason: `${metric.errorCode}: ${metric.errorMessage ?? ''}`.trim(),
          });
          continue;
        }
        if (metric.timeseries.length === 0) {
          missing.push({ resourceId, metric: name, reason: 'the service answered no series' });
          continue;
        }
        for (const element of metric.timeseries) {
          const dimensions: Record<string, string> = {};
          for (const meta of element.metadatavalues ?? []) {
            if (meta.name !== undefined && meta.value !== undefined) dimensions[meta.name] = meta.value;
          }
          series.push({
            resourceId,
            metric: name,
            unit: metric.unit,
            dimensions,
            points: (element.data ?? []).map((value) => toPoint(value, query.aggregations)),
          });
        }
      }
    }
    for (const resourceId of query.resourceIds) {
      const seen = answered.get(resourceId.toLowerCase());
      for (const metric of query.metrics) {
        if (!seen?.has(metric.toLowerCase()))
          missing.push({ resourceId, metric, reason: 'not in the service answer' });
      }
    }
    return { window: { ...query.window }, interval: query.interval, series, missing };
  }

  private validate(query: MetricsQuery): void {
    const problems: string[] = [];
    if (!(query.region in this.options.endpoints)) {
      throw new ConfigurationError(
        `no metrics endpoint is configured for region '${query.region}' (configured: ${Object.keys(this.options.endpoints).join(', ') || 'none'})`,
      );
    }
    const ids = Array.isArray(query.resourceIds) ? query.resourceIds : [];
    if (ids.length === 0 || ids.length > MAX_METRICS_RESOURCES)
      problems.push(`resourceIds: 1 to ${MAX_METRICS_RESOURCES} resources, got ${ids.length}`);
    else {
      const subscriptions = new Set<string>();
      for (const id of ids) {
        const parsed = typeof id === 'string' ? namespaceOf(id) : undefined;
        if (!parsed) {
          problems.push(`resourceIds: '${String(id)}' is not an ARM resource id`);
          continue;
        }
        subscriptions.add(parsed.subscription);
        if (parsed.namespace.toLowerCase() !== String(query.namespace).toLowerCase())
          problems.push(`resourceIds: '${id}' is a ${parsed.namespace}, not a ${query.namespace}`);
      }
      if (subscriptions.size > 1) problems.push('resourceIds: all resources must be in one subscription');
    }
    const metrics = Array.isArray(query.metrics) ? query.metrics : [];
    if (metrics.length === 0 || metrics.length > MAX_METRIC_NAMES)
      problems.push(`metrics: 1 to ${MAX_METRIC_NAMES} metric names, got ${metrics.length}`);
    for (const m of metrics) {
      if (typeof m !== 'string' || !METRIC_NAME.test(m))
        problems.push(`metrics: '${String(m)}' is not a metric name`);
    }
    const start = query.window?.start;
    const end = query.window?.end;
    if (
      !(start instanceof Date) ||
      Number.isNaN(start.getTime()) ||
      !(end instanceof Date) ||
      Number.isNaN(end.getTime())
    )
      problems.push('window: start and end must be valid dates');
    else if (start.getTime() >= end.getTime()) problems.push('window: start must be before end');
    if (!(METRIC_INTERVALS as readonly string[]).includes(query.interval))
      problems.push(`interval: one of ${METRIC_INTERVALS.join(', ')}`);
    const aggregations = Array.isArray(query.aggregations) ? query.aggregations : [];
    if (aggregations.length === 0 || aggregations.some((a) => !METRIC_AGGREGATIONS.includes(a)))
      problems.push(`aggregations: one or more of ${METRIC_AGGREGATIONS.join(', ')}`);
    for (const [i, f] of (query.filter ?? []).entries()) {
      if (typeof f?.dimension !== 'string' || !DIMENSION.test(f.dimension))
        problems.push(`filter[${i}].dimension: a dimension name (letters, digits, _ . - and spaces)`);
      if (f?.values !== '*') {
        if (!Array.isArray(f?.values) || f.values.length === 0 || f.values.length > 100)
          problems.push(`filter[${i}].values: '*' or 1 to 100 values`);
        else if (f.values.some((v) => typeof v !== 'string' || v === '' || v === '*' || v.length > 256))
          problems.push(
            `filter[${i}].values: non-empty strings of at most 256 characters ('*' alone means every value)`,
          );
      }
    }
    if (query.top !== undefined) {
      if (!query.filter || query.filter.length === 0) problems.push('top: only with a filter');
      if (!Number.isInteger(query.top) || query.top < 1 || query.top > MAX_TOP)
        problems.push(`top: a whole number from 1 to ${MAX_TOP}`);
    }
    if (problems.length > 0)
      throw new ValidationError(`metrics query: ${problems.join('; ')}`, problems, {
        metadata: { region: query.region, namespace: String(query.namespace) },
      });
  }

  private client(region: string): MetricsClient {
    let client = this.clients.get(region);
    if (!client) {
      client = new MetricsClient(this.options.endpoints[region]!, this.credential, {
        audience: this.options.audience ?? METRICS_AUDIENCE,
        httpClient: this.options.httpClient,
        retryOptions: { maxRetries: 2, ...this.options.retryOptions },
        additionalPolicies: [{ policy: unknownEndpointPolicy, position: 'perRetry' }],
      });
      this.clients.set(region, client);
    }
    return client;
  }
}

/** The REST API name of a metric: the last segment of its id (the SDK's `name` is the localized display name). */
function metricName(metric: Metric, requested: Map<string, string>): string | undefined {
  const match = /\/providers\/Microsoft\.Insights\/metrics\/([^/]+)$/i.exec(metric.id ?? '');
  const fromId = match ? decodeURIComponent(match[1]!) : undefined;
  return requested.get((fromId ?? metric.name).toLowerCase());
}

function toPoint(
  value: {
    timeStamp: Date;
    average?: number;
    total?: number;
    minimum?: number;
    maximum?: number;
    count?: number;
  },
  aggregations: MetricAggregation[],
): MetricPoint {
  const values: MetricPoint['values'] = {};
  for (const aggregation of aggregations) {
    const v = value[AGGREGATION_KEYS[aggregation]];
    if (typeof v === 'number' && Number.isFinite(v)) values[aggregation] = v;
  }
  return { at: value.timeStamp, values };
}

/**
 * A metrics endpoint that does not resolve (`getaddrinfo ENOTFOUND {region}.metrics.monitor.azure.com`)
 * means a wrong region in the configuration, not a network blip: a non-retryable `ConfigurationError`
 * inside the retry loop. (`EAI_AGAIN`, the resolver's own transient failure, stays retryable.)
 */
const unknownEndpointPolicy: PipelinePolicy = {
  name: 'stampkeeperUnknownMetricsEndpoint',
  async sendRequest(request: PipelineRequest, next: SendRequest) {
    try {
      return await next(request);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const status = (error as { statusCode?: unknown }).statusCode;
      if (code === 'ENOTFOUND' && status === undefined) {
        const host = new URL(request.url).host;
        throw new ConfigurationError(
          `the metrics endpoint ${host} does not resolve: check the region in the settings or the policy`,
          [],
          { cause: error, metadata: { endpoint: host } },
        );
      }
      throw error;
    }
  },
};
