/**
 * Identifiers the sandbox invents (secret versions, event ids) derived from the scenario's seed, so
 * that two sandboxes built from one scenario invent the same world, and a restart that replays the
 * same actions meets the same ids (the app keys idempotency records on them).
 */
import { createHash } from 'node:crypto';

/** Hex digest of `seed` and `parts`, unambiguous (each part is length-prefixed), `length` hex characters. */
function digest(seed: string, parts: ReadonlyArray<string | number>, length: number): string {
  const hash = createHash('sha256');
  for (const part of [seed, ...parts]) {
    const text = String(part);
    hash.update(`${Buffer.byteLength(text, 'utf8')}:${text};`);
  }
  return hash.digest('hex').slice(0, length);
}

/**
 * A Key Vault version id (32 lower-case hex characters, as Key Vault's) for the `ordinal`-th version
 * (0 = the first ever created) of secret `name` in vault `vault`. Names are case-insensitive in Key
 * Vault, so they are lower-cased here.
 */
export function secretVersionId(seed: string, vault: string, name: string, ordinal: number): string {
  return digest(seed, ['secret-version', vault.toLowerCase(), name.toLowerCase(), ordinal], 32);
}

/** A UUID-shaped id (version 4 layout, as Event Grid's event ids) derived from `seed` and `parts`. */
export function seededUuid(seed: string, ...parts: Array<string | number>): string {
  const hex = digest(seed, parts, 32).split('');
  hex[12] = '4';
  hex[16] = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Deterministic JSON: object keys sorted, so two equal scenarios give one text whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * The seed of a scenario that names none: a digest of its content (secret values left out, so that no
 * value, even hashed, ends up in an id). Equal scenarios get equal seeds; any other change gives another.
 */
export function seedFromContent(content: unknown): string {
  return `content-${digest('', [canonical(content)], 16)}`;
}
