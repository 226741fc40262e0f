/**
 * The Key Vault adapter under Key Vault's service limits, on the sandbox (real SecretClient, real
 * pipeline): a burst over the limit gets 429s; the adapter waits (the `Retry-After` Key Vault may
 * send, or Key Vault's prescribed back-off when it sends none) and succeeds; every call sends at
 * most three requests, however long the throttling lasts (no hammering).
 */
import { describe, expect, it } from 'vitest';
import { KeyVaultSecretVault } from '../../../src/lib/azure/keyVaultSecrets';
import { TransientError } from '../../../src/lib/core/errors';
import { createSandbox, type Sandbox, type Scenario } from '../../../src/local/sandbox';

const VAULT = 'kv-burst';

function estate(throttling: NonNullable<Scenario['keyVault']>['throttling']): {
  sandbox: Sandbox;
  vault: KeyVaultSecretVault;
  vaultUrl: string;
} {
  const sandbox = createSandbox({
    scenario: {
      clock: { start: '2026-01-01T00:00:00Z' },
      keyVault: { throttling, vaults: [{ name: VAULT, secrets: [{ name: 'db', expiresInDays: 10 }] }] },
    },
  });
  return {
    sandbox,
    vault: new KeyVaultSecretVault(sandbox.credential, { httpClient: sandbox.httpClient }),
    vaultUrl: sandbox.keyVault.vaultUrl(VAULT),
  };
}

/** Requests that reached the vault with a token (the 401 challenges are not transactions). */
function transactions(sandbox: Sandbox) {
  return sandbox.keyVault.requests().filter((r) => r.authenticated);
}

/** `n` calls at once; each call's outcome. */
async function burst(vault: KeyVaultSecretVault, vaultUrl: string, n: number) {
  return Promise.all(
    Array.from({ length: n }, () =>
      vault.getSecretProperties(vaultUrl, 'db').then(
        (props) => ({ ok: true as const, version: props?.version }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
    ),
  );
}

describe('KeyVaultSecretVault under Key Vault throttling', () => {
  it('waits the Retry-After of a 429 and succeeds (the SDK throttling retry, maxRetries 2)', async () => {
    // Prepare: 3 transactions per second; 6 calls at once.
    const { sandbox, vault, vaultUrl } = estate({ limit: 3, windowSeconds: 1, retryAfter: true });

    // Act
    const outcomes = await burst(vault, vaultUrl, 6);

    // Assess
    expect(outcomes.every((o) => o.ok)).toBe(true);
    const log = transactions(sandbox);
    const throttled = log.filter((r) => r.status === 429);
    expect(throttled).toHaveLength(3);
    expect(log).toHaveLength(9);
    // Nothing was sent again before the second the 429s asked for.
    const firstThrottle = Math.min(...throttled.map((r) => r.wallMs));
    const resent = log.filter((r) => r.wallMs > firstThrottle && r.status === 200);
    expect(resent).toHaveLength(3);
    expect(Math.min(...resent.map((r) => r.wallMs)) - firstThrottle).toBeGreaterThanOrEqual(990);
  });

  it("backs off by itself when a 429 names no delay (Key Vault's own 429s), then succeeds", async () => {
    // Prepare
    const { sandbox, vault, vaultUrl } = estate({ limit: 3, windowSeconds: 1, retryAfter: false });

    // Act
    const outcomes = await burst(vault, vaultUrl, 6);

    // Assess
    expect(outcomes.filter((o) => !o.ok).map((o) => (o as { error: Error }).error.message)).toEqual([]);
    const log = transactions(sandbox);
    const throttled = log.filter((r) => r.status === 429);
    expect(throttled).toHaveLength(3);
    expect(log).toHaveLength(9);
    const firstThrottle = Math.min(...throttled.map((r) => r.wallMs));
    const resent = log.filter((r) => r.wallMs > firstThrottle && r.status === 200);
    expect(Math.min(...resent.map((r) => r.wallMs)) - firstThrottle).toBeGreaterThanOrEqual(990);
  });

  it.each([
    ['with Retry-After', true],
    ['without Retry-After', false],
  ])(
    'sends at most three requests per call while the vault stays throttled (%s), then fails retryably',
    async (_label, retryAfter) => {
      // Prepare: one transaction per 2 s, 5 calls at once: most calls outlast their retries.
      const { sandbox, vault, vaultUrl } = estate({ limit: 1, windowSeconds: 2, retryAfter });

      // Act
      const outcomes = await burst(vault, vaultUrl, 5);

      // Assess
      const failures = outcomes.filter((o) => !o.ok).map((o) => (o as { error: unknown }).error);
      expect(failures.length).toBeGreaterThan(0);
      for (const failure of failures) {
        expect(failure).toBeInstanceOf(TransientError);
        expect((failure as TransientError).retryable).toBe(true);
        expect((failure as TransientError).metadata.status).toBe(429);
      }
      expect(transactions(sandbox).length).toBeLessThanOrEqual(3 * 5);
    },
  );

  it('stops backing off when the call is aborted, sending nothing more', async () => {
    // Prepare: the vault's only transaction of the window is used up.
    const { sandbox, vault, vaultUrl } = estate({ limit: 1, windowSeconds: 60, retryAfter: false });
    await vault.getSecretProperties(vaultUrl, 'db');
    const controller = new AbortController();

    // Act
    const call = vault.getSecretProperties(vaultUrl, 'db', { abortSignal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const error = await call.then(
      () => undefined,
      (caught: unknown) => caught,
    );

    // Assess
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toMatch(/aborted/);
    expect(transactions(sandbox).map((r) => r.status)).toEqual([200, 429]);
  });
});
