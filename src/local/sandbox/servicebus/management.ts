import { type Message, message as rheaMessage, types } from 'rhea';
import { type Entity, type Namespace, SendRefused, type Target } from './namespace';
import {
  checkRuleName,
  compileRule,
  correlationFromWire,
  correlationToWire,
  RULE_DESCRIPTORS,
  type Rule,
  RuleError,
  type RuleFilter,
} from './rules';
import type { SubQueue } from './store';
import { asArray, longValue, outgoingMessage, uuidBytesToString, wrapLockToken } from './wire';

/**
 * The `$management` node of each entity, as the SDK's `ManagementClient` uses it
 * (service-bus-amqp-request-response.md): message operations, session operations, rule
 * operations on subscriptions, and scheduling. Every reply carries `statusCode` /
 * `statusDescription` (and `errorCondition` on failure), which the SDK turns into a `ServiceBusError`.
 */

export interface ManagementReply {
  application_properties: Record<string, unknown>;
  body?: unknown;
}

const LOCK_LOST_CONDITION = 'com.microsoft:message-lock-lost';
const SESSION_LOCK_LOST_CONDITION = 'com.microsoft:session-lock-lost';
const SESSION_LOCK_LOST = 'The session lock has expired on the MessageSession. Accept a new MessageSession.';
/** AMQP array element constructors: long, str32. */
const LONG_CODE = 0x81;
const STRING_CODE = 0xb1;

function ok(body?: unknown): ManagementReply {
  return { application_properties: { statusCode: 200, statusDescription: 'OK' }, body };
}

function noContent(description: string): ManagementReply {
  return { application_properties: { statusCode: 204, statusDescription: description }, body: {} };
}

export function failure(
  statusCode: number,
  errorCondition: string,
  statusDescription: string,
): ManagementReply {
  return { application_properties: { statusCode, statusDescription, errorCondition } };
}

function notFound(path: string): ManagementReply {
  return failure(404, 'amqp:not-found', `The messaging entity '${path}' could not be found.`);
}

/** Answers one `$management` request addressed to `entityPath` (lower-cased, without `/$management`). */
export function handleManagement(
  namespace: Namespace,
  entityPath: string,
  request: Message,
): ManagementReply {
  const operation = String(request.application_properties?.['operation'] ?? '');
  const body = (request.body ?? {}) as Record<string, unknown>;
  const entity = namespace.entity(entityPath);
  if (
    operation === 'com.microsoft:schedule-message' ||
    operation === 'com.microsoft:cancel-scheduled-message'
  ) {
    if (!entity) return notFound(entityPath);
    return operation === 'com.microsoft:schedule-message'
      ? schedule(namespace, entity, body)
      : cancel(namespace, entity, body);
  }
  if (
    operation === 'com.microsoft:add-rule' ||
    operation === 'com.microsoft:remove-rule' ||
    operation === 'com.microsoft:enumerate-rules'
  ) {
    const found = namespace.target(entityPath);
    if (!found?.target.rules) {
      if (found || entity || namespace.paths.has(entityPath)) {
        return failure(
          400,
          'amqp:not-allowed',
          `Rules belong to topic subscriptions; '${entityPath}' is not one.`,
        );
      }
      return notFound(entityPath);
    }
    return handleRules(namespace, found.target, operation, body);
  }
  const queue = namespace.paths.get(entityPath);
  if (!queue) return notFound(entityPath);
  return handleQueueManagement(queue, operation, body);
}

function schedule(namespace: Namespace, entity: Entity, body: Record<string, unknown>): ManagementReply {
  const messages: Message[] = [];
  for (const item of asArray(body['messages'])) {
    const encoded = Buffer.from((item as { message?: Uint8Array }).message ?? []);
    if (encoded.length > entity.maxMessageSize) {
      return failure(
        413,
        'amqp:link:message-size-exceeded',
        `The received message (size: ${encoded.length} bytes) exceeds the limit (${entity.maxMessageSize} bytes) currently allowed on the entity.`,
      );
    }
    messages.push(rheaMessage.decode(encoded) as unknown as Message);
  }
  let sequenceNumbers: Array<number | undefined>;
  try {
    sequenceNumbers = namespace.send(entity, messages);
  } catch (error) {
    if (error instanceof SendRefused) return failure(400, error.condition, error.message);
    throw error;
  }
  // A duplicate dropped by duplicate detection still gets a number (it is accepted, then dropped):
  // cancelling it later finds nothing, as for a message already enqueued.
  const numbers = sequenceNumbers.map((n) => n ?? entity.nextSequenceNumber++);
  return ok({ 'sequence-numbers': types.wrap_array(numbers, LONG_CODE, undefined) });
}

function cancel(namespace: Namespace, entity: Entity, body: Record<string, unknown>): ManagementReply {
  for (const value of asArray(body['sequence-numbers'])) {
    const sequenceNumber = longValue(value);
    if (sequenceNumber !== undefined) namespace.cancelScheduled(entity, sequenceNumber);
  }
  return ok({});
}

/** Rule operations as `ServiceBusRuleManager` sends them. */
function handleRules(
  namespace: Namespace,
  target: Target,
  operation: string,
  body: Record<string, unknown>,
): ManagementReply {
  try {
    if (operation === 'com.microsoft:add-rule') {
      const name = checkRuleName(body['rule-name']);
      const description = body['rule-description'];
      if (!description || typeof description !== 'object') {
        throw new RuleError('add-rule needs a rule-description map.', 400, 'com.microsoft:argument-error');
      }
      const map = description as Record<string, unknown>;
      if (map['sql-rule-action'] !== undefined && map['sql-rule-action'] !== null) {
        throw new RuleError(
          'Rule actions (sql-rule-action) are not emulated by the sandbox Service Bus broker.',
          501,
          'amqp:not-implemented',
        );
      }
      const sql = map['sql-filter'] as { expression?: unknown } | undefined | null;
      const correlation = map['correlation-filter'] as Record<string, unknown> | undefined | null;
      if (sql && correlation) {
        throw new RuleError(
          'A rule has either a SQL filter or a correlation filter, not both.',
          400,
          'com.microsoft:argument-error',
        );
      }
      let filter: RuleFilter;
      if (sql) filter = { kind: 'sql', expression: String(sql.expression ?? '') };
      else if (correlation) filter = { kind: 'correlation', ...correlationFromWire(correlation) };
      else
        throw new RuleError(
          'add-rule needs a sql-filter or a correlation-filter.',
          400,
          'com.microsoft:argument-error',
        );
      namespace.addRule(target, compileRule(name, filter));
      return ok({});
    }
    if (operation === 'com.microsoft:remove-rule') {
      namespace.removeRule(target, String(body['rule-name'] ?? ''));
      return ok({});
    }
    const rules = target.rules ?? [];
    const skip = Math.max(0, Number(body['skip'] ?? 0) || 0);
    const top = Math.max(0, Number(body['top'] ?? rules.length) || 0);
    const page = rules.slice(skip, skip + top);
    if (page.length === 0) return noContent('No rules');
    return ok({ rules: page.map((rule) => ({ 'rule-description': describeRule(rule) })) });
  } catch (error) {
    if (error instanceof RuleError) return failure(error.status, error.condition, error.message);
    throw error;
  }
}

/** A rule as `enumerate-rules` describes it: `com.microsoft:rule-description:list` [filter, action, name]. */
function describeRule(rule: Rule): unknown {
  const described = (code: number, items: unknown[]) =>
    types.described(types.wrap_ulong(code), types.wrap_list(items));
  const filter = rule.filter;
  let wireFilter: unknown;
  switch (filter.kind) {
    case 'true':
      wireFilter = described(RULE_DESCRIPTORS.trueFilter, ['1=1']);
      break;
    case 'false':
      wireFilter = described(RULE_DESCRIPTORS.falseFilter, ['1=0']);
      break;
    case 'sql':
      wireFilter = described(RULE_DESCRIPTORS.sqlFilter, [filter.expression]);
      break;
    case 'correlation':
      wireFilter = described(RULE_DESCRIPTORS.correlationFilter, correlationToWire(filter));
      break;
  }
  return described(RULE_DESCRIPTORS.ruleDescription, [
    wireFilter,
    described(RULE_DESCRIPTORS.emptyRuleAction, []),
    rule.name,
  ]);
}

/** The `$management` operations on a receivable path (queue, subscription, dead-letter queue). */
function handleQueueManagement(
  queue: SubQueue,
  operation: string,
  body: Record<string, unknown>,
): ManagementReply {
  const sessionId = typeof body['session-id'] === 'string' ? (body['session-id'] as string) : undefined;
  switch (operation) {
    case 'com.microsoft:renew-lock': {
      const tokens = asArray(body['lock-tokens']).map(uuidBytesToString);
      const expirations: Date[] = [];
      for (const token of tokens) {
        const until = queue.renewLock(token);
        if (!until) return failure(410, LOCK_LOST_CONDITION, `The lock ${token} is lost or expired.`);
        expirations.push(until);
      }
      return ok({ expirations });
    }
    case 'com.microsoft:peek-message': {
      const from = Number(longValue(body['from-sequence-number']) ?? 0);
      const count = Math.max(0, Number(body['message-count'] ?? 1) || 0);
      const found = queue.peek(from, count, sessionId);
      if (found.length === 0) return noContent('No messages');
      return ok({
        messages: found.map((entry) => ({
          message: rheaMessage.encode(outgoingMessage(entry, entry.lock?.lockedUntil)),
        })),
      });
    }
    case 'com.microsoft:update-disposition': {
      const tokens = asArray(body['lock-tokens']).map(uuidBytesToString);
      const status = String(body['disposition-status'] ?? '');
      const properties = (body['properties-to-modify'] ?? undefined) as Record<string, unknown> | undefined;
      for (const token of tokens) {
        const result =
          status === 'completed'
            ? queue.complete(token)
            : status === 'abandoned'
              ? queue.abandon(token, properties)
              : status === 'defered'
                ? queue.defer(token, properties)
                : status === 'suspended'
                  ? queue.deadLetterByToken(
                      token,
                      body['deadletter-reason'] as string | undefined,
                      body['deadletter-description'] as string | undefined,
                      properties,
                    )
                  : undefined;
        if (!result) return failure(400, 'amqp:invalid-field', `Unknown disposition status '${status}'.`);
        if (!result.ok) return failure(410, LOCK_LOST_CONDITION, `The lock ${token} is lost or expired.`);
      }
      return ok({});
    }
    case 'com.microsoft:receive-by-sequence-number': {
      const receiveAndDelete = Number(body['receiver-settle-mode'] ?? 1) === 0;
      const messages: Array<{ message: Buffer; 'lock-token'?: unknown }> = [];
      for (const value of asArray(body['sequence-numbers'])) {
        const sequenceNumber = longValue(value);
        const entry =
          sequenceNumber === undefined ? undefined : queue.findDeferred(sequenceNumber, sessionId);
        if (!entry) {
          return failure(
            404,
            'com.microsoft:message-not-found',
            `No deferred message with sequence number ${String(sequenceNumber)}.`,
          );
        }
        const taken = queue.takeDeferred(entry, receiveAndDelete);
        if (taken === undefined) {
          return failure(
            400,
            LOCK_LOST_CONDITION,
            `Deferred message ${sequenceNumber} is locked by another receiver.`,
          );
        }
        const lock = taken === 'removed' ? undefined : taken;
        messages.push({
          message: rheaMessage.encode(outgoingMessage(entry, lock?.lockedUntil)),
          ...(lock ? { 'lock-token': wrapLockToken(lock.token) } : {}),
        });
      }
      return ok({ messages });
    }
    case 'com.microsoft:renew-session-lock':
    case 'com.microsoft:get-session-state':
    case 'com.microsoft:set-session-state':
      return handleSession(queue, operation, sessionId, body);
    case 'com.microsoft:get-message-sessions': {
      if (!queue.requiresSession) return notSessionful(queue);
      const skip = Math.max(0, Number(body['skip'] ?? 0) || 0);
      const top = Math.max(0, Number(body['top'] ?? 0) || 0);
      const ids = queue.sessionIds().slice(skip, skip + top);
      if (ids.length === 0) return noContent('No sessions');
      return ok({ skip, 'sessions-ids': types.wrap_array(ids, STRING_CODE, undefined) });
    }
    default:
      return failure(
        501,
        'amqp:not-implemented',
        `The sandbox Service Bus broker does not implement '${operation}'.`,
      );
  }
}

function notSessionful(queue: SubQueue): ManagementReply {
  return failure(
    400,
    'amqp:not-allowed',
    `'${queue.path}' does not require sessions: session operations need a session-enabled queue or subscription.`,
  );
}

/** Session operations: the session must be locked (by a session receiver) for them to apply. */
function handleSession(
  queue: SubQueue,
  operation: string,
  sessionId: string | undefined,
  body: Record<string, unknown>,
): ManagementReply {
  if (!queue.requiresSession) return notSessionful(queue);
  if (sessionId === undefined)
    return failure(400, 'com.microsoft:argument-error', `${operation} needs a session-id.`);
  if (!queue.sessionLocked(sessionId)) return failure(410, SESSION_LOCK_LOST_CONDITION, SESSION_LOCK_LOST);
  if (operation === 'com.microsoft:renew-session-lock') {
    const until = queue.renewSessionLock(sessionId);
    if (!until) return failure(410, SESSION_LOCK_LOST_CONDITION, SESSION_LOCK_LOST);
    return ok({ expiration: until });
  }
  if (operation === 'com.microsoft:get-session-state') {
    const state = queue.getSessionState(sessionId);
    return ok({ 'session-state': state === undefined ? null : types.wrap_binary(state) });
  }
  const raw = body['session-state'];
  queue.setSessionState(
    sessionId,
    raw === undefined || raw === null ? undefined : Buffer.from(raw as Uint8Array),
  );
  return ok({});
}

/** Whether a `$management` path belongs to the broker (for the reply-link bookkeeping). */
export function isManagementAddress(address: string | undefined): boolean {
  return address?.toLowerCase().endsWith('/$management') === true;
}
