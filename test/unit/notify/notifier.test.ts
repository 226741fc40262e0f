import { afterEach, describe, expect, it } from 'vitest';
import { TransientError, ValidationError } from '../../../src/lib/core/errors';
import { createLogger } from '../../../src/lib/core/logging';
import { clearRegisteredSecrets, registerSecret } from '../../../src/lib/core/redact';
import { toCloudEvent, toTeamsMessage } from '../../../src/lib/notify/format';
import { createNotifier } from '../../../src/lib/notify/notifier';
import type { Notification, NotificationChannel } from '../../../src/lib/ports/notifier';

const notification: Notification = {
  id: 'n-1',
  type: 'com.stampkeeper.secret.nearExpiry',
  subject: 'vaults/kv/secrets/s',
  severity: 'warning',
  title: 'Secret near expiry: s in kv',
  summary: 'expires soon',
  facts: { Vault: 'kv', Secret: 's' },
  correlationId: 'c-1',
  time: new Date('2026-01-01T00:00:00Z'),
  data: { secretName: 's' },
};

class ListChannel implements NotificationChannel {
  readonly kind = 'test';
  readonly got: Notification[] = [];
  constructor(
    readonly name: string,
    private readonly failWith?: Error,
  ) {}
  async send(n: Notification): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.got.push(n);
  }
}

describe('createNotifier', () => {
  it('sends to the named channels, filters by severity, and reports failures per channel', async () => {
    // Prepare
    const lines: string[] = [];
    const sink = {
      debug: () => {},
      info: () => {},
      warn: (l: unknown) => lines.push(String(l)),
      error: () => {},
    };
    const a = new ListChannel('a');
    const pager = new ListChannel('pager');
    const flaky = new ListChannel('flaky', new TransientError('503 from https://hook?sig=SECRETSIG'));
    const broken = new ListChannel('broken', new ValidationError('bad card'));
    const notifier = createNotifier(
      [
        { channel: a, minSeverity: 'info' },
        { channel: pager, minSeverity: 'critical' },
        { channel: flaky, minSeverity: 'info' },
        { channel: broken, minSeverity: 'info' },
      ],
      createLogger(sink),
    );
    // Act
    const results = await notifier.notify(notification, {
      channels: ['a', 'pager', 'flaky', 'broken', 'nope'],
    });
    // Assess
    expect(results).toEqual([
      { channel: 'a', status: 'sent' },
      { channel: 'pager', status: 'filtered' },
      expect.objectContaining({ channel: 'flaky', status: 'failed', retryable: true }),
      expect.objectContaining({ channel: 'broken', status: 'failed', retryable: false }),
      { channel: 'nope', status: 'failed', retryable: false, error: 'unknown channel' },
    ]);
    expect(a.got).toHaveLength(1);
    expect(pager.got).toHaveLength(0);
    expect(JSON.stringify(results) + lines.join('\n')).not.toContain('SECRETSIG');
  });
});

describe('createNotifier logging', () => {
  afterEach(() => clearRegisteredSecrets());

  it('logs a failing channel with the redacted stack and cause chain of its error', async () => {
    // Prepare
    const lines: string[] = [];
    const sink = {
      debug: () => {},
      info: () => {},
      warn: (l: unknown) => lines.push(String(l)),
      error: () => {},
    };
    registerSecret('channel-secret-value-9');
    const cause = new Error('receiver quoted channel-secret-value-9');
    const broken = new ListChannel(
      'broken',
      new TransientError('posting to broken failed with 503', { cause }),
    );
    const notifier = createNotifier([{ channel: broken, minSeverity: 'info' }], createLogger(sink));

    // Act
    await notifier.notify(notification, { channels: ['broken'] });

    // Assess
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({
      level: 'warn',
      operation: 'notify',
      target: 'vaults/kv/secrets/s',
      channel: 'broken',
      retryable: true,
      error: {
        name: 'TransientError',
        code: 'TransientFailure',
        message: 'posting to broken failed with 503',
        cause: { name: 'Error', message: 'receiver quoted [REDACTED]' },
      },
    });
    expect(entry.error.stack).toMatch(/^TransientError: posting to broken failed with 503\n\s+at /);
    expect(lines[0]).not.toContain('channel-secret-value-9');
  });
});

describe('formats', () => {
  it('builds a Teams message with an Adaptive Card carrying title, summary and facts', () => {
    const message = toTeamsMessage(notification) as {
      type: string;
      attachments: Array<{
        contentType: string;
        content: { type: string; version: string; body: Array<Record<string, unknown>> };
      }>;
    };
    expect(message.type).toBe('message');
    const card = message.attachments[0]!;
    expect(card.contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(card.content.type).toBe('AdaptiveCard');
    expect(card.content.body[0]).toMatchObject({
      type: 'TextBlock',
      text: notification.title,
      color: 'Warning',
    });
    const facts = card.content.body.find((b) => b.type === 'FactSet') as {
      facts: Array<{ title: string; value: string }>;
    };
    expect(facts.facts).toEqual(
      expect.arrayContaining([
        { title: 'Vault', value: 'kv' },
        { title: 'Correlation id', value: 'c-1' },
      ]),
    );
  });

  it('builds a CloudEvents 1.0 structured envelope with the notification id', () => {
    expect(toCloudEvent(notification, '/stampkeeper/test')).toMatchObject({
      specversion: '1.0',
      id: 'n-1',
      source: '/stampkeeper/test',
      type: 'com.stampkeeper.secret.nearExpiry',
      time: '2026-01-01T00:00:00.000Z',
      data: { severity: 'warning', secretName: 's', correlationId: 'c-1' },
    });
  });
});
