import { describe, expect, it } from 'vitest';
import { checkHealth, type HealthDeps } from '../../../src/lib/app/health';
import { KeyVaultSecretVault } from '../../../src/lib/azure/keyVaultSecrets';
import { parsePolicy } from '../../../src/lib/config/policy';
import { TransientError } from '../../../src/lib/core/errors';
import { silentLogger } from '../../../src/lib/core/logging';
import { createSandbox } from '../../../src/local/sandbox';
import { TestClock } from '../../support/fakes';

const policy = parsePolicy(
  [
    'version: 1',
    'secrets:',
    '  - { vault: kv-real, name: db-password, owner: team-data }',
    '  - { vault: kv-typo, name: api-key, owner: team-web }',
    'notifications:',
    '  defaults: [ops]',
    '  channels: [{ name: ops, type: eventGrid }]',
    '',
  ].join('\n'),
  'health.yaml',
);

function deps(overrides: Partial<HealthDeps> = {}): HealthDeps & { listings: () => number } {
  const sandbox = createSandbox({
    scenario: { clock: { start: '2026-01-01T00:00:00Z' }, keyVault: { vaults: [{ name: 'kv-real' }] } },
  });
  const vault = new KeyVaultSecretVault(sandbox.credential, { httpClient: sandbox.httpClient });
  return {
    state: { ready: async () => {}, ping: async () => {} },
    vault,
    clock: new TestClock(new Date('2026-01-01T00:00:00Z')),
    logger: silentLogger,
    policy,
    managedVaults: policy.secrets.map((s) => s.vaultUrl).filter((v, i, all) => all.indexOf(v) === i),
    environment: 'test',
    platform: 'sandbox',
    vaultCache: new Map(),
    listings: () => sandbox.keyVault.requests().length,
    ...overrides,
  };
}

describe('checkHealth with the real Key Vault adapter on the sandbox', () => {
  it('reports a managed vault that does not resolve as a configuration problem, by name', async () => {
    // Act
    const report = await checkHealth(deps());

    // Assess
    expect(report.status).toBe('unhealthy');
    expect(report.checks).toEqual([
      { name: 'storage', ok: true, detail: 'table storage reachable' },
      expect.objectContaining({ name: 'policy', ok: true }),
      { name: 'vault kv-real.vault.azure.net', ok: true, detail: 'resolves; secrets can be listed' },
      expect.objectContaining({
        name: 'vault kv-typo.vault.azure.net',
        ok: false,
        problem: 'configuration',
        detail: expect.stringContaining('kv-typo.vault.azure.net does not resolve'),
      }),
    ]);
  });

  it('reuses a vault answer for five minutes of the clock, then asks again', async () => {
    // Prepare
    const d = deps();
    await checkHealth(d);
    const afterFirst = d.listings();

    // Act
    await checkHealth(d);
    const afterSecond = d.listings();
    (d.clock as TestClock).advance(5 * 60_000);
    await checkHealth(d);

    // Assess
    expect(afterSecond).toBe(afterFirst);
    expect(d.listings()).toBeGreaterThan(afterSecond);
  });

  it('says storage is a transient problem when it does not answer', async () => {
    // Act
    const report = await checkHealth(
      deps({
        state: {
          ready: async () => {},
          ping: async () => {
            throw new TransientError('table storage unreachable');
          },
        },
      }),
    );

    // Assess
    expect(report.checks[0]).toEqual({
      name: 'storage',
      ok: false,
      detail: 'table storage unreachable',
      problem: 'transient',
    });
  });
});
