import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Ajv from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  channelsFor,
  findManagedSecret,
  loadPolicy,
  parsePolicy,
  validatePolicy,
  vaultUrlOf,
} from '../../../src/lib/config/policy';
import { ConfigurationError } from '../../../src/lib/core/errors';

const POLICY_DIR = join(__dirname, '..', '..', '..', 'policy');
const BUNDLED = join(POLICY_DIR, 'stampkeeper.policy.yaml');

function problemsOf(text: string): string[] {
  const result = validatePolicy(text, 'test.yaml');
  if (result.ok) throw new Error('expected the policy to be invalid');
  return result.problems;
}

const VALID = `version: 1
secrets:
  - vault: contoso-kv
    name: cosmos-primary-key
    owner: team-data
    notify: [ops-teams]
    rotation: { provider: manual }
  - vault: https://Contoso-Payments-KV.vault.azure.net/
    name: sb-sas
    owner: team-payments
schedules:
  secretSweep: "0 0 */6 * * *"
notifications:
  defaults: [ops-events]
  channels:
    - { name: ops-events, type: eventGrid }
    - { name: ops-teams, type: teams, urlSetting: TEAMS_WEBHOOK_URL }
    - { name: pager, type: webhook, urlSetting: PAGER_WEBHOOK_URL, minSeverity: warning }
`;

describe('the bundled policy', () => {
  it('is valid and names the sandbox secrets and channels', async () => {
    // Act
    const policy = await loadPolicy(BUNDLED);
    // Assess
    expect(policy.secrets.map((s) => [s.vaultUrl, s.name, s.owner])).toEqual([
      ['https://stampkeeper-sandbox.vault.azure.net', 'cosmos-primary-key', 'team-data'],
      ['https://stampkeeper-sandbox.vault.azure.net', 'storage-account-key', 'team-platform'],
    ]);
    expect(policy.notifications.defaults).toEqual(['ops-events', 'ops-teams']);
    expect(policy.notifications.channels).toEqual([
      { name: 'ops-events', type: 'eventGrid', minSeverity: 'info' },
      { name: 'ops-teams', type: 'teams', urlSetting: 'TEAMS_WEBHOOK_URL', minSeverity: 'info' },
    ]);
    expect(policy.schedules.secretSweep).toBe('0 0 */6 * * *');
  });

  it('and every example except the invalid one validate against the published JSON Schema too', async () => {
    // Prepare: the schema as an editor would use it, independently of the app's validator.
    const schema = JSON.parse(await readFile(join(POLICY_DIR, 'stampkeeper.policy.schema.json'), 'utf8'));
    const ajv = new Ajv({ strict: false });
    const validate = ajv.compile(schema);
    // Act
    const results = await Promise.all(
      ['stampkeeper.policy.yaml', 'examples/full.policy.yaml', 'examples/invalid.policy.yaml'].map(
        async (f) => validate(parseYaml(await readFile(join(POLICY_DIR, f), 'utf8'))),
      ),
    );
    // Assess
    expect(results).toEqual([true, true, false]);
  });

  it('carries the yaml-language-server schema line for editors', async () => {
    const text = await readFile(BUNDLED, 'utf8');
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=./stampkeeper.policy.schema.json');
  });
});

describe('parsePolicy', () => {
  it('fills defaults for omitted sections and options', () => {
    const policy = parsePolicy('version: 1\nsecrets: [{ vault: kv-one, name: s, owner: o }]\n', 'min.yaml');
    expect(policy).toEqual({
      version: 1,
      secrets: [
        {
          vault: 'kv-one',
          vaultUrl: 'https://kv-one.vault.azure.net',
          name: 's',
          owner: 'o',
          rotation: { provider: 'manual' },
        },
      ],
      deadLetters: [],
      playbooks: [],
      schedules: {
        secretSweep: '0 0 */6 * * *',
        deadLetterReport: '0 */15 * * * *',
        remediationScaleBack: '0 */5 * * * *',
      },
      notifications: { defaults: [], channels: [] },
      checks: {},
      monitoring: { workspaces: [] },
      gates: [],
      source: 'min.yaml',
    });
  });

  it('accepts JSON, a subset of YAML', () => {
    const policy = parsePolicy(
      '{"version": 1, "deadLetters": [{"name": "qq", "queue": "q", "owner": "o", "namespaceId": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/sb-one"}], "playbooks": []}',
      'p.json',
    );
    expect(policy.deadLetters.map((e) => [e.name, e.path, e.namespace])).toEqual([['qq', 'q', 'sb-one']]);
  });

  it('reports every problem of the invalid example with its path and line', async () => {
    // Act
    const error = await loadPolicy(join(POLICY_DIR, 'examples', 'invalid.policy.yaml')).catch(
      (e: unknown) => e,
    );
    // Assess
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).problems).toEqual([
      expect.stringMatching(
        /^secrets\[1\]\.vault: must be a vault name .* or a Key Vault https URL .*\(line 10\)$/,
      ),
      'secrets[1].notify[0]: unknown channel "ops-sms" (defined: ops-events) (line 13)',
      'secrets[2]: duplicate of secrets[0] (vault https://contoso-kv.vault.azure.net, secret Cosmos-Primary-Key) (line 14)',
      expect.stringMatching(
        /^schedules\.secretSweep: must be an NCRONTAB expression with 6 fields.*\(line 18\)$/,
      ),
      'notifications.channels[1].name: duplicate channel name "ops-events" (first defined at notifications.channels[0]) (line 23)',
    ]);
    expect((error as Error).message).toContain('examples/invalid.policy.yaml (5 problems)');
  });

  it('names vaults only on Key Vault DNS suffixes: another https host is refused', () => {
    // Act
    const problemsOf = (vault: string): string[] => {
      try {
        parsePolicy(`version: 1\nsecrets: [{ vault: "${vault}", name: s, owner: o }]\n`, 'v.yaml');
        return [];
      } catch (e) {
        return (e as ConfigurationError).problems;
      }
    };

    // Assess
    expect(problemsOf('https://attacker.example.com')).toEqual([
      expect.stringMatching(/^secrets\[0\]\.vault: must be a vault name .* or a Key Vault https URL/),
    ]);
    expect(problemsOf('https://kv-one.vault.azure.net:8443')).toHaveLength(1);
    expect(problemsOf('https://kv-one.vault.usgovcloudapi.net')).toEqual([]);
    expect(problemsOf('https://kv-one.vault.azure.net/')).toEqual([]);
  });

  it('reports schema violations with the path of the offending property', () => {
    const problems = problemsOf(`version: 2
secrets:
  - vault: contoso-kv
    name: "has spaces"
    rotation: { provider: cosmosDb }
    colour: blue
unknownSection: {}
notifications:
  channels:
    - { name: hook, type: webhook }
    - { name: grid, type: eventGrid, urlSetting: X }
    - { name: sms, type: sms }
    - { name: hook2, type: webhook, urlSetting: "1BAD", minSeverity: loud }
`);
    expect(problems).toEqual([
      'version: must be 1 (the only policy format version) (line 1)',
      'secrets[0].owner: is required (line 3)',
      'secrets[0].name: must be a Key Vault secret name (1-127 letters, digits and dashes) (line 4)',
      'secrets[0].rotation.provider: must be one of: manual, cosmosDbKeys, storageAccountKeys, serviceBusSasKeys (line 5)',
      'secrets[0].colour: is not allowed here (allowed: vault, name, owner, notify, rotation) (line 6)',
      'unknownSection: is not allowed here (allowed: $schema, version, secrets, deadLetters, playbooks, schedules, notifications, checks, monitoring, gates) (line 7)',
      'notifications.channels[0].urlSetting: is required (line 10)',
      'notifications.channels[1].urlSetting: is not allowed here (allowed: name, type, minSeverity) (line 11)',
      'notifications.channels[2].type: must be one of: eventGrid, teams, webhook (line 12)',
      "notifications.channels[3].urlSetting: must be the name of an app setting (letters, digits and '_', not starting with a digit) (line 13)",
      'notifications.channels[3].minSeverity: must be one of: info, warning, critical (line 13)',
    ]);
  });

  it('reports unknown channels in defaults and duplicate notify entries', () => {
    const problems = problemsOf(`version: 1
secrets:
  - { vault: kv-one, name: a, owner: o, notify: [x, x] }
notifications:
  defaults: [nowhere]
  channels: []
`);
    expect(problems).toEqual([
      'secrets[0].notify[1]: duplicates item 0 (line 3)',
      'secrets[0].notify[0]: unknown channel "x" (defined: none) (line 3)',
      'secrets[0].notify[1]: unknown channel "x" (defined: none) (line 3)',
      'notifications.defaults[0]: unknown channel "nowhere" (defined: none) (line 5)',
    ]);
  });

  it('reports an out-of-range NCRONTAB field by name', () => {
    const problems = problemsOf('version: 1\nschedules:\n  secretSweep: "0 61 * * Foo *"\n');
    expect(problems).toEqual([
      'schedules.secretSweep: invalid NCRONTAB: minute field "61" is out of range 0-59; month field "Foo" is not a number 1-12 or a name (jan, feb, mar, apr, may, jun, jul, aug, sep, oct, nov, dec) (line 3)',
    ]);
  });

  it('reports YAML syntax errors with line and column, and duplicate keys', () => {
    expect(problemsOf('version: 1\nsecrets:\n  - vault: a\n   name: b\n')).toEqual([
      expect.stringMatching(/^line 4, column \d+: YAML syntax error: /),
    ]);
    expect(problemsOf('version: 1\nversion: 1\n')).toEqual([
      'line 2, column 1: YAML syntax error: Map keys must be unique',
    ]);
  });

  it('rejects a document that is not a mapping', () => {
    expect(problemsOf('')).toEqual(['(root): must be a mapping with at least `version: 1`']);
    expect(problemsOf('- version: 1\n')).toEqual([
      '(root): must be a mapping with at least `version: 1` (line 1)',
    ]);
  });

  it('throws a ConfigurationError whose message lists the problems', () => {
    expect(() => parsePolicy('version: 1\nsecrets: {}\n', 'obj.yaml')).toThrowError(
      /Invalid policy obj\.yaml \(1 problem\):\n {2}- secrets: must be an array \(line 2\)/,
    );
  });
});

describe('policy helpers', () => {
  const policy = parsePolicy(VALID, 'valid.yaml');

  it('vaultUrlOf normalises names and URLs', () => {
    expect(vaultUrlOf('Contoso-KV')).toBe('https://contoso-kv.vault.azure.net');
    expect(vaultUrlOf('https://Contoso-KV.vault.azure.net/')).toBe('https://contoso-kv.vault.azure.net');
    expect(vaultUrlOf('https://kv.vault.usgovcloudapi.net')).toBe('https://kv.vault.usgovcloudapi.net');
  });

  it('findManagedSecret matches by vault name or URL, case-insensitively', () => {
    expect(findManagedSecret(policy, 'contoso-kv', 'cosmos-primary-key')?.owner).toBe('team-data');
    expect(
      findManagedSecret(policy, 'https://CONTOSO-KV.vault.azure.net/', 'Cosmos-Primary-Key')?.owner,
    ).toBe('team-data');
    expect(findManagedSecret(policy, 'contoso-payments-kv', 'sb-sas')?.owner).toBe('team-payments');
    expect(findManagedSecret(policy, 'contoso-kv', 'sb-sas')).toBeUndefined();
    expect(
      findManagedSecret(policy, 'https://contoso-kv.vault.azure.net.evil.example', 'cosmos-primary-key'),
    ).toBeUndefined();
    expect(findManagedSecret(policy, 'http://[bad', 'x')).toBeUndefined();
  });

  it('channelsFor uses the secret notify list, else the defaults, and filters by severity', () => {
    const cosmos = findManagedSecret(policy, 'contoso-kv', 'cosmos-primary-key');
    const sas = findManagedSecret(policy, 'contoso-payments-kv', 'sb-sas');
    expect(channelsFor(policy, cosmos).map((c) => c.name)).toEqual(['ops-teams']);
    expect(channelsFor(policy, sas).map((c) => c.name)).toEqual(['ops-events']);
    expect(channelsFor(policy, undefined).map((c) => c.name)).toEqual(['ops-events']);
    expect(channelsFor(policy, { notify: [] })).toEqual([]);
    expect(channelsFor(policy, { notify: ['pager', 'ops-events'] }, 'info').map((c) => c.name)).toEqual([
      'ops-events',
    ]);
    expect(channelsFor(policy, { notify: ['pager', 'ops-events'] }, 'critical').map((c) => c.name)).toEqual([
      'pager',
      'ops-events',
    ]);
  });
});
