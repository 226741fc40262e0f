/**
 * Time notations of the Azure Monitor emulation: ISO 8601 durations (metrics intervals, Log Analytics
 * timespans), ISO 8601 intervals (`start/end`, `start/duration`, `duration/end`), and the scenario's
 * instants relative to the clock start (`+2h`, `-30m`, `+1d2h`).
 */

export const MINUTE_MS = 60_000;
const UNIT_MS = { w: 7 * 86_400_000, d: 86_400_000, h: 3_600_000, m: MINUTE_MS, s: 1000 } as const;

/** `PT15M` -> 900000. Weeks, days, hours, minutes, (fractional) seconds; no years or months (their length varies). */
export function parseIsoDuration(text: string): number | undefined {
  const match = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(
    text.trim(),
  );
  if (!match || /T$/i.test(text.trim()) || text.trim().toUpperCase() === 'P') return undefined;
  const [, w, d, h, m, s] = match;
  if ([w, d, h, m, s].every((part) => part === undefined)) return undefined;
  const ms =
    Number(w ?? 0) * UNIT_MS.w +
    Number(d ?? 0) * UNIT_MS.d +
    Number(h ?? 0) * UNIT_MS.h +
    Number(m ?? 0) * UNIT_MS.m +
    Math.round(Number(s ?? 0) * 1000);
  return Number.isFinite(ms) ? ms : undefined;
}

/** An ISO 8601 date-time with a date part (`2026-01-01T00:00:00Z`); undefined when not one. */
export function parseInstant(text: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * An ISO 8601 time interval as Log Analytics takes it: `duration` (ending now), `start/end`,
 * `start/duration` or `duration/end`. Undefined when the text is none of these or ends before it starts.
 */
export function parseIsoInterval(text: string, now: number): { start: number; end: number } | undefined {
  const parts = text.trim().split('/');
  if (parts.length === 1) {
    const duration = parseIsoDuration(parts[0]!);
    return duration === undefined ? undefined : { start: now - duration, end: now };
  }
  if (parts.length !== 2) return undefined;
  const [a, b] = parts as [string, string];
  const startAt = parseInstant(a);
  const endAt = parseInstant(b);
  let interval: { start: number; end: number } | undefined;
  if (startAt !== undefined && endAt !== undefined) interval = { start: startAt, end: endAt };
  else if (startAt !== undefined) {
    const duration = parseIsoDuration(b);
    if (duration !== undefined) interval = { start: startAt, end: startAt + duration };
  } else if (endAt !== undefined) {
    const duration = parseIsoDuration(a);
    if (duration !== undefined) interval = { start: endAt - duration, end: endAt };
  }
  return interval && interval.start <= interval.end ? interval : undefined;
}

/** `+1d2h30m` / `-15m` / `+90s` -> signed milliseconds; undefined when not of that form. */
export function parseRelative(text: string): number | undefined {
  const match = /^([+-])((?:\d+(?:\.\d+)?[wdhms])+)$/.exec(text.trim());
  if (!match) return undefined;
  let ms = 0;
  for (const part of match[2]!.matchAll(/(\d+(?:\.\d+)?)([wdhms])/g)) {
    ms += Number(part[1]) * UNIT_MS[part[2] as keyof typeof UNIT_MS];
  }
  return match[1] === '-' ? -ms : ms;
}

/** A scenario instant: absolute ISO, or relative to the clock start. Undefined with no valid form. */
export type ScenarioInstant = { at: number } | { offset: number };

export function parseScenarioInstant(value: unknown): ScenarioInstant | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : { at: value.getTime() };
  if (typeof value !== 'string') return undefined;
  const relative = parseRelative(value);
  if (relative !== undefined) return { offset: relative };
  const at = parseInstant(value);
  return at === undefined ? undefined : { at };
}

export function resolveInstant(instant: ScenarioInstant, clockStart: number): number {
  return 'at' in instant ? instant.at : clockStart + instant.offset;
}

export function floorTo(ms: number, step: number): number {
  return Math.floor(ms / step) * step;
}
