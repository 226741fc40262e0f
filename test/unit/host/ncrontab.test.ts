import { describe, expect, it } from 'vitest';
import { ncrontabProblems, nextNcrontabOccurrence } from '../../../src/lib/config/ncrontab';
import { validatePolicy } from '../../../src/lib/config/policy';
import { nextOccurrence, nextOccurrences, parseSchedule } from '../../../src/local/host/ncrontab';

// The NCRONTAB grammar and its next occurrences are tested in test/unit/config/ncrontab.test.ts;
// here: what the host adds (TimeSpan schedules, the empty schedule) and that it delegates.

const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

describe('timer schedules', () => {
  it('runs NCRONTAB expressions as the config module steps them', () => {
    // Prepare
    const from = new Date('2026-01-30T23:59:58.500Z');
    // Act
    const schedule = parseSchedule(' 0 30 9 * * MON-FRI ');
    const next = nextOccurrences(schedule, from, 3);
    // Assess
    expect(schedule).toMatchObject({ kind: 'cron', expression: '0 30 9 * * MON-FRI' });
    expect(iso(next)).toEqual([
      '2026-02-02T09:30:00.000Z',
      '2026-02-03T09:30:00.000Z',
      '2026-02-04T09:30:00.000Z',
    ]);
    expect(nextOccurrence(schedule, from)).toEqual(nextNcrontabOccurrence('0 30 9 * * MON-FRI', from));
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

  it.each([
    ['', /The schedule is empty/],
    ['00:00:00', /not a positive TimeSpan/],
    ['25:00:00', /not a positive TimeSpan/],
    [
      '0 0 24 * * *',
      /"0 0 24 \* \* \*" is not a valid NCRONTAB expression: hour field "24" is out of range 0-23/,
    ],
  ])('rejects "%s" with a clear message', (expression, message) => {
    // Act / Assess
    expect(() => parseSchedule(expression)).toThrow(message);
  });
});

describe('the policy validation and the host agree on NCRONTAB expressions', () => {
  const policyAccepts = (expression: string): boolean =>
    validatePolicy(`version: 1\nschedules:\n  secretSweep: "${expression}"\n`, 'agree.yaml').ok;
  const hostAccepts = (expression: string): boolean => {
    try {
      parseSchedule(expression);
      return true;
    } catch {
      return false;
    }
  };

  it.each([
    ['0 0 */6 * * *', true],
    ['*/10 * * * * *', true],
    ['0 30 9 * * MON-FRI', true],
    ['0 30 9 * * Monday-friday', true],
    ['0 0 12 1 JAN,JUL *', true],
    ['5/20 0-30/10 8-10/2 1,15 */2 *', true],
    ['0 0 0 29 FEB FRI', true],
    ['0 0 0 1 JAN FRI', true],
    ['* * * * *', false],
    ['* * * * * * *', false],
    ['60 * * * * *', false],
    ['0 0 0 0 * *', false],
    ['0 0 0 * * 7', false],
    ['0 0 0 * * FOO', false],
    ['0 0 0 ? * MON', false],
    ['0 10-5 * * * *', false],
    ['*/0 * * * * *', false],
    ['1,,2 * * * * *', false],
    ['0 0 0 31 2 *', false],
  ])('%s: %s', (expression, valid) => {
    // Act
    const verdicts = { policy: policyAccepts(expression), host: hostAccepts(expression) };
    // Assess
    expect(verdicts).toEqual({ policy: valid, host: valid });
    expect(ncrontabProblems(expression).length === 0).toBe(valid);
  });
});
