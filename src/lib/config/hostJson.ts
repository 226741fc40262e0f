/**
 * What the app needs from the Functions host's `host.json`: the longest an invocation may run
 * (`functionTimeout`). Claims and leases that protect work in progress must outlive it, or a second
 * attempt could take a key over while the first one is still acting.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Flex Consumption's default `functionTimeout` when host.json does not set one. */
export const FLEX_DEFAULT_FUNCTION_TIMEOUT_MS = 30 * 60_000;

/**
 * The `functionTimeout` of `<appRoot>/host.json` in milliseconds, the Flex Consumption default (30
 * minutes) when the file or the key is absent. Returns a problem (never a value) when the setting
 * is not a bounded TimeSpan (`hh:mm:ss` or `d.hh:mm:ss`): an unbounded timeout (`-1`) leaves no
 * lease long enough.
 */
export function functionTimeoutFrom(appRoot: string): { ms: number } | { problem: string } {
  const file = join(appRoot, 'host.json');
  if (!existsSync(file)) return { ms: FLEX_DEFAULT_FUNCTION_TIMEOUT_MS };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return { problem: 'host.json: is not valid JSON' };
  }
  const raw = (parsed as { functionTimeout?: unknown } | null)?.functionTimeout;
  if (raw === undefined || raw === null) return { ms: FLEX_DEFAULT_FUNCTION_TIMEOUT_MS };
  const ms = typeof raw === 'string' ? timeSpanMs(raw.trim()) : undefined;
  if (ms === undefined || ms <= 0) {
    return {
      problem:
        'host.json functionTimeout: must be a bounded TimeSpan (hh:mm:ss or d.hh:mm:ss, e.g. 00:10:00): ' +
        "stampkeeper's claims and leases must outlive the longest invocation",
    };
  }
  return { ms };
}

function timeSpanMs(text: string): number | undefined {
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$/.exec(text);
  if (!match) return undefined;
  const [, days, hours, minutes, seconds, fraction] = match;
  if (Number(minutes) > 59 || Number(seconds) > 59 || Number(hours) > 23) return undefined;
  const fractionMs = fraction ? Math.round(Number(`0.${fraction}`) * 1000) : 0;
  return (
    ((Number(days ?? 0) * 24 + Number(hours)) * 3600 + Number(minutes) * 60 + Number(seconds)) * 1000 +
    fractionMs
  );
}

/**
 * host.json's `extensionBundle` (`{ id, version }`, the version a range such as `[4.*, 5.0.0)`), or
 * `undefined` when the file, the section or one of its fields is absent or not text: the platform
 * version check reports a missing bundle rather than failing start-up over it.
 */
export function extensionBundleFrom(appRoot: string): { id: string; version: string } | undefined {
  const file = join(appRoot, 'host.json');
  if (!existsSync(file)) return undefined;
  try {
    const bundle = (
      JSON.parse(readFileSync(file, 'utf8')) as { extensionBundle?: { id?: unknown; version?: unknown } }
    )?.extensionBundle;
    if (typeof bundle?.id !== 'string' || typeof bundle.version !== 'string') return undefined;
    return { id: bundle.id, version: bundle.version };
  } catch {
    return undefined;
  }
}
