/**
 * The sandbox's Key Vault behaves like Key Vault where the app can tell the difference: listing
 * order and paging, the versions of a missing secret, a vault that does not exist, and the secret
 * half of a certificate. Each shape is the one of a recording of the real service (named in
 * `src/local/sandbox/keyvault/*` and docs/sandbox.md).
 */
import { createHttpHeaders, createPipelineRequest, isRestError, RestError } from '@azure/core-rest-pipeline';
import { SecretClient } from '@azure/keyvault-secrets';
import { describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox, type ScenarioSecret } from '../../../src/local/sandbox';

const VAULT = 'kv-fidelity';

function sandboxOf(secrets: ScenarioSecret[] = []): Sandbox {
  return createSandbox({
    scenario: {
      seed: 'fidelity',
      clock: { start: '2026-01-01T00:00:00.250Z' },
      keyVault: { vaults: [{ name: VAULT, secrets }] },
    },
  });
}

function clientOf(sandbox: Sandbox, vault = VAULT): SecretClient {
  return new SecretClient(sandbox.keyVault.vaultUrl(vault), sandbox.credential, {
    httpClient: sandbox.httpClient,
    retryOptions: { maxRetries: 0 },
  });
}

/** A wire body, read freely in assertions. */
// biome-ignore lint/suspicious/noExplicitAny: wire bodies are read freely in assertions
type Wire = any;

async function raw(
  sandbox: Sandbox,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Wire }> {
  const token = await sandbox.credential.getToken('https://vault.azure.net/.default');
  const response = await sandbox.httpClient.sendRequest(
    createPipelineRequest({
      url: path.startsWith('https://') ? path : `${sandbox.keyVault.vaultUrl(VAULT)}${path}`,
      method: method as 'GET',
      headers: createHttpHeaders({
        authorization: `Bearer ${token!.token}`,
        'content-type': 'application/json',
      }),
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return { status: response.status, json: response.bodyAsText ? JSON.parse(response.bodyAsText) : undefined };
}

/** Follows `nextLink` from `path` and returns every page's body. */
async function pages(sandbox: Sandbox, path: string): Promise<Wire[]> {
  const out: Wire[] = [];
  let next: string | null = path;
  for (let i = 0; next !== null && i < 50; i++) {
    const page = await raw(sandbox, 'GET', next);
    expect(page.status).toBe(200);
    out.push(page.json);
    next = page.json.nextLink;
  }
  return out;
}

const versionOf = (id: string) => id.slice(id.lastIndexOf('/') + 1);

describe('sandbox Key Vault listing order and paging', () => {
  it('lists versions in version-id order, not creation order, on every page of maxresults=1 and through the SDK', async () => {
    // Prepare: five versions created in the same second (Key Vault keeps one-second resolution)
    const sandbox = sandboxOf();
    const client = clientOf(sandbox);
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      created.push((await client.setSecret('rotating', `value-${i}-abcdef`)).properties.version!);
      await sandbox.advance({ seconds: 0.1 });
    }
    const sorted = [...created].sort();
    expect(created).not.toEqual(sorted); // the seed gives an order where the two differ

    // Act
    const listed = await pages(sandbox, '/secrets/rotating/versions?api-version=2025-07-01&maxresults=1');
    const viaSdk: string[] = [];
    const createdOn: number[] = [];
    for await (const props of client.listPropertiesOfSecretVersions('rotating')) {
      viaSdk.push(props.version!);
      createdOn.push(props.createdOn!.getTime());
    }

    // Assess
    expect(listed).toHaveLength(5);
    expect(listed.every((p) => p.value.length === 1)).toBe(true);
    expect(listed.flatMap((p) => p.value.map((v: { id: string }) => versionOf(v.id)))).toEqual(sorted);
    expect(listed.at(-1).nextLink).toBeNull();
    expect(viaSdk).toEqual(sorted);
    // epoch seconds on the wire, equal for versions of the same second
    const createdOnWire = listed.map((p) => p.value[0].attributes.created);
    expect(new Set(createdOnWire)).toEqual(new Set([Date.parse('2026-01-01T00:00:00Z') / 1000]));
    expect(new Set(createdOn)).toEqual(new Set([Date.parse('2026-01-01T00:00:00Z')]));
  });

  it('lists secrets by upper-cased name, as Key Vault orders its keys', async () => {
    // Prepare
    const sandbox = sandboxOf();
    for (const name of ['b-two', 'A-one', 'a1', 'B', 'a-0'])
      sandbox.keyVault.setSecret(VAULT, name, 'v-123456');

    // Act
    const listed = await pages(sandbox, '/secrets?api-version=2025-07-01&maxresults=2');

    // Assess: '-' (0x2D) sorts before digits and letters
    expect(listed.flatMap((p) => p.value.map((v: { id: string }) => versionOf(v.id)))).toEqual([
      'a-0',
      'A-one',
      'a1',
      'B',
      'b-two',
    ]);
  });

  it('resumes a listing where its nextLink points, when a version is created between two pages', async () => {
    // Prepare: page 1 of 2 versions out of 3
    const sandbox = sandboxOf();
    for (let i = 0; i < 3; i++) sandbox.keyVault.setSecret(VAULT, 'busy', `value-${i}-abcdef`);
    const first = await raw(sandbox, 'GET', '/secrets/busy/versions?api-version=2025-07-01&maxresults=2');
    const firstVersions: string[] = first.json.value.map((v: { id: string }) => versionOf(v.id));
    // a new version that sorts before the end of page 1 (with an offset token it would push an item
    // of page 1 onto page 2)
    let inserted: string | undefined;
    for (let i = 0; i < 40 && inserted === undefined; i++) {
      const version = sandbox.keyVault.setSecret(VAULT, 'busy', `later-${i}-abcdef`);
      if (version < firstVersions[1]!) inserted = version;
    }
    expect(inserted).toBeDefined();

    // Act
    const rest = await pages(
      sandbox,
      new URL(first.json.nextLink).pathname + new URL(first.json.nextLink).search,
    );

    // Assess
    const restVersions: string[] = rest.flatMap((p) => p.value.map((v: { id: string }) => versionOf(v.id)));
    expect(restVersions.filter((v) => firstVersions.includes(v))).toEqual([]);
    expect(restVersions.every((v) => v > firstVersions[1]!)).toBe(true);
    expect(restVersions).toEqual([...restVersions].sort());
  });

  it('refuses a $skiptoken it did not issue with 400', async () => {
    // Prepare
    const sandbox = sandboxOf([{ name: 's1' }]);

    // Act
    const answer = await raw(sandbox, 'GET', '/secrets?api-version=2025-07-01&$skiptoken=bm90LWEtdG9rZW4');

    // Assess
    expect(answer).toMatchObject({ status: 400, json: { error: { code: 'BadParameter' } } });
  });

  it('answers 200 with an empty list for the versions of a secret that does not exist', async () => {
    // Prepare
    const sandbox = sandboxOf([{ name: 'present' }]);
    const client = clientOf(sandbox);

    // Act
    const answer = await raw(sandbox, 'GET', '/secrets/absent/versions?api-version=2025-07-01');
    const viaSdk: unknown[] = [];
    for await (const props of client.listPropertiesOfSecretVersions('absent')) viaSdk.push(props);

    // Assess: the body of azure-sdk-for-js's recording "can list secret versions (non existing)"
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ value: [], nextLink: null });
    expect(viaSdk).toEqual([]);
  });
});

describe('sandbox Key Vault: a vault that does not exist', () => {
  it('fails like an unknown host: the transport throws ENOTFOUND, nothing answers', async () => {
    // Prepare
    const sandbox = sandboxOf([{ name: 'present' }]);
    const client = clientOf(sandbox, 'kv-nowhere');

    // Act
    const error = await client.getSecret('present').catch((err: unknown) => err);
    const listing = await (async () => {
      for await (const _ of client.listPropertiesOfSecretVersions('present')) {
        // never reached
      }
    })().catch((err: unknown) => err);

    // Assess: the shape @azure/core-rest-pipeline's Node client gives a DNS failure
    for (const err of [error, listing]) {
      expect(isRestError(err)).toBe(true);
      expect(err).toBeInstanceOf(RestError);
      const restError = err as RestError;
      expect(restError.name).toBe('RestError');
      expect(restError.code).toBe('ENOTFOUND');
      expect(restError.message).toBe('getaddrinfo ENOTFOUND kv-nowhere.vault.azure.net');
      expect(restError.statusCode).toBeUndefined();
      expect(restError.response).toBeUndefined();
    }
    expect(sandbox.keyVault.requests()).toEqual([]);
  });

  it('still serves the scenario vault, whatever the case of its host name', async () => {
    // Prepare
    const sandbox = sandboxOf([{ name: 'present', value: 'present-value-1' }]);
    const client = new SecretClient(`https://${VAULT.toUpperCase()}.vault.azure.net`, sandbox.credential, {
      httpClient: sandbox.httpClient,
      retryOptions: { maxRetries: 0 },
    });

    // Act
    const secret = await client.getSecret('present');

    // Assess
    expect(secret.value).toBe('present-value-1');
  });
});

describe('sandbox Key Vault: the secret half of a certificate', () => {
  const certificateScenario = () =>
    sandboxOf([
      { name: 'tls-frontend', certificate: true, expiresInDays: 20, notBeforeInDays: -345 },
      { name: 'plain', value: 'plain-value-123' },
    ]);

  it('lists it with managed: true and its content type, without kid, as Key Vault lists a certificate secret', async () => {
    // Prepare
    const sandbox = certificateScenario();

    // Act
    const list = await raw(sandbox, 'GET', '/secrets?api-version=2025-07-01');
    const versions = await raw(sandbox, 'GET', '/secrets/tls-frontend/versions?api-version=2025-07-01');

    // Assess: item shape of the recordings (contentType, id, managed, attributes; no kid in a list item)
    const [plain, cert] = list.json.value;
    expect(cert).toEqual({
      contentType: 'application/x-pkcs12',
      id: `https://${VAULT}.vault.azure.net/secrets/tls-frontend`,
      managed: true,
      attributes: expect.objectContaining({
        enabled: true,
        exp: expect.any(Number),
        nbf: expect.any(Number),
      }),
    });
    expect(plain).not.toHaveProperty('managed');
    expect(versions.json.value).toEqual([
      expect.objectContaining({ contentType: 'application/x-pkcs12', managed: true }),
    ]);
    expect(versions.json.value[0]).not.toHaveProperty('kid');
  });

  it('gives SecretProperties.managed = true and the certificate key id through the real SecretClient', async () => {
    // Prepare
    const sandbox = certificateScenario();
    const client = clientOf(sandbox);

    // Act
    const listed = new Map<string, boolean | undefined>();
    for await (const props of client.listPropertiesOfSecrets()) listed.set(props.name, props.managed);
    const secret = await client.getSecret('tls-frontend');

    // Assess
    expect(listed).toEqual(
      new Map([
        ['plain', undefined],
        ['tls-frontend', true],
      ]),
    );
    expect(secret.properties.managed).toBe(true);
    expect(secret.properties.contentType).toBe('application/x-pkcs12');
    expect(secret.properties.certificateKeyId).toBe(
      `https://${VAULT}.vault.azure.net/keys/tls-frontend/${secret.properties.version}`,
    );
  });

  it('refuses to set or update it with 403 SecretManagedByKeyVault, and nothing changes', async () => {
    // Prepare
    const sandbox = certificateScenario();
    const client = clientOf(sandbox);
    const before = JSON.stringify(sandbox.estate().keyVault);
    const version = (await client.getSecret('tls-frontend')).properties.version!;

    // Act
    const put = await raw(sandbox, 'PUT', '/secrets/tls-frontend?api-version=2025-07-01', {
      value: 'x-123456',
    });
    const patch = await raw(sandbox, 'PATCH', `/secrets/tls-frontend/${version}?api-version=2025-07-01`, {
      tags: { owner: 'me' },
    });
    const viaSdk = await client.setSecret('tls-frontend', 'new-value-123').catch((err: unknown) => err);
    const viaWorld = (() => {
      try {
        sandbox.keyVault.setSecret(VAULT, 'TLS-FRONTEND', 'new-value-456');
      } catch (err) {
        return err;
      }
    })();

    // Assess: Key Vault's answer to "set" on a certificate's secret (hashicorp/terraform-provider-azurerm#5659)
    expect(put).toEqual({
      status: 403,
      json: {
        error: {
          code: 'Forbidden',
          message: `Operation "set" is not allowed as this object's lifetime is managed by Key Vault.`,
          innererror: { code: 'SecretManagedByKeyVault' },
        },
      },
    });
    expect(patch.status).toBe(403);
    expect(patch.json.error).toMatchObject({
      code: 'Forbidden',
      message: `Operation "update" is not allowed as this object's lifetime is managed by Key Vault.`,
      innererror: { code: 'SecretManagedByKeyVault' },
    });
    expect(viaSdk).toMatchObject({ statusCode: 403, code: 'Forbidden' });
    expect(viaWorld).toMatchObject({ status: 403, innerCode: 'SecretManagedByKeyVault' });
    expect(JSON.stringify(sandbox.estate().keyVault)).toBe(before);
    expect(sandbox.events()).toEqual([]);
  });

  it('is shown as managed in the estate, and raises its expiry events like any secret', async () => {
    // Prepare
    const sandbox = certificateScenario();

    // Act
    const { raised } = await sandbox.settle();

    // Assess
    const secrets = sandbox.estate().keyVault.vaults[0]!.secrets;
    expect(secrets.map((s) => [s.name, s.managed])).toEqual([
      ['plain', false],
      ['tls-frontend', true],
    ]);
    expect(raised.map((e) => [e.eventType, e.subject])).toEqual([
      ['Microsoft.KeyVault.SecretNearExpiry', 'tls-frontend'],
    ]);
  });
});
