import { describe, expect, it } from 'vitest';
import { keyFingerprint, keyInSecretValue } from '../../../src/lib/ports/keys';

describe('key port helpers', () => {
  it('finds the key inside the connection strings the portal shows, or takes a bare key as it is', () => {
    // Prepare
    const key = 'c2FuZGJveC1rZXktdmFsdWUtZm9yLXRlc3Rz+/==';

    // Act
    const found = [
      `AccountEndpoint=https://acct.documents.azure.com:443/;AccountKey=${key};`,
      `DefaultEndpointsProtocol=https;AccountName=st;AccountKey=${key};EndpointSuffix=core.windows.net`,
      `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=r;SharedAccessKey=${key};EntityPath=q`,
      ` ${key}\n`,
    ].map(keyInSecretValue);

    // Assess
    expect(found).toEqual([key, key, key, key]);
  });

  it('fingerprints a key as 16 hex digits that differ between keys and never contain the key', () => {
    // Prepare
    const a = 'first-key-value-AAAAAAAAAAAAAAAA';
    const b = 'first-key-value-AAAAAAAAAAAAAAAB';

    // Act
    const [fa, fb] = [keyFingerprint(a), keyFingerprint(b)];

    // Assess
    expect(fa).toMatch(/^[0-9a-f]{16}$/);
    expect(fa).not.toBe(fb);
    expect(keyFingerprint(a)).toBe(fa);
  });
});
