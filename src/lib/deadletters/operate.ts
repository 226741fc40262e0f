/**
 * The operator's actions on archived dead letters (the `/api/deadletters` endpoints): list and
 * filter, view one (body decoded by content type), edit as a new revision (the original is kept),
 * replay one, discard with a reason, purge by filter with an explicit confirmation. Input is
 * checked whole before anything is read or changed (every problem listed); every action that
 * changes something is audited with the dead letter's name, never its body.
 */
import type { DeadLetterEntity } from '../config/policy';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors';
import { stableHash } from '../core/ids';
import {
  DEAD_LETTER_STATES,
  type DeadLetterFilter,
  type DeadLetterRecord,
  type DeadLetterState,
  type RevisionChange,
} from '../ports/deadLetters';
import type { ApplicationPropertyValue, BusMessageBody } from '../ports/messageBus';
import type { AuditLog } from '../ports/state';
import { DEAD_LETTER_ID } from './ids';
import { type ReplayDeps, replayOne } from './replay';

export interface OperateDeps extends ReplayDeps {
  audit: AuditLog;
}

export interface OperatorContext {
  actor: string;
  correlationId: string;
}

/** Most records one listing page returns, and most one purge removes. */
export const MAX_LIST_LIMIT = 200;
export const MAX_PURGE = 1000;
/** Largest edited body: the Standard tier's message size (a Premium entity takes more, not less). */
export const MAX_EDIT_BODY_BYTES = 256 * 1024;
const MAX_TEXT = 1024;
const MAX_PROPERTIES = 64;
const ENTITY_NAME = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;

/** The policy entity of a name, or 404. */
export function entityOf(deps: Pick<ReplayDeps, 'policy'>, name: string): DeadLetterEntity {
  const entity = deps.policy.deadLetters.find((e) => e.name === name);
  if (!entity) throw new NotFoundError(`dead-letter entity ${name} is not in the policy`);
  return entity;
}

/** The archive id from a route parameter, checked (400 when malformed). */
export function parseDeadLetterId(raw: unknown): string {
  if (typeof raw !== 'string' || !DEAD_LETTER_ID.test(raw))
    throw new ValidationError(`'${String(raw).slice(0, 80)}' is not a dead-letter id`, [
      'id: {entity}.{sequence number}.{6 hex digits}, as listed by GET /api/deadletters',
    ]);
  return raw;
}

/** A record by id, or 404. */
export async function recordOf(deps: Pick<ReplayDeps, 'archive'>, id: string): Promise<DeadLetterRecord> {
  const record = await deps.archive.get(parseDeadLetterId(id));
  if (!record) throw new NotFoundError(`dead letter ${id} is not in the archive`);
  return record;
}

/**
 * A filter from query parameters or a JSON object (`entity`, `reason`, `from`, `to`, `q`,
 * `state`), every problem pushed to `problems`. Unknown keys are refused by the caller.
 */
export function parseFilter(
  input: Record<string, unknown>,
  deps: Pick<ReplayDeps, 'policy'>,
  problems: string[],
): DeadLetterFilter {
  const filter: DeadLetterFilter = {};
  const str = (key: string): string | undefined => {
    const value = input[key];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string' || value.length > MAX_TEXT) {
      problems.push(`${key}: text of at most ${MAX_TEXT} characters`);
      return undefined;
    }
    return value;
  };
  const entity = str('entity');
  if (entity !== undefined) {
    if (!ENTITY_NAME.test(entity) || !deps.policy.deadLetters.some((e) => e.name === entity))
      problems.push(
        `entity: '${entity.slice(0, 80)}' is not a dead-letter entity of the policy (${deps.policy.deadLetters.map((e) => e.name).join(', ') || 'none'})`,
      );
    else filter.entity = entity;
  }
  const reason = str('reason');
  if (reason !== undefined) filter.reason = reason;
  for (const key of ['from', 'to'] as const) {
    const text = str(key);
    if (text === undefined) continue;
    const date = new Date(text);
    if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(date.getTime()))
      problems.push(`${key}: an ISO 8601 date-time (2026-01-01T00:00:00Z)`);
    else filter[key] = date;
  }
  if (filter.from && filter.to && filter.from >= filter.to) problems.push('from: must be before to');
  const q = str('q');
  if (q !== undefined) filter.q = q;
  const state = str('state');
  if (state !== undefined) {
    if (!DEAD_LETTER_STATES.includes(state as DeadLetterState))
      problems.push(`state: one of ${DEAD_LETTER_STATES.join(', ')}`);
    else filter.state = state as DeadLetterState;
  }
  return filter;
}

/** A body as JSON can show it: text or JSON by content type, else base64. */
export function decodeBody(
  body: BusMessageBody,
  contentType: string | undefined,
): { encoding: 'json' | 'text' | 'base64' | 'amqp-value' | 'amqp-sequence'; value: unknown } {
  if (body.type === 'value') return { encoding: 'amqp-value', value: body.value };
  if (body.type === 'sequence') return { encoding: 'amqp-sequence', value: body.sequences };
  const bytes = Buffer.from(body.bytes);
  const type = (contentType ?? '').toLowerCase();
  if (/(^application\/(.+\+)?json)|(^text\/json)/.test(type)) {
    try {
      return { encoding: 'json', value: JSON.parse(bytes.toString('utf8')) };
    } catch {
      // Said JSON, is not: shown as bytes.
    }
  }
  if (type.startsWith('text/') || /xml|yaml|csv/.test(type)) {
    const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
    if (!text.includes('\uFFFD')) return { encoding: 'text', value: text };
  }
  return { encoding: 'base64', value: bytes.toString('base64') };
}

/** A record as the API shows it (no etag; dates as ISO). */
export function describeRecord(record: DeadLetterRecord): Record<string, unknown> {
  const { etag: _etag, ...rest } = record;
  return rest;
}

/**
 * Largest body the view returns: 1 MiB, the Premium tier's default message size. A larger one (up to
 * the 100 MB Premium limit) is neither loaded from Blob storage nor decoded (its base64 in a JSON
 * response, or a `JSON.parse` of it, would hold the event loop and the memory of every request):
 * the view gives its size and hash; a replay sends it as it is.
 */
export const MAX_VIEW_BODY_BYTES = 1024 * 1024;

/** A body the view leaves out, said so with what identifies it. */
function omittedBody(size: number, sha256: string) {
  return {
    encoding: 'omitted' as const,
    value: null,
    size,
    sha256,
    note: `a body over ${MAX_VIEW_BODY_BYTES} bytes is not returned by the view; it is replayed as archived`,
  };
}

/** `GET /api/deadletters/{id}`: the record, its current revision's body decoded, and its revisions. */
export async function viewDeadLetter(id: string, deps: OperateDeps) {
  const record = await recordOf(deps, id);
  const revisions = await deps.archive.revisions(record);
  const latest = revisions.find((r) => r.revision === record.revisions);
  // The size is known from the record before the body is loaded: a large one is never read.
  const current =
    latest && latest.body.size > MAX_VIEW_BODY_BYTES
      ? { message: latest.message, body: omittedBody(latest.body.size, latest.body.sha256) }
      : await deps.archive.revision(record, record.revisions).then((loaded) => ({
          message: loaded.revision.message,
          body: decodeBody(loaded.body, loaded.revision.message.contentType),
        }));
  return {
    ...describeRecord(record),
    current: {
      revision: record.revisions,
      message: current.message,
      body: current.body,
    },
    revisionHistory: revisions.map((r) => ({
      revision: r.revision,
      actor: r.actor,
      reason: r.reason,
      createdOn: r.createdOn,
      body: r.body,
    })),
  };
}

/**
 * Parses an edit (`body` as text or JSON, or `bodyBase64`; `contentType`, `correlationId`,
 * `subject`, `sessionId`, `timeToLiveMs` (null removes one); `properties` to set, null removes;
 * `reason`), listing every problem.
 */
export function parseEdit(input: Record<string, unknown>): { change: RevisionChange; reason?: string } {
  const problems: string[] = [];
  const allowed = [
    'body',
    'bodyBase64',
    'contentType',
    'correlationId',
    'subject',
    'sessionId',
    'timeToLiveMs',
    'properties',
    'reason',
  ];
  const unknown = Object.keys(input).filter((k) => !allowed.includes(k));
  if (unknown.length > 0)
    problems.push(`${unknown.join(', ')}: not allowed (allowed: ${allowed.join(', ')})`);
  const change: RevisionChange = {};
  if (input.body !== undefined && input.bodyBase64 !== undefined)
    problems.push('body, bodyBase64: give one of them');
  if (input.body !== undefined) {
    const bytes = Buffer.from(typeof input.body === 'string' ? input.body : JSON.stringify(input.body));
    if (input.body === null) problems.push('body: text or JSON');
    else if (bytes.length > MAX_EDIT_BODY_BYTES) problems.push(`body: at most ${MAX_EDIT_BODY_BYTES} bytes`);
    else change.body = { type: 'data', bytes };
  }
  if (input.bodyBase64 !== undefined) {
    if (typeof input.bodyBase64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(input.bodyBase64))
      problems.push('bodyBase64: base64 text');
    else {
      const bytes = Buffer.from(input.bodyBase64, 'base64');
      if (bytes.length > MAX_EDIT_BODY_BYTES)
        problems.push(`bodyBase64: at most ${MAX_EDIT_BODY_BYTES} bytes`);
      else change.body = { type: 'data', bytes };
    }
  }
  for (const key of ['contentType', 'correlationId', 'subject', 'sessionId'] as const) {
    const value = input[key];
    if (value === undefined) continue;
    if (value !== null && (typeof value !== 'string' || value.length === 0 || value.length > 128))
      problems.push(`${key}: text of 1 to 128 characters, or null to remove it`);
    else change[key] = value as string | null;
  }
  if (input.timeToLiveMs !== undefined) {
    const ttl = input.timeToLiveMs;
    if (ttl !== null && (!Number.isInteger(ttl) || (ttl as number) < 1000))
      problems.push('timeToLiveMs: an integer of at least 1000, or null to remove it');
    else change.timeToLiveMs = ttl as number | null;
  }
  if (input.properties !== undefined) {
    const props = input.properties;
    if (typeof props !== 'object' || props === null || Array.isArray(props))
      problems.push('properties: an object of name: value (null removes one)');
    else {
      const entries = Object.entries(props);
      if (entries.length > MAX_PROPERTIES) problems.push(`properties: at most ${MAX_PROPERTIES}`);
      const out: Record<string, ApplicationPropertyValue> = {};
      for (const [key, value] of entries.slice(0, MAX_PROPERTIES)) {
        if (key.length === 0 || key.length > 128)
          problems.push(`properties.${key}: a name of 1 to 128 characters`);
        else if (/^(DeadLetter|Stampkeeper)/i.test(key))
          problems.push(`properties.${key}: set by Service Bus or by the replay, not editable`);
        else if (
          value !== null &&
          !['string', 'number', 'boolean'].includes(typeof value) &&
          !(typeof value === 'number' && !Number.isFinite(value))
        )
          problems.push(`properties.${key}: a string, a number, a boolean or null`);
        else if (typeof value === 'string' && value.length > MAX_TEXT)
          problems.push(`properties.${key}: at most ${MAX_TEXT} characters`);
        else out[key] = value as ApplicationPropertyValue;
      }
      change.applicationProperties = out;
    }
  }
  if (input.reason !== undefined && (typeof input.reason !== 'string' || input.reason.length > MAX_TEXT))
    problems.push(`reason: text of at most ${MAX_TEXT} characters`);
  const changes = Object.keys(change).length;
  if (problems.length === 0 && changes === 0)
    problems.push('(body): nothing to change (body, bodyBase64, contentType, ..., properties)');
  if (problems.length > 0) throw new ValidationError(`invalid edit: ${problems.join('; ')}`, problems);
  return { change, ...(typeof input.reason === 'string' ? { reason: input.reason } : {}) };
}

/** `POST /api/deadletters/{id}/revisions`: a new revision over the latest (the original stays). */
export async function editDeadLetter(
  id: string,
  edit: { change: RevisionChange; reason?: string },
  deps: OperateDeps,
  context: OperatorContext,
) {
  const record = await recordOf(deps, id);
  if (record.state === 'discarded')
    throw new ConflictError(`dead letter ${record.id} was discarded: it cannot be edited`, {
      retryable: false,
    });
  const now = deps.clock.now();
  const result = await deps.archive.addRevision(record, edit.change, {
    actor: context.actor,
    ...(edit.reason ? { reason: edit.reason } : {}),
    now,
  });
  await deps.audit.append({
    id: stableHash('deadletters-edit', record.id, String(result.revision)),
    time: now,
    actor: context.actor,
    action: 'deadletters.edit',
    target: `deadletters/${record.entity}/${record.id}`,
    outcome: 'succeeded',
    correlationId: context.correlationId,
    ...(edit.reason ? { reason: edit.reason } : {}),
    // Names of what changed, never the body or property values.
    after: {
      revision: result.revision,
      changed: Object.keys(edit.change).filter((k) => k !== 'applicationProperties'),
      properties: Object.keys(edit.change.applicationProperties ?? {}),
    },
  });
  return { record: result.record, revision: result.revision };
}

/** `POST /api/deadletters/{id}/replay`: one replay attempt (or the retry of the pending one), audited. */
export async function replayDeadLetter(
  id: string,
  request: { to?: string; revision?: number },
  deps: OperateDeps,
  context: OperatorContext,
) {
  const record = await recordOf(deps, id);
  const entity = entityOf(deps, record.entity);
  const { attempt, target } = await replayOne(
    entity,
    record,
    {
      actor: context.actor,
      ...(request.to ? { to: request.to } : {}),
      ...(request.revision !== undefined ? { revision: request.revision } : {}),
    },
    deps,
  );
  await deps.audit.append({
    id: stableHash('deadletters-replay', record.id, attempt.messageId),
    time: deps.clock.now(),
    actor: context.actor,
    action: 'deadletters.replay',
    target: `deadletters/${record.entity}/${record.id}`,
    outcome: 'succeeded',
    correlationId: context.correlationId,
    after: {
      attempt: attempt.attempt,
      messageId: attempt.messageId,
      target: target.entity,
      ...(target.replayTo ? { replayTo: target.replayTo } : {}),
      revision: attempt.revision,
    },
  });
  return { attempt, target };
}

/** `POST /api/deadletters/{id}/discard`: the record is kept, marked discarded with the reason. */
export async function discardDeadLetter(
  id: string,
  reason: string,
  deps: OperateDeps,
  context: OperatorContext,
): Promise<DeadLetterRecord> {
  const record = await recordOf(deps, id);
  if (record.state === 'discarded') return record;
  if (record.state === 'replaying')
    throw new ConflictError(
      `dead letter ${record.id} has a replay that may have been sent and is not recorded yet: replay it again first`,
      { retryable: false },
    );
  const now = deps.clock.now();
  const updated = await deps.archive.setState(record, 'discarded', reason, now);
  await deps.audit.append({
    id: stableHash('deadletters-discard', record.id, record.etag),
    time: now,
    actor: context.actor,
    action: 'deadletters.discard',
    target: `deadletters/${record.entity}/${record.id}`,
    outcome: 'succeeded',
    correlationId: context.correlationId,
    reason,
    before: { state: record.state },
    after: { state: 'discarded' },
  });
  return updated;
}

/**
 * `POST /api/deadletters/purge`: deletes the records a filter matches (at most `MAX_PURGE` per
 * call), only with `confirm` equal to the number the dry count returned: a purge never deletes
 * more than the person saw. Records with a replay in flight are kept.
 */
export async function purgeDeadLetters(
  filter: DeadLetterFilter,
  confirm: number | undefined,
  deps: OperateDeps,
  context: OperatorContext,
): Promise<{ matched: number; purged: number; kept: string[]; confirmed: boolean }> {
  const matched: DeadLetterRecord[] = [];
  let continuation: string | undefined;
  do {
    const page = await deps.archive.list(filter, {
      limit: MAX_LIST_LIMIT,
      ...(continuation ? { continuation } : {}),
    });
    matched.push(...page.records);
    continuation = page.continuation;
    if (matched.length > MAX_PURGE)
      throw new ValidationError(`the filter matches more than ${MAX_PURGE} dead letters: narrow it`, [
        `(filter): matches more than ${MAX_PURGE}`,
      ]);
  } while (continuation);
  const removable = matched.filter((r) => r.state !== 'replaying');
  const kept = matched.filter((r) => r.state === 'replaying').map((r) => r.id);
  if (confirm === undefined) return { matched: matched.length, purged: 0, kept, confirmed: false };
  if (confirm !== removable.length)
    throw new ConflictError(
      `the filter now matches ${removable.length} removable dead letters, not ${confirm}: count again and confirm that number`,
      { retryable: false },
    );
  const purged = await deps.archive.remove(removable);
  await deps.audit.append({
    id: stableHash('deadletters-purge', context.correlationId),
    time: deps.clock.now(),
    actor: context.actor,
    action: 'deadletters.purge',
    target: `deadletters/${filter.entity ?? '*'}`,
    outcome: 'succeeded',
    correlationId: context.correlationId,
    after: {
      purged,
      filter: { ...filter },
      ids: removable.slice(0, 50).map((r) => r.id),
      kept,
    },
  });
  return { matched: matched.length, purged, kept, confirmed: true };
}
