/**
 * The first slice end to end, on the built bundle (what is deployed, built for this test run by the
 * global setup): the local host runs the app's real registrations on the sandbox;
 * the sandbox's Key Vault raises events as Azure would and delivers them (twice) to the host's
 * Event Grid endpoint; the app audits once and notifies once per channel.
 */
import { SecretClient } from '@azure/keyvault-secrets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningLocalApp, SANDBOX_SETTINGS } from '../../src/local/app';
import type { HostLogger } from '../../src/local/host/types';
import { fixture, secretEvent, toCloudEventSchema } from '../support/events';
import { startBundledApp } from './support/localApp';

const VAULT = 'stampkeeper-sandbox';
const COSMOS_TARGET = `vaults/${VAULT}/secrets/cosmos-primary-key`;
const UNMANAGED_TARGET = `vaults/${VAULT}/secrets/unmanaged-secret`;
const SINCE = '2025-12-15T00:00:00Z';

interface AuditRecordJson {
  action: string;
  target: string;
  outcome: string;
  reason?: string;
  after?: Record<string, unknown>;
}

describe('secret near expiry on the sandbox, end to end', () => {
  let app: RunningLocalApp;
  const logs: string[] = [];
  const responses: string[] = [];
  const logger: HostLogger = {
    info: (m) => logs.push(m),
    warn: (m) => logs.push(m),
    error: (m) => logs.push(m),
  };
  const consoleMethods = ['log', 'info', 'warn', 'error', 'debug'] as const;
  const originalConsole = consoleMethods.map((m) => [m, console[m]] as const);

  // biome-ignore lint/suspicious/noExplicitAny: response bodies are read freely in assertions
  async function get(path: string): Promise<{ status: number; json: any }> {
    const response = await fetch(`${app.url}${path}`);
    const text = await response.text();
    responses.push(text);
    return { status: response.status, json: text ? JSON.parse(text) : undefined };
  }

  async function post(
    path: string,
    body: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; text: string }> {
    const response = await fetch(`${app.url}${path}`, {
      method: 'POST',
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...headers },
    });
    const text = await response.text();
    responses.push(text);
    return { status: response.status, text };
  }

  async function audit(target: string): Promise<AuditRecordJson[]> {
    const { status, json } = await get(`/api/audit?since=${SINCE}&target=${encodeURIComponent(target)}`);
    expect(status).toBe(200);
    return json.records;
  }

  const deliverEventGrid = (events: unknown[]) =>
    post('/runtime/webhooks/eventgrid?functionName=keyVaultEvents', events, {
      'aeg-event-type': 'Notification',
    });

  beforeAll(async () => {
    for (const m of consoleMethods)
      console[m] = (...args: unknown[]) => logs.push(args.map(String).join(' '));
    app = await startBundledApp({
      prefix: 'e',
      logger,
      // Every event is delivered twice (the at-least-once delivery the app must absorb).
      sandbox: { random: () => 0 },
    });
  });

  afterAll(async () => {
    await app?.stop();
    for (const [m, original] of originalConsole) console[m] = original as never;
  });

  it('is healthy on the sandbox', async () => {
    const { status, json } = await get('/api/health');
    expect(status).toBe(200);
    expect(json).toMatchObject({ status: 'healthy', platform: 'sandbox' });
    expect(json.checks.map((c: { name: string }) => c.name)).toEqual([
      'storage',
      'policy',
      `vault ${VAULT}.vault.azure.net`,
    ]);
  });

  it('reports the unmanaged secret already inside its window at start, without touching it', async () => {
    const records = await audit(UNMANAGED_TARGET);
    const notified = records.filter((r) => r.action === 'secret.nearExpiry.notify');
    expect(notified).toHaveLength(1);
    expect(notified[0]).toMatchObject({ outcome: 'reported' });
    const requests = app.sandbox!.keyVault.requests();
    expect(requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('past the 30-day mark: the event arrives twice, one audit record, one notification per channel', async () => {
    // Act: cosmos-primary-key expires 45 days after the start; its near-expiry moment is day 15
    // (the sandbox delivers it with its clock at that moment: 30 days left).
    const advanced = await post('/sandbox/clock/advance', { days: 16 });
    // Assess
    expect(advanced.status).toBe(200);
    const deliveries = app
      .sandbox!.deliveries()
      .filter(
        (d) => d.subject === 'cosmos-primary-key' && d.eventType === 'Microsoft.KeyVault.SecretNearExpiry',
      );
    expect(deliveries).toHaveLength(2);
    expect(new Set(deliveries.map((d) => d.eventId)).size).toBe(1);
    expect(deliveries.every((d) => d.status !== undefined && d.status < 300)).toBe(true);

    const records = (await audit(COSMOS_TARGET)).filter((r) => r.action === 'secret.nearExpiry.notify');
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ outcome: 'succeeded' });

    const published = app
      .sandbox!.eventGrid.published()
      .filter(
        (p) => p.event.subject === COSMOS_TARGET && p.event.type === 'com.stampkeeper.secret.nearExpiry',
      );
    expect(published).toHaveLength(1);
    expect(published[0]!.schema).toBe('CloudEventSchemaV1_0');
    expect(published[0]!.auth).toBe('bearer');
    expect(published[0]!.event.data).toMatchObject({
      secretName: 'cosmos-primary-key',
      managed: true,
      owner: 'team-data',
      daysLeft: 30,
    });

    const cards = app
      .sandbox!.webhooks()
      .filter((w) => JSON.stringify(w.body).includes('cosmos-primary-key'));
    expect(cards).toHaveLength(1);
    expect(cards[0]!.body).toMatchObject({
      type: 'message',
      attachments: [
        { contentType: 'application/vnd.microsoft.card.adaptive', content: { type: 'AdaptiveCard' } },
      ],
    });

    const notifications = await get('/sandbox/notifications');
    expect(notifications.status).toBe(200);
    expect(JSON.stringify(notifications.json)).toContain('com.stampkeeper.secret.nearExpiry');
  });

  it('parses the published Key Vault samples (both schemas, legacy keys), never calls their unknown vault, and answers the validation handshake', async () => {
    const requestsBefore = app.sandbox!.keyVault.requests().length;
    for (const file of [
      'SecretNewVersionCreated.eventgrid.json',
      'SecretNewVersionCreated.eventgrid.legacy-2020-camelcase.json',
    ]) {
      const result = await deliverEventGrid(fixture(`events/keyvault/${file}`));
      expect(result.status, file).toBeLessThan(300);
    }
    const cloud = await post(
      '/runtime/webhooks/eventgrid?functionName=keyVaultEvents',
      fixture('events/keyvault/SecretNewVersionCreated.cloudevents.json'),
      {
        'aeg-event-type': 'Notification',
        'content-type': 'application/cloudevents-batch+json; charset=utf-8',
      },
    );
    expect(cloud.status).toBeLessThan(300);
    // The samples come from vault sample-kv, which neither the policy nor the settings allow: they
    // parse (no invalid-event), are counted as rejections, and the app calls no vault for them.
    const { json } = await get('/api/rejections');
    const reasons = json.buckets.map((b: { reason: string; count: number }) => [b.reason, b.count]);
    expect(reasons).toContainEqual(['vault-not-allowed', 3]);
    expect(reasons.map((r: [string, number]) => r[0])).not.toContain('invalid-event');
    expect(
      app
        .sandbox!.keyVault.requests()
        .slice(requestsBefore)
        .map((r) => r.path),
    ).not.toContainEqual(expect.stringContaining('newsecret'));

    const validation = await post(
      '/runtime/webhooks/eventgrid?functionName=keyVaultEvents',
      fixture('events/eventgrid/SubscriptionValidationEvent.eventgrid.json'),
      { 'aeg-event-type': 'SubscriptionValidation' },
    );
    expect(validation.status).toBe(200);
    expect(JSON.parse(validation.text)).toEqual(
      fixture('events/eventgrid/SubscriptionValidationResponse.json'),
    );
  });

  it('records and rejects an unknown or malformed event, and does nothing else', async () => {
    const publishedBefore = app.sandbox!.eventGrid.published().length;
    const webhooksBefore = app.sandbox!.webhooks().length;
    const unknown = secretEvent({
      id: 'key-event-1',
      type: 'Microsoft.KeyVault.KeyNearExpiry',
      vault: VAULT,
      name: 'some-key',
    });
    const broken = toCloudEventSchema({
      ...secretEvent({ id: 'broken-1', vault: VAULT, name: 'broken' }),
      data: { Id: 'not a url' },
    });
    expect((await deliverEventGrid([unknown])).status).toBeLessThan(300);
    expect(
      (
        await post('/runtime/webhooks/eventgrid?functionName=keyVaultEvents', broken, {
          'aeg-event-type': 'Notification',
          'content-type': 'application/cloudevents+json; charset=utf-8',
        })
      ).status,
    ).toBeLessThan(300);
    const rejected = await audit(`events/${VAULT}`);
    expect(rejected.map((r) => [r.outcome, r.after?.reason]).sort()).toEqual([
      ['rejected', 'invalid-event'],
      ['rejected', 'unhandled-event-type'],
    ]);
    expect(rejected.find((r) => r.after?.reason === 'unhandled-event-type')!.reason).toMatch(/KeyNearExpiry/);
    expect(app.sandbox!.eventGrid.published().length).toBe(publishedBefore);
    expect(app.sandbox!.webhooks().length).toBe(webhooksBefore);
  });

  it('never lets a secret value reach a log, an audit record, a notification or an HTTP response', async () => {
    // Prepare: read every secret value of the sandbox vault with the real SDK client.
    const client = new SecretClient(`https://${VAULT}.vault.azure.net`, app.sandbox!.credential, {
      httpClient: app.sandbox!.httpClient,
    });
    const values: string[] = [];
    for await (const props of client.listPropertiesOfSecrets()) {
      const secret = await client.getSecret(props.name);
      if (secret.value) values.push(secret.value);
    }
    expect(values.length).toBeGreaterThanOrEqual(3);
    // The Teams webhook URL is a credential too: its path segment after IncomingWebhook.
    const teamsCredential = new URL(SANDBOX_SETTINGS.TEAMS_WEBHOOK_URL!).pathname.split('/')[4]!;
    expect(teamsCredential.length).toBeGreaterThan(10);
    values.push(teamsCredential);
    // Act: one more near-expiry (storage-account-key, day 60) and every read-only view.
    await post('/sandbox/clock/advance', { days: 45 });
    await get(`/api/audit?since=${SINCE}&limit=1000`);
    await get('/sandbox/estate');
    await get('/sandbox/events');
    await get('/sandbox/notifications');
    await get('/api/health');
    // Assess: cosmos-primary-key expired on day 45: one critical notification, audited once.
    const expired = (await audit(COSMOS_TARGET)).filter((r) => r.action === 'secret.expired.notify');
    expect(expired).toEqual([expect.objectContaining({ outcome: 'succeeded' })]);
    const critical = app
      .sandbox!.eventGrid.published()
      .filter((p) => p.event.subject === COSMOS_TARGET && p.event.type === 'com.stampkeeper.secret.expired');
    expect(critical.map((p) => (p.event.data as { severity: string }).severity)).toEqual(['critical']);
    const everything = [
      ...logs,
      ...responses,
      JSON.stringify(app.sandbox!.eventGrid.published()),
      JSON.stringify(app.sandbox!.webhooks()),
    ].join('\n');
    expect(logs.length).toBeGreaterThan(0);
    expect(everything).toContain('storage-account-key');
    for (const value of values) expect(everything).not.toContain(value);
  });
});
