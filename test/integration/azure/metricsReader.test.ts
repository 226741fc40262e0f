import { describe, expect, it } from 'vitest';
import {
  AzureMonitorMetricsReader,
  metricsEndpointFor,
  metricsFilterText,
} from '../../../src/lib/azure/metricsReader';
import {
  ConfigurationError,
  DependencyError,
  ForbiddenError,
  NotFoundError,
  ValidationError,
} from '../../../src/lib/core/errors';
import { type MetricsQuery, summarizeSeries } from '../../../src/lib/ports/monitoring';
import type { Sandbox } from '../../../src/local/sandbox';
import { at, COSMOS, monitoredSandbox, REGION, recording, SB, SUB } from '../sandbox/monitor/estate';

const SB_NS = 'Microsoft.ServiceBus/namespaces';

function readerOf(
  sandbox: Sandbox,
  endpoints: Record<string, string> = { [REGION]: metricsEndpointFor(REGION) },
) {
  return new AzureMonitorMetricsReader(sandbox.credential, {
    endpoints,
    httpClient: sandbox.httpClient,
    retryOptions: { maxRetries: 0 },
  });
}

function query(overrides: Partial<MetricsQuery> = {}): MetricsQuery {
  return {
    region: REGION,
    resourceIds: [SB],
    namespace: SB_NS,
    metrics: ['DeadletteredMessages'],
    window: { start: at(-60), end: at(0) },
    interval: 'PT15M',
    aggregations: ['Average', 'Maximum'],
    ...overrides,
  };
}

async function failureOf(work: Promise<unknown>): Promise<Error> {
  const outcome = await work.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof Error)) throw new Error('expected the call to fail');
  return outcome;
}

describe('AzureMonitorMetricsReader over the real MetricsClient on the sandbox', () => {
  it('reads one series per dimension value, named by the REST API metric name (not the display name), with a point per interval', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const result = await readerOf(sandbox).readMetrics(
      query({ filter: [{ dimension: 'EntityName', values: ['orders', 'payments'] }] }),
    );

    // Assess
    expect(result.missing).toEqual([]);
    expect(result.series.map((s) => [s.resourceId, s.metric, s.unit, s.dimensions])).toEqual(
      expect.arrayContaining([
        [SB, 'DeadletteredMessages', 'Count', { entityname: 'orders' }],
        [SB, 'DeadletteredMessages', 'Count', { entityname: 'payments' }],
      ]),
    );
    const payments = result.series.find((s) => s.dimensions.entityname === 'payments')!;
    expect(payments.points).toEqual([
      { at: at(-60), values: { Average: 2, Maximum: 2 } },
      { at: at(-45), values: { Average: 2, Maximum: 2 } },
      { at: at(-30), values: { Average: 10, Maximum: 10 } },
      { at: at(-15), values: { Average: 10, Maximum: 10 } },
    ]);
    expect(summarizeSeries(payments.points, 'Maximum', 'latest')).toEqual({
      value: 10,
      points: 4,
      missingPoints: 0,
      latestAt: at(-15),
    });
  });

  it('tells zero from missing: 0 is a value, an interval without data has none and is counted as missing', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const result = await readerOf(sandbox).readMetrics(
      query({ filter: [{ dimension: 'EntityName', values: ['orders', 'audit'] }] }),
    );

    // Assess
    const orders = result.series.find((s) => s.dimensions.entityname === 'orders')!;
    const audit = result.series.find((s) => s.dimensions.entityname === 'audit')!;
    expect(orders.points.map((p) => p.values.Average)).toEqual([0, 0, 0, 0]);
    expect(audit.points.map((p) => p.values)).toEqual([
      { Average: 5, Maximum: 5 },
      {},
      {},
      { Average: 5, Maximum: 5 },
    ]);
    expect(summarizeSeries(orders.points, 'Average', 'maximum')).toMatchObject({
      value: 0,
      missingPoints: 0,
    });
    expect(summarizeSeries(audit.points, 'Average', 'mean')).toMatchObject({ value: 5, missingPoints: 2 });
    expect(summarizeSeries([{ at: at(0), values: {} }], 'Average', 'sum')).toMatchObject({
      value: undefined,
      missingPoints: 1,
    });
  });

  it('reports a resource and metric without any series as missing, not as an empty reading', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const result = await readerOf(sandbox).readMetrics(
      query({ filter: [{ dimension: 'EntityName', values: ['no-such-queue'] }] }),
    );

    // Assess
    expect(result.series).toEqual([]);
    expect(result.missing).toEqual([
      { resourceId: SB, metric: 'DeadletteredMessages', reason: 'the service answered no series' },
    ]);
  });

  it('reads several metrics at once; a counter the provider fills with zero reads 0 where nothing was emitted', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const result = await readerOf(sandbox).readMetrics(
      query({
        metrics: ['DeadletteredMessages', 'IncomingMessages'],
        aggregations: ['Total'],
        filter: [{ dimension: 'EntityName', values: ['payments'] }],
      }),
    );

    // Assess
    const incoming = result.series.find((s) => s.metric === 'IncomingMessages')!;
    expect(incoming.points.map((p) => p.values.Total)).toEqual([0, 0, 35, 105]);
    expect(result.series.map((s) => s.metric).sort()).toEqual(['DeadletteredMessages', 'IncomingMessages']);
  });

  it('quotes dimension values in the filter it builds (a quote is doubled), so a value cannot change the filter', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const awkward = "o'brien or EntityName eq 'orders";
    sandbox.monitor.metrics.record({
      resourceId: SB,
      metric: 'ActiveMessages',
      dimensions: { EntityName: awkward },
      value: 3,
      at: at(-5),
    });
    sandbox.monitor.metrics.record({
      resourceId: SB,
      metric: 'ActiveMessages',
      dimensions: { EntityName: 'orders' },
      value: 9,
      at: at(-5),
    });

    // Act
    const result = await readerOf(sandbox).readMetrics(
      query({
        metrics: ['ActiveMessages'],
        aggregations: ['Total'],
        filter: [{ dimension: 'EntityName', values: [awkward] }],
      }),
    );

    // Assess
    expect(metricsFilterText([{ dimension: 'EntityName', values: [awkward] }])).toBe(
      "EntityName eq 'o''brien or EntityName eq ''orders'",
    );
    expect(result.series).toHaveLength(1);
    expect(result.series[0]!.dimensions).toEqual({ entityname: awkward });
    expect(result.series[0]!.points.map((p) => p.values.Total)).toEqual([undefined, undefined, undefined, 3]);
  });

  it("asks for a token of the metrics data plane's audience, not ARM's", async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const { client, sent } = recording(sandbox.httpClient);
    const reader = new AzureMonitorMetricsReader(sandbox.credential, {
      endpoints: { [REGION]: metricsEndpointFor(REGION) },
      httpClient: client,
    });

    // Act
    await reader.readMetrics(query());

    // Assess
    const token = /^Bearer (.+)$/.exec(sent[0]!.headers.get('authorization') ?? '')?.[1];
    expect(sandbox.credential.inspect(token!)?.audience).toBe('https://metrics.monitor.azure.com');
    expect(new URL(sent[0]!.url).host).toBe('westeurope.metrics.monitor.azure.com');
  });

  it('refuses a bad query with a ValidationError naming each problem, before any call', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const reader = readerOf(sandbox);
    const otherSubscription = SB.replace(SUB, '11111111-1111-4111-8111-111111111111');

    // Act
    const errors = await Promise.all([
      failureOf(reader.readMetrics(query({ resourceIds: Array.from({ length: 51 }, () => SB) }))),
      failureOf(reader.readMetrics(query({ resourceIds: [SB, COSMOS] }))),
      failureOf(reader.readMetrics(query({ resourceIds: [SB, otherSubscription] }))),
      failureOf(reader.readMetrics(query({ window: { start: at(0), end: at(-60) } }))),
      failureOf(reader.readMetrics(query({ interval: 'PT2M' as never, aggregations: [] }))),
      failureOf(
        reader.readMetrics(query({ filter: [{ dimension: "EntityName' or x eq '", values: ['*'] }] })),
      ),
      failureOf(reader.readMetrics(query({ top: 5 }))),
      failureOf(reader.readMetrics(query({ metrics: ['Dead,Letters'] }))),
    ]);

    // Assess
    for (const error of errors) expect(error).toBeInstanceOf(ValidationError);
    const problems = errors.map((e) => (e as ValidationError).problems.join(' | '));
    expect(problems[0]).toContain('resourceIds: 1 to 50 resources, got 51');
    expect(problems[1]).toContain(`'${COSMOS}' is a Microsoft.DocumentDB/databaseAccounts, not a ${SB_NS}`);
    expect(problems[2]).toContain('all resources must be in one subscription');
    expect(problems[3]).toContain('window: start must be before end');
    expect(problems[4]).toContain('interval: one of PT1M');
    expect(problems[4]).toContain('aggregations: one or more of');
    expect(problems[5]).toContain('filter[0].dimension');
    expect(problems[5]).toContain(
      "filter[0].values: non-empty strings of at most 256 characters ('*' alone means every value)",
    );
    expect(problems[6]).toContain('top: only with a filter');
    expect(problems[7]).toContain("metrics: 'Dead,Letters' is not a metric name");
    expect(sandbox.monitor.metrics.requests()).toEqual([]);
  });

  it('takes endpoints from its configuration only: a region without one, or an endpoint that is not a metrics endpoint, is a ConfigurationError', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const noRegion = await failureOf(readerOf(sandbox).readMetrics(query({ region: 'northeurope' })));
    const badEndpoints = (() => {
      try {
        readerOf(sandbox, {
          westeurope: 'http://westeurope.metrics.monitor.azure.com',
          northeurope: 'https://evil.example.com',
        });
      } catch (error) {
        return error;
      }
      return undefined;
    })();

    // Assess
    expect(noRegion).toBeInstanceOf(ConfigurationError);
    expect(noRegion.message).toContain(
      "no metrics endpoint is configured for region 'northeurope' (configured: westeurope)",
    );
    expect(badEndpoints).toBeInstanceOf(ConfigurationError);
    expect((badEndpoints as ConfigurationError).problems).toEqual([
      'the metrics endpoint of westeurope must be https://westeurope.metrics.monitor.azure.com',
      'the metrics endpoint of northeurope must be https://northeurope.metrics.monitor.azure.com',
    ]);
    expect(() => metricsEndpointFor('West Europe')).toThrow(ConfigurationError);
  });

  it('turns an endpoint that does not resolve (a wrong region) into a non-retryable ConfigurationError', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const reader = readerOf(sandbox, { eastus2: metricsEndpointFor('eastus2') });

    // Act
    const error = await failureOf(reader.readMetrics(query({ region: 'eastus2' })));

    // Assess
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).retryable).toBe(false);
    expect(error.message).toContain('eastus2.metrics.monitor.azure.com does not resolve');
  });

  it("maps the service's refusals: 403 -> ForbiddenError, 404 -> NotFoundError, 400 -> non-retryable DependencyError, each naming the resources", async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    sandbox.monitor.metrics.addResource({ id: `${SB}-locked`, region: REGION, access: 'denied' });
    const reader = readerOf(sandbox);

    // Act
    const denied = await failureOf(reader.readMetrics(query({ resourceIds: [`${SB}-locked`] })));
    const gone = await failureOf(reader.readMetrics(query({ resourceIds: [`${SB}-gone`] })));
    const unknownMetric = await failureOf(reader.readMetrics(query({ metrics: ['DeadLetters'] })));

    // Assess
    expect(denied).toBeInstanceOf(ForbiddenError);
    expect((denied as ForbiddenError).metadata.resources).toEqual([`${SB}-locked`]);
    expect(gone).toBeInstanceOf(NotFoundError);
    expect(unknownMetric).toBeInstanceOf(DependencyError);
    expect((unknownMetric as DependencyError).retryable).toBe(false);
    expect(unknownMetric.message).toContain(
      'reading metrics DeadLetters of 1 resource(s) in westeurope failed with 400 BadRequest',
    );
  });
});
