/**
 * The ids the sandbox invents derive from the scenario's seed: two sandboxes built from one scenario
 * are the same world (same version ids, same event ids), and replaying the same actions gives the same
 * new ids, so the app's idempotency records stay valid across a restart on persistent storage.
 */
import { SecretClient } from '@azure/keyvault-secrets';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/lib/core/errors';
import { createSandbox, resolveScenario, type Sandbox, type Scenario } from '../../../src/local/sandbox';

const VAULT = 'kv-seeded';

function scenario(overrides: Partial<Scenario> = {}): Scenario {
  return {
    clock: { start: '2026-01-01T00:00:00Z' },
    keyVault: {
      vaults: [
        {
          name: VAULT,
          secrets: [
            { name: 'db-password', expiresInDays: 40 },
            { name: 'api-key', expiresInDays: 10, tags: { owner: 'team-a' } },
          ],
        },
      ],
    },
    ...overrides,
  };
}

/** What the app would do: read a listing, publish two new versions, let time pass. */
async function story(sandbox: Sandbox) {
  const client = new SecretClient(sandbox.keyVault.vaultUrl(VAULT), sandbox.credential, {
    httpClient: sandbox.httpClient,
    retryOptions: { maxRetries: 0 },
  });
  await sandbox.settle();
  const set1 = await client.setSecret('db-password', `generated-${Math.random()}`);
  const set2 = await client.setSecret('new-secret', `generated-${Math.random()}`);
  await sandbox.advance({ days: 20 });
  return {
    versions: sandbox
      .estate()
      .keyVault.vaults[0]!.secrets.map((s) => [s.name, s.versions.map((v) => v.version)] as const),
    created: [set1.properties.version, set2.properties.version],
    events: sandbox.events().map((e) => [e.id, e.eventType, e.subject] as const),
  };
}

describe('sandbox seed', () => {
  it('builds the same world twice from one scenario: same version ids, same new versions, same event ids', async () => {
    // Prepare
    const first = createSandbox({ scenario: scenario({ seed: 42 }) });
    const second = createSandbox({ scenario: scenario({ seed: 42 }) });

    // Act
    const a = await story(first);
    const b = await story(second);

    // Assess
    expect(b).toEqual(a);
    expect(a.versions.flatMap(([, v]) => v).every((v) => /^[0-9a-f]{32}$/.test(v))).toBe(true);
    expect(new Set(a.versions.flatMap(([, v]) => v)).size).toBe(4);
    expect(a.events.length).toBeGreaterThanOrEqual(4);
    expect(
      a.events.every(([id]) =>
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id),
      ),
    ).toBe(true);
    expect(new Set(a.events.map(([id]) => id)).size).toBe(a.events.length);
  });

  it('gives other ids for another seed', async () => {
    // Prepare
    const first = createSandbox({ scenario: scenario({ seed: 42 }) });
    const second = createSandbox({ scenario: scenario({ seed: 'another-seed' }) });

    // Act
    const a = await story(first);
    const b = await story(second);

    // Assess
    const idsOf = (s: typeof a) => [...s.versions.flatMap(([, v]) => v), ...s.events.map(([id]) => id)];
    const shared = idsOf(a).filter((id) => idsOf(b).includes(id));
    expect(shared).toEqual([]);
    expect(b.events.map(([, type, subject]) => [type, subject])).toEqual(
      a.events.map(([, type, subject]) => [type, subject]),
    );
  });

  it('derives a seed from the content when the scenario names none: same content, same ids; other content, other ids', () => {
    // Prepare
    const versionsOf = (s: Scenario) =>
      createSandbox({ scenario: s })
        .estate()
        .keyVault.vaults[0]!.secrets.map((x) => x.currentVersion);
    const retagged = scenario();
    retagged.keyVault!.vaults![0]!.secrets![1]!.tags = { owner: 'team-b' };

    // Act
    const once = versionsOf(scenario());
    const twice = versionsOf(scenario());
    const other = versionsOf(retagged);

    // Assess
    expect(twice).toEqual(once);
    expect(other.filter((v) => once.includes(v))).toEqual([]);
    expect(resolveScenario(scenario()).seed).toMatch(/^content-[0-9a-f]{16}$/);
    expect(resolveScenario(scenario({ seed: 7 })).seed).toBe('7');
  });

  it('leaves secret values out of the derived seed', () => {
    // Prepare
    const withValue = (value: string) =>
      scenario({
        keyVault: { vaults: [{ name: VAULT, secrets: [{ name: 'db-password', value }] }] },
      });

    // Act
    const a = resolveScenario(withValue('first-value-111')).seed;
    const b = resolveScenario(withValue('second-value-222')).seed;

    // Assess
    expect(b).toBe(a);
  });

  it('refuses a seed that is neither an integer nor a non-empty string', () => {
    // Prepare
    const bad = [1.5, '', {}, 'x'.repeat(201)];

    // Act
    const problems = bad.map((seed) => {
      try {
        resolveScenario({ ...scenario(), seed });
        return [];
      } catch (err) {
        if (err instanceof ValidationError) return err.problems;
        throw err;
      }
    });

    // Assess
    for (const p of problems) {
      expect(p).toEqual([expect.stringMatching(/^seed: must be an integer or a non-empty string/)]);
    }
  });
});
