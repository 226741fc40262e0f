import { randomUUID } from 'node:crypto';
import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient, PipelinePolicy, PipelineRequest, SendRequest } from '@azure/core-rest-pipeline';
import {
  LogsQueryClient,
  LogsQueryResultStatus,
  type LogsQueryResult as SdkLogsQueryResult,
  type LogsTable as SdkLogsTable,
} from '@azure/monitor-query-logs';
import { ConfigurationError, DependencyError, ValidationError } from '../core/errors';
import type { LogsCell, LogsQuery, LogsQueryResult, LogsReader, LogsTable } from '../ports/monitoring';
import { fromAzureError } from './errors';

/** The query API (`LogsQueryClient`'s default endpoint) and its audience. */
export const LOGS_ENDPOINT = 'https://api.loganalytics.io/v1';
export const LOGS_AUDIENCE = 'https://api.loganalytics.io';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const RESOURCE_ID =
  /^\/subscriptions\/[0-9a-f-]{36}\/resourceGroups\/[^/]+\/providers\/[A-Za-z][A-Za-z0-9.]*\/[^/]+\/[^/]+(\/[^/]+\/[^/]+)*$/i;
/** Carries a call's id from `query` to the pipeline policy; removed before the request is sent. */
const CALL_HEADER = 'x-stampkeeper-logs-call';
/** Bodies longer than this are not kept for their partial-error details (the tables are in them too). */
const MAX_KEPT_BODY = 4 * 1024 * 1024;
const LOGS_HOSTS = [
  'api.loganalytics.io',
  'api.loganalytics.azure.com',
  'api.loganalytics.us',
  'api.loganalytics.azure.cn',
];
export const MAX_QUERY_LENGTH = 100_000;
const MAX_WORKSPACES = 100;

export interface LogsReaderOptions {
  /** `undefined` = the SDK's default transport (the sandbox passes its own). */
  httpClient?: HttpClient;
  /** Default `https://api.loganalytics.io/v1` (with the version: the SDK uses it as given). */
  endpoint?: string;
  /** Default `https://api.loganalytics.io`. */
  audience?: string;
  retryOptions?: { maxRetries?: number; retryDelayInMs?: number; maxRetryDelayInMs?: number };
}

/**
 * `LogsReader` over `LogsQueryClient` of `@azure/monitor-query-logs` (the Log Analytics query API).
 * Needs **Log Analytics Reader** on the workspaces queried (`Microsoft.OperationalInsights/workspaces/query/read`
 * and `.../search/action`); for a resource-centric query (`target.resourceId`, e.g. an Application
 * Insights component), read access to that resource's logs (`Microsoft.Insights/logs/*\/read`, which
 * **Monitoring Reader** has) in a workspace that allows resource-context access.
 *
 * Cells come back typed by their column (the query API may send long / real / bool cells as strings,
 * as its REST spec example does); a partial answer (`PartialError`) is returned as `status: 'partial'`,
 * never as complete.
 */
export class LogAnalyticsLogsReader implements LogsReader {
  private readonly client: LogsQueryClient;
  private readonly host: string;
  /** The raw body of partial answers, per call: the SDK drops the inner reasons of a PartialError. */
  private readonly partialBodies = new Map<string, string>();

  constructor(credential: TokenCredential, options: LogsReaderOptions = {}) {
    const endpoint = options.endpoint ?? LOGS_ENDPOINT;
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'https:' || !LOGS_HOSTS.includes(url.hostname.toLowerCase()) || url.search !== '') {
      throw new ConfigurationError(
        `the Log Analytics endpoint must be https://<${LOGS_HOSTS.join(' | ')}>/v1, got '${endpoint}'`,
      );
    }
    this.host = url.host;
    const audience = (options.audience ?? LOGS_AUDIENCE).replace(/\/+$/, '');
    this.client = new LogsQueryClient(credential, {
      endpoint: endpoint.replace(/\/+$/, ''),
      // LogsQueryClient 1.0.0 declares an `audience` option but asks for the public cloud's scope
      // whatever it says: the scope is given as the client takes it.
      credentials: { scopes: [`${audience}/.default`] },
      httpClient: options.httpClient,
      retryOptions: { maxRetries: 2, ...options.retryOptions },
      additionalPolicies: [{ policy: this.answerPolicy(), position: 'perCall' }],
    });
  }

  /**
   * Runs `query.query` over `query.window` against a workspace or a resource. Throws `ValidationError`
   * for a bad query before any call; the service's refusals through `fromAzureError` (400 bad KQL:
   * non-retryable `DependencyError`; 401/403: `ForbiddenError`; 429/5xx and network: `TransientError`);
   * a workspace without any data (204, no body) or an answer that is not a result: `DependencyError`.
   */
  async query(query: LogsQuery): Promise<LogsQueryResult> {
    this.validate(query);
    const target =
      'workspaceId' in query.target ? `workspace ${query.target.workspaceId}` : query.target.resourceId;
    const timespan = { startTime: query.window.start, endTime: query.window.end };
    const call = randomUUID();
    const options = {
      additionalWorkspaces: query.additionalWorkspaces,
      serverTimeoutInSeconds: query.serverTimeoutSeconds,
      abortSignal: query.abortSignal,
      requestOptions: { headers: { [CALL_HEADER]: call } },
    };
    let result: SdkLogsQueryResult;
    let partialBody: string | undefined;
    try {
      result =
        'workspaceId' in query.target
          ? await this.client.queryWorkspace(query.target.workspaceId, query.query, timespan, options)
          : await this.client.queryResource(query.target.resourceId, query.query, timespan, options);
    } catch (error) {
      throw fromAzureError(error, `querying logs of ${target} on ${this.host}`, { target });
    } finally {
      // Read below for a partial answer; never kept past the call.
      partialBody = this.partialBodies.get(call);
      this.partialBodies.delete(call);
    }
    if (result.status === LogsQueryResultStatus.PartialFailure) {
      const error = result.partialError;
      return {
        status: 'partial',
        tables: result.partialTables.map((t) => toTable(t, target)),
        error: {
          code: error?.code ?? 'PartialError',
          message: error?.message ?? 'the query answered partially',
          details: partialDetails(partialBody, error?.details ?? []),
        },
      };
    }
    if (result.status !== LogsQueryResultStatus.Success || !Array.isArray(result.tables)) {
      throw new DependencyError(`querying logs of ${target}: the answer is not a query result`, {
        retryable: false,
        metadata: { target },
      });
    }
    return { status: 'complete', tables: result.tables.map((t) => toTable(t, target)) };
  }

  /**
   * Keeps the body of a partial answer for its call (the call's id travels in a header this policy
   * removes before the request leaves), and turns a 204 into what it means (see `noContent`).
   */
  private answerPolicy(): PipelinePolicy {
    return {
      name: 'stampkeeperLogsAnswer',
      sendRequest: async (request: PipelineRequest, next: SendRequest) => {
        const call = request.headers.get(CALL_HEADER);
        request.headers.delete(CALL_HEADER);
        const response = await next(request);
        if (response.status === 204) throw noContent(request);
        const body = response.bodyAsText;
        if (
          call &&
          response.status === 200 &&
          body &&
          body.length <= MAX_KEPT_BODY &&
          body.includes('PartialError')
        )
          this.partialBodies.set(call, body);
        return response;
      },
    };
  }

  private validate(query: LogsQuery): void {
    const problems: string[] = [];
    const target = query.target as { workspaceId?: unknown; resourceId?: unknown } | undefined;
    if (target && 'workspaceId' in target) {
      if (typeof target.workspaceId !== 'string' || !GUID.test(target.workspaceId))
        problems.push('target.workspaceId: the workspace id (a GUID)');
    } else if (target && 'resourceId' in target) {
      if (typeof target.resourceId !== 'string' || !RESOURCE_ID.test(target.resourceId))
        problems.push('target.resourceId: an ARM resource id (/subscriptions/{guid}/resourceGroups/...)');
    } else problems.push('target: { workspaceId } or { resourceId }');
    if (typeof query.query !== 'string' || query.query.trim() === '') problems.push('query: KQL text');
    else if (query.query.length > MAX_QUERY_LENGTH)
      problems.push(`query: at most ${MAX_QUERY_LENGTH} characters`);
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
    if (query.serverTimeoutSeconds !== undefined) {
      const s = query.serverTimeoutSeconds;
      if (!Number.isInteger(s) || s < 1 || s > 600)
        problems.push('serverTimeoutSeconds: a whole number from 1 to 600');
    }
    if (query.additionalWorkspaces !== undefined) {
      const w = query.additionalWorkspaces;
      if (
        !Array.isArray(w) ||
        w.length > MAX_WORKSPACES ||
        w.some((x) => typeof x !== 'string' || x.trim() === '')
      )
        problems.push(`additionalWorkspaces: at most ${MAX_WORKSPACES} workspace identifiers`);
    }
    if (problems.length > 0) throw new ValidationError(`logs query: ${problems.join('; ')}`, problems);
  }
}

function toTable(table: SdkLogsTable, target: string): LogsTable {
  const columns = table.columnDescriptors.map((c) => ({ name: c.name ?? '', type: c.type ?? 'string' }));
  return {
    name: table.name,
    columns,
    rows: table.rows.map((row) =>
      row.map((cell, i) => toCell(cell, columns[i]?.type ?? 'string', columns[i]?.name ?? '', target)),
    ),
  };
}

/**
 * A cell as its column's type says. The query API sends long / real / bool cells as JSON numbers and
 * booleans or as strings (the REST spec's example: "1", "1.286", "true"): both are read; anything else
 * is an answer the app cannot trust, so it fails loudly rather than turn into a wrong number.
 */
export function toCell(cell: unknown, type: string, column: string, target: string): LogsCell {
  if (cell === null || cell === undefined) return null;
  const unexpected = () =>
    new DependencyError(`querying logs of ${target}: column ${column} (${type}) has an unexpected cell`, {
      retryable: false,
      metadata: { target, column, type },
    });
  switch (type) {
    case 'int':
    case 'long':
    case 'real':
    case 'decimal': {
      if (typeof cell === 'number') return cell;
      if (typeof cell === 'string' && cell.trim() !== '') {
        const n = Number(cell);
        if (!Number.isNaN(n) || cell.trim() === 'NaN') return n;
      }
      throw unexpected();
    }
    case 'bool': {
      if (typeof cell === 'boolean') return cell;
      if (typeof cell === 'string' && /^(true|false)$/i.test(cell.trim()))
        return cell.trim().toLowerCase() === 'true';
      if (cell === 0 || cell === 1) return cell === 1;
      throw unexpected();
    }
    case 'datetime': {
      const date = cell instanceof Date ? cell : typeof cell === 'string' ? new Date(cell) : undefined;
      if (!date || Number.isNaN(date.getTime())) throw unexpected();
      return date;
    }
    case 'string':
    case 'guid':
    case 'timespan':
      return typeof cell === 'string' ? cell : String(cell);
    default:
      // `dynamic` (parsed by the SDK) and types this code does not know: JSON values as they came.
      return cell as LogsCell;
  }
}

/**
 * The query API answers 204 with no body for a workspace without any data (docs "Azure Monitor Log
 * Analytics API errors"), which `LogsQueryClient` 1.0.0 does not survive (it reads an error body that is
 * not there and throws a `TypeError`). Turned into what it means: no data, a non-retryable `DependencyError`.
 */
function noContent(request: PipelineRequest): DependencyError {
  const path = new URL(request.url).pathname;
  return new DependencyError(
    `querying logs (${path}): the service answered 204 No Content, the workspace holds no data`,
    {
      retryable: false,
      metadata: { status: 204, path },
    },
  );
}

/**
 * `code: message: inner reason` per detail of a PartialError. The inner reason (`innererror.message`,
 * e.g. a result-size limit) is read from the raw answer: `LogsQueryClient` 1.0.0 drops it.
 */
function partialDetails(
  body: string | undefined,
  details: Array<{ code?: string; message?: string }>,
): string[] {
  let raw: Array<{ code?: unknown; message?: unknown; innererror?: { message?: unknown } }> | undefined;
  try {
    const parsed = body === undefined ? undefined : (JSON.parse(body) as { error?: { details?: unknown } });
    if (Array.isArray(parsed?.error?.details)) raw = parsed.error.details as typeof raw;
  } catch {
    raw = undefined;
  }
  const source = raw ?? details;
  return source.map((d) => {
    const inner = (d as { innererror?: { message?: unknown } }).innererror?.message;
    return [d.code, d.message, inner]
      .filter((x): x is string => typeof x === 'string' && x !== '')
      .join(': ');
  });
}
