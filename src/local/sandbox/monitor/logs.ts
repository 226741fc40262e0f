/**
 * The Log Analytics query API as `LogsQueryClient` of `@azure/monitor-query-logs` 1.0.0 calls it:
 * `POST https://api.loganalytics.io/v1/workspaces/{workspaceId}/query` (and the resource-centric
 * `POST /v1/{resourceId}/query`), body `{ "query": <KQL>, "timespan": <ISO 8601 duration or interval>,
 * "workspaces"?: [...] }`, a bearer token for the audience `https://api.loganalytics.io`. The documented
 * host `api.loganalytics.azure.com` is served too. Answers in the shape of the REST spec's
 * `oms-post-example.json`: `tables[{ name, columns[{ name, type }], rows }]`, long / real / bool cells as
 * strings (`"1"`, `"1.286"`, `"true"`); partial results as HTTP 200 with `error.code = PartialError`
 * beside the tables; errors as the API documents them (docs "Azure Monitor Log Analytics API errors",
 * "Batch queries", "Querying logs for Azure resources").
 *
 * The sandbox runs no KQL: a query is recognised (see `scanKql`) and answered with the result the
 * scenario holds for it (or a handler the test sets). How queries are matched: docs/sandbox.md.
 */
import { RestError } from '@azure/core-rest-pipeline';
import type { SandboxCredential } from '../credential';
import { bearerToken } from '../credential';
import type { SandboxReply, SandboxRequest } from '../http';
import type { ServiceEmulator } from '../router';
import { scanKql } from './kql';
import {
  type LogsColumnType,
  MONITOR_LIMITS,
  namespaceOfResourceId,
  type ResolvedLogsQuery,
  type ResolvedLogsResult,
  type ResolvedWorkspace,
  resolveMonitorScenario,
  type ScenarioLogsResult,
  WORKSPACE_STATES,
  type WorkspaceState,
} from './scenario';
import { parseIsoInterval, resolveInstant, type ScenarioInstant } from './time';

export const LOGS_HOSTS = ['api.loganalytics.io', 'api.loganalytics.azure.com'] as const;
/** The audience of the query API (`KnownMonitorLogsQueryAudience.AzurePublicCloud`). */
export const LOGS_AUDIENCE = 'https://api.loganalytics.io';
export const LOGS_ENDPOINT = 'https://api.loganalytics.io/v1';

/** What a handler set through the sandbox API sees of a query. */
export interface LogsQueryContext {
  workspaceId: string;
  /** The matched query's name. */
  queryName: string;
  /** The KQL as sent. */
  query: string;
  /** The request's timespan, resolved on the sandbox clock; undefined when none was sent. */
  window: { start: Date; end: Date } | undefined;
  now: Date;
}

/** Answers a query in the scenario's result form (`{ tables, partialError?, error?, windowColumn? }`). */
export type LogsQueryHandler = (context: LogsQueryContext) => ScenarioLogsResult;

/** One request as the logs emulation saw it: never the KQL text, only what it matched. */
export interface LogsRequestRecord {
  method: string;
  path: string;
  workspaceId: string | undefined;
  queryName: string | undefined;
  status: number;
}

const PARTIAL_DEFAULT =
  'The results of this query exceed the set limit of 64000000 bytes, so not all records were returned (E_QUERY_RESULT_SET_TOO_LARGE, 0x80DA0003). See https://aka.ms/kustoquerylimits for more information and possible solutions.';

function logsError(
  status: number,
  code: string,
  message: string,
  innererror?: Record<string, unknown>,
): SandboxReply {
  const error: Record<string, unknown> = { message, code };
  if (innererror) error.innererror = innererror;
  return { status, body: { error } };
}

function badArgument(innererror: Record<string, unknown>): SandboxReply {
  return logsError(400, 'BadArgumentError', 'The request had some invalid properties', innererror);
}

function syntaxError(detail: string): SandboxReply {
  return badArgument({
    code: 'SyntaxError',
    message: 'A recognition error occurred in the query.',
    innererror: { code: 'SYN0002', message: `Query could not be parsed: ${detail}` },
  });
}

function semanticError(detail: string): SandboxReply {
  return badArgument({
    code: 'SemanticError',
    message: 'A semantic error occurred.',
    innererror: { code: 'SEM0100', message: detail },
  });
}

interface WorkspaceRuntime {
  spec: ResolvedWorkspace;
  state: WorkspaceState;
  overrides: Map<string, string>;
  handlers: Map<string, LogsQueryHandler>;
}

export class LogsEmulator implements ServiceEmulator {
  readonly name = 'monitor-logs';
  private readonly workspaces = new Map<string, WorkspaceRuntime>();
  private readonly log: LogsRequestRecord[] = [];

  constructor(
    workspaces: ResolvedWorkspace[],
    private readonly credential: SandboxCredential,
    private readonly subscriptionId: string,
    private readonly defaultResourceGroup: string,
    private readonly now: () => number,
    private readonly clockStart: number,
  ) {
    for (const spec of workspaces) {
      this.workspaces.set(spec.id, { spec, state: spec.state, overrides: new Map(), handlers: new Map() });
    }
  }

  matches(hostname: string): boolean {
    return (LOGS_HOSTS as readonly string[]).includes(hostname);
  }

  requests(): LogsRequestRecord[] {
    return this.log.map((r) => ({ ...r }));
  }

  /** The ARM id of a workspace (`/subscriptions/.../providers/Microsoft.OperationalInsights/workspaces/{name}`). */
  resourceIdOf(spec: ResolvedWorkspace): string {
    return `/subscriptions/${this.subscriptionId}/resourceGroups/${spec.resourceGroup ?? this.defaultResourceGroup}/providers/Microsoft.OperationalInsights/workspaces/${spec.name}`;
  }

  setState(workspaceId: string, state: WorkspaceState): void {
    if (!(WORKSPACE_STATES as readonly string[]).includes(state))
      throw new RangeError(`sandbox logs: state must be one of ${WORKSPACE_STATES.join(', ')}`);
    this.require(workspaceId).state = state;
  }

  /** Answers `result` (one of the query's results) from now on, whatever the schedule says. */
  setResult(workspaceId: string, queryName: string, result: string): void {
    const workspace = this.require(workspaceId);
    const query = this.requireQuery(workspace, queryName);
    if (!(result in query.results))
      throw new RangeError(
        `sandbox logs: '${result}' is not a result of query '${queryName}' (${Object.keys(query.results).join(', ')})`,
      );
    workspace.overrides.set(query.name, result);
  }

  /** Answers the query through `handler` from now on (undefined: back to the scenario's results). */
  setHandler(workspaceId: string, queryName: string, handler: LogsQueryHandler | undefined): void {
    const workspace = this.require(workspaceId);
    const query = this.requireQuery(workspace, queryName);
    if (handler === undefined) workspace.handlers.delete(query.name);
    else workspace.handlers.set(query.name, handler);
  }

  describe(): unknown {
    const now = this.now();
    return [...this.workspaces.values()].map((w) => ({
      id: w.spec.id,
      name: w.spec.name,
      resourceId: this.resourceIdOf(w.spec),
      resources: w.spec.resources,
      state: w.state,
      queries: w.spec.queries.map((q) => ({
        name: q.name,
        match: 'tag' in q.match ? { tag: q.match.tag } : { text: q.match.text },
        results: Object.keys(q.results),
        current: w.handlers.has(q.name) ? '(handler)' : this.currentResult(w, q, now),
      })),
    }));
  }

  private require(workspaceId: string): WorkspaceRuntime {
    const workspace = this.workspaces.get(workspaceId.toLowerCase());
    if (!workspace) throw new RangeError(`sandbox logs: no workspace '${workspaceId}' in the scenario`);
    return workspace;
  }

  private requireQuery(workspace: WorkspaceRuntime, queryName: string): ResolvedLogsQuery {
    const query = workspace.spec.queries.find((q) => q.name === queryName);
    if (!query)
      throw new RangeError(`sandbox logs: workspace ${workspace.spec.id} has no query '${queryName}'`);
    return query;
  }

  private currentResult(workspace: WorkspaceRuntime, query: ResolvedLogsQuery, now: number): string {
    const override = workspace.overrides.get(query.name);
    if (override !== undefined) return override;
    let current = query.result;
    let latest = Number.NEGATIVE_INFINITY;
    for (const entry of query.schedule) {
      const from = resolveInstant(entry.from, this.clockStart);
      if (from <= now && from >= latest) {
        latest = from;
        current = entry.result;
      }
    }
    return current;
  }

  async handle(req: SandboxRequest): Promise<SandboxReply> {
    const record: LogsRequestRecord = {
      method: req.method,
      path: req.url.pathname,
      workspaceId: undefined,
      queryName: undefined,
      status: 0,
    };
    try {
      const reply = this.route(req, record);
      record.status = reply.status;
      return reply;
    } finally {
      this.log.push(record);
      if (this.log.length > 10_000) this.log.shift();
    }
  }

  private route(req: SandboxRequest, record: LogsRequestRecord): SandboxReply {
    const authorization = req.headers.get('authorization');
    if (!authorization)
      return logsError(
        401,
        'AuthenticationFailed',
        "Authentication failed. The 'Authorization' header is missing.",
      );
    const token = bearerToken(authorization);
    const info = token ? this.credential.inspect(token) : undefined;
    if (!info || info.expiresOnTimestamp <= Date.now())
      return logsError(403, 'InvalidAuthenticationToken', 'The access token is invalid.');
    if (info.audience !== LOGS_AUDIENCE) {
      return logsError(
        403,
        'InvalidTokenError',
        'The provided authentication is not valid for this resource',
        {
          code: 'SignatureVerificationFailed',
          message: 'Could not validate the request',
        },
      );
    }

    const path = decodeURIComponent(req.url.pathname);
    if (/^\/v1\/\$batch\/?$/i.test(path)) {
      return logsError(
        501,
        'NotImplemented',
        'sandbox: the Log Analytics batch API ($batch) is not emulated; query workspaces one at a time (queryWorkspace / queryResource).',
      );
    }
    let workspace: WorkspaceRuntime | undefined;
    const byWorkspace = /^\/v1\/workspaces\/([^/]+)\/query\/?$/i.exec(path);
    // LogsQueryClient 1.0.0 expands `/{+resourceId}/query` with the id's own leading slash: `/v1//subscriptions/...`.
    const byResource = byWorkspace ? null : /^\/v1\/+(subscriptions\/.+)\/query\/?$/i.exec(path);
    if (byWorkspace) {
      const id = byWorkspace[1]!;
      workspace = this.findWorkspace(id);
      // Published text (docs "Batch queries", 400 FailedToResolveResource), typo included.
      if (!workspace)
        return logsError(400, 'FailedToResolveResource', 'Resource identity could not be resovled');
    } else if (byResource) {
      const resourceId = `/${byResource[1]!}`;
      workspace = this.findByResource(resourceId);
      if (!workspace)
        return logsError(
          404,
          'ResourceNotFoundError',
          `The resource ${resourceId.toLowerCase()} was not found`,
        );
    } else {
      return logsError(404, 'PathNotFoundError', 'The requested path does not exist');
    }
    record.workspaceId = workspace.spec.id;
    if (req.method !== 'POST' && req.method !== 'GET')
      return logsError(404, 'PathNotFoundError', 'The requested path does not exist');

    switch (workspace.state) {
      case 'unreachable':
        // No answer at all: what the transport throws when the connection drops.
        throw new RestError('read ECONNRESET', { code: 'ECONNRESET', request: req.original });
      case 'unavailable':
        return logsError(
          503,
          'ServiceUnavailableError',
          'The service is temporarily unavailable. Please retry.',
        );
      case 'empty':
        // Published behaviour ("No data in workspace"): 204 with an empty body.
        return { status: 204 };
      case 'forbidden':
        return logsError(
          403,
          'InsufficientAccessError',
          'The provided credentials have insufficient access to perform the requested operation',
        );
      default:
    }

    let input: { query?: unknown; timespan?: unknown; workspaces?: unknown };
    if (req.method === 'GET') {
      input = {
        query: req.url.searchParams.get('query') ?? undefined,
        timespan: req.url.searchParams.get('timespan') ?? undefined,
      };
    } else {
      const contentType = req.headers.get('content-type') ?? '';
      // Published behaviour: a POST without a JSON body or without the JSON content type gets an empty 200.
      if (req.bodyText === undefined || req.bodyText.trim() === '' || !/application\/json/i.test(contentType))
        return { status: 200 };
      try {
        input = JSON.parse(req.bodyText) as typeof input;
      } catch (err) {
        return badArgument({
          code: 'QueryValidationError',
          message: 'Failed parsing the query',
          details: [{ code: 'InvalidJsonBody', message: (err as Error).message, target: null }],
        });
      }
      if (typeof input !== 'object' || input === null || Array.isArray(input))
        return badArgument({ code: 'QueryValidationError', message: 'Failed parsing the query' });
    }
    if (typeof input.query !== 'string' || input.query.trim() === '') {
      return badArgument({
        code: 'QueryValidationError',
        message: 'Failed parsing the query',
        details: [{ code: 'InvalidQuery', message: 'The query is missing or empty.', target: 'query' }],
      });
    }
    if (input.query.length > MONITOR_LIMITS.queryTextLength)
      return syntaxError(
        `the query is longer than ${MONITOR_LIMITS.queryTextLength} characters (sandbox bound)`,
      );
    const now = this.now();
    let window: { start: number; end: number } | undefined;
    if (input.timespan !== undefined && input.timespan !== null) {
      window = typeof input.timespan === 'string' ? parseIsoInterval(input.timespan, now) : undefined;
      if (!window) {
        return badArgument({
          code: 'QueryValidationError',
          message: 'Failed parsing the query',
          details: [
            {
              code: 'InvalidTimespan',
              message: `The timespan '${String(input.timespan)}' is not an ISO 8601 duration or interval.`,
              target: 'timespan',
            },
          ],
        });
      }
    }
    if (input.workspaces !== undefined) {
      if (!Array.isArray(input.workspaces) || input.workspaces.some((w) => typeof w !== 'string'))
        return badArgument({
          code: 'QueryValidationError',
          message: 'workspaces must be a list of workspace identifiers',
        });
      for (const other of input.workspaces as string[]) {
        if (!this.findWorkspace(other) && !this.findByResource(other))
          return logsError(400, 'FailedToResolveResource', 'Resource identity could not be resovled');
      }
    }

    const scan = scanKql(input.query);
    if (scan.syntaxError) return syntaxError(scan.syntaxError);
    const query = scan.tag
      ? workspace.spec.queries.find((q) => 'tag' in q.match && q.match.tag === scan.tag)
      : workspace.spec.queries.find(
          (q) => 'text' in q.match && scanKql(q.match.text).normalised === scan.normalised,
        );
    if (!query) {
      return semanticError(
        scan.tag
          ? `sandbox: workspace ${workspace.spec.id} has no query tagged '${scan.tag}' (monitor.logAnalytics.workspaces[].queries[].match.tag)`
          : `sandbox: no query of workspace ${workspace.spec.id} matches this KQL (normalised: '${scan.normalised.slice(0, 300)}'); add it under monitor.logAnalytics.workspaces[].queries with match.text or tag it // stampkeeper:query=<name>`,
      );
    }
    record.queryName = query.name;

    const handler = workspace.handlers.get(query.name);
    let result: ResolvedLogsResult;
    if (handler) {
      const answer = handler({
        workspaceId: workspace.spec.id,
        queryName: query.name,
        query: input.query,
        window: window && { start: new Date(window.start), end: new Date(window.end) },
        now: new Date(now),
      });
      result = resolveHandlerResult(answer, this.clockStart);
    } else {
      result = query.results[this.currentResult(workspace, query, now)]!;
    }
    return this.answer(result, window, workspace.spec.numbersAsStrings);
  }

  private findWorkspace(idOrName: string): WorkspaceRuntime | undefined {
    const key = idOrName.toLowerCase();
    const byId = this.workspaces.get(key);
    if (byId) return byId;
    return [...this.workspaces.values()].find(
      (w) => w.spec.name.toLowerCase() === key || this.resourceIdOf(w.spec).toLowerCase() === key,
    );
  }

  private findByResource(resourceId: string): WorkspaceRuntime | undefined {
    const key = resourceId.toLowerCase().replace(/\/+$/, '');
    if (namespaceOfResourceId(resourceId) === undefined) return undefined;
    return [...this.workspaces.values()].find(
      (w) =>
        this.resourceIdOf(w.spec).toLowerCase() === key ||
        w.spec.resources.some((r) => r.toLowerCase() === key),
    );
  }

  private answer(
    result: ResolvedLogsResult,
    window: { start: number; end: number } | undefined,
    numbersAsStrings: boolean,
  ): SandboxReply {
    if (result.error === 'syntax') return syntaxError('the scenario answers this query with a syntax error');
    if (result.error === 'semantic')
      return semanticError('the scenario answers this query with a semantic error');
    if (result.error) return logsError(result.error.status, result.error.code, result.error.message);
    const tables = result.tables.map((table) => {
      const windowIndex =
        result.windowColumn === undefined
          ? -1
          : table.columns.findIndex((c) => c.name === result.windowColumn);
      const rows = table.rows.filter((row) => {
        if (windowIndex < 0 || window === undefined) return true;
        const cell = row[windowIndex];
        if (cell === null || cell === undefined) return false;
        const t = resolveInstant(cell as ScenarioInstant, this.clockStart);
        return t >= window.start && t <= window.end;
      });
      return {
        name: table.name,
        columns: table.columns.map((c) => ({ name: c.name, type: c.type })),
        rows: rows.map((row) =>
          row.map((cell, k) => encodeCell(table.columns[k]!.type, cell, numbersAsStrings, this.clockStart)),
        ),
      };
    });
    const body: Record<string, unknown> = { tables };
    if (result.partialError) {
      body.error = {
        code: 'PartialError',
        message: 'There were some errors when processing your query.',
        details: [
          {
            code: 'EngineError',
            message: 'Something went wrong processing your query on the server.',
            innererror: {
              code: '-2133196797',
              message: result.partialError.message || PARTIAL_DEFAULT,
              severity: 2,
              severityName: 'Error',
            },
          },
        ],
      };
    }
    return { status: 200, body };
  }
}

/** Validates a handler's answer with the scenario's rules; a bad answer fails the request loudly (500). */
function resolveHandlerResult(answer: ScenarioLogsResult, clockStart: number): ResolvedLogsResult {
  const problems: string[] = [];
  const resolved = resolveMonitorScenario(
    {
      logAnalytics: {
        workspaces: [
          {
            id: '00000000-0000-0000-0000-000000000000',
            queries: [{ name: 'handler', match: { tag: 'handler' }, results: { answer } }],
          },
        ],
      },
    },
    problems,
    clockStart,
  );
  if (problems.length > 0)
    throw new Error(
      `the query handler answered an invalid result: ${problems.map((p) => p.replace(/^.*results\.answer/, 'result')).join('; ')}`,
    );
  return resolved.logAnalytics.workspaces[0]!.queries[0]!.results.answer!;
}

function encodeCell(
  type: LogsColumnType,
  cell: unknown,
  numbersAsStrings: boolean,
  clockStart: number,
): unknown {
  if (cell === null || cell === undefined) return null;
  switch (type) {
    case 'datetime':
      return new Date(resolveInstant(cell as ScenarioInstant, clockStart)).toISOString();
    case 'dynamic':
      return JSON.stringify(cell);
    case 'bool':
    case 'int':
    case 'long':
    case 'real':
    case 'decimal':
      return numbersAsStrings ? String(cell) : cell;
    default:
      return cell;
  }
}
