/**
 * NCRONTAB expressions, as the Azure Functions timer trigger reads them: six fields
 * (`{second} {minute} {hour} {day} {month} {day-of-week}`), evaluated in UTC.
 *
 * The grammar follows NCrontab (the library the Functions host uses): each field is `*` or a
 * comma-separated list of values, ranges `a-b` and steps (`*\/n`, `a-b/n`, `a/n` = from a to the
 * maximum); months and days of the week may be given by name or a prefix of at least three letters
 * (`Jan`, `JAN`, `monday`). Day of month and day of week must both match (NCrontab semantics, unlike
 * the OR of Vixie cron). `?` is not accepted: NCrontab (and so the Functions host) rejects it.
 *
 * This is the one NCRONTAB implementation of the project: the policy validation and the local
 * host's timers (src/local/host/ncrontab.ts, which adds TimeSpan schedules) both use it, so they agree
 * on what a valid expression is.
 */

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const FIELDS: readonly FieldSpec[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day', min: 1, max: 31 },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: [
      'january',
      'february',
      'march',
      'april',
      'may',
      'june',
      'july',
      'august',
      'september',
      'october',
      'november',
      'december',
    ],
  },
  {
    name: 'day-of-week',
    min: 0,
    max: 6,
    names: ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'],
  },
];

/** A parsed schedule: the allowed values of each field. */
export interface NcrontabSchedule {
  expression: string;
  seconds: ReadonlySet<number>;
  minutes: ReadonlySet<number>;
  hours: ReadonlySet<number>;
  days: ReadonlySet<number>;
  months: ReadonlySet<number>;
  daysOfWeek: ReadonlySet<number>;
}

type Parsed = { ok: true; schedule: NcrontabSchedule } | { ok: false; problems: string[] };

/**
 * Every problem of an NCRONTAB expression (empty when valid). Messages name the field and the
 * allowed range, e.g. `hour field "25" is out of range 0-23`. An expression whose fields are well
 * formed but that never matches a date (`0 0 0 31 Feb *`) is a problem too: a schedule that never
 * fires is a mistake, whether in the policy or on a timer.
 */
export function ncrontabProblems(expression: string): string[] {
  const parsed = parse(expression);
  if (!parsed.ok) return parsed.problems;
  return matchesSomeDate(parsed.schedule)
    ? []
    : [`never matches a date: no month of the month field has a day of the day field (e.g. 31 in February)`];
}

/**
 * Parses an NCRONTAB expression; throws an `Error` listing every problem of its fields when it is
 * invalid. Well-formed fields are enough: an expression that never matches a date parses (its
 * `nextNcrontabOccurrence` is `undefined`); `ncrontabProblems` reports it.
 */
export function parseNcrontab(expression: string): NcrontabSchedule {
  const parsed = parse(expression);
  if (!parsed.ok) throw new Error(`invalid NCRONTAB expression: ${parsed.problems.join('; ')}`);
  return parsed.schedule;
}

/**
 * The first occurrence strictly after `after` (UTC, whole seconds), or `undefined` when the
 * schedule never fires within the next 5 years (e.g. `0 0 0 31 2 *`).
 */
export function nextNcrontabOccurrence(schedule: NcrontabSchedule | string, after: Date): Date | undefined {
  const s = typeof schedule === 'string' ? parseNcrontab(schedule) : schedule;
  const t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
  const limit = after.getTime() + 5 * 366 * 24 * 3600 * 1000;
  // Walk field by field, jumping to the next allowed value of the coarsest mismatching field.
  while (t.getTime() <= limit) {
    if (!s.months.has(t.getUTCMonth() + 1)) {
      t.setUTCMonth(t.getUTCMonth() + 1, 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!s.days.has(t.getUTCDate()) || !s.daysOfWeek.has(t.getUTCDay())) {
      t.setUTCDate(t.getUTCDate() + 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!s.hours.has(t.getUTCHours())) {
      t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
      continue;
    }
    if (!s.minutes.has(t.getUTCMinutes())) {
      t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
      continue;
    }
    if (!s.seconds.has(t.getUTCSeconds())) {
      t.setUTCSeconds(t.getUTCSeconds() + 1, 0);
      continue;
    }
    return t;
  }
  return undefined;
}

// Days in each month, February counted in a leap year.
const MONTH_LENGTHS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Whether some date matches the month, day and day-of-week fields. Every date that exists
 * (29 February included) falls on each day of the week in some year (2000-2027 shows all of them),
 * so the (never empty) day-of-week field does not matter.
 */
function matchesSomeDate(s: NcrontabSchedule): boolean {
  for (const month of s.months) {
    for (const day of s.days) if (day <= MONTH_LENGTHS[month - 1]!) return true;
  }
  return false;
}

function parse(expression: string): Parsed {
  if (typeof expression !== 'string') return { ok: false, problems: ['must be a string'] };
  const parts = expression.trim().split(/\s+/).filter(Boolean);
  if (parts.length !== 6) {
    return {
      ok: false,
      problems: [
        `must have 6 fields ({second} {minute} {hour} {day} {month} {day-of-week}), found ${parts.length} field${parts.length === 1 ? '' : 's'}`,
      ],
    };
  }
  const problems: string[] = [];
  const sets = parts.map((part, i) => parseField(part, FIELDS[i]!, problems));
  if (problems.length > 0) return { ok: false, problems };
  const [seconds, minutes, hours, days, months, daysOfWeek] = sets as Set<number>[];
  return {
    ok: true,
    schedule: {
      expression: parts.join(' '),
      seconds: seconds!,
      minutes: minutes!,
      hours: hours!,
      days: days!,
      months: months!,
      daysOfWeek: daysOfWeek!,
    },
  };
}

function parseField(text: string, spec: FieldSpec, problems: string[]): Set<number> {
  const values = new Set<number>();
  const before = problems.length;
  for (const element of text.split(',')) {
    if (element === '') {
      problems.push(`${spec.name} field "${text}" has an empty list element`);
      continue;
    }
    const [rangeText, stepText, extra] = element.split('/');
    let step = 1;
    if (extra !== undefined || stepText === '') {
      problems.push(`${spec.name} field "${element}" has a malformed step (expected x/n)`);
      continue;
    }
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) < 1) {
        problems.push(`${spec.name} field "${element}" has step "${stepText}" (expected a positive integer)`);
        continue;
      }
      step = Number(stepText);
    }
    let from: number | undefined;
    let to: number | undefined;
    if (rangeText === '*') {
      from = spec.min;
      to = spec.max;
    } else {
      const bounds = (rangeText ?? '').split('-');
      if (bounds.length > 2) {
        problems.push(`${spec.name} field "${element}" has a malformed range (expected a-b)`);
        continue;
      }
      from = parseValue(bounds[0] ?? '', spec, problems);
      to = bounds.length === 2 ? parseValue(bounds[1] ?? '', spec, problems) : stepText ? spec.max : from;
      if (from === undefined || to === undefined) continue;
      if (from > to) {
        problems.push(`${spec.name} field "${element}" is a descending range`);
        continue;
      }
    }
    for (let v = from; v <= to; v += step) values.add(v);
  }
  if (problems.length === before && values.size === 0) problems.push(`${spec.name} field "${text}" is empty`);
  return values;
}

function parseValue(text: string, spec: FieldSpec, problems: string[]): number | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < spec.min || n > spec.max) {
      problems.push(`${spec.name} field "${text}" is out of range ${spec.min}-${spec.max}`);
      return undefined;
    }
    return n;
  }
  const lower = text.toLowerCase();
  if (spec.names && lower.length >= 3) {
    const index = spec.names.findIndex((name) => name.startsWith(lower));
    if (index >= 0) return index + spec.min;
  }
  problems.push(
    spec.names
      ? `${spec.name} field "${text}" is not a number ${spec.min}-${spec.max} or a name (${spec.names
          .map((n) => n.slice(0, 3))
          .join(', ')})`
      : `${spec.name} field "${text}" is not a number ${spec.min}-${spec.max}`,
  );
  return undefined;
}
