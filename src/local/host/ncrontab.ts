/**
 * Timer schedules as the Functions timer trigger accepts them, evaluated in UTC:
 * - NCRONTAB with six fields: `second minute hour day month day-of-week`, each `*`, a value, a range
 *   `a-b`, a list `a,b`, a step `*\/n`, `a-b/n` or `a/n`; months `JAN`-`DEC` and days `SUN`-`SAT` by
 *   name. As in NCrontab, a time matches when every field matches (day-of-month AND day-of-week).
 * - A TimeSpan (`hh:mm:ss`, `d.hh:mm:ss`): every interval, counted from the start of the listener.
 */
import { parseTimeSpan } from './retry';

export type Schedule =
  | { kind: 'cron'; expression: string; fields: CronFields }
  | { kind: 'interval'; expression: string; intervalMs: number };

export interface CronFields {
  seconds: ReadonlySet<number>;
  minutes: ReadonlySet<number>;
  hours: ReadonlySet<number>;
  days: ReadonlySet<number>;
  months: ReadonlySet<number>;
  daysOfWeek: ReadonlySet<number>;
}

export class ScheduleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleError';
  }
}

interface FieldSpec {
  name: keyof CronFields;
  label: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

const FIELDS: readonly FieldSpec[] = [
  { name: 'seconds', label: 'second', min: 0, max: 59 },
  { name: 'minutes', label: 'minute', min: 0, max: 59 },
  { name: 'hours', label: 'hour', min: 0, max: 23 },
  { name: 'days', label: 'day of month', min: 1, max: 31 },
  { name: 'months', label: 'month', min: 1, max: 12, names: MONTH_NAMES },
  { name: 'daysOfWeek', label: 'day of week', min: 0, max: 6, names: DAY_NAMES },
];

/**
 * Parses a timer schedule (NCRONTAB with 6 fields, or a TimeSpan). Throws `ScheduleError` naming the
 * field and the problem when the expression is invalid.
 */
export function parseSchedule(expression: string): Schedule {
  if (typeof expression !== 'string' || expression.trim() === '') {
    throw new ScheduleError('The schedule is empty: expected an NCRONTAB expression or a TimeSpan.');
  }
  const text = expression.trim();
  if (/^[\d.:]+$/.test(text) && text.includes(':')) {
    const intervalMs = parseTimeSpan(text);
    if (intervalMs === undefined || intervalMs <= 0) {
      throw new ScheduleError(`"${text}" is not a positive TimeSpan (expected e.g. "00:05:00").`);
    }
    return { kind: 'interval', expression: text, intervalMs };
  }
  const schedule: Schedule = { kind: 'cron', expression: text, fields: parseCron(text) };
  // Every valid combination occurs within 5 years of any date (29 FEB included): none means never.
  if (!nextOccurrence(schedule, new Date(Date.UTC(2000, 0, 1)))) {
    throw new ScheduleError(`"${text}" never matches a date (e.g. a day that its month does not have).`);
  }
  return schedule;
}

/** Parses a six-field NCRONTAB expression. */
export function parseCron(expression: string): CronFields {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 6) {
    throw new ScheduleError(
      `"${expression}" has ${parts.length} field(s); expected 6: second minute hour day month day-of-week.`,
    );
  }
  const result: Partial<Record<keyof CronFields, Set<number>>> = {};
  FIELDS.forEach((spec, index) => {
    result[spec.name] = parseField(parts[index] as string, spec, expression);
  });
  return result as CronFields;
}

function parseField(text: string, spec: FieldSpec, expression: string): Set<number> {
  const values = new Set<number>();
  const fail = (why: string): never => {
    throw new ScheduleError(`Invalid ${spec.label} field "${text}" in "${expression}": ${why}.`);
  };
  for (const item of text.split(',')) {
    if (item === '') fail('empty list item');
    const [rangePart, stepPart, extra] = item.split('/');
    if (extra !== undefined) fail('more than one "/"');
    let step = 1;
    if (stepPart !== undefined) {
      if (!/^\d+$/.test(stepPart)) fail(`step "${stepPart}" is not a number`);
      step = Number(stepPart);
      if (step < 1) fail('step must be at least 1');
    }
    let from: number;
    let to: number;
    if (rangePart === '*' || rangePart === '?') {
      from = spec.min;
      to = spec.max;
    } else {
      const bounds = (rangePart as string).split('-');
      if (bounds.length > 2) fail(`"${rangePart}" is not a value or a range`);
      from = parseValue(bounds[0] as string, spec, fail);
      // `a/n` means from a to the end of the field, stepping n (NCrontab).
      to =
        bounds.length === 2
          ? parseValue(bounds[1] as string, spec, fail)
          : stepPart !== undefined
            ? spec.max
            : from;
      if (from > to) fail(`range start ${from} is after its end ${to}`);
    }
    for (let v = from; v <= to; v += step) values.add(v);
  }
  return values;
}

function parseValue(text: string, spec: FieldSpec, fail: (why: string) => never): number {
  let value: number;
  if (/^\d+$/.test(text)) {
    value = Number(text);
  } else {
    const index = spec.names?.indexOf(text.toUpperCase()) ?? -1;
    if (index < 0) fail(`"${text}" is not a number${spec.names ? ' or a name' : ''}`);
    value = spec.name === 'months' ? index + 1 : index;
  }
  if (value < spec.min || value > spec.max) fail(`${value} is outside ${spec.min}-${spec.max}`);
  return value;
}

// Five years of search covers every satisfiable expression (e.g. 29 FEB on a given weekday).
const SEARCH_LIMIT_MS = 5 * 366 * 24 * 3600 * 1000;

/**
 * The first occurrence strictly after `after` (UTC). For an interval schedule, `after + interval`.
 * Returns undefined when a cron expression never matches (e.g. 31 FEB).
 */
export function nextOccurrence(schedule: Schedule, after: Date): Date | undefined {
  if (schedule.kind === 'interval') return new Date(after.getTime() + schedule.intervalMs);
  const f = schedule.fields;
  const limit = after.getTime() + SEARCH_LIMIT_MS;
  const t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
  while (t.getTime() <= limit) {
    if (!f.months.has(t.getUTCMonth() + 1)) {
      t.setUTCMonth(t.getUTCMonth() + 1, 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!f.days.has(t.getUTCDate()) || !f.daysOfWeek.has(t.getUTCDay())) {
      t.setUTCDate(t.getUTCDate() + 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!f.hours.has(t.getUTCHours())) {
      t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
      continue;
    }
    if (!f.minutes.has(t.getUTCMinutes())) {
      t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
      continue;
    }
    if (!f.seconds.has(t.getUTCSeconds())) {
      t.setUTCSeconds(t.getUTCSeconds() + 1, 0);
      continue;
    }
    return t;
  }
  return undefined;
}

/** The next `count` occurrences after `after`. */
export function nextOccurrences(schedule: Schedule, after: Date, count: number): Date[] {
  const result: Date[] = [];
  let cursor = after;
  while (result.length < count) {
    const next = nextOccurrence(schedule, cursor);
    if (!next) break;
    result.push(next);
    cursor = next;
  }
  return result;
}
