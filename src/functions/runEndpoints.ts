import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { authorize, ROLES, type Role } from '../lib/app/auth';
import { getDeps } from '../lib/app/deps';
import { NotFoundError, ValidationError } from '../lib/core/errors';
import { errorResponse, jsonResponse } from '../lib/core/http';
import type { Logger } from '../lib/core/logging';
import { describeRun, MAX_RUN_BODY_BYTES, parseRunBody, parseRunId, type RunEngine } from '../lib/runs';
import { invocationLogger } from './invocation';

/**
 * The run endpoints: read a run, approve or reject the step it awaits, cancel it. Callers are
 * identified by the platform's built-in authentication and need an app role (`Operations.Read`,
 * `Operations.Approve`, `Operations.Execute`); the caller is the audit actor and the approver. The
 * role is checked before anything is read; bad input answers 400 and changes nothing.
 */
async function handle(
  request: HttpRequest,
  context: InvocationContext,
  role: Role,
  operation: string,
  work: (engine: RunEngine, id: string, actor: string, logger: Logger) => Promise<HttpResponseInit>,
): Promise<HttpResponseInit> {
  const logger = invocationLogger(context, operation);
  try {
    const deps = getDeps();
    const caller = authorize(request, { authEnabled: deps.settings.authEnabled }, role);
    const id = parseRunId(request.params.id);
    await deps.ready();
    return await work(deps.runs(logger), id, caller.actor, logger);
  } catch (error) {
    return errorResponse(error, context.invocationId, logger);
  }
}

async function readBody(request: HttpRequest): Promise<string> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > MAX_RUN_BODY_BYTES) {
    throw new ValidationError('The request body is too large', [
      `(body): larger than ${MAX_RUN_BODY_BYTES} bytes`,
    ]);
  }
  return request.text();
}

/** `GET /api/runs/{id}` (Operations.Read): the run, its steps, approvals and error. 404 when unknown. */
export function getRun(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.read, 'runs.get', async (engine, id) => {
    const run = await engine.getRun(id);
    if (!run) throw new NotFoundError(`Run ${id} does not exist`);
    return jsonResponse(200, describeRun(run), context.invocationId);
  });
}

/**
 * `POST /api/runs/{id}/approve` (Operations.Approve), body `{ "comment"?: "..." }`: the awaited
 * step runs next; the caller is recorded as the approver. 409 when the run awaits no approval or it
 * expired, 404 when unknown.
 */
export function approveRun(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.approve, 'runs.approve', async (engine, id, actor) => {
    const body = parseRunBody(await readBody(request), { optional: ['comment'] });
    const run = await engine.approveRun(id, { actor, comment: body.comment });
    return jsonResponse(200, describeRun(run), context.invocationId);
  });
}

/** `POST /api/runs/{id}/reject` (Operations.Approve), body `{ "comment"?: "..." }`: the run is cancelled. */
export function rejectRun(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.approve, 'runs.reject', async (engine, id, actor) => {
    const body = parseRunBody(await readBody(request), { optional: ['comment'] });
    const run = await engine.rejectRun(id, { actor, comment: body.comment });
    return jsonResponse(200, describeRun(run), context.invocationId);
  });
}

/**
 * `POST /api/runs/{id}/cancel` (Operations.Execute), body `{ "reason": "..." }`: 200 when the run
 * is cancelled (or cancelling: compensations run), 202 when a step is in flight and the cancel
 * was requested (the step observes it), 200 unchanged for a run already over. 404 when unknown.
 */
export function cancelRun(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.execute, 'runs.cancel', async (engine, id, actor) => {
    const body = parseRunBody(await readBody(request), { required: 'reason' });
    const run = await engine.cancelRun(id, { reason: body.reason!, actor });
    if (!run) throw new NotFoundError(`Run ${id} does not exist`);
    const view = describeRun(run);
    return jsonResponse(view.cancelRequested ? 202 : 200, view, context.invocationId);
  });
}

// The function key, then built-in authentication identifies the caller and the app role decides.
app.http('getRun', { methods: ['GET'], authLevel: 'function', route: 'runs/{id}', handler: getRun });
app.http('approveRun', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'runs/{id}/approve',
  handler: approveRun,
});
app.http('rejectRun', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'runs/{id}/reject',
  handler: rejectRun,
});
app.http('cancelRun', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'runs/{id}/cancel',
  handler: cancelRun,
});
