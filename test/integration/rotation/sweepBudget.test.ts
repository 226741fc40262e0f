/**
 * The sweep on the sandbox's Key Vault through the real adapter (and the real state on Azurite):
 * it lists the vault once (a transaction per page of 25), lists versions only of the secrets in
 * their window, and keeps every window of its budget (machine time, as Key Vault counts) to the
 * budget's number of transactions.
 */
import { describe, expect, it } from 'vitest';
import { KeyVaultSecretVault } from '../../../src/lib/azure/keyVaultSecrets';
import { silentLogger } from '../../../src/lib/core/logging';
import { createNotifier } from '../../../src/lib/notify/notifier';
import { sweepSecrets } from '../../../src/lib/rotation/sweepSecrets';
import { createSandbox } from '../../../src/local/sandbox';
import { RecordingChannel } from '../runs/support';
import { freshStores } from '../state/helpers';

const VAULT = 'kv-sweep';

/** The most requests inside any half-open window of `windowMs`. */
function peak(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

describe('sweepSecrets on the sandbox Key Vault', () => {
  it('keeps to its Key Vault budget and lists versions only of secrets in their window', async () => {
    // Prepare: 120 secrets, 70 of them inside their 30-day window.
    const sandbox = createSandbox({
      scenario: {
        seed: 'sweep-budget',
        clock: { start: '2026-01-01T00:00:00Z' },
        keyVault: {
          vaults: [
            {
              name: VAULT,
              secrets: Array.from({ length: 120 }, (_, i) => ({
                name: `app-secret-${String(i).padStart(3, '0')}`,
                expiresInDays: i < 70 ? 10 : 200,
              })),
            },
          ],
        },
      },
    });
    const vaultUrl = sandbox.keyVault.vaultUrl(VAULT);
    const stores = await freshStores(sandbox.clock);
    const channel = new RecordingChannel('ops');
    const budget = { transactions: 20, windowMs: 2_000 };

    // Act
    const summary = await sweepSecrets(
      {
        vault: new KeyVaultSecretVault(sandbox.credential, { httpClient: sandbox.httpClient }),
        notifier: createNotifier([{ channel, minSeverity: 'info' }], silentLogger),
        audit: stores.audit,
        idempotency: stores.idempotency,
        rejections: stores.rejections,
        clock: sandbox.clock,
        logger: silentLogger,
        policy: {
          lookup: () => undefined,
          defaultChannels: () => ['ops'],
          managedVaults: () => [vaultUrl],
          vaultAllowed: (url) => url === vaultUrl,
        },
        environment: 'test',
        dryRun: false,
        idempotencyTtlMs: 86_400_000,
        claimLeaseMs: 60_000,
      },
      { actor: 'system:timer', correlationId: 'sweep-budget', attemptId: 'sweep-budget' },
      { budget },
    );

    // Assess
    expect(summary).toMatchObject({ checked: 70, nearExpiry: 70, handled: 70, failures: [] });
    expect(channel.sent).toHaveLength(70);
    const transactions = sandbox.keyVault.requests().filter((r) => r.authenticated);
    expect(transactions.filter((r) => r.path === '/secrets')).toHaveLength(5);
    const versions = transactions.filter((r) => r.path.endsWith('/versions'));
    expect(versions).toHaveLength(70);
    expect(versions.every((r) => Number(r.path.split('/')[2]!.slice('app-secret-'.length)) < 70)).toBe(true);
    expect(transactions.every((r) => r.status === 200)).toBe(true);
    expect(
      peak(
        transactions.map((r) => r.wallMs),
        budget.windowMs,
      ),
    ).toBeLessThanOrEqual(budget.transactions);
  });
});
