import type { Message } from 'rhea';

/**
 * Subscription rules of the sandbox's Service Bus broker: SQL filters (a subset of Service Bus's
 * SQL-92 grammar), correlation filters, and the true / false filters, evaluated as Service Bus
 * does. Sources:
 * - grammar and three-valued logic: https://learn.microsoft.com/azure/service-bus-messaging/service-bus-messaging-sql-filter
 *   (`articles/service-bus-messaging/service-bus-messaging-sql-filter.md` in MicrosoftDocs/azure-docs);
 * - rule evaluation (rules OR'ed, one copy per subscription, `$Default` true filter, correlation
 *   fields AND'ed, string comparison case-sensitive): `articles/service-bus-messaging/topic-filters.md`;
 * - wire shapes of `com.microsoft:add-rule` / `enumerate-rules`: `service-bus-amqp-request-response.md`
 *   and `@azure/service-bus` 7.x `ManagementClient.addRule` / `getRules`.
 *
 * Not emulated (refused when a rule asks for them, so nothing silently behaves differently):
 * rule actions (`SET` / `REMOVE`, which make one copy per matching rule), the functions `newid()`,
 * `property()` / `p()`, and the system properties that are not strings (`sys.EnqueuedTimeUtc`,
 * `sys.TimeToLive`...).
 */

/** The name of the rule every new subscription starts with. */
export const DEFAULT_RULE_NAME = '$Default';
/** Service Bus's limit on a SQL filter's expression (quotas: "Maximum length of filter condition string"). */
export const MAX_SQL_EXPRESSION_LENGTH = 1024;
/** Service Bus's limit on rules per subscription (quotas: "Number of rules per subscription"). */
export const MAX_RULES_PER_SUBSCRIPTION = 2000;
const RULE_NAME = /^[A-Za-z0-9$_][A-Za-z0-9$._-]{0,49}$/;

/**
 * AMQP descriptor codes of the rule description (`com.microsoft:*:list`), as the SDK checks them
 * (`@azure/core-amqp` `Constants.descriptorCodes`; the request-response page of the docs drops a
 * zero from some of them).
 */
export const RULE_DESCRIPTORS = {
  ruleDescription: 0x13700000004,
  emptyRuleAction: 0x13700000005,
  sqlRuleAction: 0x13700000006,
  sqlFilter: 0x1370000006,
  trueFilter: 0x1370000007,
  falseFilter: 0x1370000008,
  correlationFilter: 0x1370000009,
} as const;

/** The fields a correlation filter may match, by their `add-rule` wire names. */
export interface CorrelationFilterFields {
  correlationId?: string;
  messageId?: string;
  to?: string;
  replyTo?: string;
  /** `Label` in Service Bus; the JS SDK calls it `subject`. */
  label?: string;
  sessionId?: string;
  replyToSessionId?: string;
  contentType?: string;
  /** Application properties that must be present with these values. */
  properties?: Record<string, string | number | boolean>;
}

export type RuleFilter =
  | { kind: 'true' }
  | { kind: 'false' }
  | { kind: 'sql'; expression: string }
  | ({ kind: 'correlation' } & CorrelationFilterFields);

/** A rule as the broker's options and scenarios write it. */
export type RuleConfig =
  | { name: string; sql: string }
  | { name: string; correlation: CorrelationFilterFields }
  | { name: string; filter: 'true' | 'false' };

/** A validated rule, its filter compiled. */
export interface Rule {
  readonly name: string;
  readonly filter: RuleFilter;
  readonly matches: (message: Message) => boolean;
}

/** Why a rule cannot be created: `status` and `condition` are what `$management` answers with. */
export class RuleError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 404 | 409 | 403 | 501,
    readonly condition: string,
  ) {
    super(message);
    this.name = 'RuleError';
  }
}

function badRequest(message: string): RuleError {
  return new RuleError(message, 400, 'com.microsoft:argument-error');
}

function notImplemented(message: string): RuleError {
  return new RuleError(
    `${message} (not emulated by the sandbox Service Bus broker)`,
    501,
    'amqp:not-implemented',
  );
}

/** Validates a rule name (1-50 characters: letters, digits, `$ . _ -`). */
export function checkRuleName(name: unknown): string {
  if (typeof name !== 'string' || !RULE_NAME.test(name)) {
    throw badRequest(
      `The rule name '${String(name)}' is not valid: 1-50 characters, letters, digits, '$', '.', '_' or '-'.`,
    );
  }
  return name;
}

/** Compiles a rule (validated: name, filter, expression); throws a `RuleError` saying what is wrong. */
export function compileRule(name: string, filter: RuleFilter): Rule {
  checkRuleName(name);
  switch (filter.kind) {
    case 'true':
      return { name, filter, matches: () => true };
    case 'false':
      return { name, filter, matches: () => false };
    case 'sql': {
      const predicate = compileSql(filter.expression);
      return { name, filter, matches: (message) => predicate(messageScope(message)) === true };
    }
    case 'correlation': {
      const fields = correlationFields(filter);
      return { name, filter, matches: (message) => correlationMatches(fields, message) };
    }
  }
}

/** A rule from the broker's options or a scenario. */
export function ruleFromConfig(config: RuleConfig): Rule {
  if ('sql' in config) return compileRule(config.name, { kind: 'sql', expression: config.sql });
  if ('correlation' in config)
    return compileRule(config.name, { kind: 'correlation', ...config.correlation });
  if ('filter' in config && (config.filter === 'true' || config.filter === 'false')) {
    return compileRule(config.name, { kind: config.filter });
  }
  throw badRequest(
    `Rule '${String((config as { name?: unknown }).name)}' needs one of sql, correlation or filter.`,
  );
}

/** True when any rule admits the message (Service Bus ORs a subscription's rules). */
export function anyRuleMatches(rules: readonly Rule[], message: Message): boolean {
  for (const rule of rules) if (rule.matches(message)) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Correlation filters

const CORRELATION_FIELDS: Array<[keyof CorrelationFilterFields, string, (m: Message) => unknown]> = [
  ['correlationId', 'correlation-id', (m) => m.correlation_id],
  ['messageId', 'message-id', (m) => m.message_id],
  ['to', 'to', (m) => m.to],
  ['replyTo', 'reply-to', (m) => m.reply_to],
  ['label', 'label', (m) => m.subject],
  ['sessionId', 'session-id', (m) => m.group_id],
  ['replyToSessionId', 'reply-to-session-id', (m) => m.reply_to_group_id],
  ['contentType', 'content-type', (m) => m.content_type],
];

interface CompiledCorrelation {
  system: Array<[(m: Message) => unknown, string]>;
  properties: Array<[string, string | number | boolean]>;
}

function correlationFields(filter: CorrelationFilterFields): CompiledCorrelation {
  const system: CompiledCorrelation['system'] = [];
  for (const [key, , read] of CORRELATION_FIELDS) {
    const value = filter[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') throw badRequest(`The correlation filter's ${key} must be a string.`);
    system.push([read, value]);
  }
  const properties: CompiledCorrelation['properties'] = [];
  for (const [key, value] of Object.entries(filter.properties ?? {})) {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw badRequest(`The correlation filter's property '${key}' must be a string, a number or a boolean.`);
    }
    properties.push([key, value]);
  }
  if (system.length === 0 && properties.length === 0) {
    throw badRequest('A correlation filter must match at least one system or application property.');
  }
  return { system, properties };
}

function correlationMatches(filter: CompiledCorrelation, message: Message): boolean {
  for (const [read, expected] of filter.system) {
    if (textOf(read(message)) !== expected) return false;
  }
  const props = (message.application_properties ?? {}) as Record<string, unknown>;
  for (const [key, expected] of filter.properties) {
    if (!Object.hasOwn(props, key) || props[key] !== expected) return false;
  }
  return true;
}

/** Reads a correlation filter from an `add-rule` request's `correlation-filter` map. */
export function correlationFromWire(map: Record<string, unknown>): CorrelationFilterFields {
  const fields: CorrelationFilterFields = {};
  for (const [key, wire] of CORRELATION_FIELDS) {
    const value = map[wire];
    if (value === undefined || value === null) continue;
    (fields as Record<string, unknown>)[key] = typeof value === 'string' ? value : textOf(value);
  }
  const properties = map['properties'];
  if (properties !== undefined && properties !== null) {
    if (typeof properties !== 'object' || Array.isArray(properties)) {
      throw badRequest("The correlation filter's properties must be a map.");
    }
    fields.properties = properties as Record<string, string | number | boolean>;
  }
  return fields;
}

/** The wire value of a correlation filter, in the order `enumerate-rules` lists its fields. */
export function correlationToWire(filter: CorrelationFilterFields): unknown[] {
  return [
    filter.correlationId,
    filter.messageId,
    filter.to,
    filter.replyTo,
    filter.label,
    filter.sessionId,
    filter.replyToSessionId,
    filter.contentType,
    filter.properties ?? {},
  ];
}

// ---------------------------------------------------------------------------------------------
// SQL filters: tokenizer, parser, evaluator

/** The system properties a SQL filter may name (`sys.<name>`, case-insensitive), read from the AMQP message. */
const SYSTEM_PROPERTIES: Record<string, (m: Message) => unknown> = {
  messageid: (m) => m.message_id,
  correlationid: (m) => m.correlation_id,
  to: (m) => m.to,
  replyto: (m) => m.reply_to,
  label: (m) => m.subject,
  sessionid: (m) => m.group_id,
  replytosessionid: (m) => m.reply_to_group_id,
  contenttype: (m) => m.content_type,
  partitionkey: (m) =>
    (m.message_annotations as Record<string, unknown> | undefined)?.['x-opt-partition-key'],
};
/** System properties of a BrokeredMessage that exist but are not emulated (not strings). */
const UNEMULATED_SYSTEM_PROPERTIES = new Set([
  'enqueuedtimeutc',
  'scheduledenqueuetimeutc',
  'sequencenumber',
  'enqueuedsequencenumber',
  'timetolive',
  'deliverycount',
  'size',
  'expiresatutc',
  'lockeduntilutc',
  'locktoken',
  'deadlettersource',
  'viapartitionkey',
  'state',
]);

type TokenKind = 'ident' | 'string' | 'number' | 'op' | 'eof';
interface Token {
  kind: TokenKind;
  /** Identifier text (delimiters removed), string contents, number text, or operator. */
  text: string;
  /** A regular identifier (may be a keyword); delimited and quoted ones never are. */
  regular?: boolean;
  at: number;
}

const KEYWORDS = new Set([
  'and',
  'or',
  'not',
  'is',
  'null',
  'in',
  'like',
  'escape',
  'exists',
  'true',
  'false',
]);

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const isLetter = (c: string) => /\p{L}/u.test(c);
  const isDigit = (c: string) => /\p{Nd}/u.test(c);
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i += 1;
      continue;
    }
    const at = i;
    if (c === "'") {
      let value = '';
      i += 1;
      for (;;) {
        if (i >= text.length) throw badRequest(`Unterminated string constant at position ${at}.`);
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        value += text[i];
        i += 1;
      }
      tokens.push({ kind: 'string', text: value, at });
      continue;
    }
    if (c === '[' || c === '"') {
      const close = c === '[' ? ']' : '"';
      let value = '';
      i += 1;
      for (;;) {
        if (i >= text.length) throw badRequest(`Unterminated identifier at position ${at}.`);
        if (text[i] === close) {
          if (text[i + 1] === close) {
            value += close;
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        value += text[i];
        i += 1;
      }
      if (value === '') throw badRequest(`Empty identifier at position ${at}.`);
      tokens.push({ kind: 'ident', text: value, at });
      continue;
    }
    if (isDigit(c) || (c === '.' && i + 1 < text.length && isDigit(text[i + 1]!))) {
      const match = /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(text.slice(i));
      if (!match) throw badRequest(`Bad number at position ${at}.`);
      tokens.push({ kind: 'number', text: match[0], at });
      i += match[0].length;
      continue;
    }
    if (isLetter(c)) {
      let j = i + 1;
      while (j < text.length && (isLetter(text[j]!) || isDigit(text[j]!) || text[j] === '_')) j += 1;
      tokens.push({ kind: 'ident', text: text.slice(i, j), regular: true, at });
      i = j;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (two === '<>' || two === '!=' || two === '>=' || two === '<=') {
      tokens.push({ kind: 'op', text: two, at });
      i += 2;
      continue;
    }
    if ('=<>+-*/%(),.'.includes(c)) {
      tokens.push({ kind: 'op', text: c, at });
      i += 1;
      continue;
    }
    throw badRequest(`Unexpected character '${c}' at position ${at}.`);
  }
  tokens.push({ kind: 'eof', text: '', at: text.length });
  return tokens;
}

/** SQL's three-valued logic: `undefined` stands for UNKNOWN. */
type Truth = boolean | undefined;
/** A value during evaluation; `undefined` is UNKNOWN (a missing user property), `null` a null value. */
type Value = string | number | boolean | null | undefined;

interface Scope {
  system(name: string): unknown;
  /** Whether the user property exists (present, even with a null value). */
  hasUser(name: string): boolean;
  user(name: string): unknown;
}

/** Raised while evaluating (a type mismatch): the rule then does not match, as a FilterException would. */
class EvaluationError extends Error {}

type Expr = (scope: Scope) => Value;
type Predicate = (scope: Scope) => Truth;
interface PropertyRef {
  scope: 'sys' | 'user';
  name: string;
}

class Parser {
  private index = 0;
  constructor(private readonly tokens: Token[]) {}

  private get current(): Token {
    return this.tokens[this.index]!;
  }

  private keyword(word: string): boolean {
    const token = this.current;
    return token.kind === 'ident' && token.regular === true && token.text.toLowerCase() === word;
  }

  private acceptKeyword(word: string): boolean {
    if (!this.keyword(word)) return false;
    this.index += 1;
    return true;
  }

  private expectKeyword(word: string): void {
    if (!this.acceptKeyword(word)) throw this.unexpected(`expected ${word.toUpperCase()}`);
  }

  private op(text: string): boolean {
    return this.current.kind === 'op' && this.current.text === text;
  }

  private acceptOp(text: string): boolean {
    if (!this.op(text)) return false;
    this.index += 1;
    return true;
  }

  private expectOp(text: string): void {
    if (!this.acceptOp(text)) throw this.unexpected(`expected '${text}'`);
  }

  private unexpected(what: string): RuleError {
    const token = this.current;
    const found = token.kind === 'eof' ? 'the end of the expression' : `'${token.text}'`;
    return badRequest(`SQL filter: ${what}, found ${found} at position ${token.at}.`);
  }

  parse(): Predicate {
    const predicate = this.or();
    if (this.current.kind !== 'eof') throw this.unexpected('expected the end of the expression');
    return predicate;
  }

  private or(): Predicate {
    let left = this.and();
    while (this.acceptKeyword('or')) {
      const a = left;
      const b = this.and();
      left = (s) => {
        const x = a(s);
        if (x === true) return true;
        const y = b(s);
        if (y === true) return true;
        return x === false && y === false ? false : undefined;
      };
    }
    return left;
  }

  private and(): Predicate {
    let left = this.not();
    while (this.acceptKeyword('and')) {
      const a = left;
      const b = this.not();
      left = (s) => {
        const x = a(s);
        if (x === false) return false;
        const y = b(s);
        if (y === false) return false;
        return x === true && y === true ? true : undefined;
      };
    }
    return left;
  }

  private not(): Predicate {
    if (this.acceptKeyword('not')) {
      const inner = this.not();
      return (s) => {
        const v = inner(s);
        return v === undefined ? undefined : !v;
      };
    }
    return this.primaryPredicate();
  }

  private primaryPredicate(): Predicate {
    if (this.acceptKeyword('exists')) {
      this.expectOp('(');
      const property = this.property();
      this.expectOp(')');
      return (s) =>
        property.scope === 'sys' ? s.system(property.name) !== undefined : s.hasUser(property.name);
    }
    // A parenthesis opens either a predicate or an expression: try the predicate first.
    if (this.op('(')) {
      const saved = this.index;
      this.index += 1;
      try {
        const inner = this.or();
        this.expectOp(')');
        if (!this.startsComparison()) return inner;
      } catch (error) {
        if (!(error instanceof RuleError)) throw error;
      }
      this.index = saved;
    }
    const startIndex = this.index;
    const left = this.expression();
    if (this.acceptKeyword('is')) {
      const negate = this.acceptKeyword('not');
      this.expectKeyword('null');
      if (!this.isBareProperty(startIndex, this.index - 2 - (negate ? 1 : 0))) {
        throw badRequest('SQL filter: IS [NOT] NULL applies to a property only.');
      }
      return (s) => {
        const v = left(s);
        const isNull = v === undefined || v === null;
        return negate ? !isNull : isNull;
      };
    }
    const negate = this.acceptKeyword('not');
    if (this.acceptKeyword('in')) {
      this.expectOp('(');
      const items: Expr[] = [this.expression()];
      while (this.acceptOp(',')) items.push(this.expression());
      this.expectOp(')');
      return (s) => {
        const v = left(s);
        if (v === undefined || v === null) return undefined;
        let found = false;
        for (const item of items) {
          if (equalValues(v, item(s)) === true) {
            found = true;
            break;
          }
        }
        return negate ? !found : found;
      };
    }
    if (this.acceptKeyword('like')) {
      const pattern = this.expression();
      const escapeExpr = this.acceptKeyword('escape') ? this.expression() : undefined;
      return (s) => {
        const v = left(s);
        const p = pattern(s);
        const e = escapeExpr ? escapeExpr(s) : undefined;
        if (v === undefined || v === null || p === undefined || p === null) return undefined;
        if (escapeExpr && (e === undefined || e === null)) return undefined;
        if (typeof v !== 'string' || typeof p !== 'string') throw new EvaluationError('LIKE needs strings');
        if (e !== undefined && (typeof e !== 'string' || e.length !== 1)) {
          throw new EvaluationError('ESCAPE needs one character');
        }
        const matched = likeToRegExp(p, e as string | undefined).test(v);
        return negate ? !matched : matched;
      };
    }
    if (negate) throw this.unexpected('expected IN or LIKE after NOT');
    const comparison = this.current;
    if (comparison.kind === 'op' && ['=', '<>', '!=', '>', '>=', '<', '<='].includes(comparison.text)) {
      this.index += 1;
      const right = this.expression();
      const op = comparison.text;
      return (s) => compare(op, left(s), right(s));
    }
    // A bare expression is a predicate only when it is a boolean (TRUE, FALSE, a boolean property).
    return (s) => {
      const v = left(s);
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'boolean') throw new EvaluationError('not a boolean');
      return v;
    };
  }

  private startsComparison(): boolean {
    const token = this.current;
    if (token.kind === 'op')
      return ['=', '<>', '!=', '>', '>=', '<', '<=', '+', '-', '*', '/', '%'].includes(token.text);
    return this.keyword('is') || this.keyword('in') || this.keyword('like') || this.keyword('not');
  }

  /** Whether tokens [start, end) are exactly one property reference (`name`, `[name]`, `scope.name`). */
  private isBareProperty(start: number, end: number): boolean {
    const first = this.tokens[start];
    if (first?.kind !== 'ident' || (first.regular && KEYWORDS.has(first.text.toLowerCase()))) return false;
    if (end - start === 1) return true;
    const dot = this.tokens[start + 1];
    return (
      end - start === 3 && dot?.kind === 'op' && dot.text === '.' && this.tokens[start + 2]?.kind === 'ident'
    );
  }

  private expression(): Expr {
    let left = this.term();
    for (;;) {
      const token = this.current;
      if (token.kind === 'op' && (token.text === '+' || token.text === '-')) {
        this.index += 1;
        const a = left;
        const b = this.term();
        const op = token.text;
        left = (s) => arithmetic(op, a(s), b(s));
        continue;
      }
      return left;
    }
  }

  private term(): Expr {
    let left = this.unary();
    for (;;) {
      const token = this.current;
      if (token.kind === 'op' && (token.text === '*' || token.text === '/' || token.text === '%')) {
        this.index += 1;
        const a = left;
        const b = this.unary();
        const op = token.text;
        left = (s) => arithmetic(op, a(s), b(s));
        continue;
      }
      return left;
    }
  }

  private unary(): Expr {
    if (this.acceptOp('-')) {
      const inner = this.unary();
      return (s) => {
        const v = inner(s);
        if (v === undefined || v === null) return v;
        if (typeof v !== 'number') throw new EvaluationError('unary minus needs a number');
        return -v;
      };
    }
    if (this.acceptOp('+')) {
      const inner = this.unary();
      return (s) => {
        const v = inner(s);
        if (v !== undefined && v !== null && typeof v !== 'number')
          throw new EvaluationError('unary plus needs a number');
        return v;
      };
    }
    return this.primary();
  }

  private primary(): Expr {
    const token = this.current;
    if (this.acceptOp('(')) {
      const inner = this.expression();
      this.expectOp(')');
      return inner;
    }
    if (token.kind === 'string') {
      this.index += 1;
      const value = token.text;
      return () => value;
    }
    if (token.kind === 'number') {
      this.index += 1;
      const value = Number(token.text);
      if (!Number.isFinite(value)) throw badRequest(`SQL filter: the number ${token.text} is out of range.`);
      if (/^\d+$/.test(token.text) && !Number.isSafeInteger(value)) {
        throw badRequest(`SQL filter: the integer ${token.text} is out of the emulated range.`);
      }
      return () => value;
    }
    if (token.kind === 'ident') {
      const lower = token.text.toLowerCase();
      if (token.regular && KEYWORDS.has(lower)) {
        if (lower === 'true' || lower === 'false') {
          this.index += 1;
          const value = lower === 'true';
          return () => value;
        }
        if (lower === 'null') {
          this.index += 1;
          return () => null;
        }
        throw this.unexpected('expected an expression');
      }
      const next = this.tokens[this.index + 1];
      if (token.regular && next?.kind === 'op' && next.text === '(') {
        throw notImplemented(`SQL filter: the function ${token.text}()`);
      }
      const property = this.property();
      if (property.scope === 'sys') {
        return (s) => systemValue(s.system(property.name));
      }
      return (s) => userValue(s, property.name);
    }
    throw this.unexpected('expected an expression');
  }

  private property(): PropertyRef {
    const first = this.current;
    if (first.kind !== 'ident' || (first.regular && KEYWORDS.has(first.text.toLowerCase()))) {
      throw this.unexpected('expected a property name');
    }
    this.index += 1;
    if (!this.acceptOp('.')) return { scope: 'user', name: first.text };
    const scope = first.text.toLowerCase();
    if (scope !== 'sys' && scope !== 'user') {
      throw badRequest(`SQL filter: '${first.text}' is not a property scope (sys or user).`);
    }
    const name = this.current;
    if (name.kind !== 'ident') throw this.unexpected('expected a property name');
    this.index += 1;
    if (scope === 'sys') {
      const lower = name.text.toLowerCase();
      if (UNEMULATED_SYSTEM_PROPERTIES.has(lower))
        throw notImplemented(`SQL filter: the system property sys.${name.text}`);
      if (!(lower in SYSTEM_PROPERTIES)) {
        throw badRequest(`SQL filter: sys.${name.text} is not a system property of a Service Bus message.`);
      }
    }
    return { scope: scope as 'sys' | 'user', name: name.text };
  }
}

function systemValue(raw: unknown): Value {
  if (raw === undefined || raw === null) return null;
  return textOf(raw) ?? null;
}

function userValue(scope: Scope, name: string): Value {
  if (!scope.hasUser(name)) return undefined;
  const raw = scope.user(name);
  if (raw === null || raw === undefined) return null;
  if (typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean') return raw;
  // Dates, byte arrays, lists: comparing them is beyond the emulated subset.
  throw new EvaluationError(`property ${name} has a type the sandbox does not compare`);
}

function equalValues(a: Value, b: Value): Truth {
  if (a === undefined || b === undefined || a === null || b === null) return undefined;
  if (typeof a !== typeof b) throw new EvaluationError('type mismatch');
  return a === b;
}

function compare(op: string, a: Value, b: Value): Truth {
  if (a === undefined || b === undefined || a === null || b === null) return undefined;
  if (op === '=' || op === '<>' || op === '!=') {
    const equal = equalValues(a, b);
    return op === '=' ? equal : !equal;
  }
  // Ordering follows C#: numbers only (no ordering operator on strings or booleans).
  if (typeof a !== 'number' || typeof b !== 'number') throw new EvaluationError('ordering needs numbers');
  switch (op) {
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '<':
      return a < b;
    default:
      return a <= b;
  }
}

function arithmetic(op: string, a: Value, b: Value): Value {
  if (a === undefined || b === undefined) return undefined;
  if (a === null || b === null) return null;
  if (op === '+' && typeof a === 'string' && typeof b === 'string') return a + b;
  if (typeof a !== 'number' || typeof b !== 'number') throw new EvaluationError('arithmetic needs numbers');
  const integers = Number.isInteger(a) && Number.isInteger(b);
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      if (integers) {
        if (b === 0) throw new EvaluationError('division by zero');
        return Math.trunc(a / b);
      }
      return a / b;
    default:
      if (integers && b === 0) throw new EvaluationError('division by zero');
      return a % b;
  }
}

function likeToRegExp(pattern: string, escapeChar: string | undefined): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (escapeChar !== undefined && c === escapeChar && i + 1 < pattern.length) {
      source += pattern[i + 1]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      i += 1;
    } else if (c === '%') source += '[\\s\\S]*';
    else if (c === '_') source += '[\\s\\S]';
    else source += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'u');
}

/** Compiles a SQL filter expression; a syntax error throws a `RuleError` (400) saying where. */
export function compileSql(expression: string): Predicate {
  if (typeof expression !== 'string' || expression.trim() === '') {
    throw badRequest('A SQL filter needs a non-empty expression.');
  }
  if (expression.length > MAX_SQL_EXPRESSION_LENGTH) {
    throw badRequest(
      `A SQL filter expression may have at most ${MAX_SQL_EXPRESSION_LENGTH} characters (got ${expression.length}).`,
    );
  }
  const predicate = new Parser(tokenize(expression)).parse();
  return (scope) => {
    try {
      return predicate(scope);
    } catch (error) {
      if (error instanceof EvaluationError) return undefined;
      throw error;
    }
  };
}

/** Evaluates a SQL filter against a message (for tests and tools): true, false, or undefined (UNKNOWN or an evaluation error). */
export function evaluateSql(expression: string, message: Message): boolean | undefined {
  return compileSql(expression)(messageScope(message));
}

function messageScope(message: Message): Scope {
  const props = (message.application_properties ?? {}) as Record<string, unknown>;
  // Property names are case-insensitive in SQL filters.
  let lowered: Map<string, string> | undefined;
  const key = (name: string): string | undefined => {
    if (Object.hasOwn(props, name)) return name;
    if (!lowered) {
      lowered = new Map();
      for (const k of Object.keys(props)) if (!lowered.has(k.toLowerCase())) lowered.set(k.toLowerCase(), k);
    }
    return lowered.get(name.toLowerCase());
  };
  return {
    system: (name) => SYSTEM_PROPERTIES[name.toLowerCase()]?.(message),
    hasUser: (name) => key(name) !== undefined,
    user: (name) => {
      const k = key(name);
      return k === undefined ? undefined : props[k];
    },
  };
}

/** A system property as text (message ids may travel as uuids, numbers or byte arrays). */
function textOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  if (Buffer.isBuffer(value) && value.length === 16) {
    const hex = value.toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  if (Buffer.isBuffer(value)) return value.toString('hex');
  return String(value);
}
