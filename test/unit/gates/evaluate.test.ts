import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/lib/config/policy';
import { ForbiddenError, TransientError } from '../../../src/lib/core/errors';
import { evaluateGate, type GateDeps, queryText } from '../../../src/lib/gates/evaluate';
import type {
  LogsQuery,
  LogsQueryResult,
  LogsReader,
  MetricsQuery,
  MetricsReader,
  MetricsReadResult,
} from '../../../src/lib/ports/monitoring';
import { MemoryAudit, TestClock } from '../../support/fakes';

const SUB = '00000000-0000-0000-0000-000000000000';
const BUS = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/sb-weu`;
const WS = '3f2a4e0c-5b7d-4a1e-9c8b-2d6f0e1a7b94';
const policy = parsePolicy(`version: 1
monitoring: { workspaces: [{ name: law, workspaceId: ${WS} }] }
gates:
  - name: stamp-health
    windowMinutes: 15
    targets:
      - { name: weu, region: westeurope, parameters: { roleName: stamp-weu }, resources: { bus: ${BUS} } }
    conditions:
      - name: failure-rate
        type: logs
        workspace: law
        query: |
          // stampkeeper:query=stamp-failure-rate
          AppRequests | where AppRoleName == roleName | summarize failureRate = 100.0 * countif(Success == false) / count()
        column: failureRate
        operator: lessThan
        threshold: 1
      - { name: dead-letters, type: metric, resource: bus, namespace: Microsoft.ServiceBus/namespaces, metric: DeadletteredMessages, aggregation: Maximum, operator: lessThanOrEqual, threshold: 0, interval: PT5M }
`);
const gate = policy.gates[0]!;
const target = gate.targets[0]!;

class ScriptedLogs implements LogsReader {
  readonly queries: LogsQuery[] = [];
  constructor(private readonly answer: () => Promise<LogsQueryResult>) {}
  query(q: LogsQuery): Promise<LogsQueryResult> {
    this.queries.push(q);
    return this.answer();
  }
}
class ScriptedMetrics implements MetricsReader {
  readonly queries: MetricsQuery[] = [];
  constructor(private readonly answer: (q: MetricsQuery) => Promise<MetricsReadResult>) {}
  readMetrics(q: MetricsQuery): Promise<MetricsReadResult> {
    this.queries.push(q);
    return this.answer(q);
  }
}

const table = (rows: unknown[][]) => [
  { name: 'PrimaryResult', columns: [{ name: 'failureRate', type: 'real' }], rows: rows as never },
];
const series =
  (values: Array<number | undefined>) =>
  async (q: MetricsQuery): Promise<MetricsReadResult> => ({
    window: q.window,
    interval: q.interval,
    series: [
      {
        resourceId: BUS,
        metric: 'DeadletteredMessages',
        unit: 'Count',
        dimensions: {},
        points: values.map((v, i) => ({
          at: new Date(q.window.start.getTime() + i * 300_000),
          values: v === undefined ? {} : { Maximum: v },
        })),
      },
    ],
    missing: [],
  });

function deps(logs: LogsReader, metrics: MetricsReader): GateDeps & { audit: MemoryAudit } {
  return {
    policy,
    logs,
    metrics,
    clock: new TestClock(new Date('2026-01-17T10:07:30Z')),
    audit: new MemoryAudit(),
  };
}
const context = { actor: 'app:pipeline', correlationId: 'c-1', sequence: '1' };

describe('evaluating a gate', () => {
  it('passes when every condition passes, with the queries, values, thresholds and windows as evidence, and audits it', async () => {
    // Prepare
    const logs = new ScriptedLogs(async () => ({ status: 'complete', tables: table([[0.4]]) }));
    const metrics = new ScriptedMetrics(series([0, 0, 0]));
    const d = deps(logs, metrics);

    // Act
    const evaluation = await evaluateGate(gate, target, d, context);

    // Assess
    expect(evaluation.verdict).toBe('pass');
    expect(evaluation.conditions.map((c) => [c.name, c.status, c.value, c.operator, c.threshold])).toEqual([
      ['failure-rate', 'passed', 0.4, 'lessThan', 1],
      ['dead-letters', 'passed', 0, 'lessThanOrEqual', 0],
    ]);
    expect(logs.queries[0]!.query).toBe(
      "let roleName = 'stamp-weu';\n// stampkeeper:query=stamp-failure-rate\nAppRequests | where AppRoleName == roleName | summarize failureRate = 100.0 * countif(Success == false) / count()\n",
    );
    expect(logs.queries[0]!.window).toEqual({
      start: new Date('2026-01-17T09:52:30Z'),
      end: new Date('2026-01-17T10:07:30Z'),
    });
    // Metrics land late: the window ends 5 minutes before the minute.
    expect(metrics.queries[0]).toMatchObject({
      region: 'westeurope',
      resourceIds: [BUS],
      window: { start: new Date('2026-01-17T09:47:00Z'), end: new Date('2026-01-17T10:02:00Z') },
      interval: 'PT5M',
      aggregations: ['Maximum'],
    });
    expect(evaluation.conditions[0]!.query).toBe(logs.queries[0]!.query);
    expect(d.audit.records).toMatchObject([
      {
        action: 'gate.evaluate',
        target: 'gates/stamp-health/weu',
        outcome: 'succeeded',
        actor: 'app:pipeline',
        after: {
          verdict: 'pass',
          conditions: [
            { name: 'failure-rate', value: 0.4 },
            { name: 'dead-letters', value: 0 },
          ],
        },
      },
    ]);
  });

  it('fails over a threshold and says why', async () => {
    // Prepare
    const d = deps(
      new ScriptedLogs(async () => ({ status: 'complete', tables: table([[3.5]]) })),
      new ScriptedMetrics(series([0, 4, 1])),
    );

    // Act
    const evaluation = await evaluateGate(gate, target, d, context);

    // Assess
    expect(evaluation.verdict).toBe('fail');
    expect(evaluation.conditions.map((c) => [c.status, c.value])).toEqual([
      ['failed', 3.5],
      ['failed', 4],
    ]);
    expect(evaluation.reason).toBe(
      'failure-rate: failed (failureRate = 3.5 not < 1); dead-letters: failed (maximum of Maximum = 4 not <= 0)',
    );
    expect(d.audit.records[0]).toMatchObject({ outcome: 'failed', reason: evaluation.reason });
  });

  it('never passes on missing, partial or unreadable data', async () => {
    // Prepare
    const cases: Array<[string, LogsReader, MetricsReader, string[]]> = [
      [
        'no rows, an interval without data',
        new ScriptedLogs(async () => ({ status: 'complete', tables: table([]) })),
        new ScriptedMetrics(series([0, undefined, 0])),
        ['noData', 'noData'],
      ],
      [
        'a partial answer, no series at all',
        new ScriptedLogs(async () => ({
          status: 'partial',
          tables: table([[0.1]]),
          error: {
            code: 'PartialError',
            message: 'There were some errors',
            details: ['EngineError: limits exceeded'],
          },
        })),
        new ScriptedMetrics(async (q) => ({
          window: q.window,
          interval: q.interval,
          series: [],
          missing: [{ resourceId: BUS, metric: 'DeadletteredMessages', reason: 'not in the service answer' }],
        })),
        ['partial', 'noData'],
      ],
      [
        'a forbidden workspace, an unreachable metrics endpoint',
        new ScriptedLogs(async () => {
          throw new ForbiddenError('querying logs: access denied (403 InsufficientAccessError)');
        }),
        new ScriptedMetrics(async () => {
          throw new TransientError('reading metrics failed: network error ECONNRESET');
        }),
        ['error', 'error'],
      ],
      [
        'an empty cell, a series without intervals',
        new ScriptedLogs(async () => ({ status: 'complete', tables: table([[null]]) })),
        new ScriptedMetrics(series([])),
        ['noData', 'noData'],
      ],
    ];

    for (const [what, logs, metrics, statuses] of cases) {
      // Act
      const evaluation = await evaluateGate(gate, target, deps(logs, metrics), context);

      // Assess
      expect(evaluation.verdict, what).toBe('fail');
      expect(
        evaluation.conditions.map((c) => c.status),
        what,
      ).toEqual(statuses);
    }
  });

  it('declares the target parameters before the query, and nothing else', () => {
    // Act / Assess
    expect(queryText({ name: 't', parameters: {}, resources: {} }, gate.conditions[0] as never)).toBe(
      (gate.conditions[0] as { query: string }).query,
    );
    expect(
      queryText({ name: 't', parameters: { a: 'x', b: 'y z' }, resources: {} }, { query: 'T' } as never),
    ).toBe("let a = 'x';\nlet b = 'y z';\nT");
  });

  it('never passes a metric condition when a dimension value it names has no series, even if the others pass', async () => {
    // Prepare: dead letters of two entities; the service answers a series for `orders` only.
    const two = parsePolicy(`version: 1
gates:
  - name: bus-health
    targets: [{ name: weu, region: westeurope, resources: { bus: ${BUS} } }]
    conditions:
      - { name: dead-letters, type: metric, resource: bus, namespace: Microsoft.ServiceBus/namespaces, metric: DeadletteredMessages, aggregation: Maximum, operator: lessThanOrEqual, threshold: 0, interval: PT5M, dimensions: [{ dimension: EntityName, values: [orders, Payments] }] }
`);
    const answer = (entities: string[]) =>
      new ScriptedMetrics(async (q) => ({
        window: q.window,
        interval: q.interval,
        series: entities.map((entity) => ({
          resourceId: BUS,
          metric: 'DeadletteredMessages',
          unit: 'Count',
          dimensions: { entityname: entity },
          points: [0, 0, 0].map((v, i) => ({
            at: new Date(q.window.start.getTime() + i * 300_000),
            values: { Maximum: v },
          })),
        })),
        missing: [],
      }));
    const logs = new ScriptedLogs(async () => ({ status: 'complete', tables: table([[0]]) }));
    const g = two.gates[0]!;

    // Act
    const partial = await evaluateGate(
      g,
      g.targets[0]!,
      { ...deps(logs, answer(['orders'])), policy: two },
      context,
    );
    const both = await evaluateGate(
      g,
      g.targets[0]!,
      { ...deps(logs, answer(['orders', 'payments'])), policy: two },
      context,
    );

    // Assess
    expect(partial.verdict).toBe('fail');
    expect(partial.conditions[0]).toMatchObject({
      status: 'noData',
      value: null,
      detail: 'entityname=Payments: no series (the service has no data for it)',
    });
    expect(both.verdict).toBe('pass');
  });

  it('asks the service for a series per named dimension value (it answers 10 by default)', async () => {
    // Prepare
    const many = parsePolicy(`version: 1
gates:
  - name: bus-health
    targets: [{ name: weu, region: westeurope, resources: { bus: ${BUS} } }]
    conditions:
      - { name: dead-letters, type: metric, resource: bus, namespace: Microsoft.ServiceBus/namespaces, metric: DeadletteredMessages, aggregation: Maximum, operator: lessThanOrEqual, threshold: 0, dimensions: [{ dimension: EntityName, values: [${Array.from({ length: 12 }, (_, i) => `q${i}`).join(', ')}] }] }
`);
    const metrics = new ScriptedMetrics(series([0]));
    const logs = new ScriptedLogs(async () => ({ status: 'complete', tables: table([[0]]) }));
    const g = many.gates[0]!;

    // Act
    await evaluateGate(g, g.targets[0]!, { ...deps(logs, metrics), policy: many }, context);

    // Assess
    expect(metrics.queries[0]!.top).toBe(12);
  });
});
