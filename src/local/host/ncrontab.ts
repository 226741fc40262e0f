/**
 * Timer schedules as the Functions timer trigger accepts them, evaluated in UTC:
 * - NCRONTAB with six fields (`second minute hour day month day-of-week`): parsed, validated and
 *   stepped by the app's own implementation (src/lib/config/ncrontab.ts), so a schedule the policy
 *   validation accepts is one the local host runs, and the other way round.
 * - A TimeSpan (`hh:mm:ss`, `d.hh:mm:ss`): every interval, counted from the start of the listener.
 *   Only the host reads these (the Functions host does; the policy's schedules are NCRONTAB).
 */
import {
  type NcrontabSchedule,
  ncrontabProblems,
  nextNcrontabOccurrence,
  parseNcrontab,
} from '../../lib/config/ncrontab';
import { parseTimeSpan } from './retry';

export type Schedule =
  | { kind: 'cron'; expression: string; fields: NcrontabSchedule }
  | { kind: 'interval'; expression: string; intervalMs: number };

export class ScheduleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleError';
  }
}

/**
 * Parses a timer schedule (NCRONTAB with 6 fields, or a TimeSpan). Throws `ScheduleError` naming the
 * field and the problem when the expression is invalid, or when it never matches a date.
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
  const problems = ncrontabProblems(text);
  if (problems.length > 0) {
    throw new ScheduleError(`"${text}" is not a valid NCRONTAB expression: ${problems.join('; ')}.`);
  }
  return { kind: 'cron', expression: text, fields: parseNcrontab(text) };
}

/**
 * The first occurrence strictly after `after` (UTC). For an interval schedule, `after + interval`.
 * Returns undefined when a cron expression does not fire within 5 years.
 */
export function nextOccurrence(schedule: Schedule, after: Date): Date | undefined {
  if (schedule.kind === 'interval') return new Date(after.getTime() + schedule.intervalMs);
  return nextNcrontabOccurrence(schedule.fields, after);
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
