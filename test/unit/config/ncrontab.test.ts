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
});
