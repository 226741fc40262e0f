import { describe, expect, it } from 'vitest';
import { consumerName, type Policy, parsePolicy } from '../../../src/lib/config/policy';
import { checkPolicyAgainstSettings, validateSettings } from '../../../src/lib/config/settings';
import type { ConfigurationError } from '../../../src/lib/core/errors';

const SUB = '00000000-0000-0000-0000-000000000000';
const COSMOS = `/subscriptions/${SUB}/resourceGroups/rg-data/providers/Microsoft.DocumentDB/databaseAccounts/contoso-cosmos`;
const RULE = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/contoso-sb/queues/orders/authorizationRules/send`;

function policy(rotation: string, extra = ''): string {
  return `version: 1\nsecrets:\n  - vault: kv-one\n    name: db-key\n    owner: team\n    rotation: ${rotation}\n${extra}`;
}

function problemsOf(text: string): string[] {
  try {
    parsePolicy(text, 'p.yaml');
    return [];
  } catch (error) {
    return (error as ConfigurationError).problems;
  }
}

describe('rotation policy', () => {
  it('fills the defaults of a key rotation: key published, 90 days, alternate, no approval, no consumers', () => {
    // Act
    const parsed = parsePolicy(policy(`{ provider: cosmosDbKeys, resourceId: "${COSMOS}" }`), 'p.yaml');

    // Assess
    expect(parsed.secrets[0]!.rotation).toEqual({
      provider: 'cosmosDbKeys',
      resourceId: COSMOS,
      keyPair: 'readWrite',
      publish: 'key',
      validityDays: 90,
      mode: 'alternate',
      approval: false,
      consumers: [],
    });
  });

  it('reads every consumer type, with their defaults and names', () => {
    // Act
    const parsed = parsePolicy(
      policy(`
      provider: serviceBusSasKeys
      resourceId: "${RULE}"
      mode: alternate
      consumers:
        - { type: aksDeployment, clusterId: "/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-1", namespace: orders, deployment: orders-api }
        - { type: webhook, urlSetting: ROLL_HOOK }
        - { type: waitForReload, name: csi, waitMinutes: 3 }`),
      'p.yaml',
    );

    // Assess
    const rotation = parsed.secrets[0]!.rotation;
    if (rotation.provider === 'manual') throw new Error('expected a key rotation');
    expect(rotation.consumers).toEqual([
      expect.objectContaining({ type: 'aksDeployment', timeoutMinutes: 10 }),
      { type: 'webhook', name: 'webhook-2', urlSetting: 'ROLL_HOOK', completion: 'poll', timeoutMinutes: 30 },
      { type: 'waitForReload', name: 'csi', waitMinutes: 3 },
    ]);
    expect(rotation.consumers.map(consumerName)).toEqual(['aks-1/orders/orders-api', 'webhook-2', 'csi']);
  });

  it('refuses a resource id of another provider, unknown fields and bad windows, naming the path', () => {
    expect(problemsOf(policy(`{ provider: storageAccountKeys, resourceId: "${COSMOS}" }`))).toEqual([
      expect.stringMatching(/^secrets\[0\]\.rotation\.resourceId: must be a storage account id/),
    ]);
    expect(
      problemsOf(
        policy(`{ provider: cosmosDbKeys, resourceId: "${COSMOS}", keyPair: readOnly, colour: red }`),
      ),
    ).toEqual([expect.stringMatching(/^secrets\[0\]\.rotation\.colour: is not allowed here/)]);
    expect(
      problemsOf(
        policy(`{ provider: cosmosDbKeys, resourceId: "${COSMOS}", window: { startHour: 3, endHour: 3 } }`),
      ),
    ).toEqual([
      expect.stringMatching(/^secrets\[0\]\.rotation\.window: startHour and endHour are the same hour/),
    ]);
    expect(problemsOf(policy(`{ provider: manual, resourceId: "${COSMOS}" }`))).toEqual([
      expect.stringMatching(/^secrets\[0\]\.rotation\.resourceId: is not allowed here/),
    ]);
  });

  it('refuses a validity inside the 30-day near-expiry window and an AKS timeout the run command cannot wait', () => {
    // Prepare
    const cluster = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-1`;

    // Act
    const shortValidity = problemsOf(
      policy(`{ provider: cosmosDbKeys, resourceId: "${COSMOS}", validityDays: 30 }`),
    );
    const longTimeout = problemsOf(
      policy(`
      provider: cosmosDbKeys
      resourceId: "${COSMOS}"
      consumers:
        - { type: aksDeployment, clusterId: "${cluster}", namespace: orders, deployment: api, timeoutMinutes: 90 }`),
    );
    const bounds = problemsOf(
      policy(`
      provider: cosmosDbKeys
      resourceId: "${COSMOS}"
      validityDays: 37
      consumers:
        - { type: aksDeployment, clusterId: "${cluster}", namespace: orders, deployment: api, timeoutMinutes: 60 }`),
    );

    // Assess
    expect(shortValidity).toEqual([
      expect.stringMatching(/^secrets\[0\]\.rotation\.validityDays: must be >= 37/),
    ]);
    expect(longTimeout).toEqual([
      expect.stringMatching(/^secrets\[0\]\.rotation\.consumers\[0\]\.timeoutMinutes: must be <= 60/),
    ]);
    expect(bounds).toEqual([]);
  });

  it("refuses two secrets rotating the same key pair (they would regenerate each other's keys)", () => {
    // Act
    const problems = problemsOf(
      `${policy(`{ provider: cosmosDbKeys, resourceId: "${COSMOS}" }`)}  - vault: kv-one\n    name: other-key\n    owner: team\n    rotation: { provider: cosmosDbKeys, resourceId: "${COSMOS.replace('rg-data', 'RG-DATA')}" }\n`,
    );

    // Assess
    expect(problems).toEqual([
      expect.stringMatching(/^secrets\[1\]\.rotation\.resourceId: rotates the same keys as secrets\[0\]/),
    ]);
    // The read-only pair of the same account is another pair.
    expect(
      problemsOf(
        `${policy(`{ provider: cosmosDbKeys, resourceId: "${COSMOS}" }`)}  - vault: kv-one\n    name: ro-key\n    owner: team\n    rotation: { provider: cosmosDbKeys, keyPair: readOnly, resourceId: "${COSMOS}" }\n`,
      ),
    ).toEqual([]);
  });

  it('needs every webhook consumer URL setting at start-up, and never echoes it', () => {
    // Prepare
    const parsed: Policy = parsePolicy(
      policy(
        `{ provider: cosmosDbKeys, resourceId: "${COSMOS}", consumers: [{ type: webhook, urlSetting: ROLL_HOOK }] }`,
      ),
      'p.yaml',
    );
    const settings = (env: Record<string, string>) => {
      const result = validateSettings({ AzureWebJobsStorage: 'UseDevelopmentStorage=true', ...env });
      if (!result.ok) throw new Error(result.problems.join('; '));
      return result.settings;
    };

    // Act
    const missing = checkPolicyAgainstSettings(parsed, settings({}));
    const plain = checkPolicyAgainstSettings(
      parsed,
      settings({ ROLL_HOOK: 'http://example.com/roll?sig=s3cr3t-token' }),
    );
    const good = checkPolicyAgainstSettings(parsed, settings({ ROLL_HOOK: 'https://example.com/roll' }));

    // Assess
    expect(missing).toEqual([
      'secrets[0].rotation.consumers[0].urlSetting: setting ROLL_HOOK is not set (expected an https URL)',
    ]);
    expect(plain).toEqual([
      'secrets[0].rotation.consumers[0].urlSetting: setting ROLL_HOOK must be an https URL (http only on localhost)',
    ]);
    expect(JSON.stringify(plain)).not.toContain('s3cr3t-token');
    expect(good).toEqual([]);
  });
  it('refuses revoke mode with a consumer whose roll would not prove it moved, naming each path', () => {
    // Prepare
    const site = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Web/sites/app-orders`;
    const app = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.App/containerApps/ca-orders`;
    const cluster = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-1`;
    const consumers = (mode: string, health = '') => `
      provider: cosmosDbKeys
      resourceId: "${COSMOS}"
      mode: ${mode}
      consumers:
        - { type: aksDeployment, clusterId: "${cluster}", namespace: orders, deployment: orders-api }
        - { type: webhook, urlSetting: ROLL_HOOK, completion: callback }
        - { type: appService, resourceId: "${site}"${health} }
        - { type: containerApp, resourceId: "${app}"${health} }
        - { type: waitForReload, name: csi, waitMinutes: 3${health} }`;

    // Act
    const refused = problemsOf(policy(consumers('revoke')));
    const proven = problemsOf(policy(consumers('revoke', ', healthUrlSetting: HEALTH_URL')));
    const alternate = problemsOf(policy(consumers('alternate')));

    // Assess
    expect(refused).toEqual([
      expect.stringMatching(
        /^secrets\[0\]\.rotation\.consumers\[2\]: mode revoke needs proof .*App Service restart.*healthUrlSetting/,
      ),
      expect.stringMatching(
        /^secrets\[0\]\.rotation\.consumers\[3\]: mode revoke needs proof .*Container App.*healthUrlSetting/,
      ),
      expect.stringMatching(
        /^secrets\[0\]\.rotation\.consumers\[4\]: mode revoke needs proof .*wait for reload.*healthUrlSetting/,
      ),
    ]);
    expect(proven).toEqual([]);
    expect(alternate).toEqual([]);
  });
});
