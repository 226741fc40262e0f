import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getDeps } from '../lib/app/deps';
import { ValidationError } from '../lib/core/errors';
import { errorResponse, jsonResponse } from '../lib/core/http';
import { parseIsoTime } from '../lib/core/time';
import { invocationLogger } from './invocation';

const DEFAULT_WINDOW_MS = 24 * 3_600_000;
const MAX_LIMIT = 1000;

/**
 * `GET /api/audit?since=&until=&target=&limit=`: audit records, oldest first. `since` defaults to
 * 24 hours ago. Function-key protected in Azure.
 */
export async function audit(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const logger = invocationLogger(context, 'audit');
  try {
    const deps = getDeps();
    const query = parseAuditQuery(request.query, deps.platform.clock.now());
    await deps.ready();
    const records = await deps.state.audit.query(query);
    return jsonResponse(200, { count: records.length, records }, context.invocationId);
  } catch (error) {
    return errorResponse(error, context.invocationId, logger);
  }
}

/**
 * Reads the audit query parameters: `since` (default 24 hours before `now`), `until`, `target`,
 * `limit` (1-1000, default 200). Throws a `ValidationError` listing every bad parameter.
 */
export function parseAuditQuery(params: URLSearchParams, now: Date) {
  const problems: string[] = [];
  const time = (name: string): Date | undefined => {
    const raw = params.get(name);
    if (raw === null || raw === '') return undefined;
    const date = parseIsoTime(raw);
    if (!date)
      problems.push(
        `${name}: '${raw.slice(0, 40)}' is not an ISO 8601 time with a zone (e.g. 2026-01-01T00:00:00Z)`,
      );
    return date;
  };
  const since = time('since') ?? new Date(now.getTime() - DEFAULT_WINDOW_MS);
  const until = time('until');
  const target = params.get('target')?.trim() || undefined;
  const limitRaw = params.get('limit');
  const limit = limitRaw ? Number(limitRaw) : 200;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    problems.push(`limit: must be an integer from 1 to ${MAX_LIMIT}`);
  if (until && since > until) problems.push('since: must not be after until');
  if (problems.length > 0) throw new ValidationError(`invalid audit query: ${problems.join('; ')}`, problems);
  return { since, until, target, limit };
}

app.http('audit', { methods: ['GET'], authLevel: 'function', route: 'audit', handler: audit });
