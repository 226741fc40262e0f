import { describe, expect, it } from 'vitest';
import { ncrontabProblems, nextNcrontabOccurrence, parseNcrontab } from '../../../src/lib/config/ncrontab';

describe('NCRONTAB', () => {
  it.each([
    '0 0 */6 * * *',
    '*/10 * * * * *',
    '0 30 9 * * Mon-Fri',
    '0 0 0 1 Jan,Jul *',
    '5-10/2 0 12 15 */3 0',
    '0 0 0 * * 6',
    '0 5/15 * * * *',
    '0 0 12 1 JAN,JUL *',
    '0 15,45 * * * sun',
    '0 0 9 * mar-May MONDAY',
    // Valid dates whose weekday comes round only every few years.
    '0 0 0 1 JAN FRI',
    '0 0 0 29 FEB FRI',
  ])('accepts %s', (expression) => {
    expect(ncrontabProblems(expression)).toEqual([]);
  });

  it.each([
    ['0 0 */6 * *', /must have 6 fields .* found 5/],
    ['0 0 0 * * * *', /found 7/],
    ['60 * * * * *', /second field "60" is out of range 0-59/],
    ['0 0 24 * * *', /hour field "24" is out of range 0-23/],
    ['0 0 0 0 * *', /day field "0" is out of range 1-31/],
    ['0 0 0 * 13 *', /month field "13" is out of range 1-12/],
    ['0 0 0 * * 7', /day-of-week field "7" is out of range 0-6/],
    ['0 0 0 * * Funday', /day-of-week field "Funday" is not a number 0-6 or a name/],
    ['0 */0 * * * *', /minute field "\*\/0" has step "0"/],
    ['0 10-5 * * * *', /minute field "10-5" is a descending range/],
    ['0 1,,2 * * * *', /empty list element/],
    ['0 x * * * *', /minute field "x" is not a number 0-59/],
    ['0 60 * * * *', /minute field "60" is out of range 0-59/],
    ['*/x * * * * *', /second field "\*\/x" has step "x" \(expected a positive integer\)/],
    ['0 0 0 ? * MON', /day field "\?" is not a number 1-31/],
    ['0 0 0 * * Mo', /day-of-week field "Mo" is not a number 0-6 or a name/],
    ['0 0 0 31 2 *', /never matches a date/],
    ['0 0 0 30,31 Feb *', /never matches a date/],
  ])('rejects %s', (expression, message) => {
    expect(ncrontabProblems(expression).join('; ')).toMatch(message);
  });

  it('reports every bad field, not only the first', () => {
    expect(ncrontabProblems('99 99 * * * *')).toHaveLength(2);
  });

  it('parses steps, ranges and names into the allowed values', () => {
    const s = parseNcrontab('0 0 */6 * Jan-Mar Mon,wed');
    expect([...s.hours]).toEqual([0, 6, 12, 18]);
    expect([...s.months]).toEqual([1, 2, 3]);
    expect([...s.daysOfWeek]).toEqual([1, 3]);
    expect(() => parseNcrontab('bad')).toThrowError(/invalid NCRONTAB expression: must have 6 fields/);
  });

  it('computes the next occurrence in UTC, strictly after the given time', () => {
    expect(nextNcrontabOccurrence('0 0 */6 * * *', new Date('2026-03-01T05:59:59.500Z'))?.toISOString()).toBe(
      '2026-03-01T06:00:00.000Z',
    );
    expect(nextNcrontabOccurrence('0 0 */6 * * *', new Date('2026-03-01T06:00:00Z'))?.toISOString()).toBe(
      '2026-03-01T12:00:00.000Z',
    );
    // Day of month and day of week must both match (NCrontab): the next Friday the 13th.
    expect(nextNcrontabOccurrence('0 0 9 13 * Fri', new Date('2026-01-01T00:00:00Z'))?.toISOString()).toBe(
      '2026-02-13T09:00:00.000Z',
    );
    expect(nextNcrontabOccurrence('0 0 0 29 Feb *', new Date('2026-03-01T00:00:00Z'))?.toISOString()).toBe(
      '2028-02-29T00:00:00.000Z',
    );
    expect(nextNcrontabOccurrence('0 0 0 31 Feb *', new Date('2026-03-01T00:00:00Z'))).toBeUndefined();
  });

  describe('next occurrences (UTC)', () => {
    const from = new Date('2026-01-30T23:59:58.500Z');
    const nextThree = (expression: string): string[] => {
      const schedule = parseNcrontab(expression);
      const result: string[] = [];
      let cursor = from;
      for (let i = 0; i < 3; i++) {
        const next = nextNcrontabOccurrence(schedule, cursor);
        if (!next) break;
        result.push(next.toISOString());
        cursor = next;
      }
      return result;
    };

    it.each([
      ['*/1 * * * * *', ['2026-01-30T23:59:59.000Z', '2026-01-31T00:00:00.000Z', '2026-01-31T00:00:01.000Z']],
      ['0 */5 * * * *', ['2026-01-31T00:00:00.000Z', '2026-01-31T00:05:00.000Z', '2026-01-31T00:10:00.000Z']],
      [
        '0 30 9 * * 1-5',
        ['2026-02-02T09:30:00.000Z', '2026-02-03T09:30:00.000Z', '2026-02-04T09:30:00.000Z'],
      ],
      [
        '0 0 0 29 FEB *',
        ['2028-02-29T00:00:00.000Z', '2032-02-29T00:00:00.000Z', '2036-02-29T00:00:00.000Z'],
      ],
      [
        '0 0 12 1 JAN,JUL *',
        ['2026-07-01T12:00:00.000Z', '2027-01-01T12:00:00.000Z', '2027-07-01T12:00:00.000Z'],
      ],
      [
        '5/20 * * * * *',
        ['2026-01-31T00:00:05.000Z', '2026-01-31T00:00:25.000Z', '2026-01-31T00:00:45.000Z'],
      ],
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
      [
        '0 0 0 13 * FRI',
        ['2026-02-13T00:00:00.000Z', '2026-03-13T00:00:00.000Z', '2026-11-13T00:00:00.000Z'],
      ],
      // The search spans 5 years: the Friday 1 January after 2027 (2038) is beyond it.
      ['0 0 0 1 JAN FRI', ['2027-01-01T00:00:00.000Z']],
    ])('%s', (expression, expected) => {
      // Act / Assess
      expect(nextThree(expression)).toEqual(expected);
    });
  });
});
