import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/lib/core/errors';
import { parseSecretEvent } from '../../../src/lib/rotation/keyVaultEvent';
import { fixture, secretEvent } from '../../support/events';

describe('parseSecretEvent', () => {
  it.each([
    'SecretNewVersionCreated.eventgrid.json',
    'SecretNewVersionCreated.cloudevents.json',
    'SecretNewVersionCreated.eventgrid.legacy-2020-camelcase.json',
  ])('parses the published sample %s, quirks included', (file) => {
    // Prepare
    const [raw] = fixture<unknown[]>(`events/keyvault/${file}`);
    // Act
    const event = parseSecretEvent(raw);
    // Assess
    expect(event).toMatchObject({
      id: '00eccf70-95a7-4e7c-8299-2eb17ee9ad64',
      type: 'Microsoft.KeyVault.SecretNewVersionCreated',
      vaultName: 'sample-kv',
      vaultUrl: 'https://sample-kv.vault.azure.net',
      secretName: 'newsecret',
      version: 'ee059b2bb5bc48398a53b168c6cdcb10',
    });
    expect(event.expiresOn?.toISOString()).toBe(new Date(1559082102 * 1000).toISOString());
    expect(event.schema).toBe(file.includes('cloudevents') ? 'CloudEventSchemaV1_0' : 'EventGridSchema');
  });

  it('parses a near-expiry event built from the sample with numeric NBF / EXP (the spec type)', () => {
    const event = parseSecretEvent(
      secretEvent({ type: 'Microsoft.KeyVault.SecretNearExpiry', exp: 1_800_000_000 }),
    );
    expect(event.type).toBe('Microsoft.KeyVault.SecretNearExpiry');
    expect(event.expiresOn?.getTime()).toBe(1_800_000_000_000);
  });

  it('rejects an event of a type the app does not handle, naming the field', () => {
    const raw = secretEvent({ type: 'Microsoft.KeyVault.KeyNearExpiry' });
    expect(() => parseSecretEvent(raw)).toThrow(ValidationError);
    expect(() => parseSecretEvent(raw)).toThrow(
      /eventType: 'Microsoft.KeyVault.KeyNearExpiry' is not a Key Vault secret event/,
    );
  });

  it('lists every problem of a malformed event', () => {
    let error: ValidationError | undefined;
    try {
      parseSecretEvent({
        eventType: 'Microsoft.KeyVault.SecretNearExpiry',
        data: { Id: 'http://x/secrets/a/b', EXP: 'soon' },
      });
    } catch (e) {
      error = e as ValidationError;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect(error?.problems).toEqual(
      expect.arrayContaining([
        'id: required',
        'eventTime: must be an ISO 8601 time',
        expect.stringMatching(/^data\.Id: must be a secret identifier/),
        'data.EXP: must be Unix epoch seconds',
      ]),
    );
  });

  it('rejects non-objects and arrays', () => {
    expect(() => parseSecretEvent('nope')).toThrow(ValidationError);
    expect(() => parseSecretEvent([secretEvent()])).toThrow(ValidationError);
  });
});
