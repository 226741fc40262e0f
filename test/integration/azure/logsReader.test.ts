import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { describe, expect, it } from 'vitest';
import { LogAnalyticsLogsReader, toCell } from '../../../src/lib/azure/logsReader';
import {
  ConfigurationError,
  DependencyError,
  ForbiddenError,
  TransientError,
  ValidationError,
} from '../../../src/lib/core/errors';
import type { LogsQuery } from '../../../src/lib/ports/monitoring';
import { createSandbox, type Sandbox } from '../../../src/local/sandbox';
import {
  APPI,
  at,
  FAILURE_RATE_QUERY,
  monitoredSandbox,
  monitorScenario,
  recording,
  WORKSPACE,
} from '../sandbox/monitor/estate';

const EXCEPTIONS = 'exceptions | where timestamp > ago(15m) | summarize count() by type';

function readerOf(sandbox: Sandbox, options: { audience?: string; credential?: TokenCredential } = {}) {
  return new LogAnalyticsLogsReader(options.credential ?? sandbox.credential, {
    httpClient: sandbox.httpClient,
    retryOptions: { maxRetries: 0 },
    audience: options.audience,
  });
}

function query(overrides: Partial<LogsQuery> = {}): LogsQuery {
  return {
    target: { workspaceId: WORKSPACE },
    query: FAILURE_RATE_QUERY,
    window: { start: at(-15), end: at(0) },
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

describe('LogAnalyticsLogsReader over the real LogsQueryClient on the sandbox', () => {
  it('answers a complete result with cells typed by their columns (the wire sends long / real / bool as strings)', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const gate = await readerOf(sandbox).query(query());
    const exceptions = await readerOf(sandbox).query(query({ query: EXCEPTIONS }));

    // Assess
    expect(gate).toEqual({
      status: 'complete',
      tables: [
        {
          name: 'PrimaryResult',
          columns: [
            { name: 'failureRate', type: 'real' },
            { name: 'p95', type: 'real' },
          ],
          rows: [[0.4, 640]],
        },
      ],
    });
    expect(exceptions.tables[0]!.rows).toEqual([
      ['System.TimeoutException', 12, true, at(-5), { region: 'weu', ids: [1, 2] }],
    ]);
  });

  it('reads the same types when the service sends JSON numbers and booleans', async () => {
    // Prepare
    const scenario = monitorScenario();
    scenario.monitor!.logAnalytics!.workspaces![0]!.numbersAsStrings = false;
    const sandbox = createSandbox({ scenario });

    // Act
    const result = await readerOf(sandbox).query(query({ query: EXCEPTIONS }));

    // Assess
    expect(result.tables[0]!.rows[0]!.slice(0, 3)).toEqual(['System.TimeoutException', 12, true]);
  });

  it('flags a partial answer as partial, with the tables it got and what went wrong', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    sandbox.monitor.logs.setResult(WORKSPACE, 'stamp-failure-rate', 'partial');

    // Act
    const result = await readerOf(sandbox).query(query());

    // Assess
    expect(result.status).toBe('partial');
    if (result.status !== 'partial') return;
    expect(result.tables[0]!.rows).toEqual([[0.1, 300]]);
    expect(result.error).toEqual({
      code: 'PartialError',
      message: 'There were some errors when processing your query.',
      details: [
        'EngineError: Something went wrong processing your query on the server.: Query execution has exceeded the allowed limits',
      ],
    });
  });

  it('answers a query without rows as complete with no rows: the absence is in the result, for the caller to judge', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    sandbox.monitor.logs.setResult(WORKSPACE, 'stamp-failure-rate', 'missing');

    // Act
    const result = await readerOf(sandbox).query(query());

    // Assess
    expect(result).toEqual({
      status: 'complete',
      tables: [expect.objectContaining({ rows: [] })],
    });
  });

  it("queries a resource's logs (an Application Insights component)", async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    sandbox.monitor.logs.setResult(WORKSPACE, 'stamp-failure-rate', 'fail');

    // Act
    const result = await readerOf(sandbox).query(query({ target: { resourceId: APPI } }));

    // Assess
    expect(result.tables[0]!.rows).toEqual([[3.5, 1900]]);
  });

  it('turns a workspace without data (204, no body) into a non-retryable DependencyError that says so', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    sandbox.monitor.logs.setWorkspaceState(WORKSPACE, 'empty');

    // Act
    const error = await failureOf(readerOf(sandbox).query(query()));

    // Assess
    expect(error).toBeInstanceOf(DependencyError);
    expect((error as DependencyError).retryable).toBe(false);
    expect(error.message).toContain('204 No Content, the workspace holds no data');
  });

  it('maps refusals and outages: 403 -> ForbiddenError, bad KQL 400 -> non-retryable DependencyError, 503 and no answer -> TransientError', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const reader = readerOf(sandbox);
    const inState = async (state: 'forbidden' | 'unavailable' | 'unreachable') => {
      sandbox.monitor.logs.setWorkspaceState(WORKSPACE, state);
      return failureOf(reader.query(query()));
    };

    // Act
    const badKql = await failureOf(
      reader.query(query({ query: 'requests | summarize count( by bin(timestamp, 1m)' })),
    );
    const forbidden = await inState('forbidden');
    const unavailable = await inState('unavailable');
    const unreachable = await inState('unreachable');

    // Assess
    expect(badKql).toBeInstanceOf(DependencyError);
    expect((badKql as DependencyError).retryable).toBe(false);
    expect(badKql.message).toContain(
      `querying logs of workspace ${WORKSPACE} on api.loganalytics.io failed with 400 BadArgumentError`,
    );
    expect(forbidden).toBeInstanceOf(ForbiddenError);
    expect(unavailable).toBeInstanceOf(TransientError);
    expect(unreachable).toBeInstanceOf(TransientError);
    expect(unreachable.message).toContain('network error ECONNRESET');
  });

  it('refuses a bad query with a ValidationError naming each problem, before any call', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const reader = readerOf(sandbox);

    // Act
    const errors = await Promise.all([
      failureOf(reader.query(query({ target: { workspaceId: 'law-stamp' } }))),
      failureOf(reader.query(query({ target: { resourceId: 'appi-stamp' } }))),
      failureOf(reader.query(query({ query: '  ' }))),
      failureOf(reader.query(query({ window: { start: at(0), end: at(0) } }))),
      failureOf(reader.query(query({ serverTimeoutSeconds: 3600 }))),
    ]);

    // Assess
    for (const error of errors) expect(error).toBeInstanceOf(ValidationError);
    expect(errors.map((e) => (e as ValidationError).problems)).toEqual([
      ['target.workspaceId: the workspace id (a GUID)'],
      ['target.resourceId: an ARM resource id (/subscriptions/{guid}/resourceGroups/...)'],
      ['query: KQL text'],
      ['window: start must be before end'],
      ['serverTimeoutSeconds: a whole number from 1 to 600'],
    ]);
    expect(sandbox.monitor.logs.requests()).toEqual([]);
  });

  it('asks for a token of the audience it is given (LogsQueryClient 1.0.0 ignores its own audience option)', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const scopes: string[] = [];
    const spying: TokenCredential = {
      getToken(scope: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
        scopes.push(...(Array.isArray(scope) ? scope : [scope]));
        return sandbox.credential.getToken(scope, options);
      },
    };

    // Act
    await readerOf(sandbox, { credential: spying }).query(query());
    const sovereign = await failureOf(
      readerOf(sandbox, { credential: spying, audience: 'https://api.loganalytics.us' }).query(query()),
    );

    // Assess: the sandbox serves the public cloud, so a token for another audience is refused.
    expect(scopes).toEqual(['https://api.loganalytics.io/.default', 'https://api.loganalytics.us/.default']);
    expect(sovereign).toBeInstanceOf(ForbiddenError);
  });

  it('sends the query as LogsQueryClient does, without the header it uses to find its own call', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const { client, sent } = recording(sandbox.httpClient);
    const reader = new LogAnalyticsLogsReader(sandbox.credential, { httpClient: client });

    // Act
    await reader.query(query());

    // Assess
    expect(sent).toHaveLength(1);
    expect(sent[0]!.url).toBe(`https://api.loganalytics.io/v1/workspaces/${WORKSPACE}/query`);
    expect(sent[0]!.headers.has('x-stampkeeper-logs-call')).toBe(false);
    expect(JSON.parse(String(sent[0]!.body))).toEqual({
      query: FAILURE_RATE_QUERY,
      timespan: '2025-12-31T23:45:00.000Z/2026-01-01T00:00:00.000Z',
    });
  });

  it('takes its endpoint from its configuration only: a Log Analytics host over https', () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const build = (endpoint: string) => () =>
      new LogAnalyticsLogsReader(sandbox.credential, { endpoint, httpClient: sandbox.httpClient });

    // Act / Assess
    expect(build('https://evil.example.com/v1')).toThrow(ConfigurationError);
    expect(build('http://api.loganalytics.io/v1')).toThrow(ConfigurationError);
    expect(build('https://api.loganalytics.azure.com/v1')).not.toThrow();
  });
});

describe('toCell', () => {
  it('types numbers and booleans sent as strings or as JSON values, and fails loudly on anything else', () => {
    // Prepare
    const cell = (value: unknown, type: string) => toCell(value, type, 'c', 'workspace w');

    // Act / Assess
    expect([
      cell('12', 'long'),
      cell(12, 'long'),
      cell('1.5', 'real'),
      cell('NaN', 'real'),
      cell(null, 'real'),
    ]).toEqual([12, 12, 1.5, Number.NaN, null]);
    expect([cell('true', 'bool'), cell('False', 'bool'), cell(true, 'bool'), cell(0, 'bool')]).toEqual([
      true,
      false,
      true,
      false,
    ]);
    expect(cell('2026-01-01T00:00:00Z', 'datetime')).toEqual(new Date('2026-01-01T00:00:00Z'));
    expect(cell('00:05:00', 'timespan')).toBe('00:05:00');
    expect(() => cell('lots', 'long')).toThrow(DependencyError);
    expect(() => cell('', 'real')).toThrow(DependencyError);
    expect(() => cell('yes', 'bool')).toThrow(DependencyError);
    expect(() => cell('not a date', 'datetime')).toThrow(DependencyError);
  });
});
