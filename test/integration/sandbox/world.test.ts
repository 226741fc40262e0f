import { SecretClient } from '@azure/keyvault-secrets';
import { describe, expect, it } from 'vitest';
import {
  createSandbox,
  type EventDeliveryTarget,
  type Sandbox,
  type Scenario,
} from '../../../src/local/sandbox';
import { fixture } from '../../support/events';

const DAY = 24 * 60 * 60 * 1000;
const START = '2026-01-01T00:00:00Z';
const VAULT = 'kv-world';

interface Received {
  functionName: string;
  body: unknown;
  headers: Record<string, string>;
}

/** A hand-written delivery target answering the statuses it is given, in order (then 200). */
function recordingTarget(statuses: number[] = []): EventDeliveryTarget & { received: Received[] } {
  const received: Received[] = [];
  const queue = [...statuses];
  return {
    received,
    async post(functionName, body, headers) {
      received.push({ functionName, body: JSON.parse(body), headers });
      return { status: queue.shift() ?? 200 };
    },
  };
}

function scenario(
  overrides: Partial<Scenario> = {},
  secrets: NonNullable<Scenario['keyVault']>['vaults'] = [],
): Scenario {
  return {
    clock: { start: START },
    keyVault: { vaults: secrets.length > 0 ? secrets : [{ name: VAULT }] },
    eventGrid: {
      subscriptions: [
        {
          name: 'to-app',
          vault: '*',
          endpoint: { functionName: 'keyVaultEvents' },
          schema: 'EventGridSchema',
        },
      ],
    },
    delivery: { duplicateProbability: 0 },
    ...overrides,
  };
}

function clientOf(sandbox: Sandbox): SecretClient {
  return new SecretClient(sandbox.keyVault.vaultUrl(VAULT), sandbox.credential, {
    httpClient: sandbox.httpClient,
  });
}

const types = (sandbox: Sandbox) =>
  sandbox.events().map((e) => `${e.eventType.replace('Microsoft.KeyVault.', '')}@${e.eventTime}`);

describe('sandbox world: Key Vault events through Event Grid', () => {
  it('raises SecretNearExpiry exactly when the clock crosses exp - 30 days, and SecretExpired at exp', async () => {
    // Prepare
    const target = recordingTarget();
    const sandbox = createSandbox({
      scenario: scenario({}, [{ name: VAULT, secrets: [{ name: 'db-key', expiresInDays: 45 }] }]),
      deliver: target,
    });
    const nearAt = Date.parse(START) + 15 * DAY;

    // Act
    const before = await sandbox.advance({ to: new Date(nearAt - 1000).toISOString() });
    const crossing = await sandbox.advance({ seconds: 1 });
    const quiet = await sandbox.advance({ days: 29 });
    const expiry = await sandbox.advance({ days: 2 });
    const after = await sandbox.advance({ days: 100 });

    // Assess
    expect(before.raised).toEqual([]);
    expect(crossing.raised.map((e) => [e.eventType, e.eventTime])).toEqual([
      ['Microsoft.KeyVault.SecretNearExpiry', '2026-01-16T00:00:00.000Z'],
    ]);
    expect(quiet.raised).toEqual([]);
    expect(expiry.raised.map((e) => [e.eventType, e.eventTime])).toEqual([
      ['Microsoft.KeyVault.SecretExpired', '2026-02-15T00:00:00.000Z'],
    ]);
    expect(after.raised).toEqual([]);
    expect(target.received.map((r) => (r.body as Array<{ eventType: string }>)[0]!.eventType)).toEqual([
      'Microsoft.KeyVault.SecretNearExpiry',
      'Microsoft.KeyVault.SecretExpired',
    ]);
  });

  it('raises the events of several secrets in time order within one advance', async () => {
    // Prepare
    const sandbox = createSandbox({
      scenario: scenario({}, [
        {
          name: VAULT,
          secrets: [
            { name: 'late', expiresInDays: 50 },
            { name: 'early', expiresInDays: 35 },
          ],
        },
      ]),
      deliver: recordingTarget(),
    });

    // Act
    const result = await sandbox.advance({ days: 60 });

    // Assess
    expect(
      result.raised.map((e) => `${e.subject}:${e.eventType.replace('Microsoft.KeyVault.', '')}`),
    ).toEqual([
      'early:SecretNearExpiry',
      'late:SecretNearExpiry',
      'early:SecretExpired',
      'late:SecretExpired',
    ]);
    const times = result.raised.map((e) => Date.parse(e.eventTime));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('a new version resets the warnings: NewVersionCreated now, NearExpiry again for the new expiry', async () => {
    // Prepare
    const sandbox = createSandbox({
      scenario: scenario({}, [{ name: VAULT, secrets: [{ name: 'rotating', expiresInDays: 31 }] }]),
      deliver: recordingTarget(),
    });
    const client = clientOf(sandbox);
    await sandbox.advance({ days: 2 });

    // Act
    await client.setSecret('rotating', 'new-value-123', {
      expiresOn: new Date(Date.parse(START) + 92 * DAY),
    });
    await sandbox.advance({ days: 89 });

    // Assess
    // The old version's expiry (2026-02-01) raises nothing: only the current version is watched.
    expect(types(sandbox)).toEqual([
      'SecretNearExpiry@2026-01-02T00:00:00.000Z',
      'SecretNewVersionCreated@2026-01-03T00:00:00.000Z',
      'SecretNearExpiry@2026-03-04T00:00:00.000Z',
    ]);
  });

  it('re-arms the expiry events of a version whose exp is changed by an update', async () => {
    // Prepare
    const sandbox = createSandbox({ scenario: scenario(), deliver: recordingTarget() });
    const client = clientOf(sandbox);
    const set = await client.setSecret('extended', 'extended-value-1', {
      expiresOn: new Date('2026-01-20T00:00:00Z'),
    });
    await sandbox.advance({ days: 1 });

    // Act
    await client.updateSecretProperties('extended', set.properties.version!, {
      expiresOn: new Date('2026-03-02T00:00:00Z'),
    });
    await sandbox.advance({ days: 60 });

    // Assess
    expect(types(sandbox)).toEqual([
      'SecretNewVersionCreated@2026-01-01T00:00:00.000Z',
      'SecretNearExpiry@2026-01-01T00:00:00.000Z',
      'SecretNearExpiry@2026-01-31T00:00:00.000Z',
      'SecretExpired@2026-03-02T00:00:00.000Z',
    ]);
  });

  it('raises NearExpiry at the next clock move for a version already inside its 30-day window', async () => {
    // Prepare
    const sandbox = createSandbox({
      scenario: scenario({}, [{ name: VAULT, secrets: [{ name: 'soon', expiresInDays: 20 }] }]),
      deliver: recordingTarget(),
    });

    // Act
    const settled = await sandbox.settle();
    const again = await sandbox.settle();

    // Assess
    expect(settled.raised.map((e) => [e.eventType, e.eventTime])).toEqual([
      ['Microsoft.KeyVault.SecretNearExpiry', '2026-01-01T00:00:00.000Z'],
    ]);
    expect(again.raised).toEqual([]);
  });

  it('delivers every event twice, with the same id, when duplicateProbability is 1', async () => {
    // Prepare
    const target = recordingTarget();
    const sandbox = createSandbox({
      scenario: scenario({ delivery: { duplicateProbability: 1 } }),
      deliver: target,
    });

    // Act
    sandbox.keyVault.setSecret(VAULT, 'dup', 'dup-value-123');
    await sandbox.idle();

    // Assess
    const ids = target.received.map((r) => (r.body as Array<{ id: string }>)[0]!.id);
    expect(ids).toHaveLength(2);
    expect(ids[0]).toBe(ids[1]);
    expect(sandbox.deliveries().map((d) => [d.copy, d.attempt, d.status, d.outcome])).toEqual([
      [1, 1, 200, 'delivered'],
      [2, 1, 200, 'delivered'],
    ]);
  });

  it('retries a 500 answer and records every attempt; the headers count the deliveries', async () => {
    // Prepare
    const target = recordingTarget([500, 503]);
    const sandbox = createSandbox({ scenario: scenario(), deliver: target });

    // Act
    sandbox.keyVault.setSecret(VAULT, 'retry-me', 'retry-value-1');
    await sandbox.idle();

    // Assess
    expect(sandbox.deliveries().map((d) => [d.attempt, d.status, d.outcome, d.azureBackoffMs])).toEqual([
      [1, 500, 'retrying', 0],
      [2, 503, 'retrying', 10_000],
      [3, 200, 'delivered', 30_000],
    ]);
    expect(target.received.map((r) => r.headers['aeg-delivery-count'])).toEqual(['0', '1', '2']);
    expect(sandbox.eventGrid.undelivered()).toEqual([]);
  });

  it('dead-letters after maxAttempts failures, and at once on a 400 (not retried)', async () => {
    // Prepare
    const failing: EventDeliveryTarget = { post: async () => ({ status: 500 }) };
    const badRequest: EventDeliveryTarget = { post: async () => ({ status: 400 }) };
    const a = createSandbox({
      scenario: scenario({ delivery: { duplicateProbability: 0, maxAttempts: 3 } }),
      deliver: failing,
    });
    const b = createSandbox({ scenario: scenario(), deliver: badRequest });

    // Act
    a.keyVault.setSecret(VAULT, 's', 'value-aaaa-1');
    b.keyVault.setSecret(VAULT, 's', 'value-bbbb-1');
    await Promise.all([a.idle(), b.idle()]);

    // Assess
    expect(a.deliveries()).toHaveLength(3);
    expect(a.eventGrid.undelivered()).toMatchObject([
      { subscription: 'to-app', attempts: 3, lastStatus: 500 },
    ]);
    expect(b.deliveries()).toHaveLength(1);
    expect(b.eventGrid.undelivered()).toMatchObject([{ attempts: 1, lastStatus: 400 }]);
  });

  it.each([401, 403, 413])(
    'dead-letters at once on a %i (Event Grid does not retry it for webhooks)',
    async (status) => {
      // Prepare
      const target = recordingTarget([status]);
      const sandbox = createSandbox({ scenario: scenario(), deliver: target });

      // Act
      sandbox.keyVault.setSecret(VAULT, 's', 'value-cccc-1');
      await sandbox.idle();

      // Assess
      expect(sandbox.deliveries().map((d) => [d.attempt, d.status, d.outcome])).toEqual([
        [1, status, 'dead-lettered'],
      ]);
      expect(sandbox.eventGrid.undelivered()).toMatchObject([
        {
          attempts: 1,
          lastStatus: status,
          reason: `endpoint answered ${status}, which Event Grid does not retry`,
        },
      ]);
    },
  );

  it.each([404, 429])('retries a %i (not on Event Grid list of errors it does not retry)', async (status) => {
    // Prepare
    const target = recordingTarget([status]);
    const sandbox = createSandbox({ scenario: scenario(), deliver: target });

    // Act
    sandbox.keyVault.setSecret(VAULT, 's', 'value-dddd-1');
    await sandbox.idle();

    // Assess
    expect(sandbox.deliveries().map((d) => [d.attempt, d.status, d.outcome])).toEqual([
      [1, status, 'retrying'],
      [2, 200, 'delivered'],
    ]);
    expect(sandbox.eventGrid.undelivered()).toEqual([]);
  });

  it('counts an attempt that outlasts delivery.timeoutMs as failed, aborts it, and retries', async () => {
    // Prepare: a handler that hangs on the first attempt and answers the second.
    const signals: AbortSignal[] = [];
    let calls = 0;
    const target: EventDeliveryTarget = {
      post: (_name, _body, _headers, options) => {
        calls += 1;
        if (options) signals.push(options.abortSignal);
        return calls === 1 ? new Promise(() => {}) : Promise.resolve({ status: 200 });
      },
    };
    const sandbox = createSandbox({
      scenario: scenario({ delivery: { duplicateProbability: 0, timeoutMs: 20 } }),
      deliver: target,
    });

    // Act
    sandbox.keyVault.setSecret(VAULT, 'hangs', 'value-eeee-1');
    const moved = await sandbox.advance({ days: 1 });

    // Assess
    expect(moved.now).toBe('2026-01-02T00:00:00.000Z');
    const attempts = sandbox.deliveries();
    expect(attempts.map((d) => [d.attempt, d.status, d.outcome])).toEqual([
      [1, undefined, 'retrying'],
      [2, 200, 'delivered'],
    ]);
    expect(attempts[0]!.error).toContain('did not answer within 20 ms');
    expect(signals.map((s) => s.aborted)).toEqual([true, false]);
  });

  it('dead-letters an event whose every attempt hangs, so the clock still moves', async () => {
    // Prepare
    const hung: EventDeliveryTarget = { post: () => new Promise(() => {}) };
    const sandbox = createSandbox({
      scenario: scenario({ delivery: { duplicateProbability: 0, maxAttempts: 2, timeoutMs: 10 } }),
      deliver: hung,
    });

    // Act
    sandbox.keyVault.setSecret(VAULT, 'hangs', 'value-ffff-1');
    const moved = await sandbox.advance({ hours: 1 });

    // Assess
    expect(moved.now).toBe('2026-01-01T01:00:00.000Z');
    expect(sandbox.eventGrid.undelivered()).toMatchObject([{ attempts: 2, lastStatus: undefined }]);
    expect(sandbox.eventGrid.undelivered()[0]!.reason).toContain('did not answer within 10 ms');
  });

  it('delivers Event Grid schema as an array of one event, CloudEvents as one event with its content type', async () => {
    // Prepare
    const target = recordingTarget();
    const sandbox = createSandbox({
      scenario: scenario({
        eventGrid: {
          subscriptions: [
            { name: 'eg', vault: VAULT, endpoint: { functionName: 'egFn' }, schema: 'EventGridSchema' },
            { name: 'ce', vault: VAULT, endpoint: { functionName: 'ceFn' }, schema: 'CloudEventSchemaV1_0' },
            {
              name: 'only-expired',
              vault: '*',
              eventTypes: ['Microsoft.KeyVault.SecretExpired'],
              endpoint: { functionName: 'never' },
            },
          ],
        },
      }),
      deliver: target,
    });

    // Act
    sandbox.keyVault.setSecret(VAULT, 'both', 'both-value-1');
    await sandbox.idle();

    // Assess
    const eg = target.received.find((r) => r.functionName === 'egFn')!;
    const ce = target.received.find((r) => r.functionName === 'ceFn')!;
    expect(target.received.map((r) => r.functionName).sort()).toEqual(['ceFn', 'egFn']);
    expect(eg.headers).toMatchObject({
      'content-type': 'application/json',
      'aeg-event-type': 'Notification',
    });
    expect(Array.isArray(eg.body)).toBe(true);
    expect(ce.headers).toMatchObject({
      'content-type': 'application/cloudevents+json; charset=utf-8',
      'aeg-event-type': 'Notification',
    });
    expect(ce.body).toMatchObject({
      specversion: '1.0',
      type: 'Microsoft.KeyVault.SecretNewVersionCreated',
      source: `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-stampkeeper-sandbox/providers/Microsoft.KeyVault/vaults/${VAULT}`,
      subject: 'both',
    });
  });

  it('raises events with the keys of the published samples (PascalCase data), numbers for NBF/EXP', async () => {
    // Prepare
    const egSample = fixture<Array<Record<string, object>>>(
      'events/keyvault/SecretNewVersionCreated.eventgrid.json',
    )[0]!;
    const ceSample = fixture<Array<Record<string, object>>>(
      'events/keyvault/SecretNewVersionCreated.cloudevents.json',
    )[0]!;
    const target = recordingTarget();
    const sandbox = createSandbox({
      scenario: scenario({
        eventGrid: {
          subscriptions: [
            { name: 'eg', vault: '*', endpoint: { functionName: 'eg' } },
            { name: 'ce', vault: '*', endpoint: { functionName: 'ce' }, schema: 'CloudEventSchemaV1_0' },
          ],
        },
      }),
      deliver: target,
    });

    // Act
    sandbox.keyVault.setSecret(VAULT, 'shaped', 'shaped-value-1', {
      attributes: { exp: 1_800_000_000, nbf: 1_700_000_000 },
    });
    await sandbox.idle();

    // Assess
    // The docs sample has a stray space in "ObjectName " (a typo of the page); keys are compared trimmed.
    const keys = (o: object) =>
      Object.keys(o)
        .map((k) => k.trim())
        .sort();
    const eg = (
      target.received.find((r) => r.functionName === 'eg')!.body as Array<Record<string, object>>
    )[0]!;
    const ce = target.received.find((r) => r.functionName === 'ce')!.body as Record<string, object>;
    expect(keys(eg)).toEqual(keys(egSample));
    expect(keys(eg.data!)).toEqual(keys(egSample.data!));
    expect(keys(ce)).toEqual(keys(ceSample));
    expect(keys(ce.data!)).toEqual(keys(ceSample.data!));
    expect(eg.data).toMatchObject({
      ObjectType: 'Secret',
      ObjectName: 'shaped',
      VaultName: VAULT,
      NBF: 1_700_000_000,
      EXP: 1_800_000_000,
    });
    expect(eg).toMatchObject({ dataVersion: '1', metadataVersion: '1', subject: 'shaped' });
  });

  it('raises events without a delivery target, and delivers nothing', async () => {
    // Prepare
    const sandbox = createSandbox({ scenario: scenario() });

    // Act
    sandbox.keyVault.setSecret(VAULT, 'lonely', 'lonely-value-1');
    await sandbox.idle();

    // Assess
    expect(sandbox.events()).toHaveLength(1);
    expect(sandbox.deliveries()).toEqual([]);
  });

  it('delivers each event at its own instant: a handler never sees the clock past the event it handles', async () => {
    // Prepare
    const seenAt: Array<[string, string]> = [];
    let sandbox: Sandbox | undefined;
    const target: EventDeliveryTarget = {
      async post(_fn, body) {
        const [event] = JSON.parse(body) as Array<{ eventType: string }>;
        seenAt.push([event!.eventType, sandbox!.clock.now().toISOString()]);
        return { status: 200 };
      },
    };
    sandbox = createSandbox({
      scenario: scenario({}, [{ name: VAULT, secrets: [{ name: 'jump', expiresInDays: 40 }] }]),
      deliver: target,
    });

    // Act
    await sandbox.advance({ days: 365 });

    // Assess
    expect(seenAt).toEqual([
      ['Microsoft.KeyVault.SecretNearExpiry', '2026-01-11T00:00:00.000Z'],
      ['Microsoft.KeyVault.SecretExpired', '2026-02-10T00:00:00.000Z'],
    ]);
  });

  it('runs the subscription validation handshake: validated only when the code is echoed', async () => {
    // Prepare
    const received: Array<{ headers: Record<string, string>; body: string }> = [];
    const echoing: EventDeliveryTarget = {
      async post(_fn, body, headers) {
        received.push({ headers, body });
        const [event] = JSON.parse(body) as Array<{ data: { validationCode: string } }>;
        return { status: 200, body: JSON.stringify({ validationResponse: event!.data.validationCode }) };
      },
    };
    const silent: EventDeliveryTarget = { post: async () => ({ status: 200, body: '' }) };
    const good = createSandbox({ scenario: scenario(), deliver: echoing });
    const bad = createSandbox({ scenario: scenario(), deliver: silent });

    // Act
    const goodResult = await good.eventGrid.validateSubscriptions();
    const badResult = await bad.eventGrid.validateSubscriptions();

    // Assess
    expect(goodResult).toEqual([
      { subscription: 'to-app', functionName: 'keyVaultEvents', validated: true, status: 200 },
    ]);
    expect(received[0]!.headers['aeg-event-type']).toBe('SubscriptionValidation');
    expect(JSON.parse(received[0]!.body)[0].eventType).toBe(
      'Microsoft.EventGrid.SubscriptionValidationEvent',
    );
    expect(badResult[0]).toMatchObject({ validated: false, status: 200 });
    expect(good.events()).toEqual([]);
  });
});
