import { describe, expect, it } from 'vitest';
import { nextOccurrence, nextOccurrences, parseSchedule } from '../../../src/local/host/ncrontab';

const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

describe('NCRONTAB next occurrences (UTC)', () => {
  const from = new Date('2026-01-30T23:59:58.500Z');

  it.each([
    ['*/1 * * * * *', ['2026-01-30T23:59:59.000Z', '2026-01-31T00:00:00.000Z', '2026-01-31T00:00:01.000Z']],
    ['0 */5 * * * *', ['2026-01-31T00:00:00.000Z', '2026-01-31T00:05:00.000Z', '2026-01-31T00:10:00.000Z']],
    [
      '0 30 9 * * MON-FRI',
      ['2026-02-02T09:30:00.000Z', '2026-02-03T09:30:00.000Z', '2026-02-04T09:30:00.000Z'],
    ],
    ['0 30 9 * * 1-5', ['2026-02-02T09:30:00.000Z', '2026-02-03T09:30:00.000Z', '2026-02-04T09:30:00.000Z']],
    ['0 0 0 29 FEB *', ['2028-02-29T00:00:00.000Z', '2032-02-29T00:00:00.000Z', '2036-02-29T00:00:00.000Z']],
    [
      '0 0 12 1 JAN,JUL *',
      ['2026-07-01T12:00:00.000Z', '2027-01-01T12:00:00.000Z', '2027-07-01T12:00:00.000Z'],
    ],
    ['5/20 * * * * *', ['2026-01-31T00:00:05.000Z', '2026-01-31T00:00:25.000Z', '2026-01-31T00:00:45.000Z']],
    ['0 0 0 31 * *', ['2026-01-31T00:00:00.000Z', '2026-03-31T00:00:00.000Z', '2026-05-31T00:00:00.000Z']],
    [
      '0 0 8-10/2 * * *',
      ['2026-01-31T08:00:00.000Z', '2026-01-31T10:00:00.000Z', '2026-02-01T08:00:00.000Z'],
    ],
    [
      '0 15,45 * * * sun',
      ['2026-02-01T00:15:00.000Z', '2026-02-01T00:45:00.000Z', '2026-02-01T01:15:00.000Z'],
    ],
    // Day of month AND day of week must both match (NCrontab), unlike Vixie cron's OR.
    ['0 0 0 13 * FRI', ['2026-02-13T00:00:00.000Z', '2026-03-13T00:00:00.000Z', '2026-11-13T00:00:00.000Z']],
  ])('%s', (expression, expected) => {
    // Prepare
    const schedule = parseSchedule(expression);
    // Act
    const next = nextOccurrences(schedule, from, 3);
    // Assess
    expect(iso(next)).toEqual(expected);
  });

  it('gives an occurrence strictly after the given time, even on an exact match', () => {
    // Prepare
    const schedule = parseSchedule('0 0 * * * *');
    // Act
    const next = nextOccurrence(schedule, new Date('2026-03-01T10:00:00.000Z'));
    // Assess
    expect(next?.toISOString()).toBe('2026-03-01T11:00:00.000Z');
  });

  it('supports TimeSpan schedules as intervals', () => {
    // Prepare
    const schedule = parseSchedule('00:05:00');
    // Act
    const next = nextOccurrences(schedule, new Date('2026-01-01T00:00:00.000Z'), 2);
    // Assess
    expect(schedule.kind).toBe('interval');
    expect(iso(next)).toEqual(['2026-01-01T00:05:00.000Z', '2026-01-01T00:10:00.000Z']);
    expect(parseSchedule('1.00:00:00')).toMatchObject({ kind: 'interval', intervalMs: 86_400_000 });
  });
});

describe('NCRONTAB validation', () => {
  it.each([
    ['* * * * *', /has 5 field\(s\); expected 6: second minute hour day month day-of-week/],
    ['* * * * * * *', /has 7 field\(s\)/],
    ['61 * * * * *', /Invalid second field "61".*61 is outside 0-59/],
    ['0 60 * * * *', /Invalid minute field "60"/],
    ['0 0 24 * * *', /Invalid hour field "24"/],
    ['0 0 0 0 * *', /Invalid day of month field "0".*outside 1-31/],
    ['0 0 0 * 13 *', /Invalid month field "13"/],
    ['0 0 0 * * 7', /Invalid day of week field "7".*outside 0-6/],
    ['0 0 0 * * FOO', /"FOO" is not a number or a name/],
    ['0 0 5-2 * * *', /range start 5 is after its end 2/],
    ['*/0 * * * * *', /step must be at least 1/],
    ['*/x * * * * *', /step "x" is not a number/],
    ['1,,2 * * * * *', /empty list item/],
    ['0 0 0 31 2 *', /never matches a date/],
    ['', /The schedule is empty/],
    ['00:00:00', /not a positive TimeSpan/],
    ['25:00:00', /not a positive TimeSpan/],
  ])('rejects "%s" with a clear message', (expression, message) => {
    // Act / Assess
    expect(() => parseSchedule(expression)).toThrow(message);
  });
});
