import { describe, expect, it } from 'vitest';
import {
  deadLetterChannels,
  findDeadLetterEntity,
  parsePolicy,
  validatePolicy,
} from '../../../src/lib/config/policy';
import {
  checkPolicyAgainstSettings,
  loadSettings,
  serviceBusConnectionOf,
} from '../../../src/lib/config/settings';
import { redactText } from '../../../src/lib/core/redact';

const NS =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/contoso-sb';
const OTHER_NS = NS.replace('contoso-sb', 'other-sb');

const policyWith = (deadLetters: string) => `version: 1
deadLetters:
${deadLetters}
notifications:
  defaults: [ops-events]
  channels:
    - { name: ops-events, type: eventGrid }
    - { name: pager, type: webhook, urlSetting: PAGER_URL }
`;

function problemsOf(text: string): string[] {
  const result = validatePolicy(text, 'test.yaml');
  if (result.ok) throw new Error('expected the policy to be invalid');
  return result.problems;
}

describe('deadLetters in the policy', () => {
  it('normalises a queue and a topic subscription with every default', () => {
    // Act
    const policy = parsePolicy(
      policyWith(`  - { name: orders, namespaceId: ${NS}, queue: orders, owner: team-a }
  - name: billing
    namespaceId: ${NS}
    region: westeurope
    topic: events
    subscription: billing
    topicSubscriptions: [audit]
    owner: team-b
    notify: [pager]
    alerts: { minIntervalMinutes: 5, severity: critical }
    replay:
      maxReplays: 2
      targets: [{ topic: billing-retry }]
      auto: [{ reason: MaxDeliveryCountExceeded, delayMinutes: 3 }]`),
      'p.yaml',
    );

    // Assess
    const [orders, billing] = policy.deadLetters;
    expect(orders).toEqual({
      name: 'orders',
      namespaceId: NS,
      namespace: 'contoso-sb',
      source: { queue: 'orders' },
      path: 'orders',
      topicSubscriptions: [],
      connection: 'STAMPKEEPER_SERVICEBUS',
      owner: 'team-a',
      alerts: { minIntervalMinutes: 15, severity: 'warning' },
      replay: { maxReplays: 3, targets: [], auto: [] },
    });
    expect(billing).toMatchObject({
      source: { topic: 'events', subscription: 'billing' },
      path: 'events/Subscriptions/billing',
      region: 'westeurope',
      topicSubscriptions: ['audit'],
      alerts: { minIntervalMinutes: 5, severity: 'critical' },
      replay: {
        maxReplays: 2,
        targets: [{ type: 'topic', name: 'billing-retry' }],
        auto: [{ reason: 'MaxDeliveryCountExceeded', delayMinutes: 3, maxAttempts: 1 }],
      },
    });
    expect(policy.schedules.deadLetterReport).toBe('0 */15 * * * *');
    expect(findDeadLetterEntity(policy, 'BILLING')?.name).toBe('billing');
    expect(findDeadLetterEntity(policy, 'nope')).toBeUndefined();
    expect(deadLetterChannels(policy, orders!).map((c) => c.name)).toEqual(['ops-events']);
    expect(deadLetterChannels(policy, billing!).map((c) => c.name)).toEqual(['pager']);
  });

  it('reports every problem of a bad entity list with its path', () => {
    // Act
    const problems = problemsOf(
      policyWith(`  - { name: orders, namespaceId: ${NS}, owner: a }
  - { name: orders, namespaceId: ${NS}, queue: q, topic: t, subscription: s, owner: a }
  - { name: Bad_Name, namespaceId: not-an-id, queue: "orders/$deadletterqueue", owner: a }
  - { name: half, namespaceId: ${NS}, topic: t, owner: a }
  - { name: same, namespaceId: ${NS}, queue: q2, owner: a, notify: [nobody] }
  - { name: again, namespaceId: ${NS.toUpperCase().replace('/SUBSCRIPTIONS', '/subscriptions')}, queue: q2, owner: a }
  - { name: other, namespaceId: ${OTHER_NS}, queue: q3, owner: a }
  - name: rules
    namespaceId: ${NS}
    queue: q4
    owner: a
    topicSubscriptions: [x]
    replay: { targets: [{ queue: q4 }, { queue: x, topic: y }], auto: [{ reason: "(", delayMinutes: 1 }, { reason: x, delayMinutes: -1 }] }`),
    );

    // Assess
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^deadLetters\[0\]: give either queue, or topic and subscription/),
        expect.stringMatching(/^deadLetters\[1\]: give either queue/),
        expect.stringMatching(/^deadLetters\[1\]\.name: duplicate of deadLetters\[0\]\.name/),
        expect.stringMatching(/^deadLetters\[2\]\.name: must be 2-32 lowercase letters/),
        expect.stringMatching(/^deadLetters\[2\]\.namespaceId: must be a Service Bus namespace id/),
        expect.stringMatching(/^deadLetters\[2\]\.queue: must be a Service Bus queue or topic name/),
        expect.stringMatching(/^deadLetters\[3\]: a topic entity needs both topic and subscription/),
        expect.stringMatching(/^deadLetters\[4\]\.notify\[0\]: unknown channel "nobody"/),
        expect.stringMatching(/^deadLetters\[5\]: the same entity as deadLetters\[4\]/),
        expect.stringMatching(
          /^deadLetters\[6\]\.connection: connection STAMPKEEPER_SERVICEBUS is the namespace of deadLetters\[0\]/,
        ),
        expect.stringMatching(/^deadLetters\[7\]\.topicSubscriptions: only for a topic subscription/),
        expect.stringMatching(/^deadLetters\[7\]\.replay\.targets\[0\]: is the original entity/),
        expect.stringMatching(
          /^deadLetters\[7\]\.replay\.targets\[1\]: must be \{ queue: <name> \} or \{ topic: <name> \}/,
        ),
        expect.stringMatching(
          /^deadLetters\[7\]\.replay\.auto\[0\]\.reason: is not a valid regular expression/,
        ),
        expect.stringMatching(/^deadLetters\[7\]\.replay\.auto\[1\]\.delayMinutes: /),
      ]),
    );
  });

  it('accepts entities of several namespaces on their own connections', () => {
    // Act
    const policy = parsePolicy(
      policyWith(`  - { name: aa, namespaceId: ${NS}, queue: q, owner: o }
  - { name: bb, namespaceId: ${OTHER_NS}, queue: q, owner: o, connection: OTHER_SB }`),
    );

    // Assess
    expect(policy.deadLetters.map((e) => [e.name, e.connection, e.namespace])).toEqual([
      ['aa', 'STAMPKEEPER_SERVICEBUS', 'contoso-sb'],
      ['bb', 'OTHER_SB', 'other-sb'],
    ]);
  });
});

describe('the Service Bus connections against the settings', () => {
  const policy = parsePolicy(
    policyWith(`  - { name: aa, namespaceId: ${NS}, queue: q, owner: o }
  - { name: bb, namespaceId: ${OTHER_NS}, queue: q, owner: o, connection: OTHER_SB }`),
  );
  const base = {
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT: 'https://t.westeurope-1.eventgrid.azure.net/api/events',
    PAGER_URL: 'https://pager.example.com/hook',
  };

  it('reads the identity-based form first, then a connection string', () => {
    // Prepare
    const settings = loadSettings(
      {
        ...base,
        STAMPKEEPER_SERVICEBUS__fullyQualifiedNamespace: 'contoso-sb.servicebus.windows.net',
        OTHER_SB:
          'Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=k;SharedAccessKey=secret-value-123;UseDevelopmentEmulator=true',
      },
      { appRoot: '/app' },
    );

    // Act
    const problems = checkPolicyAgainstSettings(policy, settings);

    // Assess
    expect(problems).toEqual([]);
    expect(serviceBusConnectionOf(settings, 'STAMPKEEPER_SERVICEBUS')).toEqual({
      fullyQualifiedNamespace: 'contoso-sb.servicebus.windows.net',
    });
    expect(serviceBusConnectionOf(settings, 'OTHER_SB')).toEqual({
      connectionString: expect.stringContaining('Endpoint=sb://127.0.0.1:5672'),
    });
    // The connection string carries a key: registered for redaction by the cross-check.
    expect(redactText(`using ${settings.settingValue('OTHER_SB')}`)).not.toContain('secret-value-123');
  });

  it('names each missing or malformed connection, never its value', () => {
    // Prepare
    const settings = loadSettings(
      {
        ...base,
        STAMPKEEPER_SERVICEBUS__fullyQualifiedNamespace: 'not a host',
        AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      },
      { appRoot: '/app' },
    );
    const noBlob = loadSettings(
      {
        ...base,
        AzureWebJobsStorage: '',
        AzureWebJobsStorage__tableServiceUri: 'https://st.table.core.windows.net',
        AzureWebJobsStorage__queueServiceUri: 'https://st.queue.core.windows.net',
        STAMPKEEPER_SERVICEBUS__fullyQualifiedNamespace: 'contoso-sb.servicebus.windows.net',
        OTHER_SB: 'not-a-connection-string',
      },
      { appRoot: '/app' },
    );

    // Act
    const problems = checkPolicyAgainstSettings(policy, settings);
    const noBlobProblems = checkPolicyAgainstSettings(policy, noBlob);

    // Assess
    expect(problems).toEqual([
      "deadLetters[0].connection (aa): setting STAMPKEEPER_SERVICEBUS__fullyQualifiedNamespace must be the namespace's host name (<namespace>.servicebus.windows.net)",
      "deadLetters[1].connection (bb): setting OTHER_SB__fullyQualifiedNamespace (the namespace's host name, for the app identity) or OTHER_SB (a connection string) is not set",
    ]);
    expect(noBlobProblems).toEqual([
      'deadLetters[1].connection (bb): setting OTHER_SB must be a Service Bus connection string (Endpoint=sb://...)',
      'deadLetters: the archive keeps large bodies in Blob storage: set AzureWebJobsStorage__blobServiceUri (or AzureWebJobsStorage__accountName)',
    ]);
    expect(noBlobProblems.join(' ')).not.toContain('not-a-connection-string');
  });
});
