import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MetricsClient } from '@azure/monitor-query-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../src/lib/core/errors';
import { createSandbox, parseScenario, type Sandbox } from '../../../../src/local/sandbox';
import { at, monitoredSandbox, REGION, SB, WORKSPACE } from './estate';

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err.problems;
    throw err;
  }
  throw new Error('expected a ValidationError');
}

let server: Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function serve(sandbox: Sandbox): Promise<string> {
  server = createServer((req, res) => {
    sandbox.handleHttp(req, res).then((handled) => {
      if (!handled) {
        res.writeHead(418);
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

async function post(
  url: string,
  body: unknown,
): Promise<{ status: number; json: { error?: { message: string } } }> {
  const response = await fetch(url, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as { error?: { message: string } } };
}

const NS = 'Microsoft.ServiceBus/namespaces';

describe('the monitor section of a scenario', () => {
  it('reports every problem at once, each with its path', () => {
    // Prepare
    const scenario = {
      clock: { start: '2026-01-01T00:00:00Z' },
      monitor: {
        metrics: {
          ingestionDelayMinutes: -1,
          definitions: {
            [NS]: [
              { name: 'DeadletteredMessages', unit: 'Messages', dimensions: ['EntityName'] },
              { name: 'ActiveMessages', aggregation: 'Median' },
            ],
          },
          resources: [
            { id: '/not/an/arm/id', region: 'westeurope' },
            {
              id: SB,
              region: 'West Europe',
              series: [
                { metric: 'Nope', value: 1 },
                {
                  metric: 'DeadletteredMessages',
                  dimensions: { EntityName: 'orders' },
                  steps: [
                    { at: '+2h', value: 1 },
                    { at: '+1h', value: 2 },
                    { at: 'later', value: 'many' },
                  ],
                },
                {
                  metric: 'DeadletteredMessages',
                  dimensions: { EntityName: 'payments' },
                  value: 1,
                  ramp: [],
                },
                { metric: 'DeadletteredMessages', value: 3 },
                { metric: 'DeadletteredMessages', dimensions: { EntityName: 'audit', Queue: 'x' }, value: 3 },
              ],
            },
          ],
        },
        logAnalytics: {
          workspaces: [
            {
              id: 'law-1',
              queries: [
                {
                  name: 'gate',
                  match: { tag: 'gate', text: 'requests' },
                  result: 'nope',
                  results: {
                    pass: {
                      tables: [
                        {
                          columns: [
                            { name: 'rate', type: 'real' },
                            { name: 'p95', type: 'float' },
                          ],
                          rows: [[1], ['high', 2]],
                        },
                      ],
                    },
                  },
                },
              ],
            },
          ],
        },
      },
    };

    // Act
    const problems = problemsOf(() => createSandbox({ scenario: scenario as never }));

    // Assess
    const defs = `monitor.metrics.definitions['${NS}']`;
    const series = 'monitor.metrics.resources[1].series';
    const query = 'monitor.logAnalytics.workspaces[0].queries[0]';
    expect(problems).toEqual(
      expect.arrayContaining([
        'monitor.metrics.ingestionDelayMinutes: must be an integer from 0 to 1440',
        `${defs}[0].unit: must be one of Count, Bytes, Seconds, CountPerSecond, BytesPerSecond, Percent, MilliSeconds, ByteSeconds, Unspecified, Cores, MilliCores, NanoCores, BitsPerSecond`,
        `${defs}[1].aggregation: must be one of Average, Minimum, Maximum, Total, Count`,
        'monitor.metrics.resources[0].id: must be an ARM resource id (/subscriptions/{guid}/resourceGroups/{rg}/providers/{Provider}/{type}/{name})',
        "monitor.metrics.resources[1].region: 'West Europe' is not a region name (lower case, e.g. westeurope)",
        `${series}[0].metric: 'Nope' is not defined for ${NS} (add it under monitor.metrics.definitions['${NS}'])`,
        `${series}[1].steps[1].at: points must be in increasing time order`,
        `${series}[1].steps[2].value: must be a finite number, or null for no data`,
        `${series}[2]: give exactly one of value (a constant), steps or ramp`,
        `${series}[3].dimensions.EntityName: is required (every series names a value per dimension)`,
        `${series}[4].dimensions.Queue: 'DeadletteredMessages' has no such dimension (EntityName)`,
        "monitor.logAnalytics.workspaces[0].id: must be a GUID (the workspace's customer id)",
        `${query}.match: give exactly one of tag or text`,
        `${query}.result: 'nope' is not one of results (pass)`,
        `${query}.results.pass.tables[0].columns[1].type: must be one of bool, datetime, dynamic, int, long, real, string, guid, decimal, timespan`,
        `${query}.results.pass.tables[0].rows[0]: has 1 cells for 2 columns`,
        `${query}.results.pass.tables[0].rows[1][0]: a real cell must be a finite number (or null)`,
      ]),
    );
  });

  it('reads the section from YAML, with instants absolute or relative to the clock start', async () => {
    // Prepare
    const text = `
clock:
  start: 2026-01-01T00:00:00Z
monitor:
  metrics:
    definitions:
      ${NS}:
        - name: ActiveMessages
          dimensions: [EntityName]
    resources:
      - id: ${SB}
        region: ${REGION}
        series:
          - metric: ActiveMessages
            dimensions: { EntityName: orders }
            steps:
              - { at: 2025-12-31T23:00:00Z, value: 4 }
              - { at: "-30m", value: 8 }
`;

    // Act
    const sandbox = createSandbox({ scenario: parseScenario(text) });
    const [result] = await new MetricsClient(sandbox.monitor.metrics.endpoint(REGION), sandbox.credential, {
      httpClient: sandbox.httpClient,
      audience: sandbox.monitor.metrics.audience,
    }).queryResources([SB], ['ActiveMessages'], NS, {
      startTime: at(-60),
      endTime: at(0),
      interval: 'PT30M',
      aggregation: 'average',
    });

    // Assess
    expect(result!.metrics[0]!.timeseries[0]!.data!.map((p) => p.average)).toEqual([4, 8]);
  });

  it("is no kinder than Azure by default: a minute's metrics show up three minutes late", () => {
    // Act
    const sandbox = createSandbox({
      scenario: { clock: { start: '2026-01-01T00:00:00Z' }, monitor: { metrics: {} } },
    });

    // Assess
    expect(
      (sandbox.estate().monitor as { metrics: { ingestionDelayMinutes: number } }).metrics
        .ingestionDelayMinutes,
    ).toBe(3);
  });

  it('keeps the seed a scenario without the section derived before the section existed', () => {
    // Prepare: this scenario's derived seed as the sandbox computed it before the monitor section.
    const without = {
      clock: { start: '2026-01-01T00:00:00Z' },
      keyVault: { vaults: [{ name: 'kv-seed', secrets: [{ name: 's1', expiresInDays: 3 }] }] },
    };

    // Act
    const a = createSandbox({ scenario: without }).scenario.seed;
    const b = createSandbox({ scenario: { ...without, monitor: { metrics: { ingestionDelayMinutes: 2 } } } })
      .scenario.seed;

    // Assess
    expect(a).toBe('content-1aeb5687f4610225');
    expect(b).not.toBe(a);
  });
});

describe('the monitor inspection routes', () => {
  it('shows definitions, resources, series and workspaces under /sandbox/monitor', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const base = await serve(sandbox);

    // Act
    const response = await fetch(`${base}/sandbox/monitor`);
    const body = (await response.json()) as {
      metrics: { resources: Array<{ id: string; series: unknown[] }> };
      logAnalytics: { workspaces: Array<{ id: string; queries: Array<{ name: string; current: string }> }> };
    };
    const index = (await (await fetch(`${base}/sandbox/`)).json()) as { links: Record<string, string> };

    // Assess
    expect(response.status).toBe(200);
    expect(body.metrics.resources.map((r) => r.id)).toContain(SB);
    expect(body.logAnalytics.workspaces[0]!.queries).toEqual([
      expect.objectContaining({ name: 'stamp-failure-rate', current: 'pass' }),
      expect.objectContaining({ name: 'exceptions-by-type', current: 'some' }),
    ]);
    expect(index.links.monitor).toBe('/sandbox/monitor');
  });

  it('records a sample, switches a result and a workspace state over HTTP', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const base = await serve(sandbox);

    // Act
    const recorded = await post(`${base}/sandbox/monitor/metrics/record`, {
      resourceId: SB,
      metric: 'ActiveMessages',
      dimensions: { EntityName: 'orders' },
      value: 42,
    });
    const result = await post(`${base}/sandbox/monitor/logs/result`, {
      workspaceId: WORKSPACE,
      query: 'stamp-failure-rate',
      result: 'fail',
    });
    const state = await post(`${base}/sandbox/monitor/logs/state`, {
      workspaceId: WORKSPACE,
      state: 'forbidden',
    });

    // Assess
    expect([recorded.status, result.status, state.status]).toEqual([200, 200, 200]);
    const described = sandbox.monitor.describe() as {
      metrics: {
        resources: Array<{ id: string; series: Array<{ metric: string; recordedSamples: number }> }>;
      };
      logAnalytics: { workspaces: Array<{ state: string; queries: Array<{ current: string }> }> };
    };
    const sb = described.metrics.resources.find((r) => r.id === SB)!;
    expect(sb.series).toContainEqual(
      expect.objectContaining({ metric: 'ActiveMessages', recordedSamples: 1 }),
    );
    expect(described.logAnalytics.workspaces[0]!.state).toBe('forbidden');
    expect(described.logAnalytics.workspaces[0]!.queries[0]!.current).toBe('fail');
  });

  it('answers bad input with 400 and the reason, and changes nothing', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const base = await serve(sandbox);
    const before = JSON.stringify(sandbox.monitor.describe());

    // Act
    const answers = await Promise.all([
      post(`${base}/sandbox/monitor/metrics/record`, {
        resourceId: SB,
        metric: 'ActiveMessages',
        value: 'many',
      }),
      post(`${base}/sandbox/monitor/metrics/record`, {
        resourceId: SB,
        metric: 'ActiveMessages',
        dimensions: { EntityName: 'o' },
        value: 1,
        at: '2030-01-01T00:00:00Z',
      }),
      post(`${base}/sandbox/monitor/metrics/record`, {
        resourceId: SB,
        metric: 'Nope',
        dimensions: { EntityName: 'o' },
        value: 1,
      }),
      post(`${base}/sandbox/monitor/logs/result`, {
        workspaceId: WORKSPACE,
        query: 'stamp-failure-rate',
        result: 'green',
      }),
      post(`${base}/sandbox/monitor/logs/result`, {
        workspaceId: 'nope',
        query: 'stamp-failure-rate',
        result: 'fail',
      }),
      post(`${base}/sandbox/monitor/logs/state`, { workspaceId: WORKSPACE, state: 'on-fire' }),
      post(`${base}/sandbox/monitor/logs/state`, '{not json'),
    ]);
    const wrongMethod = await fetch(`${base}/sandbox/monitor`, { method: 'DELETE' });
    const unknownRoute = await fetch(`${base}/sandbox/monitor/nope`, { method: 'POST', body: '{}' });

    // Assess
    expect(answers.map((a) => a.status)).toEqual([400, 400, 400, 400, 400, 400, 400]);
    expect(answers[1]!.json.error!.message).toContain('cannot be recorded in the future');
    expect(answers[2]!.json.error!.message).toContain(
      "'Nope' is not defined for Microsoft.ServiceBus/namespaces",
    );
    expect(answers[3]!.json.error!.message).toContain(
      "'green' is not a result of query 'stamp-failure-rate'",
    );
    expect(wrongMethod.status).toBe(405);
    expect(unknownRoute.status).toBe(404);
    expect(JSON.stringify(sandbox.monitor.describe())).toBe(before);
  });
});
