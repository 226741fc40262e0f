import { describe, expect, it } from 'vitest';
import { localHostId, parseStatus, serializeStatus, timerNameOf } from '../../../src/local/host/timerStorage';

describe('timer storage names and formats', () => {
  it('uses AzureFunctionsWebHost__hostid when set, and refuses one the runtime would refuse', () => {
    // Act / Assess
    expect(localHostId({ AzureFunctionsWebHost__hostid: 'stampkeeper-prod' }, '/app')).toBe(
      'stampkeeper-prod',
    );
    expect(() => localHostId({ AzureFunctionsWebHost__hostid: 'Has Spaces' }, '/app')).toThrow(
      /AzureFunctionsWebHost__hostid must be 1 to 32 lowercase letters/,
    );
    expect(() => localHostId({ AzureFunctionsWebHost__hostid: 'x'.repeat(33) }, '/app')).toThrow(
      /at most|1 to 32/,
    );
  });

  it('derives the default host id from the machine and the app directory: same directory, same id', () => {
    // Act
    const one = localHostId({}, '/srv/app');
    const again = localHostId({}, '/srv/app');
    const other = localHostId({}, '/srv/other-app');
    // Assess
    expect(one).toBe(again);
    expect(one).not.toBe(other);
    expect(one).toMatch(/^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$/);
  });

  it('names timers as the script host does and keeps unset dates as DateTime.MinValue', () => {
    // Prepare
    const status = { next: new Date('2026-05-01T11:00:00Z'), lastUpdated: new Date('2026-05-01T10:20:00Z') };
    // Act
    const text = serializeStatus(status);
    // Assess
    expect(timerNameOf('secretSweep')).toBe('Host.Functions.secretSweep');
    expect(JSON.parse(text)).toEqual({
      Last: '0001-01-01T00:00:00',
      Next: '2026-05-01T11:00:00.000Z',
      LastUpdated: '2026-05-01T10:20:00.000Z',
    });
    expect(parseStatus(text)).toEqual({ last: undefined, ...status });
    expect(
      parseStatus(
        '{"Last":"2026-05-01T10:00:00+00:00","Next":"2026-05-01T11:00:00","LastUpdated":"0001-01-01T00:00:00+00:00"}',
      ),
    ).toEqual({
      last: new Date('2026-05-01T10:00:00Z'),
      next: new Date('2026-05-01T11:00:00Z'),
      lastUpdated: undefined,
    });
  });
});
