/**
 * `npm run infra:params`: the policy's targets as the Bicep's parameter. The committed file must be
 * what the script makes of the committed policy, so the two cannot drift.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_OUT,
  derivePolicyTargets,
  generatePolicyTargets,
  ROTATION_ROLES,
  vaultNameOf,
} from '../../../scripts/infra-params';
import { loadPolicy, validatePolicy } from '../../../src/lib/config/policy';
import { ConfigurationError } from '../../../src/lib/core/errors';
import { ROOT } from './bicep';

describe('npm run infra:params', () => {
  it('has committed exactly what the script makes of the committed policy', async () => {
    // Act
    const { outPath, text } = await generatePolicyTargets({ rootDir: ROOT });
    const committed = await readFile(outPath, 'utf8');

    // Assess
    expect(outPath).toBe(join(ROOT, DEFAULT_OUT));
    expect(committed, 'infra/policy.targets.json is out of date: run npm run infra:params').toBe(text);
  });

  it('lists each vault once with its secrets and the role their rotation needs, and what the channels need', async () => {
    // Prepare
    const policy = await loadPolicy(join(ROOT, 'policy/examples/full.policy.yaml'));

    // Act
    const targets = derivePolicyTargets(policy, 'policy/examples/full.policy.yaml');

    // Assess
    expect(targets.vaults).toEqual([
      {
        // Key rotations publish new versions here: the strongest role any of its secrets needs.
        name: 'contoso-kv',
        url: 'https://contoso-kv.vault.azure.net',
        role: 'keyVaultSecretsOfficer',
        secrets: ['cosmos-primary-key', 'legacy-api-key', 'manual-api-key', 'storage-key'],
      },
      {
        name: 'contoso-payments-kv',
        url: 'https://contoso-payments-kv.vault.azure.net',
        role: 'keyVaultSecretsOfficer',
        secrets: ['servicebus-send-sas'],
      },
    ]);
    expect(targets.notifications).toEqual({
      eventGridTopic: true,
      // Channels' webhook URLs, and the rotation consumers' (a webhook roll's URL is a credential too).
      urlSettings: ['PAGER_WEBHOOK_URL', 'REPORTING_ROLL_WEBHOOK_URL', 'TEAMS_WEBHOOK_URL'],
    });
    expect(targets.policy).toBe('policy/examples/full.policy.yaml');
  });

  it('gives the dead-letter entities exactly the Service Bus roles they need, per namespace and connection', async () => {
    // Prepare: a queue with a replay target and a region; a topic subscription with two others.
    const policy = await loadPolicy(join(ROOT, 'policy/examples/full.policy.yaml'));

    // Act
    const { serviceBus } = derivePolicyTargets(policy, 'policy/examples/full.policy.yaml');

    // Assess
    const ns =
      '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-msg/providers/Microsoft.ServiceBus/namespaces/contoso-sb';
    expect(serviceBus).toEqual({
      namespaces: [
        {
          id: ns,
          subscriptionId: '00000000-0000-0000-0000-000000000000',
          resourceGroup: 'rg-msg',
          name: 'contoso-sb',
          queueRoles: [
            { queue: 'payments-retry', role: 'serviceBusDataSender' },
            { queue: 'payments', role: 'serviceBusDataReceiver' },
            { queue: 'payments', role: 'serviceBusDataSender' },
          ],
          // Replays of a subscription's dead letters go through its topic.
          topicRoles: [{ topic: 'events', role: 'serviceBusDataSender' }],
          // Its own dead letters, and the other subscriptions' rules (read before a topic replay).
          subscriptionRoles: [
            { topic: 'events', subscription: 'audit', role: 'serviceBusDataReceiver' },
            { topic: 'events', subscription: 'billing', role: 'serviceBusDataReceiver' },
            { topic: 'events', subscription: 'shipping', role: 'serviceBusDataReceiver' },
          ],
          // payments names its region: the depth report reads the namespace's metrics.
          metricsReader: true,
        },
      ],
      connections: [{ setting: 'STAMPKEEPER_SERVICEBUS', namespace: 0 }],
    });
  });

  it('needs no topic and no setting for a policy without channels', () => {
    // Prepare
    const validation = validatePolicy(
      'version: 1\nsecrets:\n  - { vault: kv-one, name: a, owner: o }\n',
      'inline',
    );
    if (!validation.ok) throw new Error(validation.problems.join('; '));

    // Act
    const targets = derivePolicyTargets(validation.policy, 'inline');

    // Assess
    expect(targets.notifications).toEqual({ eventGridTopic: false, urlSettings: [] });
    expect(targets.vaults.map((v) => v.name)).toEqual(['kv-one']);
  });

  it('gives manual rotation the read-only Key Vault Reader role', () => {
    expect(ROTATION_ROLES.manual).toBe('keyVaultReader');
  });

  it('names vaults by their URL, and refuses a URL that is not a Key Vault', () => {
    expect(vaultNameOf('https://contoso-kv.vault.azure.net')).toBe('contoso-kv');
    expect(vaultNameOf('https://Contoso-KV.vault.azure.cn/')).toBe('contoso-kv');
    expect(() => vaultNameOf('https://127.0.0.1:8443')).toThrow(ConfigurationError);
    expect(() => vaultNameOf('https://example.com')).toThrow(/not a Key Vault URL/);
  });
});
