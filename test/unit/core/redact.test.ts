import { afterEach, describe, expect, it } from 'vitest';
import {
  clearRegisteredSecrets,
  isCredentialField,
  redact,
  redactText,
  registerSecret,
} from '../../../src/lib/core/redact';

const R = '[REDACTED]';

describe('redact: names are shown', () => {
  afterEach(() => clearRegisteredSecrets());

  it('keeps every field and fact whose key merely contains "secret" or "key"', () => {
    // Prepare
    const names = {
      Secret: 'db-password',
      secretName: 'db-password',
      'Key Vault': 'kv-prod',
      Vault: 'kv-prod',
      keyName: 'key1',
      idempotencyKey: 'secret.nearExpiry|kv-prod/db-password|v1',
      key: 'cosmos-key',
      secret: 'storage-key',
      token: 'rotation-version-token',
      metric: { name: 'Percentage CPU', value: '97.5' },
      Resource:
        '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-prod',
      dimension: { name: 'Region', value: 'westeurope' },
      appSetting: { name: 'CosmosKeySecretName', value: 'cosmos-key' },
      facts: { Secret: 'db-password', Vault: 'kv-prod', 'Days left': '30', Value: '97.5' },
      factSet: [{ title: 'Secret', value: 'db-password' }],
    };

    // Act
    const out = redact(names);

    // Assess
    expect(out).toEqual(names);
  });

  it('keeps a Key Vault secret id, a resource path and a SAS token resource name in text', () => {
    const text =
      'read https://kv-prod.vault.azure.net/secrets/db-password/0a1b2c for vaults/kv-prod/secrets/db-password; ' +
      'SharedAccessSignature sr=sb%3A%2F%2Fns.servicebus.windows.net%2Fq&sig=abcSIGdef%3D&se=1767225600&skn=RootManageSharedAccessKey';

    const out = redactText(text);

    expect(out).toBe(
      'read https://kv-prod.vault.azure.net/secrets/db-password/0a1b2c for vaults/kv-prod/secrets/db-password; ' +
        `SharedAccessSignature sr=sb%3A%2F%2Fns.servicebus.windows.net%2Fq&sig=${R}&se=1767225600&skn=RootManageSharedAccessKey`,
    );
  });

  it('decides credential fields by exact names, not by a key that looks secret', () => {
    expect(
      [
        'password',
        'client_secret',
        'clientSecret',
        'Authorization',
        'primaryMasterKey',
        'x-functions-key',
      ].map(isCredentialField),
    ).toEqual([true, true, true, true, true, true]);
    expect(
      ['Secret', 'secretName', 'Key Vault', 'keyName', 'idempotencyKey', 'token', 'value', 'key'].map(
        isCredentialField,
      ),
    ).toEqual([false, false, false, false, false, false, false, false]);
  });
});

describe('redact: values are masked', () => {
  afterEach(() => clearRegisteredSecrets());

  it('masks the value fields of known payloads: Key Vault secrets and ARM listKeys answers', () => {
    // Prepare
    const payloads = {
      // Key Vault REST SecretBundle (GET /secrets/{name}/{version})
      bundle: {
        value: 'bundle-value-1',
        id: 'https://kv-prod.vault.azure.net/secrets/db-password/4387e9f3d6e14c459867679a90fd0f79',
        attributes: { enabled: true, created: 1493938410, updated: 1493938410, recoveryLevel: 'Recoverable' },
      },
      // Key Vault REST SecretSetParameters (PUT /secrets/{name})
      setParameters: { value: 'set-value-2', contentType: 'text/plain', tags: { owner: 'ops' } },
      // @azure/keyvault-secrets KeyVaultSecret
      sdkSecret: {
        name: 'db-password',
        value: 'sdk-value-3',
        properties: { vaultUrl: 'https://kv-prod.vault.azure.net', name: 'db-password', version: 'v1' },
      },
      // Microsoft.Storage listKeys
      storageKeys: {
        keys: [
          {
            keyName: 'key1',
            value: 'storage-key-4',
            permissions: 'FULL',
            creationTime: '2026-01-01T00:00:00Z',
          },
        ],
      },
      // Microsoft.DocumentDB listKeys
      cosmosKeys: {
        primaryMasterKey: 'cosmos-5',
        secondaryMasterKey: 'cosmos-6',
        primaryReadonlyMasterKey: 'cosmos-7',
        secondaryReadonlyMasterKey: 'cosmos-8',
      },
      // Microsoft.ServiceBus authorizationRules listKeys
      serviceBusKeys: {
        keyName: 'RootManageSharedAccessKey',
        primaryKey: 'sb-9',
        secondaryKey: 'sb-10',
        primaryConnectionString:
          'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=sb-11',
        aliasPrimaryConnectionString: 'Endpoint=sb://alias/;SharedAccessKeyName=Root;SharedAccessKey=sb-12',
      },
      eventGridKeys: { key1: 'eg-13', key2: 'eg-14' },
      headers: { authorization: 'Bearer header-15-token', 'x-ms-client-request-id': 'req-a' },
      oauth: { access_token: 'oauth-16', token_type: 'Bearer', expires_in: 3599 },
      credentials: { clientId: 'app-a', clientSecret: 'client-17', password: 'pass-18' },
      accessToken: { token: 'core-auth-19', expiresOnTimestamp: 1767225600000 },
      jwk: {
        kid: 'https://kv-prod.vault.azure.net/keys/k/1',
        kty: 'RSA',
        n: 'modulus',
        e: 'AQAB',
        d: 'private-20',
      },
    };

    // Act
    const out = redact(payloads);

    // Assess
    expect(out.bundle).toEqual({ ...payloads.bundle, value: R });
    expect(out.setParameters).toEqual({ ...payloads.setParameters, value: R });
    expect(out.sdkSecret).toEqual({ ...payloads.sdkSecret, value: R });
    expect(out.storageKeys.keys[0]).toEqual({ ...payloads.storageKeys.keys[0], value: R });
    expect(out.cosmosKeys).toEqual({
      primaryMasterKey: R,
      secondaryMasterKey: R,
      primaryReadonlyMasterKey: R,
      secondaryReadonlyMasterKey: R,
    });
    expect(out.serviceBusKeys).toEqual({
      keyName: 'RootManageSharedAccessKey',
      primaryKey: R,
      secondaryKey: R,
      primaryConnectionString: R,
      aliasPrimaryConnectionString: R,
    });
    expect(out.eventGridKeys).toEqual({ key1: R, key2: R });
    expect(out.headers).toEqual({ authorization: R, 'x-ms-client-request-id': 'req-a' });
    expect(out.oauth).toEqual({ access_token: R, token_type: 'Bearer', expires_in: 3599 });
    expect(out.credentials).toEqual({ clientId: 'app-a', clientSecret: R, password: R });
    expect(out.accessToken).toEqual({ token: R, expiresOnTimestamp: 1767225600000 });
    expect(out.jwk).toEqual({ ...payloads.jwk, d: R });
    const json = JSON.stringify(out);
    for (let n = 1; n <= 20; n++) expect(json).not.toMatch(new RegExp(`-${n}(-token)?"`));
  });

  it.each([
    [
      'a Storage connection string',
      'DefaultEndpointsProtocol=https;AccountName=stprod;AccountKey=c2VjcmV0LWtleQ==;EndpointSuffix=core.windows.net',
      `DefaultEndpointsProtocol=https;AccountName=stprod;AccountKey=${R};EndpointSuffix=core.windows.net`,
    ],
    [
      'a Service Bus connection string',
      'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=a1b2c3+/=',
      `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${R}`,
    ],
    [
      'a SQL connection string',
      'Server=tcp:sql-prod.database.windows.net;Database=orders;User ID=app;Password=P@ss w0rd;pwd=x9;',
      `Server=tcp:sql-prod.database.windows.net;Database=orders;User ID=app;Password=${R};pwd=${R};`,
    ],
    [
      'an App Configuration connection string',
      'Endpoint=https://appcs-prod.azconfig.io;Id=a1-l0-s0:abc;Secret=c2VjcmV0',
      `Endpoint=https://appcs-prod.azconfig.io;Id=a1-l0-s0:abc;Secret=${R}`,
    ],
    [
      'a blob SAS URL',
      'GET https://stprod.blob.core.windows.net/c/b.json?sv=2024-11-04&se=2026-02-01T00%3A00%3A00Z&sr=b&sp=r&sig=AbC%2Bd%3D failed',
      `GET https://stprod.blob.core.windows.net/c/b.json?sv=2024-11-04&se=2026-02-01T00%3A00%3A00Z&sr=b&sp=r&sig=${R} failed`,
    ],
    [
      'a Functions key',
      'POST https://func-prod.azurewebsites.net/api/rotate?code=fnKEY123== returned 401',
      `POST https://func-prod.azurewebsites.net/api/rotate?code=${R} returned 401`,
    ],
    [
      'a Logic Apps trigger',
      'https://prod-12.westeurope.logic.azure.com:443/workflows/8d1c/triggers/manual/paths/invoke?api-version=2016-10-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=LAsig_123',
      `https://prod-12.westeurope.logic.azure.com:443/workflows/8d1c/triggers/manual/paths/invoke?api-version=2016-10-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=${R}`,
    ],
    [
      'a Teams incoming webhook',
      'https://contoso.webhook.office.com/webhookb2/7aa49aa6-7840-443d-806c-08ebe8f59966@c662313f-14fc-43a2-9a7a-d2e27f4f3478/IncomingWebhook/8592f62b50cf41b9b93ba0c0a00a0b88/eff4cd58-1bb8-4899-94de-795f656b4a18/V2abcDEF123 failed',
      `https://contoso.webhook.office.com/webhookb2/7aa49aa6-7840-443d-806c-08ebe8f59966@c662313f-14fc-43a2-9a7a-d2e27f4f3478/IncomingWebhook/${R}/eff4cd58-1bb8-4899-94de-795f656b4a18/${R} failed`,
    ],
    [
      'a Slack webhook',
      'posting to https://hooks.slack.com/services/T0123ABCD/B0456EFGH/xYz123SecretToken failed',
      `posting to https://hooks.slack.com/services/T0123ABCD/B0456EFGH/${R} failed`,
    ],
    [
      'URL user info',
      'connect amqps://ops:hunter2@broker.internal:5671/vhost refused',
      `connect amqps://ops:${R}@broker.internal:5671/vhost refused`,
    ],
    [
      'a bearer token and an Authorization header',
      'sent Authorization: Basic dXNlcjpwYXNz and then Bearer abcdefgh.ijklmnop',
      `sent Authorization: Basic ${R} and then Bearer ${R}`,
    ],
    ['a JWT', 'token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl expired', `token ${R} expired`],
    [
      'a credential member in quoted JSON',
      'body {"keyName":"key1","value":"kv","primaryKey":"pk-value","password":"p\\"w"} rejected',
      `body {"keyName":"key1","value":"kv","primaryKey":"${R}","password":"${R}"} rejected`,
    ],
  ])('masks %s and keeps the names around it', (_what, input, expected) => {
    // Act
    const once = redactText(input);

    // Assess
    expect(once).toBe(expected);
    expect(redactText(once)).toBe(once);
  });

  it('replaces a registered value wherever it appears: any string, any depth, object keys, encoded forms', () => {
    // Prepare
    const value = 's3cr3t value/with+chars"';
    registerSecret(value);

    // Act
    const out = redact({
      summary: `failed with ${value} inside, twice: ${value}`,
      nested: [{ deep: { deeper: `<${value}>` } }],
      [value]: 'keyed by the value',
      url: `https://x.example/?q=${encodeURIComponent(value)}`,
      json: JSON.stringify({ note: value }),
    });

    // Assess
    expect(out).toEqual({
      summary: `failed with ${R} inside, twice: ${R}`,
      nested: [{ deep: { deeper: `<${R}>` } }],
      [R]: 'keyed by the value',
      url: `https://x.example/?q=${R}`,
      json: `{"note":"${R}"}`,
    });
  });

  it('masks overlapping registered values as one span, leaving no fragment of either', () => {
    registerSecret('AAAA-BBBB-CCCC');
    registerSecret('CCCC-DDDD-EEEE');
    registerSecret('BBBB-CC');

    expect(redactText('x AAAA-BBBB-CCCC-DDDD-EEEE y')).toBe(`x ${R} y`);
    expect(redactText('AAAA-BBBB-CCCC')).toBe(R);
  });

  it('finds values that share a long prefix (connection strings differing only in their key)', () => {
    const prefix = 'DefaultEndpointsProtocol=https;EndpointSuffix=core.windows.net;AccountName=stprod;Token=';
    const values = Array.from({ length: 2_000 }, (_, i) => `${prefix}${i.toString(36).padStart(6, 'z')}`);
    for (const value of values) registerSecret(value);

    const out = redactText(`a ${values[0]} b ${values[1_234]} c ${values[1_999]} d ${prefix}unregistered`);

    expect(out).toBe(`a ${R} b ${R} c ${R} d ${prefix}unregistered`);
  });

  it('never forgets a registered value: 100,000 values all still mask', () => {
    // Prepare
    const values = Array.from(
      { length: 100_000 },
      (_, i) => `value-${i}-${(i * 2_654_435_761) % 4_294_967_291}`,
    );
    for (const value of values) registerSecret(value);

    // Act
    const out = redactText(`first ${values[0]} then ${values[50_000]} last ${values[99_999]}.`);

    // Assess
    expect(out).toBe(`first ${R} then ${R} last ${R}.`);
  });
});
