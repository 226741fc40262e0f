/**
 * Readers of scenario fields shared by the sandbox's scenario sections: each checks one field and
 * lists a problem (with its path) instead of throwing, so a scenario's every problem is reported at once.
 */

export type Problems = string[];

/** A YAML mapping (not a list, not null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Lists every key of `obj` that is not `allowed`. */
export function checkKeys(
  obj: Record<string, unknown>,
  allowed: string[],
  path: string,
  problems: Problems,
): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      problems.push(`${path}${path ? '.' : ''}${key}: unknown key (expected one of ${allowed.join(', ')})`);
    }
  }
}

/** An optional non-empty string. */
export function optString(
  obj: Record<string, unknown>,
  key: string,
  path: string,
  problems: Problems,
): string | undefined {
  const value = obj[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') {
    problems.push(`${path}.${key}: must be a non-empty string`);
    return undefined;
  }
  return value;
}

/** An optional finite number that passes `check` (`expected` says what it must be). */
export function optNumber(
  obj: Record<string, unknown>,
  key: string,
  path: string,
  problems: Problems,
  check: (n: number) => boolean,
  expected: string,
): number | undefined {
  const value = obj[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || !check(value)) {
    problems.push(`${path}.${key}: must be ${expected}`);
    return undefined;
  }
  return value;
}
