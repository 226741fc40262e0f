/**
 * Key Vault's service limits in the sandbox: 4,000 transactions per 10 s per vault by default; over
 * the limit a 429 `Throttled` (the body Key Vault sends), which does not count; `Retry-After` only
 * when the scenario asks for it (Key Vault's own 429s were seen without one).
 */
import { createHttpHeaders, createPipelineRequest, RestError } from '@azure/core-rest-pipeline';
import { SecretClient } from '@azure/keyvault-secrets';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/lib/core/errors';
import { createSandbox, type Sandbox, type Scenario } from '../../../src/local/sandbox';
import { KEY_VAULT_LIMITS, VaultThrottle } from '../../../src/local/sandbox/keyvault/throttle';
import { resolveScenario } from '../../../src/local/sandbox/scenario';

const VAULT = 'kv-throttle';
const OTHER = 'kv-other';

function sandboxWith(throttling: NonNullable<Scenario['keyVault']>['throttling']): Sandbox {
  return createSandbox({
    scenario: {
      seed: 'throttle',
      clock: { start: '2026-01-01T00:00:00Z' },
      keyVault: {
        throttling,
        vaults: [
          { name: VAULT, secrets: [{ name: 'db', value: 'throttle-test-value-1' }] },
          { name: OTHER, secrets: [{ name: 'db', value: 'throttle-test-value-2' }] },
        ],
      },
    },
  });
}

async function listVersions(sandbox: Sandbox, vault = VAULT) {
  const token = await sandbox.credential.getToken('https://vault.azure.net/.default');
  const response = await sandbox.httpClient.sendRequest(
    createPipelineRequest({
      url: `${sandbox.keyVault.vaultUrl(vault)}/secrets/db/versions?api-version=2025-07-01`,
      headers: createHttpHeaders({ authorization: `Bearer ${token!.token}` }),
    }),
  );
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    json: response.bodyAsText ? JSON.parse(response.bodyAsText) : undefined,
  };
}

describe('VaultThrottle', () => {
  it('serves `limit` transactions per sliding window per vault; throttled ones do not count', () => {
    // Prepare
    let now = 1_000_000;
    const throttle = new VaultThrottle({ limit: 3, windowMs: 10_000, retryAfter: false }, () => now);

    // Act
    const first = [throttle.take(VAULT), throttle.take(VAULT)];
    now += 4_000;
    const third = throttle.take(VAULT);
    const over = [throttle.take(VAULT), throttle.take(VAULT.toUpperCase())];
    const other = throttle.take(OTHER);
    now += 6_000; // the first two leave the window
    const freed = [throttle.take(VAULT), throttle.take(VAULT)];
    const again = throttle.take(VAULT);

    // Assess
    expect(first).toEqual([{ throttled: false }, { throttled: false }]);
    expect(third).toEqual({ throttled: false });
    expect(over).toEqual([
      { throttled: true, retryAfterMs: 6_000 },
      { throttled: true, retryAfterMs: 6_000 },
    ]);
    expect(other).toEqual({ throttled: false });
    expect(freed).toEqual([{ throttled: false }, { throttled: false }]);
    expect(again).toEqual({ throttled: true, retryAfterMs: 4_000 });
  });
});

describe('sandbox Key Vault throttling', () => {
  it('is on by default with Key Vault limits, and out of the seed', () => {
    // Prepare
    const base = { keyVault: { vaults: [{ name: VAULT }] } };

    // Act
    const byDefault = resolveScenario(base);
    const off = resolveScenario({ keyVault: { ...base.keyVault, throttling: false } });
    const custom = resolveScenario({
      keyVault: { ...base.keyVault, throttling: { limit: 5, retryAfter: true } },
    });

    // Assess
    expect(byDefault.keyVault.throttling).toEqual({ limit: 4000, windowMs: 10_000, retryAfter: false });
    expect(KEY_VAULT_LIMITS).toEqual({ limit: 4000, windowMs: 10_000, retryAfter: false });
    expect(off.keyVault.throttling).toBe(false);
    expect(custom.keyVault.throttling).toEqual({ limit: 5, windowMs: 10_000, retryAfter: true });
    expect(new Set([byDefault.seed, off.seed, custom.seed]).size).toBe(1);
  });

  it('refuses a malformed throttling section, naming every wrong field', () => {
    // Act
    let error: unknown;
    try {
      resolveScenario({
        keyVault: { throttling: { limit: 0, windowSeconds: -1, retryAfter: 'yes', burst: 3 }, vaults: [] },
      });
    } catch (caught) {
      error = caught;
    }

    // Assess
    expect(error).toBeInstanceOf(ValidationError);
    const problems = (error as ValidationError).problems.join('\n');
    expect(problems).toContain('keyVault.throttling.limit');
    expect(problems).toContain('keyVault.throttling.windowSeconds');
    expect(problems).toContain('keyVault.throttling.retryAfter');
    expect(problems).toContain('keyVault.throttling.burst');
  });

  it('answers 429 Throttled over the limit, per vault, without Retry-After (as Key Vault did)', async () => {
    // Prepare
    const sandbox = sandboxWith({ limit: 2, windowSeconds: 60 });

    // Act
    const answers = [await listVersions(sandbox), await listVersions(sandbox), await listVersions(sandbox)];
    const other = await listVersions(sandbox, OTHER);

    // Assess
    expect(answers.map((a) => a.status)).toEqual([200, 200, 429]);
    expect(answers[2]!.json).toEqual({
      error: {
        code: 'Throttled',
        message:
          'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached',
      },
    });
    expect(answers[2]!.retryAfter).toBeUndefined();
    expect(other.status).toBe(200);
    const log = sandbox.keyVault.requests();
    expect(log.map((r) => r.status)).toEqual([200, 200, 429, 200]);
    expect(log.every((r) => Number.isInteger(r.wallMs) && Math.abs(r.wallMs - Date.now()) < 60_000)).toBe(
      true,
    );
  });

  it('sends Retry-After (whole seconds until a slot frees) when the scenario asks for it', async () => {
    // Prepare
    const sandbox = sandboxWith({ limit: 1, windowSeconds: 30, retryAfter: true });

    // Act
    await listVersions(sandbox);
    const throttled = await listVersions(sandbox);

    // Assess
    expect(throttled.status).toBe(429);
    const seconds = Number(throttled.retryAfter);
    expect(Number.isInteger(seconds) && seconds >= 1 && seconds <= 30).toBe(true);
  });

  it('does not count the 401 challenge; the real SecretClient sees a 429 RestError over the limit', async () => {
    // Prepare: the first call is a challenge (401) then the call itself: one transaction.
    const sandbox = sandboxWith({ limit: 1, windowSeconds: 60 });
    const client = new SecretClient(sandbox.keyVault.vaultUrl(VAULT), sandbox.credential, {
      httpClient: sandbox.httpClient,
      retryOptions: { maxRetries: 0 },
    });

    // Act
    const first = await client.getSecret('db');
    const second = await client.getSecret('db').then(
      () => undefined,
      (error: unknown) => error,
    );

    // Assess
    expect(first.value).toBe('throttle-test-value-1');
    expect(second).toBeInstanceOf(RestError);
    expect((second as RestError).statusCode).toBe(429);
    expect((second as RestError).code).toBe('Throttled');
    expect(sandbox.keyVault.requests().map((r) => r.status)).toEqual([401, 200, 429]);
  });

  it('can be turned off', async () => {
    // Prepare
    const sandbox = sandboxWith(false);

    // Act
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await listVersions(sandbox)).status);

    // Assess
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
  });
});
