import { createHttpHeaders, createPipelineRequest, RestError } from '@azure/core-rest-pipeline';
import { LogsQueryClient, LogsQueryResultStatus } from '@azure/monitor-query-logs';
import { describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../../../src/local/sandbox';
import { fixture } from '../../../support/events';
import {
  APPI,
  at,
  FAILURE_RATE_QUERY,
  monitoredSandbox,
  monitorScenario,
  recording,
  WORKSPACE,
} from './estate';

const EXCEPTIONS = 'exceptions | where timestamp > ago(15m) | summarize count() by type';
const LAST_15_MINUTES = { duration: 'PT15M' };

function clientOf(sandbox: Sandbox): LogsQueryClient {
  return new LogsQueryClient(sandbox.credential, {
    httpClient: sandbox.httpClient,
    retryOptions: { maxRetries: 0 },
  });
}

async function failureOf(work: Promise<unknown>): Promise<RestError> {
  const outcome = await work.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof RestError)) throw new Error(`expected a RestError, got ${String(outcome)}`);
  return outcome;
}

/** A raw query request, to see the wire shapes the SDK hides. */
async function raw(
  sandbox: Sandbox,
  path: string,
  body: string | undefined,
  options: { audience?: string; contentType?: string } = {},
) {
  const token = await sandbox.credential.getToken(
    `${options.audience ?? 'https://api.loganalytics.io'}/.default`,
  );
  const response = await sandbox.httpClient.sendRequest(
    createPipelineRequest({
      url: `https://api.loganalytics.io/v1${path}`,
      method: 'POST',
      headers: createHttpHeaders({
        authorization: `Bearer ${token!.token}`,
        'content-type': options.contentType ?? 'application/json',
      }),
      body,
    }),
  );
  return {
    status: response.status,
    text: response.bodyAsText,
    json: response.bodyAsText ? JSON.parse(response.bodyAsText) : undefined,
  };
}

describe('sandbox Log Analytics queries, through the real LogsQueryClient', () => {
  it('receives what LogsQueryClient 1.0.0 sends: POST api.loganalytics.io/v1/workspaces/{id}/query, { query, timespan }, a token for https://api.loganalytics.io', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const { client: httpClient, sent } = recording(sandbox.httpClient);
    const client = new LogsQueryClient(sandbox.credential, { httpClient });

    // Act
    await client.queryWorkspace(WORKSPACE, FAILURE_RATE_QUERY, { startTime: at(-15), endTime: at(0) });

    // Assess
    expect(sent).toHaveLength(1);
    expect(sent[0]!.method).toBe('POST');
    expect(sent[0]!.url).toBe(`https://api.loganalytics.io/v1/workspaces/${WORKSPACE}/query`);
    expect(sent[0]!.headers.get('content-type')).toMatch(/^application\/json/);
    expect(JSON.parse(String(sent[0]!.body))).toEqual({
      query: FAILURE_RATE_QUERY,
      timespan: '2025-12-31T23:45:00.000Z/2026-01-01T00:00:00.000Z',
    });
    const token = /^Bearer (.+)$/.exec(sent[0]!.headers.get('authorization') ?? '')?.[1];
    expect(sandbox.credential.inspect(token!)?.audience).toBe('https://api.loganalytics.io');
  });

  it('answers in the published shape of oms-post-example.json: tables of columns and rows, long / real / bool cells as strings', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const published = fixture<{ responses: { 200: { body: { tables: Array<Record<string, unknown>> } } } }>(
      'rest/monitor/oms-post-example.json',
    ).responses[200].body;

    // Act
    const { status, json } = await raw(
      sandbox,
      `/workspaces/${WORKSPACE}/query`,
      JSON.stringify({ query: EXCEPTIONS, timespan: 'PT1H' }),
    );

    // Assess
    expect(status).toBe(200);
    expect(Object.keys(json)).toEqual(Object.keys(published));
    expect(Object.keys(json.tables[0]).sort()).toEqual(Object.keys(published.tables[0]!).sort());
    expect(json.tables[0]).toEqual({
      name: 'PrimaryResult',
      columns: [
        { name: 'type', type: 'string' },
        { name: 'count_', type: 'long' },
        { name: 'handled', type: 'bool' },
        { name: 'last', type: 'datetime' },
        { name: 'details', type: 'dynamic' },
      ],
      rows: [
        ['System.TimeoutException', '12', 'true', '2025-12-31T23:55:00.000Z', '{"region":"weu","ids":[1,2]}'],
        ['System.IO.IOException', '3', 'false', '2025-12-31T23:20:00.000Z', null],
      ],
    });
  });

  it('answers with numbers and booleans when the workspace is set to (numbersAsStrings: false)', async () => {
    // Prepare
    const scenario = monitorScenario();
    scenario.monitor!.logAnalytics!.workspaces![0]!.numbersAsStrings = false;
    const sandbox = createSandbox({ scenario });

    // Act
    const { json } = await raw(
      sandbox,
      `/workspaces/${WORKSPACE}/query`,
      JSON.stringify({ query: EXCEPTIONS }),
    );

    // Assess
    expect(json.tables[0].rows[0].slice(1, 3)).toEqual([12, true]);
  });

  it('matches a query by its // stampkeeper:query tag, and answers the result the scenario or the test sets', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const client = clientOf(sandbox);
    const retagged = `${FAILURE_RATE_QUERY.split('\n').slice(1).join('\n')} | where 1 == 1 // stampkeeper:query=stamp-failure-rate`;

    // Act
    const first = await client.queryWorkspace(WORKSPACE, retagged, LAST_15_MINUTES);
    sandbox.monitor.logs.setResult(WORKSPACE, 'stamp-failure-rate', 'fail');
    const second = await client.queryWorkspace(WORKSPACE, FAILURE_RATE_QUERY, LAST_15_MINUTES);
    sandbox.monitor.logs.setResult(WORKSPACE, 'stamp-failure-rate', 'missing');
    const third = await client.queryWorkspace(WORKSPACE, FAILURE_RATE_QUERY, LAST_15_MINUTES);

    // Assess
    expect(first.status).toBe(LogsQueryResultStatus.Success);
    expect(first.status === LogsQueryResultStatus.Success && first.tables[0]!.rows).toEqual([['0.4', '640']]);
    expect(second.status === LogsQueryResultStatus.Success && second.tables[0]!.rows).toEqual([
      ['3.5', '1900'],
    ]);
    expect(third.status === LogsQueryResultStatus.Success && third.tables[0]!.rows).toEqual([]);
    expect(sandbox.monitor.logs.requests().map((r) => r.queryName)).toEqual([
      'stamp-failure-rate',
      'stamp-failure-rate',
      'stamp-failure-rate',
    ]);
  });

  it('matches an untagged query by its text, whatever its comments and the whitespace between tokens', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const reformatted = `// top exceptions
exceptions
    | where timestamp>ago(15m)   // recent only
    | summarize count() by type
`;

    // Act
    const result = await clientOf(sandbox).queryWorkspace(WORKSPACE, reformatted, LAST_15_MINUTES);

    // Assess
    expect(result.status).toBe(LogsQueryResultStatus.Success);
    expect(sandbox.monitor.logs.requests()[0]!.queryName).toBe('exceptions-by-type');
  });

  it('keeps only the rows of the requested timespan when the result names a window column; types cells through the SDK', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const result = await clientOf(sandbox).queryWorkspace(WORKSPACE, EXCEPTIONS, LAST_15_MINUTES);

    // Assess: the -40m row is outside the last 15 minutes.
    expect(result.status === LogsQueryResultStatus.Success && result.tables[0]!.rows).toEqual([
      ['System.TimeoutException', '12', 'true', at(-5), { region: 'weu', ids: [1, 2] }],
    ]);
  });

  it('answers 400 BadArgumentError for KQL that does not parse, and for KQL the scenario does not know (SemanticError, naming the sandbox)', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const client = clientOf(sandbox);

    // Act
    const syntax = await failureOf(
      client.queryWorkspace(WORKSPACE, 'requests | summarize count( by bin(timestamp, 1m)', LAST_15_MINUTES),
    );
    const unknown = await failureOf(client.queryWorkspace(WORKSPACE, 'traces | take 10', LAST_15_MINUTES));
    const badTag = await failureOf(
      client.queryWorkspace(WORKSPACE, 'traces // stampkeeper:query=nope', LAST_15_MINUTES),
    );

    // Assess
    expect(syntax.statusCode).toBe(400);
    expect(syntax.code).toBe('BadArgumentError');
    expect((syntax.details as { error: { innererror: { code: string } } }).error.innererror.code).toBe(
      'SyntaxError',
    );
    expect(unknown.statusCode).toBe(400);
    expect((unknown.details as { error: { innererror: { code: string } } }).error.innererror.code).toBe(
      'SemanticError',
    );
    expect(JSON.stringify(unknown.details)).toContain("normalised: 'traces|take 10'");
    expect(JSON.stringify(badTag.details)).toContain("no query tagged 'nope'");
  });

  it('answers a partial result as the API does: 200 with the tables and error.code PartialError, which the SDK reports as PartialFailure', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    sandbox.monitor.logs.setResult(WORKSPACE, 'stamp-failure-rate', 'partial');

    // Act
    const wire = await raw(
      sandbox,
      `/workspaces/${WORKSPACE}/query`,
      JSON.stringify({ query: FAILURE_RATE_QUERY, timespan: 'PT15M' }),
    );
    const result = await clientOf(sandbox).queryWorkspace(WORKSPACE, FAILURE_RATE_QUERY, LAST_15_MINUTES);

    // Assess
    expect(wire.status).toBe(200);
    expect(wire.json.error).toMatchObject({
      code: 'PartialError',
      message: 'There were some errors when processing your query.',
      details: [
        { code: 'EngineError', innererror: { message: 'Query execution has exceeded the allowed limits' } },
      ],
    });
    expect(result.status).toBe(LogsQueryResultStatus.PartialFailure);
    if (result.status !== LogsQueryResultStatus.PartialFailure) return;
    expect(result.partialTables[0]!.rows).toEqual([['0.1', '300']]);
    expect(result.partialError.code).toBe('PartialError');
  });

  it('switches results on the sandbox clock (schedule), and answers through a handler given the window', async () => {
    // Prepare
    const scenario = monitorScenario();
    scenario.monitor!.logAnalytics!.workspaces![0]!.queries![0]!.schedule = [{ from: '+2h', result: 'fail' }];
    const sandbox = createSandbox({ scenario });
    const client = clientOf(sandbox);
    const windows: unknown[] = [];

    // Act
    const before = await client.queryWorkspace(WORKSPACE, FAILURE_RATE_QUERY, LAST_15_MINUTES);
    await sandbox.advance({ hours: 2 });
    const after = await client.queryWorkspace(WORKSPACE, FAILURE_RATE_QUERY, LAST_15_MINUTES);
    sandbox.monitor.logs.setHandler(WORKSPACE, 'stamp-failure-rate', ({ window, now }) => {
      windows.push({ window, now });
      return {
        tables: [
          {
            columns: [{ name: 'minutes', type: 'long' }],
            rows: [[(window!.end.getTime() - window!.start.getTime()) / 60_000]],
          },
        ],
      };
    });
    const handled = await client.queryWorkspace(WORKSPACE, FAILURE_RATE_QUERY, {
      startTime: at(60),
      endTime: at(110),
    });

    // Assess
    expect(before.status === LogsQueryResultStatus.Success && before.tables[0]!.rows).toEqual([
      ['0.4', '640'],
    ]);
    expect(after.status === LogsQueryResultStatus.Success && after.tables[0]!.rows).toEqual([
      ['3.5', '1900'],
    ]);
    expect(handled.status === LogsQueryResultStatus.Success && handled.tables[0]!.rows).toEqual([['50']]);
    expect(windows).toEqual([{ window: { start: at(60), end: at(110) }, now: at(120) }]);
  });

  it('answers per workspace state: 204 without data, 403 without access, 503 unavailable, no answer when unreachable', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const client = clientOf(sandbox);
    const stateOf = async (state: 'forbidden' | 'unavailable' | 'unreachable') => {
      sandbox.monitor.logs.setWorkspaceState(WORKSPACE, state);
      return failureOf(client.queryWorkspace(WORKSPACE, FAILURE_RATE_QUERY, LAST_15_MINUTES));
    };

    // Act
    sandbox.monitor.logs.setWorkspaceState(WORKSPACE, 'empty');
    const emptyWire = await raw(
      sandbox,
      `/workspaces/${WORKSPACE}/query`,
      JSON.stringify({ query: FAILURE_RATE_QUERY }),
    );
    const emptySdk = await client.queryWorkspace(WORKSPACE, FAILURE_RATE_QUERY, LAST_15_MINUTES).then(
      () => undefined,
      (error: unknown) => error,
    );
    const forbidden = await stateOf('forbidden');
    const unavailable = await stateOf('unavailable');
    const unreachable = await stateOf('unreachable');

    // Assess
    expect([emptyWire.status, emptyWire.text]).toEqual([204, null]);
    // LogsQueryClient 1.0.0 reads the error body of any status but 200: a 204 fails inside it.
    expect(emptySdk).toBeInstanceOf(TypeError);
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.code).toBe('InsufficientAccessError');
    expect(unavailable.statusCode).toBe(503);
    expect(unreachable.statusCode).toBeUndefined();
    expect(unreachable.code).toBe('ECONNRESET');
  });

  it("answers resource-centric queries (an Application Insights component, the workspace's own ARM id) from the workspace; 404 for an unknown resource, 400 for an unknown workspace", async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const client = clientOf(sandbox);
    const workspaceArmId = sandbox.monitor.logs.workspaceResourceId(WORKSPACE);

    // Act
    const byComponent = await client.queryResource(APPI, FAILURE_RATE_QUERY, LAST_15_MINUTES);
    const byWorkspaceId = await client.queryResource(workspaceArmId, FAILURE_RATE_QUERY, LAST_15_MINUTES);
    const unknownResource = await failureOf(
      client.queryResource(`${APPI}-gone`, FAILURE_RATE_QUERY, LAST_15_MINUTES),
    );
    const unknownWorkspace = await failureOf(
      client.queryWorkspace('11111111-2222-4333-8444-555555555555', FAILURE_RATE_QUERY, LAST_15_MINUTES),
    );

    // Assess
    expect(byComponent.status).toBe(LogsQueryResultStatus.Success);
    expect(byWorkspaceId.status).toBe(LogsQueryResultStatus.Success);
    expect(workspaceArmId).toBe(
      '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-stampkeeper-sandbox/providers/Microsoft.OperationalInsights/workspaces/law-stamp',
    );
    expect(unknownResource.statusCode).toBe(404);
    expect(unknownResource.code).toBe('ResourceNotFoundError');
    expect(unknownWorkspace.statusCode).toBe(400);
    expect(unknownWorkspace.code).toBe('FailedToResolveResource');
  });

  it('refuses a request without a token (401) and a token of another audience (403 InvalidTokenError)', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const anonymous = await sandbox.httpClient.sendRequest(
      createPipelineRequest({
        url: `https://api.loganalytics.io/v1/workspaces/${WORKSPACE}/query`,
        method: 'POST',
        body: JSON.stringify({ query: EXCEPTIONS }),
      }),
    );
    const other = await raw(
      sandbox,
      `/workspaces/${WORKSPACE}/query`,
      JSON.stringify({ query: EXCEPTIONS }),
      {
        audience: 'https://metrics.monitor.azure.com',
      },
    );

    // Assess
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.bodyAsText!).error.code).toBe('AuthenticationFailed');
    expect(other.status).toBe(403);
    expect(other.json.error.code).toBe('InvalidTokenError');
  });

  it('answers the published quirks and errors of the wire: an empty 200 without a JSON body, 400 for a bad timespan, 404 for another path, 501 for $batch', async () => {
    // Prepare
    const sandbox = monitoredSandbox();

    // Act
    const noBody = await raw(sandbox, `/workspaces/${WORKSPACE}/query`, undefined);
    const notJson = await raw(
      sandbox,
      `/workspaces/${WORKSPACE}/query`,
      JSON.stringify({ query: EXCEPTIONS }),
      {
        contentType: 'text/plain',
      },
    );
    const badTimespan = await raw(
      sandbox,
      `/workspaces/${WORKSPACE}/query`,
      JSON.stringify({ query: EXCEPTIONS, timespan: 'last week' }),
    );
    const otherPath = await raw(sandbox, `/workspaces/${WORKSPACE}/metadata`, undefined);
    const batch = await raw(sandbox, '/$batch', JSON.stringify({ requests: [] }));

    // Assess
    expect([noBody.status, noBody.text]).toEqual([200, null]);
    expect([notJson.status, notJson.text]).toEqual([200, null]);
    expect(badTimespan.status).toBe(400);
    expect(badTimespan.json.error.code).toBe('BadArgumentError');
    expect(badTimespan.json.error.innererror.details[0].code).toBe('InvalidTimespan');
    expect(otherPath.status).toBe(404);
    expect(otherPath.json.error.code).toBe('PathNotFoundError');
    expect(batch.status).toBe(501);
  });

  it('serves the documented host api.loganalytics.azure.com too', async () => {
    // Prepare
    const sandbox = monitoredSandbox();
    const client = new LogsQueryClient(sandbox.credential, {
      httpClient: sandbox.httpClient,
      endpoint: 'https://api.loganalytics.azure.com/v1',
    });

    // Act
    const result = await client.queryWorkspace(WORKSPACE, FAILURE_RATE_QUERY, LAST_15_MINUTES);

    // Assess
    expect(result.status).toBe(LogsQueryResultStatus.Success);
    expect(sandbox.monitor.logs.requests()[0]).toMatchObject({ workspaceId: WORKSPACE, status: 200 });
  });
});
