import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/lib/core/errors';
import { createSandbox, loadScenario } from '../../../src/local/sandbox';

function writeScenario(text: string, ext = 'yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-scenario-'));
  const path = join(dir, `test.scenario.${ext}`);
  writeFileSync(path, text);
  return path;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err.problems;
    throw err;
  }
  throw new Error('expected a ValidationError');
}

describe('sandbox scenarios', () => {
  it('loads the default scenario of npm start: clock, vault, secrets with expiries and tags, subscription', () => {
    // Prepare
    const scenario = loadScenario('sandbox/default.scenario.yaml');

    // Act
    const sandbox = createSandbox({ scenario });
    const estate = sandbox.estate();

    // Assess
    expect(estate.now).toBe('2026-01-01T00:00:00.000Z');
    expect(estate.azure.subscriptionId).toBe('00000000-0000-0000-0000-000000000000');
    expect(estate.azure.resourceGroup).toBe('rg-stampkeeper-sandbox');
    const vault = estate.keyVault.vaults[0]!;
    expect(vault.name).toBe('stampkeeper-sandbox');
    const byName = Object.fromEntries(vault.secrets.map((s) => [s.name, s.versions[0]!]));
    expect(byName['cosmos-primary-key']).toMatchObject({
      expires: '2026-02-15T00:00:00.000Z',
      tags: {
        'stampkeeper-provider': 'cosmosDbKeys',
        'stampkeeper-resource':
          '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-stampkeeper-sandbox/providers/Microsoft.DocumentDB/databaseAccounts/stampkeeper-sandbox-cosmos',
        'stampkeeper-key': 'primary',
        owner: 'team-data',
      },
    });
    expect(byName['storage-account-key']!.expires).toBe('2026-04-01T00:00:00.000Z');
    expect(byName['unmanaged-secret']!.expires).toBe('2026-01-21T00:00:00.000Z');
    expect(estate.eventGrid.subscriptions).toEqual([
      expect.objectContaining({
        vault: '*',
        endpoint: { functionName: 'keyVaultEvents' },
        schema: 'EventGridSchema',
      }),
    ]);
    expect(estate.delivery.duplicateProbability).toBe(0.1);
    expect(sandbox.events()).toEqual([]);
  });

  it('has a certificate-backed secret inside its near-expiry window in the default scenario, and a fixed seed', async () => {
    // Prepare
    const sandbox = createSandbox({ scenario: loadScenario('sandbox/default.scenario.yaml') });
    const again = createSandbox({ scenario: loadScenario('sandbox/default.scenario.yaml') });

    // Act
    const { raised } = await sandbox.settle();

    // Assess
    const secrets = sandbox.estate().keyVault.vaults[0]!.secrets;
    const managed = secrets.filter((s) => s.managed);
    expect(managed.map((s) => s.name)).toEqual(['frontend-tls-cert']);
    expect(managed[0]!.versions[0]).toMatchObject({
      contentType: 'application/x-pkcs12',
      expires: '2026-01-26T00:00:00.000Z',
    });
    expect(raised).toContainEqual(
      expect.objectContaining({
        eventType: 'Microsoft.KeyVault.SecretNearExpiry',
        subject: 'frontend-tls-cert',
      }),
    );
    expect(sandbox.scenario.seed).toBe('stampkeeper-sandbox');
    expect(again.estate().keyVault).toEqual(
      createSandbox({ scenario: loadScenario('sandbox/default.scenario.yaml') }).estate().keyVault,
    );
  });

  it('checks a certificate-backed secret: a boolean, and a certificate content type', () => {
    // Prepare
    const path = writeScenario(`
keyVault:
  vaults:
    - name: kv-certs
      secrets:
        - name: tls-a
          certificate: yes-please
        - name: tls-b
          certificate: true
          contentType: text/plain
        - name: tls-c
          certificate: true
          contentType: application/x-pem-file
`);

    // Act
    const problems = problemsOf(() => loadScenario(path));

    // Assess
    expect(problems).toEqual([
      'keyVault.vaults[0].secrets[0].certificate: must be true or false',
      "keyVault.vaults[0].secrets[1].contentType: a certificate's secret has the content type of its certificate: application/x-pkcs12 or application/x-pem-file",
    ]);
  });

  it('names every wrong path in the file, and does not echo a secret value', () => {
    // Prepare
    const path = writeScenario(`
clock:
  start: not-a-date
keyVault:
  vaults:
    - name: ok-vault
      secrets:
        - name: bad_name!
          value: 42
        - name: twice
          expires: 2026-01-01T00:00:00Z
          expiresInDays: 3
        - name: tagged
          tags: { a: 1 }
    - secrets: []
eventGrid:
  subscriptions:
    - name: s1
      vault: other-vault
      eventTypes: [Microsoft.KeyVault.KeyNearExpiry]
      endpoint: {}
      schema: Custom
delivery:
  duplicateProbability: 2
surprise: true
`);

    // Act
    const problems = problemsOf(() => loadScenario(path));

    // Assess
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^surprise: unknown key/),
        expect.stringMatching(/^clock\.start: must be an ISO 8601/),
        expect.stringMatching(
          /^keyVault\.vaults\[0\]\.secrets\[0\]\.name: 'bad_name!' is not a valid secret name/,
        ),
        expect.stringMatching(/^keyVault\.vaults\[0\]\.secrets\[0\]\.value: must be a string/),
        expect.stringMatching(/^keyVault\.vaults\[0\]\.secrets\[1\]: give either expires or expiresInDays/),
        expect.stringMatching(/^keyVault\.vaults\[0\]\.secrets\[2\]\.tags\.a: tag values must be strings/),
        expect.stringMatching(/^keyVault\.vaults\[1\]\.name: is required/),
        expect.stringMatching(/^eventGrid\.subscriptions\[0\]\.vault: 'other-vault' is not a vault/),
        expect.stringMatching(
          /^eventGrid\.subscriptions\[0\]\.eventTypes\[0\]: 'Microsoft\.KeyVault\.KeyNearExpiry' is not emulated/,
        ),
        expect.stringMatching(/^eventGrid\.subscriptions\[0\]\.endpoint\.functionName: is required/),
        expect.stringMatching(/^eventGrid\.subscriptions\[0\]\.schema: must be one of/),
        expect.stringMatching(/^delivery\.duplicateProbability: must be a number between 0 and 1/),
      ]),
    );
    expect(problems.join('\n')).not.toContain('42');
  });

  it('says which file is unreadable or not YAML', () => {
    // Prepare
    const broken = writeScenario('clock: [unclosed', 'yaml');

    // Act
    const missing = () => loadScenario('/nonexistent/none.scenario.yaml');
    const notYaml = () => loadScenario(broken);

    // Assess
    expect(missing).toThrow(/\/nonexistent\/none\.scenario\.yaml: cannot read the scenario file \(ENOENT\)/);
    expect(notYaml).toThrow(
      new RegExp(`${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid YAML/JSON`),
    );
  });

  it('accepts JSON scenarios and refuses too many tags (Key Vault allows 15)', () => {
    // Prepare
    const tags = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, 'v']));
    const path = writeScenario(
      JSON.stringify({ keyVault: { vaults: [{ name: 'json-vault', secrets: [{ name: 's', tags }] }] } }),
      'json',
    );

    // Act
    const problems = problemsOf(() => loadScenario(path));

    // Assess
    expect(problems).toEqual([
      "keyVault.vaults[0].secrets[0].tags: at most 15 tags (Key Vault's limit), got 16",
    ]);
  });

  it('validates scenarios given in code too', () => {
    // Prepare
    const scenario = { delivery: { maxAttempts: 0 } };

    // Act
    const problems = problemsOf(() => createSandbox({ scenario }));

    // Assess
    expect(problems).toEqual(['delivery.maxAttempts: must be an integer from 1 to 30']);
  });

  it('defaults the per-attempt delivery timeout to Event Grid 30 s and refuses a non-positive one', () => {
    // Prepare
    const bad = { delivery: { timeoutMs: 0 } };

    // Act
    const defaults = createSandbox().scenario.delivery;
    const problems = problemsOf(() => createSandbox({ scenario: bad }));

    // Assess
    expect(defaults.timeoutMs).toBe(30_000);
    expect(problems).toEqual([
      'delivery.timeoutMs: must be an integer number of milliseconds from 1 to 2147483647',
    ]);
  });
});
