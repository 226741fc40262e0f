import { ServiceBusManagementClient } from '@azure/arm-servicebus';
import { describe, expect, it } from 'vitest';
import { ServiceBusKeys } from '../../../src/lib/azure/serviceBusKeys';
import { NotFoundError, ValidationError } from '../../../src/lib/core/errors';
import { redactText } from '../../../src/lib/core/redact';
import { keyFingerprint } from '../../../src/lib/ports/keys';
import { createSandbox } from '../../../src/local/sandbox';

const SUB = '00000000-0000-0000-0000-000000000000';
const RG = 'rg-stampkeeper-sandbox';
const NS = 'sb-adapter-keys';
const NS_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ServiceBus/namespaces/${NS}`;
const ROOT = `${NS_ID}/authorizationRules/RootManageSharedAccessKey`;
const QUEUE_RULE = `${NS_ID}/queues/orders/authorizationRules/orders-send`;
const TOPIC_RULE = `${NS_ID}/topics/events/authorizationRules/events-listen`;

function estate() {
  const sandbox = createSandbox({
    scenario: {
      clock: { start: '2026-01-01T00:00:00Z' },
      arm: {
        serviceBusNamespaces: [
          {
            name: NS,
            authorizationRules: [{ name: 'RootManageSharedAccessKey', rights: ['Listen', 'Send', 'Manage'] }],
            queues: [{ name: 'orders', authorizationRules: [{ name: 'orders-send', rights: ['Send'] }] }],
            topics: [{ name: 'events', authorizationRules: [{ name: 'events-listen', rights: ['Listen'] }] }],
          },
        ],
      },
    },
  });
  return {
    sandbox,
    keys: new ServiceBusKeys(sandbox.credential, { httpClient: sandbox.httpClient }),
    sdk: new ServiceBusManagementClient(sandbox.credential, SUB, { httpClient: sandbox.httpClient }),
  };
}

describe('ServiceBusKeys over the real @azure/arm-servicebus client on the sandbox', () => {
  it('lists a namespace rule and a queue rule by fingerprint, masking keys and connection strings from logs', async () => {
    // Prepare
    const { keys, sdk } = estate();
    const truth = await sdk.queues.listKeys(RG, NS, 'orders', 'orders-send');

    // Act
    const queue = await keys.listKeys(QUEUE_RULE);
    const root = await keys.listKeys(ROOT, { withValues: true });

    // Assess
    expect(queue).toEqual({
      kind: 'serviceBus',
      resourceId: QUEUE_RULE,
      primary: { slot: 'primary', name: 'primaryKey', fingerprint: keyFingerprint(truth.primaryKey!) },
      secondary: {
        slot: 'secondary',
        name: 'secondaryKey',
        fingerprint: keyFingerprint(truth.secondaryKey!),
      },
    });
    expect(root.primary.value).toHaveLength(44);
    expect(redactText(`cs=${truth.primaryConnectionString}`)).not.toContain(truth.primaryKey!);
  });

  it('regenerates a namespace rule key in one call; the test reads with Manage, refuses the old key', async () => {
    // Prepare
    const { sandbox, keys } = estate();
    const before = await keys.listKeys(ROOT, { withValues: true });
    const mark = sandbox.requests().length;

    // Act
    const fresh = await keys.regenerateKey(ROOT, 'primary');
    const calls = sandbox.requests().slice(mark);
    const [fresh1, old1, other1] = await Promise.all(
      [fresh.value, before.primary.value!, before.secondary.value!].map((v) => keys.testKey(ROOT, v)),
    );

    // Assess
    expect(calls.map((r) => `${r.method} ${r.path.split('/').pop()}`)).toEqual(['POST regenerateKeys']);
    expect(fresh1).toEqual({ accepted: true, status: 200, detail: '200 management read' });
    expect(old1).toEqual({
      accepted: false,
      status: 401,
      detail: '401 InvalidSignature: The token has an invalid signature.',
    });
    expect(other1?.accepted).toBe(true);
    expect(
      sandbox
        .requests()
        .filter((r) => r.service === 'servicebus')
        .map((r) => r.path),
    ).toEqual(['/$Resources/queues', '/$Resources/queues', '/$Resources/queues']);
  });

  it('tests a queue rule without Manage: its claims refusal proves the key valid, a regenerated one is refused', async () => {
    // Prepare
    const { sandbox, keys } = estate();
    const before = await keys.listKeys(QUEUE_RULE, { withValues: true });

    // Act
    const valid = await keys.testKey(QUEUE_RULE, before.secondary.value!);
    await keys.regenerateKey(QUEUE_RULE, 'secondary');
    const dead = await keys.testKey(QUEUE_RULE, before.secondary.value!);

    // Assess
    expect(valid).toEqual({
      accepted: true,
      status: 401,
      detail:
        '401 the key is valid; the rule lacks Manage (Manage,EntityRead claims required for this operation.)',
    });
    expect(dead).toMatchObject({ accepted: false, status: 401 });
    expect(
      sandbox
        .requests()
        .filter((r) => r.service === 'servicebus')
        .map((r) => r.path),
    ).toEqual(['/orders', '/orders']);
  });

  it('handles topic rules too, and words the connection string with EntityPath', async () => {
    // Prepare
    const { keys, sdk } = estate();

    // Act
    const fresh = await keys.regenerateKey(TOPIC_RULE, 'primary');
    const text = keys.connectionString(TOPIC_RULE, 'a2V5');

    // Assess
    expect((await sdk.topics.listKeys(RG, NS, 'events', 'events-listen')).primaryKey).toBe(fresh.value);
    expect((await keys.testKey(TOPIC_RULE, fresh.value)).accepted).toBe(true);
    expect(text).toBe(
      `Endpoint=sb://${NS}.servicebus.windows.net/;SharedAccessKeyName=events-listen;SharedAccessKey=a2V5;EntityPath=events`,
    );
    expect(keys.connectionString(ROOT, 'a2V5')).toBe(
      `Endpoint=sb://${NS}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=a2V5`,
    );
  });

  it('refuses ids that are not authorization rules before any call; a missing rule is NotFound', async () => {
    // Prepare
    const { sandbox, keys } = estate();

    // Act
    const namespaceOnly = await keys.listKeys(NS_ID).catch((e: unknown) => e);
    const subscriptionRule = await keys
      .listKeys(`${NS_ID}/topics/events/subscriptions/s/authorizationRules/r`)
      .catch((e: unknown) => e);
    const calls = sandbox.requests().length;
    const missing = await keys.listKeys(`${NS_ID}/authorizationRules/nobody`).catch((e: unknown) => e);

    // Assess
    expect(namespaceOnly).toBeInstanceOf(ValidationError);
    expect(subscriptionRule).toBeInstanceOf(ValidationError);
    expect(calls).toBe(0);
    expect(missing).toBeInstanceOf(NotFoundError);
  });
});
