import { ServiceBusError, type ServiceBusErrorCode } from '@azure/service-bus';
import type { Message } from 'rhea';
import { describe, expect, it } from 'vitest';
import { fromServiceBusError } from '../../../src/lib/azure/serviceBusErrors';
import {
  ConflictError,
  DependencyError,
  ForbiddenError,
  InProgressError,
  NotFoundError,
  TransientError,
  ValidationError,
} from '../../../src/lib/core/errors';
import {
  guardedRule,
  isGuarded,
  REPLAY_TARGET_PROPERTY,
  replayIsolation,
  replayRule,
  type SubscriptionRule,
} from '../../../src/lib/ports/messageBus';
import { evaluateSql } from '../../../src/local/sandbox/servicebus/rules';

// The replay isolation rule design (pure), checked against the broker's SQL engine, and the
// mapping of Service Bus error codes to the project's errors.

describe('replay isolation rules', () => {
  it('calls a subscription isolated only with its replay rule and every other rule guarded', () => {
    // Prepare
    const guarded: SubscriptionRule = {
      name: '$Default-guarded',
      filter: { sql: 'StampkeeperReplayTo IS NULL' },
    };

    // Act / Assess
    expect(replayIsolation([guarded, replayRule('billing')], 'billing')).toEqual({
      isolated: true,
      problems: [],
    });
    expect(
      replayIsolation([{ name: '$Default', filter: { sql: '1=1' } }, replayRule('billing')], 'billing')
        .problems,
    ).toEqual([expect.stringMatching(/^rule '\$Default' admits replays meant for other subscriptions/)]);
    expect(replayIsolation([guarded, replayRule('audit')], 'billing').problems).toEqual([
      expect.stringMatching(/rule 'stampkeeper-replay' admits replays/),
      expect.stringMatching(/no 'stampkeeper-replay' rule admits replays meant for 'billing'/),
    ]);
    expect(
      replayIsolation([{ ...guarded, action: 'SET x = 1' }, replayRule('billing')], 'billing').problems[0],
    ).toMatch(/has an action/);
    expect(
      replayIsolation([{ name: 'none', filter: { sql: '1=0' } }, replayRule('billing')], 'billing').isolated,
    ).toBe(true);
  });

  it('recognises a guard only when no OR escapes it', () => {
    // Act / Assess
    expect(isGuarded("(color = 'red') AND StampkeeperReplayTo IS NULL")).toBe(true);
    expect(isGuarded("(color = ')' OR [weird)] = 1) AND StampkeeperReplayTo IS NULL")).toBe(true);
    expect(isGuarded("(color = 'red') OR (size = 1) AND StampkeeperReplayTo IS NULL")).toBe(false);
    expect(isGuarded("color = 'red' AND StampkeeperReplayTo IS NULL")).toBe(false);
    expect(isGuarded('StampkeeperReplayTo IS NULL')).toBe(true);
  });

  it('guards a rule so that it admits the same messages as before, replays excluded (checked on the broker engine)', () => {
    // Prepare
    const correlation: SubscriptionRule = {
      name: 'x'.repeat(50),
      filter: {
        correlation: {
          correlationId: "o'brien",
          subject: 'order',
          applicationProperties: { 'odd]name': 'v', tier: 2 },
        },
      },
    };
    const sql: SubscriptionRule = { name: 'red', filter: { sql: "color = 'red' OR size > 3" } };
    const message = (props: Record<string, unknown>, extra: Partial<Message> = {}): Message => ({
      body: 'b',
      correlation_id: "o'brien",
      subject: 'order',
      application_properties: props,
      ...extra,
    });

    // Act
    const guardedCorrelation = guardedRule(correlation);
    const guardedSql = guardedRule(sql);
    const guardedTrue = guardedRule({ name: '$Default', filter: { sql: '1=1' } });
    const expression = (rule: SubscriptionRule) => (rule.filter as { sql: string }).sql;

    // Assess
    expect(guardedCorrelation.name).toHaveLength(50);
    expect(guardedCorrelation.name.endsWith('-guarded')).toBe(true);
    expect(guardedTrue).toEqual({ name: '$Default-guarded', filter: { sql: 'StampkeeperReplayTo IS NULL' } });
    expect(evaluateSql(expression(guardedCorrelation), message({ 'odd]name': 'v', tier: 2 }))).toBe(true);
    expect(evaluateSql(expression(guardedCorrelation), message({ 'odd]name': 'v', tier: 3 }))).toBe(false);
    expect(
      evaluateSql(
        expression(guardedCorrelation),
        message({ 'odd]name': 'v', tier: 2, [REPLAY_TARGET_PROPERTY]: 'x' }),
      ),
    ).toBe(false);
    expect(evaluateSql(expression(guardedSql), message({ size: 4 }))).toBe(true);
    expect(evaluateSql(expression(guardedSql), message({ size: 4, [REPLAY_TARGET_PROPERTY]: 'x' }))).toBe(
      false,
    );
    expect(isGuarded(expression(guardedSql))).toBe(true);
  });
});

describe('fromServiceBusError', () => {
  it('maps every Service Bus code to the project error a caller acts on', () => {
    // Prepare
    const cases: Array<[ServiceBusErrorCode, new (...args: never[]) => Error, boolean]> = [
      ['ServiceBusy', TransientError, true],
      ['ServiceTimeout', TransientError, true],
      ['ServiceCommunicationProblem', TransientError, true],
      ['QuotaExceeded', TransientError, true],
      ['MessagingEntityNotFound', NotFoundError, false],
      ['MessageNotFound', NotFoundError, false],
      ['MessageLockLost', ConflictError, true],
      ['SessionLockLost', ConflictError, true],
      ['SessionCannotBeLocked', InProgressError, true],
      ['MessagingEntityAlreadyExists', ConflictError, false],
      ['MessageSizeExceeded', ValidationError, false],
      ['UnauthorizedAccess', ForbiddenError, false],
      ['MessagingEntityDisabled', DependencyError, false],
    ];

    // Act / Assess
    for (const [code, type, retryable] of cases) {
      const mapped = fromServiceBusError(
        new ServiceBusError(`it failed\nsecond line`, code),
        'sending to orders',
        {
          entity: 'orders',
        },
      );
      expect(mapped, code).toBeInstanceOf(type);
      expect(mapped.retryable, code).toBe(retryable);
      expect(mapped.metadata).toMatchObject({ entity: 'orders', serviceBusCode: code });
      expect(mapped.message).not.toMatch(/second line/);
    }
  });

  it('takes a GeneralError as transient only when the SDK says it is retryable, and a socket error as transient', () => {
    // Prepare
    const retryable = new ServiceBusError('InternalServerError: boom', 'GeneralError');
    retryable.retryable = true;
    const refused = new ServiceBusError('ArgumentError: bad filter', 'GeneralError');
    refused.retryable = false;
    const socket = Object.assign(new Error('ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:5672'), {
      name: 'MessagingError',
      code: 'GeneralError',
      retryable: false,
    });

    // Act / Assess
    expect(fromServiceBusError(retryable, 'x')).toBeInstanceOf(TransientError);
    expect(fromServiceBusError(refused, 'x')).toBeInstanceOf(DependencyError);
    expect(fromServiceBusError(refused, 'x').retryable).toBe(false);
    expect(fromServiceBusError(socket, 'x')).toBeInstanceOf(TransientError);
    expect(fromServiceBusError(new TypeError('bad argument'), 'x')).toBeInstanceOf(DependencyError);
  });
});
