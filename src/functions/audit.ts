import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { parseAuditQuery, parseRejectionQuery, queryAudit, queryRejections } from '../lib/app/audit';
import { authorize, ROLES } from '../lib/app/auth';
import { getDeps } from '../lib/app/deps';
import { errorResponse, jsonResponse } from '../lib/core/http';
import { invocationLogger } from './invocation';

/**
 * `GET /api/audit?since=&until=&target=&limit=`: audit records, oldest first. `since` defaults to
 * 24 hours ago; `target` is a target as audited or a bare secret name. Bounds are checked before
 * any read (400 listing every problem). Function key and app role `Operations.Read` (401 without a
 * caller, 403 without the role, before anything is read).
 */
export async function audit(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const logger = invocationLogger(context, 'audit');
  try {
    const deps = getDeps();
    authorize(request, { authEnabled: deps.settings.authEnabled }, ROLES.read);
    await deps.load();
    const auditDeps = deps.auditQuery(logger);
    const query = parseAuditQuery(request.query, auditDeps.clock.now());
    await deps.ready();
    const records = await queryAudit(auditDeps, query);
    return jsonResponse(200, { count: records.length, records }, context.invocationId);
  } catch (error) {
    return errorResponse(error, context.invocationId, logger);
  }
}

/**
 * `GET /api/rejections?since=&until=`: rejected events and alerts counted per hour, source and
 * reason (each bucket's first rejection is in the audit). Window of at most 31 days, 24 hours by
 * default. Function key and app role `Operations.Read`, as `/api/audit`.
 */
export async function rejections(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const logger = invocationLogger(context, 'rejections');
  try {
    const deps = getDeps();
    authorize(request, { authEnabled: deps.settings.authEnabled }, ROLES.read);
    await deps.load();
    const rejectionDeps = deps.rejectionQuery(logger);
    const query = parseRejectionQuery(request.query, rejectionDeps.clock.now());
    await deps.ready();
    const buckets = await queryRejections(rejectionDeps, query);
    return jsonResponse(
      200,
      { count: buckets.length, total: buckets.reduce((n, b) => n + b.count, 0), buckets },
      context.invocationId,
    );
  } catch (error) {
    return errorResponse(error, context.invocationId, logger);
  }
}

app.http('audit', { methods: ['GET'], authLevel: 'function', route: 'audit', handler: audit });
app.http('rejections', { methods: ['GET'], authLevel: 'function', route: 'rejections', handler: rejections });
