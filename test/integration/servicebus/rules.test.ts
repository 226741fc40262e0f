import type { Message } from 'rhea';
import { describe, expect, it } from 'vitest';
import {
  anyRuleMatches,
  compileRule,
  evaluateSql,
  RuleError,
  ruleFromConfig,
} from '../../../src/local/sandbox/servicebus/rules';

// The broker's rule engine on its own: the SQL filter subset with Service Bus's three-valued logic,
// and correlation filters (service-bus-messaging-sql-filter.md, topic-filters.md).

const order: Message = {
  body: 'order',
  message_id: 'm-1',
  correlation_id: 'c-9',
  subject: 'order.created',
  to: 'store-5',
  content_type: 'application/json',
  group_id: 'session-a',
  application_properties: {
    color: 'red',
    quantity: 12,
    priority: 2.5,
    express: true,
    'replay-to': 'billing',
    nothing: null,
  },
};

function thrown(run: () => unknown): RuleError {
  try {
    run();
  } catch (error) {
    if (error instanceof RuleError) return error;
    throw error;
  }
  throw new Error('expected a RuleError');
}

describe('sandbox Service Bus SQL filters', () => {
  it('compares user and system properties, names case-insensitive, string values case-sensitive', () => {
    // Act / Assess
    expect(evaluateSql("color = 'red'", order)).toBe(true);
    expect(evaluateSql("user.COLOR = 'red'", order)).toBe(true);
    expect(evaluateSql("color = 'RED'", order)).toBe(false);
    expect(evaluateSql("sys.Label = 'order.created'", order)).toBe(true);
    expect(evaluateSql("sys.label LIKE 'order.%'", order)).toBe(true);
    expect(evaluateSql("sys.MessageId = 'm-1' AND sys.CorrelationId = 'c-9'", order)).toBe(true);
    expect(evaluateSql("sys.SessionId = 'session-a'", order)).toBe(true);
    expect(evaluateSql("[replay-to] = 'billing'", order)).toBe(true);
    expect(evaluateSql('quantity > 10 AND priority >= 2.5 AND express = TRUE', order)).toBe(true);
    expect(evaluateSql('quantity * 2 - 4 = 20', order)).toBe(true);
    expect(evaluateSql('quantity / 5 = 2', order)).toBe(true);
    expect(evaluateSql('express', order)).toBe(true);
  });

  it('evaluates IN, NOT IN, LIKE with ESCAPE, EXISTS and IS [NOT] NULL', () => {
    // Act / Assess
    expect(evaluateSql("color IN ('blue', 'red')", order)).toBe(true);
    expect(evaluateSql("sys.To IN ('store-1', 'store-2')", order)).toBe(false);
    expect(evaluateSql("color NOT IN ('blue', 'green')", order)).toBe(true);
    expect(evaluateSql("sys.Label LIKE 'order_created'", order)).toBe(true);
    expect(evaluateSql("sys.Label NOT LIKE '%deleted'", order)).toBe(true);
    expect(evaluateSql("'50%' LIKE '50!%' ESCAPE '!'", order)).toBe(true);
    expect(evaluateSql("'500' LIKE '50!%' ESCAPE '!'", order)).toBe(false);
    expect(evaluateSql('EXISTS(color)', order)).toBe(true);
    expect(evaluateSql('EXISTS(size)', order)).toBe(false);
    expect(evaluateSql('EXISTS(nothing)', order)).toBe(true);
    expect(evaluateSql('size IS NULL AND nothing IS NULL AND color IS NOT NULL', order)).toBe(true);
    expect(evaluateSql('sys.ReplyTo IS NULL', order)).toBe(true);
  });

  it('treats a missing user property as UNKNOWN, which never matches, with the AND / OR tables of Service Bus', () => {
    // Act / Assess: UNKNOWN is not a match, and NOT UNKNOWN is still UNKNOWN.
    expect(evaluateSql("size = 'L'", order)).toBeUndefined();
    expect(evaluateSql("NOT (size = 'L')", order)).toBeUndefined();
    expect(evaluateSql("size IN ('L')", order)).toBeUndefined();
    expect(evaluateSql("size NOT IN ('L')", order)).toBeUndefined();
    // F AND U = F, T AND U = U, T OR U = T, F OR U = U
    expect(evaluateSql("color = 'blue' AND size = 'L'", order)).toBe(false);
    expect(evaluateSql("color = 'red' AND size = 'L'", order)).toBeUndefined();
    expect(evaluateSql("color = 'red' OR size = 'L'", order)).toBe(true);
    expect(evaluateSql("color = 'blue' OR size = 'L'", order)).toBeUndefined();
    // Parentheses group predicates and expressions alike.
    expect(evaluateSql("(color = 'blue' OR color = 'red') AND (quantity + 1) > 12", order)).toBe(true);
  });

  it('does not match on a type mismatch (a FilterException in Service Bus)', () => {
    // Act / Assess
    expect(evaluateSql("quantity = '12'", order)).toBeUndefined();
    expect(evaluateSql("color > 'a'", order)).toBeUndefined();
    expect(evaluateSql('quantity / 0 = 1', order)).toBeUndefined();
  });

  it('refuses bad expressions with a 400 saying where, and unemulated features with a 501', () => {
    // Act
    const syntax = thrown(() => evaluateSql("color = 'red' AND", order));
    const unterminated = thrown(() => evaluateSql("color = 'red", order));
    const unknownSystem = thrown(() => evaluateSql("sys.Colour = 'red'", order));
    const notSystem = thrown(() => evaluateSql('sys.EnqueuedTimeUtc > 1', order));
    const fn = thrown(() => evaluateSql("newid() = 'x'", order));
    const tooLong = thrown(() => evaluateSql(`color = '${'x'.repeat(1100)}'`, order));
    const isNullOfExpression = thrown(() => evaluateSql('quantity + 1 IS NULL', order));

    // Assess
    expect(syntax.status).toBe(400);
    expect(syntax.message).toMatch(/found the end of the expression at position 17/);
    expect(unterminated.status).toBe(400);
    expect(unknownSystem.status).toBe(400);
    expect(unknownSystem.message).toMatch(/sys.Colour is not a system property/);
    expect(notSystem.status).toBe(501);
    expect(fn.status).toBe(501);
    expect(tooLong.message).toMatch(/at most 1024 characters/);
    expect(isNullOfExpression.status).toBe(400);
  });
});

describe('sandbox Service Bus correlation filters and rule sets', () => {
  it('matches when every given field and property is equal (AND), strings case-sensitive', () => {
    // Prepare
    const both = compileRule('both', { kind: 'correlation', correlationId: 'c-9', label: 'order.created' });
    const wrongCase = compileRule('case', { kind: 'correlation', correlationId: 'C-9' });
    const property = compileRule('prop', {
      kind: 'correlation',
      properties: { 'replay-to': 'billing', quantity: 12 },
    });
    const typed = compileRule('typed', { kind: 'correlation', properties: { quantity: '12' } });
    const missing = compileRule('missing', { kind: 'correlation', properties: { 'replay-to': 'audit' } });

    // Act / Assess
    expect(both.matches(order)).toBe(true);
    expect(wrongCase.matches(order)).toBe(false);
    expect(property.matches(order)).toBe(true);
    expect(typed.matches(order)).toBe(false);
    expect(missing.matches(order)).toBe(false);
  });

  it('refuses an empty correlation filter and a bad rule name', () => {
    // Act / Assess
    expect(thrown(() => compileRule('empty', { kind: 'correlation' })).status).toBe(400);
    expect(thrown(() => compileRule('bad/name', { kind: 'true' })).status).toBe(400);
    expect(thrown(() => compileRule('x'.repeat(51), { kind: 'true' })).status).toBe(400);
  });

  it('admits a message when any rule matches, and none when there are no rules', () => {
    // Prepare
    const rules = [
      ruleFromConfig({ name: 'blue', sql: "color = 'blue'" }),
      ruleFromConfig({ name: 'big', sql: 'quantity >= 10' }),
    ];

    // Act / Assess
    expect(anyRuleMatches(rules, order)).toBe(true);
    expect(anyRuleMatches(rules.slice(0, 1), order)).toBe(false);
    expect(anyRuleMatches([], order)).toBe(false);
    expect(anyRuleMatches([ruleFromConfig({ name: '$Default', filter: 'true' })], order)).toBe(true);
    expect(anyRuleMatches([ruleFromConfig({ name: 'none', filter: 'false' })], order)).toBe(false);
  });
});
