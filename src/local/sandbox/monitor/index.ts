/**
 * Azure Monitor in the sandbox: the metrics data plane (`{region}.metrics.monitor.azure.com`,
 * metrics:getBatch) and the Log Analytics query API (`api.loganalytics.io`), built from the scenario's
 * `monitor` section and driven through `sandbox.monitor` (series, samples, sources, query results).
 */
import type { SandboxClock } from '../clock';
import type { SandboxCredential } from '../credential';
import type { ServiceEmulator } from '../router';
import {
  LOGS_AUDIENCE,
  LOGS_ENDPOINT,
  LogsEmulator,
  type LogsQueryHandler,
  type LogsRequestRecord,
} from './logs';
import { type Dimensions, type MetricSource, MetricsStore, type SeriesDefinition } from './metrics';
import {
  METRICS_AUDIENCE,
  METRICS_HOST_SUFFIX,
  MetricsEmulator,
  type MetricsRequestRecord,
} from './metricsHttp';
import {
  type ResolvedMonitorScenario,
  resolveMetricDefinition,
  type ScenarioMetricDefinition,
  type WorkspaceState,
} from './scenario';

export interface MonitorSandbox {
  readonly metrics: {
    /** The audience tokens for the metrics data plane must have: `https://metrics.monitor.azure.com`. */
    readonly audience: string;
    /** `https://{region}.metrics.monitor.azure.com`: the endpoint of `MetricsClient` for a region. */
    endpoint(region: string): string;
    /** Adds (or replaces) a metric definition of a namespace, as under `monitor.metrics.definitions`. */
    defineMetric(namespace: string, definition: ScenarioMetricDefinition): void;
    /** Adds a resource (or moves it to another region / access), as under `monitor.metrics.resources`. */
    addResource(resource: { id: string; region: string; access?: 'allowed' | 'denied' }): void;
    /** Sets the shape of one series (a constant, steps, a ramp, or `fn(at)` of the sandbox time). */
    setSeries(
      target: { resourceId: string; metric: string; dimensions?: Dimensions },
      definition: SeriesDefinition,
    ): void;
    /** Adds a raw sample (at the sandbox's now unless `at` is given; never in the future). */
    record(sample: {
      resourceId: string;
      metric: string;
      dimensions?: Dimensions;
      value: number;
      at?: Date;
    }): void;
    /**
     * Makes `source` the only origin of a metric (undefined: removes it): sampled when set, when
     * `sandbox.advance` starts, at every stop of the clock and at every query, each value holding until
     * the next sample (a change is dated by the sample that sees it). For metrics another part of
     * the sandbox knows, e.g. the Service Bus broker's `ActiveMessages` / `DeadletteredMessages` per `EntityName`.
     */
    setSource(resourceId: string, metric: string, source: MetricSource | undefined): void;
    /** Requests the metrics emulation received (never a token). */
    requests(): MetricsRequestRecord[];
  };
  readonly logs: {
    /** `https://api.loganalytics.io/v1`, the endpoint `LogsQueryClient` uses by default. */
    readonly endpoint: string;
    /** `https://api.loganalytics.io`. */
    readonly audience: string;
    /** `available`, `empty` (204), `forbidden` (403), `unavailable` (503), `unreachable` (no answer). */
    setWorkspaceState(workspaceId: string, state: WorkspaceState): void;
    /** Answers the named result of a query from now on (overrides its schedule). */
    setResult(workspaceId: string, queryName: string, result: string): void;
    /** Answers a query through a function of the request (window, time); undefined: back to the scenario. */
    setHandler(workspaceId: string, queryName: string, handler: LogsQueryHandler | undefined): void;
    /** The ARM id of a workspace of the scenario. */
    workspaceResourceId(workspaceId: string): string;
    /** Requests the logs emulation received: path, workspace, the query matched, status; never the KQL. */
    requests(): LogsRequestRecord[];
  };
  /** What the monitor emulation holds: definitions, resources, series, sources, workspaces, queries. */
  describe(): { metrics: unknown; logAnalytics: unknown };
}

export interface MonitorParts {
  api: MonitorSandbox;
  emulators: ServiceEmulator[];
  /** Samples every metric source now (the sandbox calls it at every stop of the clock). */
  sample(): void;
  /** The metrics store itself, for the parts of the sandbox that feed or read it (load, alert rules). */
  store: MetricsStore;
}

/** Builds the monitor emulation from the resolved `monitor` section of a scenario. */
export function createMonitor(
  scenario: ResolvedMonitorScenario,
  clock: SandboxClock,
  credential: SandboxCredential,
  azure: { subscriptionId: string; resourceGroup: string },
): MonitorParts {
  const clockStart = clock.now().getTime();
  const now = () => clock.now().getTime();
  const store = new MetricsStore(scenario.metrics, clock, clockStart);
  const metrics = new MetricsEmulator(store, credential, now);
  const logs = new LogsEmulator(
    scenario.logAnalytics.workspaces,
    credential,
    azure.subscriptionId,
    azure.resourceGroup,
    now,
    clockStart,
  );
  const workspaces = new Map(scenario.logAnalytics.workspaces.map((w) => [w.id, w]));

  const api: MonitorSandbox = {
    metrics: {
      audience: METRICS_AUDIENCE,
      endpoint(region) {
        if (!/^[a-z][a-z0-9]{1,39}$/.test(region)) throw new RangeError(`'${region}' is not a region name`);
        return `https://${region}${METRICS_HOST_SUFFIX}`;
      },
      defineMetric(namespace, definition) {
        const problems: string[] = [];
        const resolved = resolveMetricDefinition(definition, 'definition', problems);
        if (!resolved || problems.length > 0)
          throw new RangeError(`sandbox monitor: invalid metric definition: ${problems.join('; ')}`);
        store.defineMetric(namespace, resolved);
      },
      addResource: ({ id, region, access }) => store.addResource(id, region, access),
      setSeries: ({ resourceId, metric, dimensions }, definition) =>
        store.setSeries(resourceId, metric, dimensions ?? {}, definition),
      record: ({ resourceId, metric, dimensions, value, at }) =>
        store.record(resourceId, metric, dimensions ?? {}, value, at),
      setSource(resourceId, metric, source) {
        if (source === undefined) store.removeSource(resourceId, metric);
        else store.setSource(resourceId, metric, source);
      },
      requests: () => metrics.requests(),
    },
    logs: {
      endpoint: LOGS_ENDPOINT,
      audience: LOGS_AUDIENCE,
      setWorkspaceState: (workspaceId, state) => logs.setState(workspaceId, state),
      setResult: (workspaceId, queryName, result) => logs.setResult(workspaceId, queryName, result),
      setHandler: (workspaceId, queryName, handler) => logs.setHandler(workspaceId, queryName, handler),
      workspaceResourceId(workspaceId) {
        const spec = workspaces.get(workspaceId.toLowerCase());
        if (!spec) throw new RangeError(`sandbox logs: no workspace '${workspaceId}' in the scenario`);
        return logs.resourceIdOf(spec);
      },
      requests: () => logs.requests(),
    },
    describe: () => ({ metrics: store.describe(), logAnalytics: { workspaces: logs.describe() } }),
  };
  return { api, emulators: [metrics, logs], sample: () => store.sampleSources(), store };
}

export {
  LOGS_AUDIENCE,
  LOGS_ENDPOINT,
  LOGS_HOSTS,
  type LogsQueryContext,
  type LogsQueryHandler,
  type LogsRequestRecord,
} from './logs';
export type { Dimensions, MetricSource, MetricSourceValue, SeriesDefinition } from './metrics';
export { METRICS_AUDIENCE, METRICS_HOST_SUFFIX, type MetricsRequestRecord } from './metricsHttp';
export {
  type MonitorScenario,
  type ResolvedMonitorScenario,
  resolveMonitorScenario,
  type ScenarioLogsResult,
  type ScenarioMetricDefinition,
  type WorkspaceState,
} from './scenario';
