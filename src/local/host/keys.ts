/**
 * Function keys, checked the way the Functions host checks them -- but only when a setting turns
 * checking on, since Core Tools does not require keys locally.
 *
 * Settings (environment): `STAMPKEEPER_LOCAL_REQUIRE_KEYS=true` turns checking on;
 * `STAMPKEEPER_LOCAL_MASTER_KEY` (required then) opens everything; `STAMPKEEPER_LOCAL_FUNCTION_KEY`
 * opens `authLevel: 'function'` routes; `STAMPKEEPER_LOCAL_EVENTGRID_KEY` is the `eventgrid_extension`
 * system key of the Event Grid webhook. A key comes in the `x-functions-key` header or the `code`
 * query parameter. Key values are never logged or echoed.
 */
import { timingSafeEqual } from 'node:crypto';

export interface KeySettings {
  required: boolean;
  masterKey?: string;
  functionKey?: string;
  eventGridKey?: string;
}

/** What a request wants to reach. */
export type AccessTarget =
  | { kind: 'function'; authLevel: string | undefined }
  | { kind: 'admin' }
  | { kind: 'systemKey'; name: 'eventgrid_extension' };

/** Reads the key settings; throws a clear error when checking is on but no master key is set. */
export function keySettingsFromEnv(env: Record<string, string | undefined>): KeySettings {
  const flag = (env.STAMPKEEPER_LOCAL_REQUIRE_KEYS ?? '').trim().toLowerCase();
  if (flag !== '' && !['true', 'false', '1', '0'].includes(flag)) {
    throw new Error('STAMPKEEPER_LOCAL_REQUIRE_KEYS must be "true" or "false".');
  }
  const required = flag === 'true' || flag === '1';
  const settings: KeySettings = {
    required,
    masterKey: nonEmpty(env.STAMPKEEPER_LOCAL_MASTER_KEY),
    functionKey: nonEmpty(env.STAMPKEEPER_LOCAL_FUNCTION_KEY),
    eventGridKey: nonEmpty(env.STAMPKEEPER_LOCAL_EVENTGRID_KEY),
  };
  if (required && !settings.masterKey) {
    throw new Error('STAMPKEEPER_LOCAL_MASTER_KEY must be set when STAMPKEEPER_LOCAL_REQUIRE_KEYS is true.');
  }
  return settings;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value && value.trim() !== '' ? value : undefined;
}

/** The key a request presents: the `x-functions-key` header first, then the `code` query parameter. */
export function presentedKey(
  headers: Record<string, string | string[] | undefined>,
  query: URLSearchParams,
): string | undefined {
  const header = headers['x-functions-key'];
  const value = Array.isArray(header) ? header[0] : header;
  return nonEmpty(value) ?? nonEmpty(query.get('code') ?? undefined);
}

/**
 * Whether `key` opens `target`: anonymous functions always; `function` level with the function key or
 * the master key; `admin` level, the admin API and anything else with the master key only; the Event
 * Grid webhook with its system key or the master key. Always true when checking is off.
 */
export function isAuthorized(settings: KeySettings, target: AccessTarget, key: string | undefined): boolean {
  if (!settings.required) return true;
  if (target.kind === 'function') {
    const level = (target.authLevel ?? 'function').toLowerCase();
    if (level === 'anonymous') return true;
    if (matches(key, settings.masterKey)) return true;
    return level === 'function' && matches(key, settings.functionKey);
  }
  if (matches(key, settings.masterKey)) return true;
  return target.kind === 'systemKey' && matches(key, settings.eventGridKey);
}

function matches(presented: string | undefined, expected: string | undefined): boolean {
  if (!presented || !expected) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
