import { createHash, randomUUID } from 'node:crypto';

/** A new random identifier (correlation ids, run ids, invocation ids). */
export function newId(): string {
  return randomUUID();
}

/** A stable short hash of `parts`, for idempotency keys and Table keys derived from external ids. */
export function stableHash(...parts: string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\u0000');
  return hash.digest('hex').slice(0, 32);
}

/**
 * Makes a string safe as a Table Storage PartitionKey / RowKey: those forbid `/ \ # ?` and control
 * characters. Reversible encoding so keys stay readable.
 */
export function toTableKey(value: string): string {
  return value.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what Table keys forbid
    /[%/\\#?\u0000-\u001f\u007f-\u009f]/g,
    (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

export function fromTableKey(value: string): string {
  return value.replace(/%([0-9a-f]{2})/g, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}
