import type { BrokerEntityConfig, BrokerSubscriptionConfig, BrokerTier } from './namespace';
import { Namespace } from './namespace';
import type { RuleConfig } from './rules';
import { createBrokerTime } from './time';

/**
 * The `serviceBus` section of a sandbox scenario: the broker's tier and entities (the very
 * options of `startServiceBusBroker`) and the simulated consumers that work its queues and
 * subscriptions. Validation collects every problem with its path (`serviceBus.consumers[0].fail[1].share`).
 *
 * ```yaml
 * serviceBus:
 *   tier: standard
 *   entities:
 *     - name: orders
 *       maxDeliveryCount: 3
 *       requiresDuplicateDetection: true
 *     - name: events
 *       type: topic
 *       subscriptions:
 *         - name: billing
 *           rules:
 *             - { name: $Default, sql: "StampkeeperReplayTo IS NULL" }
 *             - { name: stampkeeper-replay, correlation: { properties: { StampkeeperReplayTo: billing } } }
 *   consumers:
 *     - name: orders-worker
 *       entity: orders
 *       fail:
 *         - { property: valid, equals: false }
 * ```
 */

/** When a simulated consumer fails a message; the first rule that matches decides. */
export type ConsumerFailRule = (
  | { property: string; equals: string | number | boolean }
  | { property: string; exists: boolean }
  | { bodyContains: string }
  | { share: number }
) & {
  /** What a failure does: `abandon` (the broker dead-letters at max delivery count) or `deadLetter` now. */
  action?: 'abandon' | 'deadLetter';
  deadLetterReason?: string;
  deadLetterErrorDescription?: string;
};

export interface ConsumerConfig {
  name: string;
  /** A queue or `topic/Subscriptions/name` of the scenario. */
  entity: string;
  fail: ConsumerFailRule[];
  /** Messages it works on at once (default 1). */
  maxConcurrent: number;
}

/** A message the broker is sent when it starts (the workload's traffic of the story). */
export interface ScenarioMessage {
  /** A queue or topic of the scenario. */
  entity: string;
  messageId: string;
  /** Text as is; a mapping or list as JSON. */
  body: string | Record<string, unknown> | unknown[];
  contentType?: string;
  subject?: string;
  correlationId?: string;
  sessionId?: string;
  properties?: Record<string, string | number | boolean>;
}

export interface ResolvedServiceBusScenario {
  tier: BrokerTier;
  entities: BrokerEntityConfig[];
  consumers: ConsumerConfig[];
  /** Sent in order once the broker and its consumers run (absent: none). */
  messages?: ScenarioMessage[];
}

const ENTITY_KEYS = [
  'name',
  'type',
  'subscriptions',
  'maxDeliveryCount',
  'lockDurationMs',
  'requiresSession',
  'deadLetteringOnMessageExpiration',
  'defaultMessageTimeToLiveMs',
  'requiresDuplicateDetection',
  'duplicateDetectionHistoryTimeWindowMs',
  'maxMessageSizeInKilobytes',
];
const SUBSCRIPTION_KEYS = [
  'name',
  'maxDeliveryCount',
  'lockDurationMs',
  'requiresSession',
  'deadLetteringOnMessageExpiration',
  'defaultMessageTimeToLiveMs',
  'rules',
];
const CORRELATION_KEYS = [
  'correlationId',
  'messageId',
  'to',
  'replyTo',
  'label',
  'sessionId',
  'replyToSessionId',
  'contentType',
  'properties',
];
const MAX_ENTITIES = 100;
const MAX_MESSAGES = 1000;
const MESSAGE_KEYS = [
  'entity',
  'messageId',
  'body',
  'contentType',
  'subject',
  'correlationId',
  'sessionId',
  'properties',
];
const MAX_CONSUMERS = 50;
const MAX_FAIL_RULES = 20;
const MAX_TEXT = 1024;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unknownKeys(
  obj: Record<string, unknown>,
  allowed: string[],
  path: string,
  problems: string[],
): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key))
      problems.push(`${path}.${key}: unknown key (expected one of ${allowed.join(', ')})`);
  }
}

function list(value: unknown, path: string, max: number, problems: string[]): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problems.push(`${path}: must be a list`);
    return [];
  }
  if (value.length > max) {
    problems.push(`${path}: at most ${max} items (got ${value.length})`);
    return [];
  }
  return value;
}

function text(value: unknown, path: string, problems: string[]): string | undefined {
  if (typeof value !== 'string' || value === '' || value.length > MAX_TEXT) {
    problems.push(`${path}: must be a non-empty string of at most ${MAX_TEXT} characters`);
    return undefined;
  }
  return value;
}

/**
 * Validates the `serviceBus` section of a scenario, pushing each problem (with its path) to
 * `problems`. Undefined when the section is absent. The entities are checked as the broker
 * checks them, so a scenario that validates starts.
 */
export function resolveServiceBusSection(
  input: unknown,
  problems: string[],
): ResolvedServiceBusScenario | undefined {
  if (input === undefined || input === null) return undefined;
  const before = problems.length;
  if (!isObject(input)) {
    problems.push('serviceBus: must be a mapping');
    return undefined;
  }
  unknownKeys(input, ['tier', 'entities', 'consumers', 'messages'], 'serviceBus', problems);
  const tier = input.tier ?? 'standard';
  if (tier !== 'standard' && tier !== 'premium')
    problems.push("serviceBus.tier: must be 'standard' or 'premium'");

  const entities: BrokerEntityConfig[] = [];
  list(input.entities, 'serviceBus.entities', MAX_ENTITIES, problems).forEach((raw, i) => {
    const path = `serviceBus.entities[${i}]`;
    if (!isObject(raw)) {
      problems.push(`${path}: must be a mapping`);
      return;
    }
    unknownKeys(raw, ENTITY_KEYS, path, problems);
    const subscriptions = list(raw.subscriptions, `${path}.subscriptions`, MAX_ENTITIES, problems).map(
      (sub, j): string | BrokerSubscriptionConfig => {
        const subPath = `${path}.subscriptions[${j}]`;
        if (typeof sub === 'string') return sub;
        if (!isObject(sub)) {
          problems.push(`${subPath}: must be a name or a mapping`);
          return '';
        }
        unknownKeys(sub, SUBSCRIPTION_KEYS, subPath, problems);
        const rules = list(sub.rules, `${subPath}.rules`, 2000, problems).map((rule, k) =>
          ruleConfig(rule, `${subPath}.rules[${k}]`, problems),
        );
        return {
          ...(sub as unknown as BrokerSubscriptionConfig),
          ...(sub.rules === undefined ? {} : { rules }),
        };
      },
    );
    entities.push({
      ...(raw as unknown as BrokerEntityConfig),
      ...(raw.subscriptions === undefined ? {} : { subscriptions }),
    });
  });
  if (entities.length === 0 && input.entities !== undefined)
    problems.push('serviceBus.entities: list at least one queue or topic');

  // The broker's own checks (names, bounds, tiers, rules), so the scenario cannot disagree with it.
  let paths: Set<string> | undefined;
  if (problems.length === before && entities.length > 0) {
    try {
      const namespace = new Namespace(entities, { tier: tier as BrokerTier, time: createBrokerTime() });
      paths = new Set([...namespace.paths.keys()].filter((p) => !Namespace.isDeadLetterPath(p)));
      namespace.dispose();
    } catch (error) {
      problems.push(
        `serviceBus.entities: ${(error as Error).message.replace(/^startServiceBusBroker: /, '')}`,
      );
    }
  }

  const consumers: ConsumerConfig[] = [];
  const names = new Set<string>();
  list(input.consumers, 'serviceBus.consumers', MAX_CONSUMERS, problems).forEach((raw, i) => {
    const path = `serviceBus.consumers[${i}]`;
    if (!isObject(raw)) {
      problems.push(`${path}: must be a mapping`);
      return;
    }
    unknownKeys(raw, ['name', 'entity', 'fail', 'maxConcurrent'], path, problems);
    const name = text(raw.name, `${path}.name`, problems);
    if (name !== undefined) {
      if (names.has(name)) problems.push(`${path}.name: duplicate consumer '${name}'`);
      names.add(name);
    }
    const entity = text(raw.entity, `${path}.entity`, problems);
    if (entity !== undefined && paths && !paths.has(entity.toLowerCase())) {
      problems.push(
        `${path}.entity: '${entity}' is not a queue or subscription of this scenario (write a subscription as topic/Subscriptions/name)`,
      );
    }
    const maxConcurrent = raw.maxConcurrent ?? 1;
    if (
      typeof maxConcurrent !== 'number' ||
      !Number.isInteger(maxConcurrent) ||
      maxConcurrent < 1 ||
      maxConcurrent > 100
    ) {
      problems.push(`${path}.maxConcurrent: must be an integer from 1 to 100`);
    }
    const fail = list(raw.fail, `${path}.fail`, MAX_FAIL_RULES, problems).map((rule, k) =>
      failRule(rule, `${path}.fail[${k}]`, problems),
    );
    if (name !== undefined && entity !== undefined) {
      consumers.push({
        name,
        entity,
        fail: fail.filter((r): r is ConsumerFailRule => r !== undefined),
        maxConcurrent: maxConcurrent as number,
      });
    }
  });
  const messages = resolveMessages(input.messages, entities, problems);
  if (problems.length > before) return undefined;
  return { tier: tier as BrokerTier, entities, consumers, ...(messages.length > 0 ? { messages } : {}) };
}

/** `serviceBus.messages`: each to a queue or topic of the scenario, with a unique id. */
function resolveMessages(
  input: unknown,
  entities: BrokerEntityConfig[],
  problems: string[],
): ScenarioMessage[] {
  const out: ScenarioMessage[] = [];
  const sendable = new Set(entities.map((e) => e.name.toLowerCase()));
  const ids = new Set<string>();
  list(input, 'serviceBus.messages', MAX_MESSAGES, problems).forEach((raw, i) => {
    const path = `serviceBus.messages[${i}]`;
    if (!isObject(raw)) {
      problems.push(`${path}: must be a mapping`);
      return;
    }
    unknownKeys(raw, MESSAGE_KEYS, path, problems);
    const entity = text(raw.entity, `${path}.entity`, problems);
    if (entity !== undefined && !sendable.has(entity.toLowerCase()))
      problems.push(`${path}.entity: '${entity}' is not a queue or topic of this scenario`);
    const messageId =
      raw.messageId === undefined ? `seed-${i + 1}` : text(raw.messageId, `${path}.messageId`, problems);
    if (messageId !== undefined && messageId.length > 128)
      problems.push(`${path}.messageId: at most 128 characters`);
    if (messageId !== undefined && ids.has(messageId))
      problems.push(`${path}.messageId: duplicate '${messageId}'`);
    if (messageId !== undefined) ids.add(messageId);
    const body = raw.body;
    if (typeof body !== 'string' && !isObject(body) && !Array.isArray(body))
      problems.push(`${path}.body: must be text, a mapping or a list`);
    for (const key of ['contentType', 'subject', 'correlationId', 'sessionId'] as const) {
      if (raw[key] !== undefined) text(raw[key], `${path}.${key}`, problems);
    }
    if (raw.properties !== undefined) {
      if (!isObject(raw.properties)) problems.push(`${path}.properties: must be a mapping`);
      else
        for (const [key, value] of Object.entries(raw.properties)) {
          if (!['string', 'number', 'boolean'].includes(typeof value))
            problems.push(`${path}.properties.${key}: must be a string, a number or a boolean`);
        }
    }
    if (entity !== undefined && messageId !== undefined) {
      out.push({ ...(raw as unknown as ScenarioMessage), entity, messageId });
    }
  });
  return out;
}

function ruleConfig(raw: unknown, path: string, problems: string[]): RuleConfig {
  if (!isObject(raw)) {
    problems.push(`${path}: must be a mapping with name and one of sql, correlation, filter`);
    return { name: '', filter: 'false' };
  }
  unknownKeys(raw, ['name', 'sql', 'correlation', 'filter'], path, problems);
  const kinds = ['sql', 'correlation', 'filter'].filter((key) => raw[key] !== undefined);
  if (kinds.length !== 1) problems.push(`${path}: give exactly one of sql, correlation, filter`);
  if (isObject(raw.correlation))
    unknownKeys(raw.correlation, CORRELATION_KEYS, `${path}.correlation`, problems);
  if (raw.filter !== undefined && raw.filter !== 'true' && raw.filter !== 'false') {
    problems.push(`${path}.filter: must be 'true' or 'false'`);
  }
  return raw as unknown as RuleConfig;
}

function failRule(raw: unknown, path: string, problems: string[]): ConsumerFailRule | undefined {
  if (!isObject(raw)) {
    problems.push(`${path}: must be a mapping`);
    return undefined;
  }
  unknownKeys(
    raw,
    [
      'property',
      'equals',
      'exists',
      'bodyContains',
      'share',
      'action',
      'deadLetterReason',
      'deadLetterErrorDescription',
    ],
    path,
    problems,
  );
  const kinds = ['property', 'bodyContains', 'share'].filter((key) => raw[key] !== undefined);
  if (kinds.length !== 1) {
    problems.push(`${path}: give exactly one of property (with equals or exists), bodyContains, share`);
    return undefined;
  }
  const action = raw.action ?? 'abandon';
  if (action !== 'abandon' && action !== 'deadLetter')
    problems.push(`${path}.action: must be abandon or deadLetter`);
  if (
    action !== 'deadLetter' &&
    (raw.deadLetterReason !== undefined || raw.deadLetterErrorDescription !== undefined)
  ) {
    problems.push(`${path}: deadLetterReason and deadLetterErrorDescription go with action: deadLetter`);
  }
  for (const key of ['deadLetterReason', 'deadLetterErrorDescription'] as const) {
    if (raw[key] !== undefined) text(raw[key], `${path}.${key}`, problems);
  }
  const common = {
    action: action as 'abandon' | 'deadLetter',
    ...(typeof raw.deadLetterReason === 'string' ? { deadLetterReason: raw.deadLetterReason } : {}),
    ...(typeof raw.deadLetterErrorDescription === 'string'
      ? { deadLetterErrorDescription: raw.deadLetterErrorDescription }
      : {}),
  };
  if (raw.property !== undefined) {
    const property = text(raw.property, `${path}.property`, problems);
    const hasEquals = raw.equals !== undefined;
    const hasExists = raw.exists !== undefined;
    if (hasEquals === hasExists) {
      problems.push(`${path}: a property rule takes either equals or exists`);
      return undefined;
    }
    if (hasEquals && !['string', 'number', 'boolean'].includes(typeof raw.equals)) {
      problems.push(`${path}.equals: must be a string, a number or a boolean`);
      return undefined;
    }
    if (hasExists && typeof raw.exists !== 'boolean') {
      problems.push(`${path}.exists: must be true or false`);
      return undefined;
    }
    if (property === undefined) return undefined;
    return hasEquals
      ? { property, equals: raw.equals as string | number | boolean, ...common }
      : { property, exists: raw.exists as boolean, ...common };
  }
  if (raw.equals !== undefined || raw.exists !== undefined)
    problems.push(`${path}: equals and exists go with property`);
  if (raw.bodyContains !== undefined) {
    const contains = text(raw.bodyContains, `${path}.bodyContains`, problems);
    return contains === undefined ? undefined : { bodyContains: contains, ...common };
  }
  const share = raw.share;
  if (typeof share !== 'number' || !Number.isFinite(share) || share < 0 || share > 1) {
    problems.push(`${path}.share: must be a number from 0 to 1`);
    return undefined;
  }
  return { share, ...common };
}
