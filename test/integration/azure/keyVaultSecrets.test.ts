import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { KeyVaultSecretVault } from '../../../src/lib/azure/keyVaultSecrets';
import {
  ConfigurationError,
  DependencyError,
  ForbiddenError,
  NotFoundError,
  TransientError,
  ValidationError,
} from '../../../src/lib/core/errors';
import { redactText } from '../../../src/lib/core/redact';
import type { SecretProperties } from '../../../src/lib/ports/secrets';
import { createSandbox, type Sandbox } from '../../../src/local/sandbox';

const VAULT = 'kv-adapter';
const START = '2026-01-01T00:00:00.000Z';

interface Estate {
  sandbox: Sandbox;
  vault: KeyVaultSecretVault;
  vaultUrl: string;
}

/** The adapter over the real `SecretClient`, talking to the sandbox's Key Vault. */
function estate(): Estate {
  const sandbox = createSandbox({
    scenario: { clock: { start: START }, keyVault: { vaults: [{ name: VAULT }] } },
  });
  return {
    sandbox,
    vault: new KeyVaultSecretVault(sandbox.credential, { httpClient: sandbox.httpClient }),
    vaultUrl: sandbox.keyVault.vaultUrl(VAULT),
  };
}

/** A value no other test uses: the redaction registry is process-wide. */
function uniqueValue(label: string): string {
  return `${label}-${randomBytes(12).toString('hex')}`;
}

async function collect(items: AsyncIterable<SecretProperties>): Promise<SecretProperties[]> {
  const out: SecretProperties[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function failureOf(work: Promise<unknown>): Promise<Error> {
  const outcome = await work.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof Error)) throw new Error('expected the call to fail');
  return outcome;
}

describe('KeyVaultSecretVault over the real SecretClient on the sandbox', () => {
  it('reads back what it set, value and properties', async () => {
    // Prepare
    const { vault, vaultUrl } = estate();
    const value = uniqueValue('round-trip');
    const expiresOn = new Date('2026-06-01T00:00:00Z');

    // Act
    const set = await vault.setSecret(vaultUrl, 'db-password', value, {
      contentType: 'text/plain',
      tags: { owner: 'team-a' },
      expiresOn,
    });
    const read = await vault.getSecret(vaultUrl, 'db-password');

    // Assess
    expect(read.value).toBe(value);
    expect(set.version).toMatch(/^[0-9a-f]{32}$/);
    expect(read.properties).toMatchObject({
      vaultUrl,
      name: 'db-password',
      version: set.version,
      id: `${vaultUrl}/secrets/db-password/${set.version}`,
      enabled: true,
      contentType: 'text/plain',
      tags: { owner: 'team-a' },
      expiresOn,
      createdOn: new Date(START),
    });
  });

  it('writes expiry and not-before dates after 2038-01-19 as given, despite the SDK 32-bit conversion', async () => {
    // Prepare
    const { sandbox, vault, vaultUrl } = estate();
    const expiresOn = new Date('2041-03-04T05:06:07Z');
    const notBefore = new Date('2039-01-01T00:00:00Z');
    const later = new Date('2099-12-31T23:59:59Z');

    // Act
    const set = await vault.setSecret(vaultUrl, 'long-lived', uniqueValue('y2038'), { expiresOn, notBefore });
    await vault.updateSecretProperties(vaultUrl, 'long-lived', set.version!, { expiresOn: later });
    const listed = await vault.getSecretProperties(vaultUrl, 'long-lived');
    const stored = sandbox
      .estate()
      .keyVault.vaults.find((v) => v.name === VAULT)!
      .secrets.find((x) => x.name === 'long-lived')!.versions;

    // Assess
    expect(set.expiresOn?.toISOString()).toBe(expiresOn.toISOString());
    expect(set.notBefore?.toISOString()).toBe(notBefore.toISOString());
    expect(listed?.expiresOn?.toISOString()).toBe(later.toISOString());
    expect(stored.map((v) => [v.expires, v.notBefore])).toEqual([
      [later.toISOString(), notBefore.toISOString()],
    ]);
  });

  it('refuses a date Key Vault cannot hold with a clear non-retryable error, before any call', async () => {
    // Prepare
    const { sandbox, vault, vaultUrl } = estate();

    // Act
    const error = await failureOf(
      vault.setSecret(vaultUrl, 'too-late', uniqueValue('y2106'), {
        expiresOn: new Date('2107-01-01T00:00:00Z'),
      }),
    );

    // Assess
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toContain('expiresOn: 2107-01-01T00:00:00.000Z is outside');
    expect(sandbox.keyVault.requests().filter((r) => r.path.includes('too-late'))).toEqual([]);
  });

  it('gives the properties of the latest version by creation, or of a given one, without reading a value', async () => {
    // Prepare
    const { sandbox, vault, vaultUrl } = estate();
    const first = await vault.setSecret(vaultUrl, 'api-key', uniqueValue('v1'), { tags: { gen: '1' } });
    await sandbox.advance({ hours: 1 });
    const second = await vault.setSecret(vaultUrl, 'api-key', uniqueValue('v2'), { tags: { gen: '2' } });
    const before = sandbox.keyVault.requests().length;

    // Act
    const latest = await vault.getSecretProperties(vaultUrl, 'api-key');
    const given = await vault.getSecretProperties(vaultUrl, 'api-key', { version: first.version! });

    // Assess
    expect(latest).toMatchObject({
      version: second.version,
      tags: { gen: '2' },
      createdOn: new Date('2026-01-01T01:00:00Z'),
    });
    expect(given).toMatchObject({ version: first.version, tags: { gen: '1' }, createdOn: new Date(START) });
    const reads = sandbox.keyVault.requests().slice(before);
    expect(reads.every((r) => r.method === 'GET' && r.path === '/secrets/api-key/versions')).toBe(true);
  });

  it('answers undefined for a missing secret and a missing version', async () => {
    // Prepare
    const { vault, vaultUrl } = estate();
    await vault.setSecret(vaultUrl, 'present', uniqueValue('present'));

    // Act
    const missingSecret = await vault.getSecretProperties(vaultUrl, 'absent');
    const missingVersion = await vault.getSecretProperties(vaultUrl, 'present', { version: '0'.repeat(32) });

    // Assess
    expect(missingSecret).toBeUndefined();
    expect(missingVersion).toBeUndefined();
  });

  it('reports a vault that does not resolve as a configuration problem, at once and not retryable', async () => {
    // Prepare: in Azure an unknown vault name fails DNS (getaddrinfo ENOTFOUND), as on the sandbox
    const { sandbox, vault } = estate();
    const nowhere = sandbox.keyVault.vaultUrl('kv-nowhere');

    // Act
    const listing = await failureOf(vault.getSecretProperties(nowhere, 'present'));
    const reading = await failureOf(vault.getSecret(nowhere, 'present'));
    const sweeping = await failureOf(collect(vault.listSecrets(nowhere)));

    // Assess
    for (const error of [listing, reading, sweeping]) {
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error).toMatchObject({ retryable: false, code: 'ConfigurationInvalid' });
      expect(error.message).toContain('kv-nowhere.vault.azure.net does not resolve');
    }
  });

  it('lists secrets and versions without their values', async () => {
    // Prepare
    const { vault, vaultUrl } = estate();
    const values = [uniqueValue('alpha-1'), uniqueValue('alpha-2'), uniqueValue('beta-1')];
    const a1 = await vault.setSecret(vaultUrl, 'alpha', values[0]!);
    const a2 = await vault.setSecret(vaultUrl, 'alpha', values[1]!);
    await vault.setSecret(vaultUrl, 'beta', values[2]!);

    // Act
    const secrets = await collect(vault.listSecrets(vaultUrl));
    const versions = await collect(vault.listSecretVersions(vaultUrl, 'alpha'));

    // Assess
    expect(secrets.map((s) => s.name)).toEqual(['alpha', 'beta']);
    expect(versions.map((v) => v.version).sort()).toEqual([a1.version, a2.version].sort());
    expect(versions.every((v) => v.vaultUrl === vaultUrl && v.name === 'alpha')).toBe(true);
    const listed = JSON.stringify([secrets, versions]);
    for (const value of values) expect(listed).not.toContain(value);
    for (const item of [...secrets, ...versions]) expect(item).not.toHaveProperty('value');
  });

  it('updates the tags and the enabled flag of one version, leaving the other alone', async () => {
    // Prepare
    const { sandbox, vault, vaultUrl } = estate();
    const old = await vault.setSecret(vaultUrl, 'conn', uniqueValue('old'), { tags: { owner: 'a' } });
    const current = await vault.setSecret(vaultUrl, 'conn', uniqueValue('new'), { tags: { owner: 'a' } });
    await sandbox.advance({ minutes: 5 });

    // Act
    const updated = await vault.updateSecretProperties(vaultUrl, 'conn', old.version!, {
      enabled: false,
      tags: { owner: 'b', retired: 'true' },
    });
    const reread = await vault.getSecretProperties(vaultUrl, 'conn', { version: old.version! });
    const untouched = await vault.getSecretProperties(vaultUrl, 'conn', { version: current.version! });

    // Assess
    expect(updated).toMatchObject({
      version: old.version,
      enabled: false,
      tags: { owner: 'b', retired: 'true' },
    });
    expect(updated.updatedOn).toEqual(new Date('2026-01-01T00:05:00Z'));
    expect(reread).toMatchObject({ enabled: false, tags: { owner: 'b', retired: 'true' } });
    expect(untouched).toMatchObject({ enabled: true, tags: { owner: 'a' } });
  });

  it('refuses to read a disabled version with a ForbiddenError, and a missing secret with a NotFoundError', async () => {
    // Prepare
    const { vault, vaultUrl } = estate();
    const value = uniqueValue('disabled');
    const off = await vault.setSecret(vaultUrl, 'off', value, { enabled: false });

    // Act
    const disabled = await failureOf(vault.getSecret(vaultUrl, 'off', { version: off.version! }));
    const missing = await failureOf(vault.getSecret(vaultUrl, 'nothing-here'));

    // Assess
    expect(disabled).toBeInstanceOf(ForbiddenError);
    expect(disabled).toMatchObject({ retryable: false, metadata: { status: 403, target: 'off' } });
    expect(disabled.message).not.toContain(value);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({
      retryable: false,
      metadata: { status: 404, azureCode: 'SecretNotFound' },
    });
  });

  it('registers every value it reads or writes for redaction', async () => {
    // Prepare
    const { sandbox, vault, vaultUrl } = estate();
    const seeded = uniqueValue('seeded-by-the-world');
    const written = uniqueValue('written-by-the-app');
    sandbox.keyVault.setSecret(VAULT, 'seeded', seeded);
    expect(redactText(`value=${seeded}`)).toContain(seeded);
    expect(redactText(`value=${written}`)).toContain(written);

    // Act
    await vault.getSecret(vaultUrl, 'seeded');
    await vault.setSecret(vaultUrl, 'written', written);

    // Assess
    expect(redactText(`read ${seeded} and wrote ${written}`)).toBe('read [REDACTED] and wrote [REDACTED]');
  });

  it('rejects a value over the size limit with a non-retryable error that never quotes it, and stores nothing', async () => {
    // Prepare
    const { sandbox, vault, vaultUrl } = estate();
    const value = uniqueValue('oversized').padEnd(26 * 1024, 'z');

    // Act
    const error = await failureOf(vault.setSecret(vaultUrl, 'too-big', value));

    // Assess
    expect(error).toBeInstanceOf(DependencyError);
    expect(error).toMatchObject({ retryable: false, metadata: { status: 400, azureCode: 'BadParameter' } });
    expect(error.message).toContain('exceeds the maximum size');
    expect(error.message).not.toContain(value.slice(0, 40));
    expect(JSON.stringify(error)).not.toContain(value.slice(0, 40));
    // What `console.error(error)` would print, the SDK's error (the cause) and its request included.
    expect(inspect(error, { depth: 10 })).not.toContain(value.slice(0, 40));
    expect(await vault.getSecretProperties(vaultUrl, 'too-big')).toBeUndefined();
    expect(sandbox.events()).toEqual([]);
  });

  it('rejects bad tags with a non-retryable error and keeps the value out of it', async () => {
    // Prepare
    const { vault, vaultUrl } = estate();
    const value = uniqueValue('tagged');
    const tags = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, 'x']));

    // Act
    const error = await failureOf(vault.setSecret(vaultUrl, 'tagged', value, { tags }));

    // Assess
    expect(error).toBeInstanceOf(DependencyError);
    expect(error).toMatchObject({ retryable: false, metadata: { status: 400, target: 'tagged' } });
    expect(`${error.message} ${JSON.stringify(error)}`).not.toContain(value);
  });

  it('turns an aborted call into a retryable TransientError', async () => {
    // Prepare
    const { vault, vaultUrl } = estate();
    await vault.setSecret(vaultUrl, 'slow', uniqueValue('slow'));
    const controller = new AbortController();
    controller.abort();

    // Act
    const error = await failureOf(vault.getSecret(vaultUrl, 'slow', { abortSignal: controller.signal }));

    // Assess
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ retryable: true });
  });
});
