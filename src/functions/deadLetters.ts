import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { authorize, type Caller, ROLES, type Role } from '../lib/app/auth';
import { getDeps } from '../lib/app/deps';
import { ValidationError } from '../lib/core/errors';
import { errorResponse, jsonResponse, readJsonObject } from '../lib/core/http';
import type { Logger } from '../lib/core/logging';
import { parseBulkReplay, startBulkReplay } from '../lib/deadletters/bulkReplay';
import {
  describeRecord,
  discardDeadLetter,
  editDeadLetter,
  MAX_EDIT_BODY_BYTES,
  MAX_LIST_LIMIT,
  type OperateDeps,
  parseDeadLetterId,
  parseEdit,
  parseFilter,
  purgeDeadLetters,
  replayDeadLetter,
  viewDeadLetter,
} from '../lib/deadletters/operate';
import { describeRun } from '../lib/runs';
import { invocationLogger } from './invocation';

const FILTER_KEYS = ['entity', 'reason', 'from', 'to', 'q', 'state'];
/** Bodies of the actions but an edit: small JSON objects. */
const MAX_ACTION_BODY_BYTES = 8 * 1024;

/**
 * The dead-letter endpoints, for pipelines and people: list, view, edit, replay, discard, purge.
 * The function key, then the caller's app role (Operations.Read to look, Operations.Execute to
 * act), checked before anything is read; bad input answers 400 listing every problem, and changes
 * nothing.
 */
async function handle(
  request: HttpRequest,
  context: InvocationContext,
  role: Role,
  operation: string,
  work: (deps: OperateDeps, caller: Caller, logger: Logger) => Promise<HttpResponseInit>,
): Promise<HttpResponseInit> {
  const logger = invocationLogger(context, operation);
  try {
    const deps = getDeps();
    const caller = authorize(request, { authEnabled: deps.settings.authEnabled }, role);
    return await work(deps.deadLetters(logger), caller, logger);
  } catch (error) {
    return errorResponse(error, context.invocationId, logger);
  }
}

function unknownKeys(input: Record<string, unknown>, allowed: string[], problems: string[]): void {
  const unknown = Object.keys(input).filter((k) => !allowed.includes(k));
  if (unknown.length > 0)
    problems.push(`${unknown.join(', ')}: not allowed (allowed: ${allowed.join(', ')})`);
}

function fail(what: string, problems: string[]): void {
  if (problems.length > 0) throw new ValidationError(`invalid ${what}: ${problems.join('; ')}`, problems);
}

/**
 * `GET /api/deadletters?entity=&reason=&from=&to=&q=&state=&limit=&continuation=` (Operations.Read):
 * archived dead letters, in entity then sequence order, a page at a time.
 */
export function listDeadLetters(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.read, 'deadletters.list', async (deps) => {
    const query = Object.fromEntries(request.query.entries());
    const problems: string[] = [];
    unknownKeys(query, [...FILTER_KEYS, 'limit', 'continuation'], problems);
    const filter = parseFilter(query, deps, problems);
    const limit = query.limit === undefined ? 50 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT)
      problems.push(`limit: an integer from 1 to ${MAX_LIST_LIMIT}`);
    if (query.continuation !== undefined && !/^[A-Za-z0-9_-]{1,2000}$/.test(query.continuation))
      problems.push('continuation: the value a previous page returned');
    fail('dead-letter query', problems);
    await getDeps().ready();
    const page = await deps.archive.list(filter, {
      limit,
      ...(query.continuation ? { continuation: query.continuation } : {}),
    });
    return jsonResponse(
      200,
      {
        count: page.records.length,
        records: page.records.map(describeRecord),
        continuation: page.continuation ?? null,
      },
      context.invocationId,
    );
  });
}

/** `GET /api/deadletters/{id}` (Operations.Read): the record, its body decoded, its revisions. */
export function getDeadLetter(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.read, 'deadletters.get', async (deps) => {
    const id = parseDeadLetterId(request.params.id);
    await getDeps().ready();
    return jsonResponse(200, await viewDeadLetter(id, deps), context.invocationId);
  });
}

/**
 * `POST /api/deadletters/{id}/revisions` (Operations.Execute), body `{ body | bodyBase64,
 * contentType, correlationId, subject, sessionId, timeToLiveMs, properties, reason }`: a new
 * revision; the original is kept. 201 with the revision number.
 */
export function editDeadLetterEndpoint(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.execute, 'deadletters.edit', async (deps, caller) => {
    const id = parseDeadLetterId(request.params.id);
    const edit = parseEdit(await readJsonObject(request, MAX_EDIT_BODY_BYTES * 2));
    await getDeps().ready();
    const result = await editDeadLetter(id, edit, deps, {
      actor: caller.actor,
      correlationId: context.invocationId,
    });
    return jsonResponse(
      201,
      { id, revision: result.revision, record: describeRecord(result.record) },
      context.invocationId,
    );
  });
}

/**
 * `POST /api/deadletters/{id}/replay` (Operations.Execute), body `{ to?: queue or topic among the
 * entity's replay targets, revision?: number }`: sends the latest revision (or the one named) to
 * the original entity or the target. 409 when it cannot be replayed (discarded, a replay pending to
 * elsewhere, a topic without the isolation rule).
 */
export function replayDeadLetterEndpoint(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.execute, 'deadletters.replay', async (deps, caller) => {
    const id = parseDeadLetterId(request.params.id);
    const body = await readJsonObject(request, MAX_ACTION_BODY_BYTES);
    const problems: string[] = [];
    unknownKeys(body, ['to', 'revision'], problems);
    if (
      body.to !== undefined &&
      (typeof body.to !== 'string' || !/^[A-Za-z0-9][\w.\-/]{0,259}$/.test(body.to))
    )
      problems.push('to: a queue or topic name among the entity replay targets');
    if (body.revision !== undefined && (!Number.isInteger(body.revision) || (body.revision as number) < 0))
      problems.push('revision: an integer of at least 0');
    fail('replay', problems);
    await getDeps().ready();
    const { attempt, target } = await replayDeadLetter(
      id,
      {
        ...(typeof body.to === 'string' ? { to: body.to } : {}),
        ...(typeof body.revision === 'number' ? { revision: body.revision } : {}),
      },
      deps,
      { actor: caller.actor, correlationId: context.invocationId },
    );
    return jsonResponse(
      202,
      {
        id,
        status: 'replayed',
        attempt: attempt.attempt,
        messageId: attempt.messageId,
        target: target.entity,
        ...(target.replayTo ? { replayTo: target.replayTo } : {}),
        revision: attempt.revision,
      },
      context.invocationId,
    );
  });
}

/** `POST /api/deadletters/{id}/discard` (Operations.Execute), body `{ reason }`: kept, marked discarded. */
export function discardDeadLetterEndpoint(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.execute, 'deadletters.discard', async (deps, caller) => {
    const id = parseDeadLetterId(request.params.id);
    const body = await readJsonObject(request, MAX_ACTION_BODY_BYTES);
    const problems: string[] = [];
    unknownKeys(body, ['reason'], problems);
    if (typeof body.reason !== 'string' || body.reason.trim() === '' || body.reason.length > 1000)
      problems.push('reason: why it is discarded (1 to 1000 characters) is required');
    fail('discard', problems);
    await getDeps().ready();
    const record = await discardDeadLetter(id, body.reason as string, deps, {
      actor: caller.actor,
      correlationId: context.invocationId,
    });
    return jsonResponse(200, describeRecord(record), context.invocationId);
  });
}

/**
 * `POST /api/deadletters/purge` (Operations.Execute), body `{ filter: {...}, confirm?: number }`:
 * without `confirm`, counts what the filter matches and deletes nothing; with `confirm` equal to
 * that count, deletes them (409 when the count changed). A filter is required: no purge of all.
 */
export function purgeDeadLettersEndpoint(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.execute, 'deadletters.purge', async (deps, caller) => {
    const body = await readJsonObject(request, MAX_ACTION_BODY_BYTES);
    const problems: string[] = [];
    unknownKeys(body, ['filter', 'confirm'], problems);
    const raw = body.filter;
    let filter = {};
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      problems.push('filter: an object of entity, reason, from, to, q, state');
    else {
      unknownKeys(raw as Record<string, unknown>, FILTER_KEYS, problems);
      filter = parseFilter(raw as Record<string, unknown>, deps, problems);
      if (!('entity' in filter)) problems.push('filter.entity: required (a purge names its entity)');
    }
    if (body.confirm !== undefined && (!Number.isInteger(body.confirm) || (body.confirm as number) < 0))
      problems.push('confirm: the number of dead letters a purge without confirm reported');
    fail('purge', problems);
    await getDeps().ready();
    const result = await purgeDeadLetters(filter, body.confirm as number | undefined, deps, {
      actor: caller.actor,
      correlationId: context.invocationId,
    });
    return jsonResponse(200, result, context.invocationId);
  });
}

/**
 * `POST /api/deadletters/replay` (Operations.Execute), body `{ filter: { entity, reason?, from?,
 * to?, q?, state? }, to?, ratePerSecond?, dryRun? }`: a bulk replay run (plan, replay in batches
 * at the rate, report). 202 with the run (follow it at `GET /api/runs/{id}`); a dry run plans and
 * reports what would be sent, sending nothing; 409 while another bulk replay of the entity runs.
 */
export function bulkReplayEndpoint(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.execute, 'deadletters.bulkReplay', async (deps, caller, logger) => {
    const body = await readJsonObject(request, MAX_ACTION_BODY_BYTES);
    const parsed = parseBulkReplay(body, deps, (input, problems) => parseFilter(input, deps, problems));
    await getDeps().ready();
    const run = await startBulkReplay(getDeps().runs(logger), {
      ...parsed,
      actor: caller.actor,
      correlationId: context.invocationId,
    });
    return jsonResponse(202, { runId: run.id, run: describeRun(run) }, context.invocationId);
  });
}

app.http('bulkReplayDeadLetters', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'deadletters/replay',
  handler: bulkReplayEndpoint,
});
app.http('deadLetters', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'deadletters',
  handler: listDeadLetters,
});
app.http('purgeDeadLetters', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'deadletters/purge',
  handler: purgeDeadLettersEndpoint,
});
app.http('getDeadLetter', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'deadletters/{id}',
  handler: getDeadLetter,
});
app.http('editDeadLetter', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'deadletters/{id}/revisions',
  handler: editDeadLetterEndpoint,
});
app.http('replayDeadLetter', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'deadletters/{id}/replay',
  handler: replayDeadLetterEndpoint,
});
app.http('discardDeadLetter', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'deadletters/{id}/discard',
  handler: discardDeadLetterEndpoint,
});
