import { createHttpHeaders, createPipelineRequest } from '@azure/core-rest-pipeline';
import { SecretClient } from '@azure/keyvault-secrets';
import { describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../../src/local/sandbox';
import { fixture } from '../../support/events';

const VAULT = 'kv-test';
const START = new Date('2026-01-01T00:00:00Z');

function sandboxWithVault(): Sandbox {
  return createSandbox({
    scenario: { clock: { start: START.toISOString() }, keyVault: { vaults: [{ name: VAULT }] } },
  });
}

function clientOf(sandbox: Sandbox): SecretClient {
  return new SecretClient(sandbox.keyVault.vaultUrl(VAULT), sandbox.credential, {
    httpClient: sandbox.httpClient,
    retryOptions: { maxRetries: 0 },
  });
}

/** A raw authenticated request, to see the wire shapes the SDK hides. */
async function raw(
  sandbox: Sandbox,
  method: 'GET' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
) {
  const token = await sandbox.credential.getToken('https://vault.azure.net/.default');
  const request = createPipelineRequest({
    url: `${sandbox.keyVault.vaultUrl(VAULT)}${path}`,
    method,
    headers: createHttpHeaders({
      authorization: `Bearer ${token!.token}`,
      'content-type': 'application/json',
    }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const response = await sandbox.httpClient.sendRequest(request);
  return {
    status: response.status,
    headers: response.headers,
    json: response.bodyAsText ? JSON.parse(response.bodyAsText) : undefined,
  };
}

describe('sandbox Key Vault secrets, through the real SecretClient', () => {
  it('answers the first request with the 401 challenge, then serves the token-bearing retry', async () => {
    // Prepare
    const sandbox = sandboxWithVault();
    const client = clientOf(sandbox);

    // Act
    await client.setSecret('db-password', 'first-value-123');

    // Assess
    const requests = sandbox.keyVault.requests();
    expect(requests[0]).toMatchObject({ method: 'PUT', authenticated: false, status: 401 });
    expect(requests[1]).toMatchObject({ method: 'PUT', authenticated: true, status: 200 });
    expect(sandbox.credential.issued).toBe(1);
  });

  it('sends the challenge header in the published form (tenant authority, vault resource)', async () => {
    // Prepare
    const sandbox = sandboxWithVault();
    const request = createPipelineRequest({
      url: `${sandbox.keyVault.vaultUrl(VAULT)}/secrets/x/?api-version=2025-07-01`,
    });

    // Act
    const response = await sandbox.httpClient.sendRequest(request);

    // Assess
    const recording = fixture<{ Entries: Array<{ ResponseBody: unknown }> }>(
      'rest/keyvault/recording_can_get_a_secret_non_existing.json',
    );
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(
      /^Bearer authorization="https:\/\/login\.microsoftonline\.com\/[0-9a-f-]{36}", resource="https:\/\/vault\.azure\.net"$/,
    );
    expect(JSON.parse(response.bodyAsText!)).toEqual(recording.Entries[0]!.ResponseBody);
  });

  it('refuses a token issued for another audience', async () => {
    // Prepare
    const sandbox = sandboxWithVault();
    const token = await sandbox.credential.getToken('https://eventgrid.azure.net/.default');
    const request = createPipelineRequest({
      url: `${sandbox.keyVault.vaultUrl(VAULT)}/secrets?api-version=2025-07-01`,
      headers: createHttpHeaders({ authorization: `Bearer ${token!.token}` }),
    });

    // Act
    const response = await sandbox.httpClient.sendRequest(request);

    // Assess
    expect(response.status).toBe(401);
    expect(JSON.parse(response.bodyAsText!).error.message).toContain('Invalid audience');
  });

  it('sets, gets latest and by version, lists properties and versions, and updates properties', async () => {
    // Prepare
    const sandbox = sandboxWithVault();
    const client = clientOf(sandbox);
    const expiresOn = new Date('2026-03-01T00:00:00Z');

    // Act
    const v1 = await client.setSecret('api-key', 'value-one-aaaa', {
      tags: { owner: 'team-a' },
      contentType: 'text/plain',
    });
    await sandbox.advance({ hours: 1 });
    const v2 = await client.setSecret('api-key', 'value-two-bbbb', { expiresOn });
    await client.setSecret('other', 'value-three-cccc');
    const latest = await client.getSecret('api-key');
    const first = await client.getSecret('api-key', { version: v1.properties.version });
    const names: string[] = [];
    for await (const props of client.listPropertiesOfSecrets()) names.push(props.name);
    const versions: string[] = [];
    for await (const props of client.listPropertiesOfSecretVersions('api-key')) versions.push(props.version!);
    const updated = await client.updateSecretProperties('api-key', v1.properties.version!, {
      tags: { owner: 'team-b' },
      enabled: true,
    });

    // Assess
    expect(v1.properties.version).toMatch(/^[0-9a-f]{32}$/);
    expect(v2.properties.version).not.toBe(v1.properties.version);
    expect(latest.value).toBe('value-two-bbbb');
    expect(latest.properties.expiresOn).toEqual(expiresOn);
    expect(latest.properties.createdOn).toEqual(new Date('2026-01-01T01:00:00Z'));
    expect(latest.properties.recoveryLevel).toBe('Recoverable+Purgeable');
    expect(first.value).toBe('value-one-aaaa');
    expect(first.properties.contentType).toBe('text/plain');
    expect(first.properties.tags).toEqual({ owner: 'team-a' });
    expect(names).toEqual(['api-key', 'other']);
    expect(versions.sort()).toEqual([v1.properties.version, v2.properties.version].sort());
    expect(updated.tags).toEqual({ owner: 'team-b' });
    expect(updated.updatedOn).toEqual(new Date('2026-01-01T01:00:00Z'));
  });

  it('list items carry no value, and paging follows nextLink with maxresults', async () => {
    // Prepare
    const sandbox = sandboxWithVault();
    for (const name of ['a1', 'a2', 'a3']) sandbox.keyVault.setSecret(VAULT, name, `secret-value-${name}`);

    // Act
    const page1 = await raw(sandbox, 'GET', '/secrets?api-version=2025-07-01&maxresults=2');
    const next = new URL(page1.json.nextLink);
    const page2 = await raw(sandbox, 'GET', `${next.pathname}${next.search}`);

    // Assess
    expect(page1.json.value.map((s: { id: string }) => s.id)).toEqual([
      `https://${VAULT}.vault.azure.net/secrets/a1`,
      `https://${VAULT}.vault.azure.net/secrets/a2`,
    ]);
    expect(page2.json.value).toHaveLength(1);
    expect(page2.json.nextLink).toBeNull();
    expect(JSON.stringify([page1.json, page2.json])).not.toContain('secret-value-');
  });

  it('lets the SDK follow nextLink across pages (more than 25 secrets)', async () => {
    // Prepare
    const sandbox = sandboxWithVault();
    const client = clientOf(sandbox);
    for (let i = 0; i < 30; i++)
      sandbox.keyVault.setSecret(VAULT, `bulk-${String(i).padStart(2, '0')}`, `bulk-value-${i}`);

    // Act
    const names: string[] = [];
    for await (const props of client.listPropertiesOfSecrets()) names.push(props.name);

    // Assess
    expect(names).toHaveLength(30);
    expect(new Set(names).size).toBe(30);
    expect(
      sandbox.keyVault.requests().filter((r) => r.method === 'GET' && r.path === '/secrets'),
    ).toHaveLength(3);
  });

  it('answers an unknown secret with the SecretNotFound shape of the recording', async () => {
    // Prepare
    const sandbox = sandboxWithVault();
    const client = clientOf(sandbox);

    // Act
    const rawAnswer = await raw(sandbox, 'GET', '/secrets/missing-one/?api-version=2025-07-01');
    const sdkError = await client.getSecret('missing-one').catch((err: unknown) => err);

    // Assess
    expect(rawAnswer.status).toBe(404);
    expect(rawAnswer.json).toEqual({
      error: {
        code: 'SecretNotFound',
        message: expect.stringMatching(
          /^A secret with \(name\/id\) missing-one was not found in this key vault\./,
        ),
      },
    });
    expect(sdkError).toMatchObject({ statusCode: 404, code: 'SecretNotFound' });
  });

  it('refuses to read a disabled version with 403 SecretDisabled, and serves it again once re-enabled', async () => {
    // Prepare
    const sandbox = sandboxWithVault();
    const client = clientOf(sandbox);
    const set = await client.setSecret('off', 'disabled-value-1', { enabled: false });

    // Act
    const forbidden = await raw(
      sandbox,
      'GET',
      `/secrets/off/${set.properties.version}?api-version=2025-07-01`,
    );
    await client.updateSecretProperties('off', set.properties.version!, { enabled: true });
    const readable = await client.getSecret('off');

    // Assess
    expect(forbidden.status).toBe(403);
    expect(forbidden.json).toEqual({
      error: {
        code: 'Forbidden',
        message: 'Operation get is not allowed on a disabled secret.',
        innererror: { code: 'SecretDisabled' },
      },
    });
    expect(readable.value).toBe('disabled-value-1');
  });

  it('still returns an expired or not-yet-valid secret (Key Vault does not enforce exp/nbf on get)', async () => {
    // Prepare
    const sandbox = sandboxWithVault();
    const client = clientOf(sandbox);
    await client.setSecret('late', 'expired-value-1', { expiresOn: new Date('2026-01-02T00:00:00Z') });
    await client.setSecret('early', 'future-value-1', { notBefore: new Date('2027-01-01T00:00:00Z') });
    await sandbox.advance({ days: 5 });

    // Act
    const late = await client.getSecret('late');
    const early = await client.getSecret('early');

    // Assess
    expect(late.value).toBe('expired-value-1');
    expect(early.value).toBe('future-value-1');
  });

  it('rejects bad input with 400 and changes nothing: 16 tags, missing value, unknown api-version', async () => {
    // Prepare
    const sandbox = sandboxWithVault();
    const tags = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, 'x']));

    // Act
    const tooManyTags = await raw(sandbox, 'PUT', '/secrets/s1?api-version=2025-07-01', {
      value: 'abc-def-1',
      tags,
    });
    const noValue = await raw(sandbox, 'PUT', '/secrets/s1?api-version=2025-07-01', { tags: {} });
    const badVersion = await raw(sandbox, 'GET', '/secrets?api-version=1999-01-01');
    const list = await raw(sandbox, 'GET', '/secrets?api-version=2025-07-01');

    // Assess
    expect(tooManyTags).toMatchObject({ status: 400, json: { error: { code: 'BadParameter' } } });
    expect(noValue).toMatchObject({ status: 400, json: { error: { code: 'BadParameter' } } });
    expect(badVersion).toMatchObject({ status: 400, json: { error: { code: 'BadParameter' } } });
    expect(list.json.value).toEqual([]);
    expect(sandbox.events()).toEqual([]);
  });

  it('answers unknown paths with Azure error JSON', async () => {
    // Prepare
    const sandbox = sandboxWithVault();

    // Act
    const unknownPath = await raw(sandbox, 'GET', '/keys/k1?api-version=2025-07-01');

    // Assess
    expect(unknownPath).toMatchObject({ status: 404, json: { error: { code: 'NotFound' } } });
  });
});
