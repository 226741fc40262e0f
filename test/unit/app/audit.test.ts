import { describe, expect, it } from 'vitest';
import { parseAuditQuery, parseRejectionQuery } from '../../../src/lib/app/audit';
import { ValidationError } from '../../../src/lib/core/errors';
import { parseIsoTime } from '../../../src/lib/core/time';

const NOW = new Date('2026-03-01T12:00:00Z');

describe('parseAuditQuery', () => {
  it('defaults to the last 24 hours and 200 records', () => {
    expect(parseAuditQuery(new URLSearchParams(''), NOW)).toEqual({
      since: new Date('2026-02-28T12:00:00Z'),
      until: undefined,
      target: undefined,
      limit: 200,
    });
  });

  it('reads since, until, target and limit', () => {
    const q = parseAuditQuery(
      new URLSearchParams(
        'since=2026-02-01T00:00:00Z&until=2026-02-02T00:00:00%2B01:00&target=vaults/kv/secrets/s&limit=5',
      ),
      NOW,
    );
    expect(q).toEqual({
      since: new Date('2026-02-01T00:00:00Z'),
      until: new Date('2026-02-01T23:00:00Z'),
      target: 'vaults/kv/secrets/s',
      limit: 5,
    });
  });

  it('lists every bad parameter, and never reads a zone-less time in local time', () => {
    let error: ValidationError | undefined;
    try {
      parseAuditQuery(new URLSearchParams('since=2026-02-01T00:00:00&until=yesterday&limit=0'), NOW);
    } catch (e) {
      error = e as ValidationError;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect(error?.problems).toEqual([
      expect.stringMatching(/^since: '2026-02-01T00:00:00' is not an ISO 8601 time with a zone/),
      expect.stringMatching(/^until: 'yesterday'/),
      'limit: must be an integer from 1 to 1000',
    ]);
  });

  it('refuses absurd times and over-long windows before any work, naming the bound', () => {
    // Act
    const problemsOf = (query: string): string[] => {
      try {
        parseAuditQuery(new URLSearchParams(query), NOW);
      } catch (e) {
        return (e as ValidationError).problems;
      }
      return [];
    };

    // Assess
    expect(problemsOf('since=0001-01-01T00:00:00Z')).toEqual(['since: must be within 100 years of now']);
    expect(problemsOf('since=2026-01-01T00:00:00Z&until=9999-01-01T00:00:00Z')).toEqual([
      'until: must be within 100 years of now',
    ]);
    expect(problemsOf('since=2020-01-01T00:00:00Z')).toEqual([
      'since, until: at most 366 days apart (until defaults to now)',
    ]);
    expect(problemsOf('since=2025-03-01T12:00:00Z')).toEqual([]);
  });

  it('accepts a bare secret name as target, and says what a target looks like otherwise', () => {
    // Act
    const bare = parseAuditQuery(new URLSearchParams('target=cosmos-key'), NOW);

    // Assess
    expect(bare.target).toBe('cosmos-key');
    expect(() => parseAuditQuery(new URLSearchParams(`target=${'x'.repeat(600)}`), NOW)).toThrow(
      /target: at most 512 characters/,
    );
  });

  it('rejects since after until', () => {
    expect(() =>
      parseAuditQuery(new URLSearchParams('since=2026-02-02T00:00:00Z&until=2026-02-01T00:00:00Z'), NOW),
    ).toThrow(/since: must not be after until/);
  });
});

describe('parseRejectionQuery', () => {
  it('defaults to the last 24 hours and allows at most 31 days', () => {
    expect(parseRejectionQuery(new URLSearchParams(''), NOW)).toEqual({
      since: new Date('2026-02-28T12:00:00Z'),
      until: NOW,
    });
    expect(() => parseRejectionQuery(new URLSearchParams('since=2026-01-01T00:00:00Z'), NOW)).toThrow(
      /at most 31 days apart/,
    );
  });
});

describe('parseIsoTime', () => {
  it.each([
    ['2026-01-01T00:00:00Z', '2026-01-01T00:00:00.000Z'],
    ['2026-01-01T01:30:00.5+01:00', '2026-01-01T00:30:00.500Z'],
    ['2026-01-01T00:00Z', '2026-01-01T00:00:00.000Z'],
  ])('parses %s', (text, iso) => {
    expect(parseIsoTime(text)?.toISOString()).toBe(iso);
  });

  it.each(['2026-01-01T00:00:00', '3/22/2019 1:36:31 PM', '2026-13-01T00:00:00Z', '', 12, null])(
    'rejects %s',
    (value) => {
      expect(parseIsoTime(value)).toBeUndefined();
    },
  );
});
