/** Event factories built from Microsoft's published samples in test/fixtures (see test/fixtures/SOURCES.md). */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type RaisedEvent, toCloudEvent } from '../../src/local/sandbox';

export const FIXTURES = resolve(__dirname, '../fixtures');

export function fixture<T = unknown>(relative: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, relative), 'utf8')) as T;
}

export interface SecretEventOverrides {
  id?: string;
  type?: string;
  vault?: string;
  name?: string;
  version?: string;
  nbf?: number | null;
  exp?: number | null;
  time?: string;
}

/**
 * A Key Vault secret event in the Event Grid schema, starting from the published
 * SecretNewVersionCreated sample, with the keys the Event Grid spec defines (no stray spaces) and
 * NBF / EXP as numbers (the spec's type).
 */
export function secretEvent(o: SecretEventOverrides = {}): Record<string, unknown> {
  const [sample] = fixture<Array<Record<string, unknown>>>(
    'events/keyvault/SecretNewVersionCreated.eventgrid.json',
  );
  const vault = o.vault ?? 'sample-kv';
  const name = o.name ?? 'newsecret';
  const version = o.version ?? 'ee059b2bb5bc48398a53b168c6cdcb10';
  return {
    ...sample,
    id: o.id ?? sample!.id,
    topic: `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sample-rg/providers/Microsoft.KeyVault/vaults/${vault}`,
    subject: name,
    eventType: o.type ?? 'Microsoft.KeyVault.SecretNewVersionCreated',
    eventTime: o.time ?? sample!.eventTime,
    data: {
      Id: `https://${vault}.vault.azure.net/secrets/${name}/${version}`,
      VaultName: vault,
      ObjectType: 'Secret',
      ObjectName: name,
      Version: version,
      NBF: o.nbf === undefined ? 1559081980 : o.nbf,
      EXP: o.exp === undefined ? 1559082102 : o.exp,
    },
  };
}

/** The same event in the CloudEvents 1.0 schema, rendered as the sandbox's Event Grid does. */
export function toCloudEventSchema(event: Record<string, unknown>): Record<string, unknown> {
  return toCloudEvent(event as unknown as RaisedEvent);
}
