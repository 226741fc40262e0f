import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { createDefaultHttpClient } from '@azure/core-rest-pipeline';
import { afterEach, describe, expect, it } from 'vitest';
import { EventGridChannel } from '../../../src/lib/azure/eventGridChannel';
import { WebhookChannel } from '../../../src/lib/azure/webhookChannel';
import { DependencyError, NotFoundError, TransientError } from '../../../src/lib/core/errors';
import { createLogger, type LogSink } from '../../../src/lib/core/logging';
import { clearRegisteredSecrets, registerSecret } from '../../../src/lib/core/redact';
import { createNotifier } from '../../../src/lib/notify/notifier';
import type { Notification } from '../../../src/lib/ports/notifier';
import { createSandbox } from '../../../src/local/sandbox';

const TOPIC = 'https://notify-topic.westeurope-1.eventgrid.azure.net/api/events';
const SOURCE = '/stampkeeper/test';
/** The secret parts of a webhook URL: its signature, and a path segment some receivers use as a key. */
const SIG = 'SECRETSIG123';
const PATH_SECRET = 'PATHSECRET987';

const notification: Notification = {
  id: 'ntf-7c1d2e',
  type: 'com.stampkeeper.secret.nearExpiry',
  subject: 'vaults/kv-prod/secrets/cosmos-key',
  severity: 'warning',
  title: 'Secret near expiry: cosmos-key in kv-prod',
  summary: 'cosmos-key expires in 30 days.',
  facts: { Vault: 'kv-prod', Secret: 'cosmos-key' },
  correlationId: 'corr-42',
  time: new Date('2026-01-31T00:00:00Z'),
  data: { vault: 'kv-prod', secretName: 'cosmos-key', daysLeft: 30 },
};

interface Received {
  method?: string;
  url?: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  url: string;
  received: Received[];
}

const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

/** A real HTTP receiver on loopback answering every request with `status`. */
async function receiver(status: number): Promise<Receiver> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8');
    });
    req.on('end', () => {
      received.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status >= 400 ? `rejected ${req.url}` : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks/${PATH_SECRET}/incoming?sig=${SIG}`, received };
}

/** A loopback URL nobody listens on: the connection is refused. */
async function closedPortUrl(scheme: 'http' | 'https', path: string): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `${scheme}://127.0.0.1:${port}${path}`;
}

function capturingSink(lines: string[]): LogSink {
  const push = (...args: unknown[]) => lines.push(args.map(String).join(' '));
  return { debug: push, info: push, warn: push, error: push };
}

async function failureOf(work: Promise<unknown>): Promise<Error> {
  const outcome = await work.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof Error)) throw new Error('expected the call to fail');
  return outcome;
}

function expectNoUrlSecret(text: string): void {
  expect(text).not.toContain(SIG);
  expect(text).not.toContain(PATH_SECRET);
}

describe('EventGridChannel over the real EventGridPublisherClient on the sandbox', () => {
  it('publishes one CloudEvent whose id is the notification id, with the token credential', async () => {
    // Prepare
    const sandbox = createSandbox({ scenario: { clock: { start: '2026-01-31T00:00:00Z' } } });
    const channel = new EventGridChannel('ops-topic', TOPIC, sandbox.credential, SOURCE, {
      httpClient: sandbox.httpClient,
    });

    // Act
    await channel.send(notification);

    // Assess
    const published = sandbox.eventGrid.published();
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({
      topicHost: 'notify-topic.westeurope-1.eventgrid.azure.net',
      schema: 'CloudEventSchemaV1_0',
      auth: 'bearer',
    });
    expect(published[0]!.event).toMatchObject({
      specversion: '1.0',
      id: 'ntf-7c1d2e',
      type: 'com.stampkeeper.secret.nearExpiry',
      source: SOURCE,
      subject: 'vaults/kv-prod/secrets/cosmos-key',
      time: '2026-01-31T00:00:00.000Z',
      datacontenttype: 'application/json',
      data: {
        vault: 'kv-prod',
        secretName: 'cosmos-key',
        daysLeft: 30,
        severity: 'warning',
        title: 'Secret near expiry: cosmos-key in kv-prod',
        summary: 'cosmos-key expires in 30 days.',
        facts: { Vault: 'kv-prod', Secret: 'cosmos-key' },
        correlationId: 'corr-42',
      },
    });
  });

  it('maps a wrong topic path (404) to a non-retryable NotFoundError and publishes nothing', async () => {
    // Prepare
    const sandbox = createSandbox();
    const channel = new EventGridChannel(
      'ops-topic',
      'https://notify-topic.westeurope-1.eventgrid.azure.net/api/wrong',
      sandbox.credential,
      SOURCE,
      { httpClient: sandbox.httpClient },
    );

    // Act
    const error = await failureOf(channel.send(notification));

    // Assess
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ retryable: false, metadata: { status: 404 } });
    expect(sandbox.eventGrid.published()).toEqual([]);
  });

  it('maps a refused connection, after the SDK retries, to a retryable TransientError', async () => {
    // Prepare
    const sandbox = createSandbox();
    const endpoint = await closedPortUrl('https', '/api/events');
    const channel = new EventGridChannel('ops-topic', endpoint, sandbox.credential, SOURCE, {
      httpClient: sandbox.httpClient,
    });

    // Act
    const error = await failureOf(channel.send(notification));

    // Assess
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ retryable: true, metadata: { status: null, azureCode: 'ECONNREFUSED' } });
  });
});

describe('WebhookChannel', () => {
  it("posts a Teams message carrying an Adaptive Card to the sandbox's webhook sink", async () => {
    // Prepare
    const sandbox = createSandbox({ scenario: { clock: { start: '2026-01-31T00:00:00Z' } } });
    const url = `https://contoso.webhook.office.com/webhookb2/team/IncomingWebhook/${PATH_SECRET}/owner?sig=${SIG}`;
    const channel = new WebhookChannel('ops-teams', 'teams', url, sandbox.httpClient, SOURCE);

    // Act
    await channel.send(notification);

    // Assess
    const records = sandbox.webhooks();
    expect(records).toHaveLength(1);
    const [record] = records;
    expect(record!.method).toBe('POST');
    expect(record!.headers['content-type']).toBe('application/json');
    expect(record!.body).toMatchObject({
      type: 'message',
      attachments: [
        {
          contentType: 'application/vnd.microsoft.card.adaptive',
          content: { type: 'AdaptiveCard', version: '1.4' },
        },
      ],
    });
    const card = (record!.body as { attachments: Array<{ content: { body: unknown[] } }> }).attachments[0]!
      .content;
    expect(card.body).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'TextBlock', text: 'Secret near expiry: cosmos-key in kv-prod' }),
        expect.objectContaining({
          type: 'FactSet',
          facts: expect.arrayContaining([
            { title: 'Vault', value: 'kv-prod' },
            { title: 'Secret', value: 'cosmos-key' },
            { title: 'Correlation id', value: 'corr-42' },
          ]),
        }),
      ]),
    );
    expect(record!.url).not.toContain(SIG);
  });

  it("posts a structured-mode CloudEvent for a generic webhook into the sandbox's sink", async () => {
    // Prepare
    const sandbox = createSandbox();
    const url = `https://hooks.example.com/stampkeeper?sig=${SIG}`;
    const channel = new WebhookChannel('ops-hook', 'webhook', url, sandbox.httpClient, SOURCE);

    // Act
    await channel.send(notification);

    // Assess
    const [record] = sandbox.webhooks();
    expect(record!.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
    expect(record!.headers['ce-id']).toBe('ntf-7c1d2e');
    expect(record!.body).toMatchObject({
      specversion: '1.0',
      id: 'ntf-7c1d2e',
      source: SOURCE,
      type: 'com.stampkeeper.secret.nearExpiry',
      subject: 'vaults/kv-prod/secrets/cosmos-key',
      time: '2026-01-31T00:00:00.000Z',
      datacontenttype: 'application/json',
      data: { secretName: 'cosmos-key', severity: 'warning', correlationId: 'corr-42' },
    });
  });

  it('delivers to a real loopback receiver over the default HTTP client', async () => {
    // Prepare
    const hook = await receiver(202);
    const channel = new WebhookChannel('ops-hook', 'webhook', hook.url, createDefaultHttpClient(), SOURCE);

    // Act
    await channel.send(notification);

    // Assess
    expect(hook.received).toHaveLength(1);
    expect(hook.received[0]).toMatchObject({
      method: 'POST',
      url: `/hooks/${PATH_SECRET}/incoming?sig=${SIG}`,
    });
    expect(JSON.parse(hook.received[0]!.body)).toMatchObject({ id: 'ntf-7c1d2e', specversion: '1.0' });
  });

  it.each([
    [500, TransientError, true],
    [503, TransientError, true],
    [429, TransientError, true],
    [400, DependencyError, false],
  ] as const)(
    'maps a %i answer to %o (retryable: %s), without the URL secret in the error or the logs',
    async (status, type, retryable) => {
      // Prepare
      const hook = await receiver(status);
      const channel = new WebhookChannel('ops-teams', 'teams', hook.url, createDefaultHttpClient(), SOURCE);
      const lines: string[] = [];
      const notifier = createNotifier([{ channel, minSeverity: 'info' }], createLogger(capturingSink(lines)));

      // Act
      const error = await failureOf(channel.send(notification));
      const results = await notifier.notify(notification, { channels: ['ops-teams'] });

      // Assess
      expect(error).toBeInstanceOf(type);
      expect(error).toMatchObject({ retryable, metadata: { channel: 'ops-teams', status } });
      expect(error.message).toContain(String(status));
      expect(results).toEqual([
        { channel: 'ops-teams', status: 'failed', retryable, error: expect.any(String) },
      ]);
      expect(hook.received).toHaveLength(2);
      expect(lines).toHaveLength(1);
      expectNoUrlSecret(error.message);
      expectNoUrlSecret(JSON.stringify(error));
      expectNoUrlSecret(inspect(error, { depth: 10 }));
      expectNoUrlSecret(JSON.stringify(results));
      expectNoUrlSecret(lines.join('\n'));
    },
  );

  it('maps a refused connection to a retryable TransientError, without the URL secret in the error or the logs', async () => {
    // Prepare
    const url = await closedPortUrl('http', `/hooks/${PATH_SECRET}/incoming?sig=${SIG}`);
    const channel = new WebhookChannel('ops-hook', 'webhook', url, createDefaultHttpClient(), SOURCE);
    const lines: string[] = [];
    const notifier = createNotifier([{ channel, minSeverity: 'info' }], createLogger(capturingSink(lines)));

    // Act
    const error = await failureOf(channel.send(notification));
    const results = await notifier.notify(notification, { channels: ['ops-hook'] });

    // Assess
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ retryable: true, metadata: { channel: 'ops-hook' } });
    expect(error.message).toContain('ECONNREFUSED');
    expect(results).toEqual([
      { channel: 'ops-hook', status: 'failed', retryable: true, error: expect.any(String) },
    ]);
    expect(lines).toHaveLength(1);
    expectNoUrlSecret(error.message);
    expectNoUrlSecret(JSON.stringify(error));
    expectNoUrlSecret(inspect(error, { depth: 10 }));
    expectNoUrlSecret(JSON.stringify(results));
    expectNoUrlSecret(lines.join('\n'));
  });
});

describe('notifications through the real notifier show names and mask values', () => {
  afterEach(() => clearRegisteredSecrets());

  const VALUE = 'Pa55-registered-db-password-value';
  const ACCOUNT_KEY = 'c3RvcmFnZS1hY2NvdW50LWtleS1ub3QtdG8tbGVhaw==';
  const RESOURCE =
    '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-prod/providers/Microsoft.KeyVault/vaults/kv-prod';
  const secretNotification: Notification = {
    id: 'ntf-db-password',
    type: 'com.stampkeeper.secret.nearExpiry',
    subject: 'vaults/kv-prod/secrets/db-password',
    severity: 'critical',
    title: 'Secret near expiry: db-password in kv-prod',
    summary:
      `db-password in kv-prod expires in 3 days; the consumer still holds ${VALUE} and ` +
      `DefaultEndpointsProtocol=https;AccountName=stprod;AccountKey=${ACCOUNT_KEY};EndpointSuffix=core.windows.net.`,
    facts: { Vault: 'kv-prod', Secret: 'db-password', 'Key Vault': RESOURCE, 'Days left': '3' },
    correlationId: 'corr-77',
    time: new Date('2026-01-31T00:00:00Z'),
    data: { vaultName: 'kv-prod', secretName: 'db-password', keyName: 'key1', resourceId: RESOURCE },
  };
  const SUMMARY_SHOWN =
    'db-password in kv-prod expires in 3 days; the consumer still holds [REDACTED] and ' +
    'DefaultEndpointsProtocol=https;AccountName=stprod;AccountKey=[REDACTED];EndpointSuffix=core.windows.net.';

  it('delivers a Teams card, a webhook CloudEvent and an Event Grid CloudEvent naming db-password and kv-prod', async () => {
    // Prepare
    const sandbox = createSandbox({ scenario: { clock: { start: '2026-01-31T00:00:00Z' } } });
    registerSecret(VALUE);
    const lines: string[] = [];
    const notifier = createNotifier(
      [
        {
          channel: new EventGridChannel('ops-events', TOPIC, sandbox.credential, SOURCE, {
            httpClient: sandbox.httpClient,
          }),
          minSeverity: 'info',
        },
        {
          channel: new WebhookChannel(
            'ops-teams',
            'teams',
            `https://contoso.webhook.office.com/webhookb2/team/IncomingWebhook/${PATH_SECRET}/owner?sig=${SIG}`,
            sandbox.httpClient,
            SOURCE,
          ),
          minSeverity: 'info',
        },
        {
          channel: new WebhookChannel(
            'ops-hook',
            'webhook',
            `https://hooks.example.com/in?sig=${SIG}`,
            sandbox.httpClient,
            SOURCE,
          ),
          minSeverity: 'info',
        },
      ],
      createLogger(capturingSink(lines)),
    );

    // Act
    const results = await notifier.notify(secretNotification, {
      channels: ['ops-events', 'ops-teams', 'ops-hook'],
    });

    // Assess
    expect(results.map((r) => r.status)).toEqual(['sent', 'sent', 'sent']);
    const [published] = sandbox.eventGrid.published();
    const [teams, hook] = sandbox.webhooks();
    const expectedData = {
      vaultName: 'kv-prod',
      secretName: 'db-password',
      keyName: 'key1',
      resourceId: RESOURCE,
      severity: 'critical',
      title: 'Secret near expiry: db-password in kv-prod',
      summary: SUMMARY_SHOWN,
      facts: { Vault: 'kv-prod', Secret: 'db-password', 'Key Vault': RESOURCE, 'Days left': '3' },
      correlationId: 'corr-77',
    };
    expect(published!.event).toMatchObject({
      subject: 'vaults/kv-prod/secrets/db-password',
      data: expectedData,
    });
    expect(hook!.body).toMatchObject({ subject: 'vaults/kv-prod/secrets/db-password', data: expectedData });
    const card = (teams!.body as { attachments: Array<{ content: { body: unknown[] } }> }).attachments[0]!
      .content;
    expect(card.body).toEqual([
      expect.objectContaining({ type: 'TextBlock', text: 'Secret near expiry: db-password in kv-prod' }),
      expect.objectContaining({ type: 'TextBlock', text: SUMMARY_SHOWN }),
      expect.objectContaining({
        type: 'FactSet',
        facts: [
          { title: 'Vault', value: 'kv-prod' },
          { title: 'Secret', value: 'db-password' },
          { title: 'Key Vault', value: RESOURCE },
          { title: 'Days left', value: '3' },
          { title: 'Severity', value: 'critical' },
          { title: 'Correlation id', value: 'corr-77' },
        ],
      }),
    ]);
    const delivered = JSON.stringify({
      published: sandbox.eventGrid.published(),
      webhooks: sandbox.webhooks(),
      lines,
    });
    expect(delivered).not.toContain(VALUE);
    expect(delivered).not.toContain(ACCOUNT_KEY);
  });

  it('masks the values even when a channel is called directly, without the notifier', async () => {
    // Prepare
    const sandbox = createSandbox({ scenario: { clock: { start: '2026-01-31T00:00:00Z' } } });
    registerSecret(VALUE);
    const eventGrid = new EventGridChannel('ops-events', TOPIC, sandbox.credential, SOURCE, {
      httpClient: sandbox.httpClient,
    });
    const teams = new WebhookChannel(
      'ops-teams',
      'teams',
      `https://contoso.webhook.office.com/x?sig=${SIG}`,
      sandbox.httpClient,
      SOURCE,
    );

    // Act
    await eventGrid.send(secretNotification);
    await teams.send(secretNotification);

    // Assess
    const delivered = JSON.stringify({
      published: sandbox.eventGrid.published(),
      webhooks: sandbox.webhooks(),
    });
    expect(delivered).toContain('"Secret"');
    expect(delivered).toContain('db-password');
    expect(delivered).toContain('kv-prod');
    expect(delivered).not.toContain(VALUE);
    expect(delivered).not.toContain(ACCOUNT_KEY);
  });
});
