import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getDeps } from '../lib/app/deps';
import { ValidationError } from '../lib/core/errors';
import { errorResponse, jsonResponse } from '../lib/core/http';
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

export function parseAuditQuery(params: URLSearchParams, now: Date) {
  const problems: string[] = [];
  const time = (name: string): Date | undefined => {
    const raw = params.get(name);
    if (raw === null || raw === '') return undefined;
    const date = new Date(raw);
    if (Number.isNaN(date.getTime())) problems.push(`${name}: '${raw.slice(0, 40)}' is not an ISO 8601 time`);
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
