import { createHttpHeaders, createPipelineRequest, RestError } from '@azure/core-rest-pipeline';
import { MetricsClient, type MetricsQueryResult, type MetricValue } from '@azure/monitor-query-metrics';
import { describe, expect, it } from 'vitest';
import type { Sandbox } from '../../../../src/local/sandbox';
import { fixture } from '../../../support/events';
import { at, COSMOS, monitoredSandbox, REGION, recording, SB, SB_OTHER, SUB } from './estate';

const SB_NS = 'Microsoft.ServiceBus/namespaces';
const COSMOS_NS = 'Microsoft.DocumentDB/databaseAccounts';

function clientOf(
  sandbox: Sandbox,
  region = REGION,
  options: { audience?: string } = { audience: 'https://metrics.monitor.azure.com' },
) {
  return new MetricsClient(sandbox.monitor.metrics.endpoint(region), sandbox.credential, {
    httpClient: sandbox.httpClient,
    retryOptions: { maxRetries: 0 },
    ...options,
  });
}

/** The last hour before the start, in 15-minute intervals. */
const LAST_HOUR = { startTime: at(-60), endTime: at(0), interval: 'PT15M' };

function seriesOf(result: MetricsQueryResult | undefined) {
  return result?.metrics[0]?.timeseries ?? [];
}

/** The points of each series of the first metric, by the value of its first split dimension. */
function byDimension(result: MetricsQueryResult | undefined): Record<string, MetricValue[]> {
  return Object.fromEntries(seriesOf(result).map((s) => [s.metadatavalues![0]!.value!, s.data!]));
}

async function failureOf(work: Promise<unknown>): Promise<RestError> {
  const outcome = await work.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof RestError)) throw new Error(`expected a RestError, got ${String(outcome)}`);
  return outcome;
}

/** A raw authenticated metrics:getBatch call, to see the wire shapes the SDK hides. */
async function raw(
  sandbox: Sandbox,
  query: string,
  body: unknown,
  audience = 'https://metrics.monitor.azure.com',
) {
  const token = await sandbox.credential.getToken(`${audience}/.default`);
  const response = await sandbox.httpClient.sendRequest(
    createPipelineRequest({
      url: `${sandbox.monitor.metrics.endpoint(REGION)}/subscriptions/${SUB}/metrics:getBatch?${query}`,
      method: 'POST',
      headers: createHttpHeaders({
        authorization: `Bearer ${token!.token}`,
        'content-type': 'application/json',
      }),
      body: JSON.stringify(body),
    }),
  );
  return { status: response.status, json: response.bodyAsText ? JSON.parse(response.bodyAsText) : undefined };
}

describe('sandbox Azure Monitor metrics, through the real MetricsClient', () => {
  it('receives what MetricsClient 1.0.0 sends: POST metrics:getBatch on the regional host, lower-case query parameters, api-version 2024-02-01, resourceids in the body', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const { client: httpClient, sent } = recording(sandbox.httpClient);
    const client = new MetricsClient(sandbox.monitor.metrics.endpoint(REGION), sandbox.credential, {
      httpClient,
      audience: 'https://metrics.monitor.azure.com',
    });

    // Act
    await client.queryResources([SB], ['DeadletteredMessages'], SB_NS, {
      ...LAST_HOUR,
      aggregation: 'average,maximum',
      filter: "EntityName eq 'orders'",
      top: 5,
    });

    // Assess
    expect(sent).toHaveLength(1);
    const url = new URL(sent[0]!.url);
    expect(sent[0]!.method).toBe('POST');
    expect(url.host).toBe('westeurope.metrics.monitor.azure.com');
    expect(url.pathname).toBe(`/subscriptions/${SUB}/metrics:getBatch`);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      'api-version': '2024-02-01',
      starttime: '2025-12-31T23:00:00.000Z',
      endtime: '2026-01-01T00:00:00.000Z',
      interval: 'PT15M',
      metricnamespace: SB_NS,
      metricnames: 'DeadletteredMessages',
      aggregation: 'average,maximum',
      top: '5',
      filter: "EntityName eq 'orders'",
    });
    expect(JSON.parse(String(sent[0]!.body))).toEqual({ resourceids: [SB] });
    const token = /^Bearer (.+)$/.exec(sent[0]!.headers.get('authorization') ?? '')?.[1];
    expect(sandbox.credential.inspect(token!)?.audience).toBe('https://metrics.monitor.azure.com');
  });

  it("refuses the token MetricsClient 1.0.0 asks for by default (ARM's audience): 401 InvalidAuthenticationTokenAudience", async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const client = clientOf(sandbox, REGION, {});

    // Act
    const error = await failureOf(client.queryResources([SB], ['DeadletteredMessages'], SB_NS, LAST_HOUR));

    // Assess
    expect(error.statusCode).toBe(401);
    expect(error.code).toBe('InvalidAuthenticationTokenAudience');
    expect(error.message).toContain("'https://management.azure.com'");
  });

  it('answers in the published shape of MetricBatchExample.json: top-level values, lower-case keys, timeStamp, no aggregation key where there is no data', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const published = fixture<{ responses: { 200: { body: { values: Array<Record<string, unknown>> } } } }>(
      'rest/monitor/MetricBatchExample.json',
    ).responses[200].body;

    // Act
    const { status, json } = await raw(
      sandbox,
      `metricnamespace=${SB_NS}&metricnames=DeadletteredMessages&starttime=2025-12-31T23:00:00.123Z&endtime=2026-01-01T00:00:00.345Z&interval=PT15M&aggregation=average,minimum,maximum&filter=EntityName eq '*'&api-version=2024-02-01`,
      { resourceids: [SB] },
    );

    // Assess
    expect(status).toBe(200);
    const value = json.values[0];
    const example = published.values[0]!;
    expect(Object.keys(value).sort()).toEqual(Object.keys(example).sort());
    const metric = value.value[0];
    const exampleMetric = (example.value as Array<Record<string, unknown>>)[0]!;
    expect(Object.keys(metric).sort()).toEqual(Object.keys(exampleMetric).sort());
    expect(value).toMatchObject({
      starttime: '2025-12-31T23:00:00.123Z',
      endtime: '2026-01-01T00:00:00.345Z',
      interval: 'PT15M',
      namespace: 'microsoft.servicebus/namespaces',
      resourceregion: 'westeurope',
      resourceid: SB,
    });
    expect(metric).toMatchObject({
      id: `${SB}/providers/Microsoft.Insights/metrics/DeadletteredMessages`,
      type: 'Microsoft.Insights/metrics',
      name: {
        value: 'DeadletteredMessages',
        localizedValue: 'Count of dead-lettered messages in a Queue/Topic.',
      },
      unit: 'Count',
      errorCode: 'Success',
    });
    const audit = metric.timeseries.find(
      (t: { metadatavalues: Array<{ value: string }> }) => t.metadatavalues[0]!.value === 'audit',
    );
    expect(audit.metadatavalues).toEqual([
      { name: { value: 'entityname', localizedValue: 'entityname' }, value: 'audit' },
    ]);
    expect(audit.data).toEqual([
      { timeStamp: '2025-12-31T23:00:00Z', average: 5, minimum: 5, maximum: 5 },
      { timeStamp: '2025-12-31T23:15:00Z' },
      { timeStamp: '2025-12-31T23:30:00Z' },
      { timeStamp: '2025-12-31T23:45:00Z', average: 5, minimum: 5, maximum: 5 },
    ]);
  });

  it('computes Average, Total, Minimum, Maximum and Count of the minutes of each interval', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const [result] = await clientOf(sandbox).queryResources([SB], ['DeadletteredMessages'], SB_NS, {
      ...LAST_HOUR,
      aggregation: 'average,total,minimum,maximum,count',
      filter: "EntityName eq 'payments'",
    });

    // Assess: 2 a minute until -30m, then 10.
    expect(seriesOf(result)[0]!.data).toEqual([
      { timeStamp: at(-60), average: 2, total: 30, minimum: 2, maximum: 2, count: 15 },
      { timeStamp: at(-45), average: 2, total: 30, minimum: 2, maximum: 2, count: 15 },
      { timeStamp: at(-30), average: 10, total: 150, minimum: 10, maximum: 10, count: 15 },
      { timeStamp: at(-15), average: 10, total: 150, minimum: 10, maximum: 10, count: 15 },
    ]);
  });

  it('rolls every dimension value into one series without a filter, and splits by dimension with one', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const client = clientOf(sandbox);

    // Act
    const [all] = await client.queryResources([SB], ['DeadletteredMessages'], SB_NS, {
      startTime: at(-60),
      endTime: at(-45),
      interval: 'PT15M',
      aggregation: 'total,count,maximum',
    });
    const [split] = await client.queryResources([SB], ['DeadletteredMessages'], SB_NS, {
      ...LAST_HOUR,
      aggregation: 'maximum',
      filter: "EntityName eq 'orders' or EntityName eq 'payments'",
    });

    // Assess: orders 0, payments 2, audit 5 a minute, 15 minutes each.
    expect(seriesOf(all)).toHaveLength(1);
    expect(seriesOf(all)[0]!.metadatavalues).toEqual([]);
    expect(seriesOf(all)[0]!.data).toEqual([{ timeStamp: at(-60), total: 105, count: 45, maximum: 5 }]);
    expect(
      seriesOf(split)
        .map((s) => s.metadatavalues?.[0]?.value)
        .sort(),
    ).toEqual(['orders', 'payments']);
  });

  it("filters on several dimensions (StatusCode eq '429' and CollectionName eq '*'), and on none it does not have: 400", async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const client = clientOf(sandbox);

    // Act
    const [throttled] = await client.queryResources([COSMOS], ['TotalRequests'], COSMOS_NS, {
      ...LAST_HOUR,
      aggregation: 'total',
      filter: "StatusCode eq '429' and CollectionName eq '*'",
    });
    const unknown = await failureOf(
      client.queryResources([COSMOS], ['TotalRequests'], COSMOS_NS, {
        ...LAST_HOUR,
        filter: "Region eq 'West Europe'",
      }),
    );

    // Assess: 0 a minute, then 50 a minute from -10m.
    expect(seriesOf(throttled)).toHaveLength(1);
    expect(seriesOf(throttled)[0]!.metadatavalues).toEqual([
      { name: 'statuscode', value: '429' },
      { name: 'collectionname', value: 'orders' },
    ]);
    expect(seriesOf(throttled)[0]!.data!.map((p) => p.total)).toEqual([0, 0, 0, 500]);
    expect(unknown.statusCode).toBe(400);
    expect(unknown.message).toContain('does not support requested dimension combination: Region');
  });

  it('refuses a filter that joins two dimensions with or, as the REST spec says', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const error = await failureOf(
      clientOf(sandbox).queryResources([COSMOS], ['TotalRequests'], COSMOS_NS, {
        ...LAST_HOUR,
        filter: "StatusCode eq '429' or CollectionName eq 'orders'",
      }),
    );

    // Assess
    expect(error.statusCode).toBe(400);
    expect(error.message).toContain('cannot separate two different metadata names');
  });

  it('keeps zero and missing apart: 0 is a value, an interval without data has no value, a fillGapWithZero counter answers 0', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const client = clientOf(sandbox);

    // Act
    const [dead] = await client.queryResources([SB], ['DeadletteredMessages'], SB_NS, {
      ...LAST_HOUR,
      aggregation: 'average',
      filter: "EntityName eq 'orders' or EntityName eq 'audit'",
    });
    const [incoming] = await client.queryResources([SB], ['IncomingMessages'], SB_NS, {
      ...LAST_HOUR,
      aggregation: 'total',
      filter: "EntityName eq 'payments'",
    });

    // Assess
    const byEntity = byDimension(dead);
    expect(byEntity.orders!.map((p) => p.average)).toEqual([0, 0, 0, 0]);
    expect(byEntity.audit!.map((p) => p.average)).toEqual([5, undefined, undefined, 5]);
    // 7 a minute from -20m; before that nothing was emitted, which the provider answers as 0.
    expect(seriesOf(incoming)[0]!.data!.map((p) => p.total)).toEqual([0, 0, 35, 105]);
  });

  it('answers a filter that matches no dimension value with no series at all', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const [result] = await clientOf(sandbox).queryResources([SB], ['DeadletteredMessages'], SB_NS, {
      ...LAST_HOUR,
      filter: "EntityName eq 'no-such-queue'",
    });

    // Assess
    expect(result!.metrics[0]!.timeseries).toEqual([]);
  });

  it('ramps linearly between points; FULL answers one interval for the whole window', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const [result] = await clientOf(sandbox).queryResources(
      [COSMOS],
      ['NormalizedRUConsumption'],
      COSMOS_NS,
      {
        startTime: at(-60),
        endTime: at(0),
        interval: 'FULL',
        aggregation: 'minimum,maximum,average',
      },
    );

    // Assess: 0 at -60m rising to 100 at 0; the last minute of the window is -1m.
    const [only] = seriesOf(result)[0]!.data!;
    expect(only!.timeStamp).toEqual(at(-60));
    expect(only!.minimum).toBe(0);
    expect(only!.maximum).toBeCloseTo((59 / 60) * 100, 9);
    expect(only!.average).toBeCloseTo(((59 / 2) * 100) / 60, 9);
  });

  it('orders split series by an aggregation and keeps the top ones', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const [result] = await clientOf(sandbox).queryResources([SB], ['DeadletteredMessages'], SB_NS, {
      ...LAST_HOUR,
      aggregation: 'maximum',
      filter: "EntityName eq '*'",
      orderBy: 'maximum desc',
      top: 2,
    });

    // Assess: payments peaks at 10, audit at 5, orders at 0.
    expect(seriesOf(result).map((s) => s.metadatavalues![0]!.value)).toEqual(['payments', 'audit']);
  });

  it('serves a minute once it has ended, and only after the ingestion delay', async () => {
    // Prepare
    const sandbox = monitoredSandbox({ metrics: { ingestionDelayMinutes: 3 } as never });
    await sandbox.advance({ seconds: 30 });

    // Act
    const [result] = await clientOf(sandbox).queryResources([SB], ['DeadletteredMessages'], SB_NS, {
      startTime: at(-6),
      endTime: at(1),
      interval: 'PT1M',
      aggregation: 'average',
      filter: "EntityName eq 'orders'",
    });

    // Assess: now is 00:00:30, so the last ended minute is 23:59, and with 3 minutes of delay 23:56.
    expect(seriesOf(result)[0]!.data!.map((p) => p.average)).toEqual([
      0,
      0,
      0,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('keeps 93 days of data, as Azure Monitor platform metrics', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const [result] = await clientOf(sandbox).queryResources([SB], ['DeadletteredMessages'], SB_NS, {
      startTime: at(-94 * 24 * 60),
      endTime: at(-92 * 24 * 60),
      interval: 'P1D',
      aggregation: 'count',
      filter: "EntityName eq 'orders'",
    });

    // Assess
    expect(seriesOf(result)[0]!.data!.map((p) => p.count)).toEqual([undefined, 1440]);
  });

  it('serves series set through the sandbox API: a function of the sandbox time, recorded samples, and a source sampled at every stop of the clock', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    sandbox.monitor.metrics.setSeries(
      { resourceId: SB, metric: 'ActiveMessages', dimensions: { EntityName: 'even' } },
      { fn: (t) => (t.getUTCMinutes() % 2 === 0 ? t.getUTCMinutes() : undefined) },
    );
    let depth = 40;
    sandbox.monitor.metrics.setSource(SB, 'DeadletteredMessages', () => [
      { dimensions: { EntityName: 'orders' }, value: depth },
    ]);
    await sandbox.advance({ minutes: 10 });
    depth = 70;
    await sandbox.advance({ minutes: 5 });
    sandbox.monitor.metrics.record({
      resourceId: SB,
      metric: 'ActiveMessages',
      dimensions: { EntityName: 'load' },
      value: 3,
      at: at(2),
    });
    sandbox.monitor.metrics.record({
      resourceId: SB,
      metric: 'ActiveMessages',
      dimensions: { EntityName: 'load' },
      value: 9,
      at: at(2),
    });
    const client = clientOf(sandbox);

    // Act
    const [active] = await client.queryResources([SB], ['ActiveMessages'], SB_NS, {
      startTime: at(0),
      endTime: at(4),
      interval: 'PT1M',
      aggregation: 'total,count,maximum',
      filter: "EntityName eq '*'",
    });
    const [dead] = await client.queryResources([SB], ['DeadletteredMessages'], SB_NS, {
      startTime: at(-2),
      endTime: at(15),
      interval: 'PT5M',
      aggregation: 'minimum,maximum',
      filter: "EntityName eq 'orders'",
    });

    // Assess
    const active$ = byDimension(active);
    expect(active$.even!.map((p) => p.total)).toEqual([0, undefined, 2, undefined]);
    expect(active$.load!.map((p) => [p.total, p.count, p.maximum])).toEqual([
      [undefined, undefined, undefined],
      [undefined, undefined, undefined],
      [12, 2, 9],
      [undefined, undefined, undefined],
    ]);
    // The source replaces the scenario's series of the metric: sampled at 00:00 (40) and 00:10 (70);
    // nothing before its first sample; each value holds until the next sample.
    expect(seriesOf(dead)[0]!.data!.map((p) => [p.minimum, p.maximum])).toEqual([
      [40, 40],
      [40, 40],
      [40, 70],
      [70, 70],
    ]);
  });

  it('refuses recorded samples in the future, unknown metrics and dimensions, before changing anything', () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const metrics = sandbox.monitor.metrics;

    // Act
    const attempts = [
      () =>
        metrics.record({
          resourceId: SB,
          metric: 'ActiveMessages',
          dimensions: { EntityName: 'x' },
          value: 1,
          at: at(5),
        }),
      () => metrics.record({ resourceId: SB, metric: 'Nope', dimensions: { EntityName: 'x' }, value: 1 }),
      () =>
        metrics.record({ resourceId: SB, metric: 'ActiveMessages', dimensions: { Queue: 'x' }, value: 1 }),
      () =>
        metrics.record({
          resourceId: SB,
          metric: 'ActiveMessages',
          dimensions: { EntityName: 'x' },
          value: Number.NaN,
        }),
      () =>
        metrics.setSeries(
          { resourceId: SB, metric: 'ActiveMessages', dimensions: { EntityName: 'x' } },
          { steps: [] },
        ),
    ];

    // Assess
    for (const attempt of attempts) expect(attempt).toThrow(RangeError);
    expect(JSON.stringify(sandbox.monitor.describe())).not.toContain('"x"');
  });

  it('answers 400 for an unknown metric name (naming the valid ones), a bad time, an unsupported interval, a bad aggregation', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const client = clientOf(sandbox);

    // Act
    const errors = await Promise.all([
      failureOf(client.queryResources([SB], ['DeadLetters'], SB_NS, LAST_HOUR)),
      failureOf(
        client.queryResources([SB], ['ActiveMessages'], SB_NS, { startTime: at(0), endTime: at(-60) }),
      ),
      failureOf(client.queryResources([SB], ['ActiveMessages'], SB_NS, { ...LAST_HOUR, interval: 'PT2M' })),
      failureOf(
        client.queryResources([SB], ['ActiveMessages'], SB_NS, { ...LAST_HOUR, aggregation: 'median' }),
      ),
    ]);

    // Assess
    expect(errors.map((e) => e.statusCode)).toEqual([400, 400, 400, 400]);
    expect(errors[0]!.message).toBe(
      'Failed to find metric configuration for provider: Microsoft.ServiceBus, resource Type: namespaces, metric: DeadLetters, Valid metrics: DeadletteredMessages,ActiveMessages,IncomingMessages',
    );
    expect(errors[1]!.message).toContain('must be before the endtime');
    expect(errors[2]!.message).toContain("Invalid time grain 'PT2M'");
    expect(errors[3]!.message).toContain("Invalid aggregation type 'median'");
  });

  it('answers 400 for a bad starttime on the wire, and when endtime comes without starttime', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const bad = await raw(
      sandbox,
      `metricnamespace=${SB_NS}&metricnames=ActiveMessages&starttime=yesterday&api-version=2024-02-01`,
      {
        resourceids: [SB],
      },
    );
    const endOnly = await raw(
      sandbox,
      `metricnamespace=${SB_NS}&metricnames=ActiveMessages&endtime=2026-01-01T00:00:00Z&api-version=2024-02-01`,
      { resourceids: [SB] },
    );

    // Assess
    expect(bad).toMatchObject({ status: 400, json: { error: { code: 'BadRequest' } } });
    expect(bad.json.error.message).toContain("The starttime 'yesterday' is not a valid time");
    expect(endOnly.status).toBe(400);
    expect(endOnly.json.error.message).toContain(
      'starttime query parameter is required when endtime is given',
    );
  });

  it('enforces the batch restrictions: at most 50 resources, of one type, in the region of the endpoint', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const client = clientOf(sandbox);
    const many = Array.from({ length: 51 }, (_, i) => `${SB}${i}`);

    // Act
    const errors = await Promise.all([
      failureOf(client.queryResources(many, ['ActiveMessages'], SB_NS, LAST_HOUR)),
      failureOf(client.queryResources([SB, COSMOS], ['ActiveMessages'], SB_NS, LAST_HOUR)),
      failureOf(client.queryResources([SB_OTHER], ['ActiveMessages'], SB_NS, LAST_HOUR)),
    ]);

    // Assess
    expect(errors.map((e) => e.statusCode)).toEqual([400, 400, 400]);
    expect(errors[0]!.message).toContain('at most 50 resources');
    expect(errors[1]!.message).toContain('all resources of a batch must be of the same type');
    expect(errors[2]!.message).toContain("is in region 'northeurope', not 'westeurope'");
  });

  it('answers 404 for a resource the estate does not have, 403 for one the caller may not read', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    sandbox.monitor.metrics.addResource({ id: `${SB}-locked`, region: REGION, access: 'denied' });
    const client = clientOf(sandbox);

    // Act
    const missing = await failureOf(
      client.queryResources([`${SB}-gone`], ['ActiveMessages'], SB_NS, LAST_HOUR),
    );
    const denied = await failureOf(
      client.queryResources([`${SB}-locked`], ['ActiveMessages'], SB_NS, LAST_HOUR),
    );

    // Assess
    expect(missing.statusCode).toBe(404);
    expect(missing.code).toBe('ResourceNotFound');
    expect(denied.statusCode).toBe(403);
    expect(denied.code).toBe('AuthorizationFailed');
    expect(denied.message).toContain('Microsoft.Insights/metrics/read');
  });

  it('has no endpoint for a region the estate does not use: the host does not resolve', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const error = await failureOf(
      clientOf(sandbox, 'eastus2').queryResources([SB], ['ActiveMessages'], SB_NS, LAST_HOUR),
    );

    // Assess
    expect(error.code).toBe('ENOTFOUND');
    expect(error.statusCode).toBeUndefined();
  });

  it('refuses a request without a token, and a token of another audience', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const url = `${sandbox.monitor.metrics.endpoint(REGION)}/subscriptions/${SUB}/metrics:getBatch?metricnamespace=${SB_NS}&metricnames=ActiveMessages&api-version=2024-02-01`;

    // Act
    const anonymous = await sandbox.httpClient.sendRequest(
      createPipelineRequest({ url, method: 'POST', body: JSON.stringify({ resourceids: [SB] }) }),
    );
    const other = await raw(
      sandbox,
      `metricnamespace=${SB_NS}&metricnames=ActiveMessages&api-version=2024-02-01`,
      { resourceids: [SB] },
      'https://vault.azure.net',
    );

    // Assess
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.bodyAsText!).error.code).toBe('AuthenticationFailed');
    expect(other.status).toBe(401);
    expect(other.json.error.code).toBe('InvalidAuthenticationTokenAudience');
    expect(sandbox.monitor.metrics.requests().map((r) => r.status)).toEqual([401, 401]);
  });

  it('bounds the work of one query before doing it: points per series, minute samples read', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    for (let i = 0; i < 30; i++) {
      sandbox.monitor.metrics.setSeries(
        { resourceId: SB, metric: 'ActiveMessages', dimensions: { EntityName: `queue-${i}` } },
        { value: i },
      );
    }
    const client = clientOf(sandbox);

    // Act
    const points = await failureOf(
      client.queryResources([SB], ['DeadletteredMessages'], SB_NS, {
        startTime: at(-60 * 24 * 90),
        endTime: at(0),
        interval: 'PT1M',
      }),
    );
    const reads = await failureOf(
      client.queryResources([SB], ['ActiveMessages'], SB_NS, {
        startTime: at(-60 * 24 * 30),
        endTime: at(0),
        interval: 'PT1H',
      }),
    );

    // Assess: 129 600 points per series; 30 series of 43 200 minutes.
    expect(points.statusCode).toBe(400);
    expect(points.message).toContain('asks for 129600 points per series');
    expect(reads.statusCode).toBe(400);
    expect(reads.message).toContain('would read 1296000 minute samples: at most 1000000');
  });
});
