import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildDeps } from '../../../src/lib/app/deps';
import { FLEX_DEFAULT_FUNCTION_TIMEOUT_MS, functionTimeoutFrom } from '../../../src/lib/config/hostJson';
import { parsePolicy } from '../../../src/lib/config/policy';
import { validateSettings } from '../../../src/lib/config/settings';
import { systemClock } from '../../../src/lib/ports/clock';

const dirs: string[] = [];
function appRoot(hostJson?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'stampkeeper-hostjson-'));
  dirs.push(dir);
  if (hostJson !== undefined) writeFileSync(join(dir, 'host.json'), JSON.stringify(hostJson));
  return dir;
}

describe('functionTimeoutFrom (host.json)', () => {
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("reads a bounded TimeSpan, and falls back to Flex Consumption's 30 minutes when absent", () => {
    expect(functionTimeoutFrom(appRoot({ version: '2.0', functionTimeout: '00:10:00' }))).toEqual({
      ms: 600_000,
    });
    expect(functionTimeoutFrom(appRoot({ functionTimeout: '1.02:00:00' }))).toEqual({ ms: 26 * 3_600_000 });
    expect(functionTimeoutFrom(appRoot({ version: '2.0' }))).toEqual({
      ms: FLEX_DEFAULT_FUNCTION_TIMEOUT_MS,
    });
    expect(functionTimeoutFrom(appRoot())).toEqual({ ms: 30 * 60_000 });
  });

  it('refuses an unbounded or malformed timeout: no lease could outlive it', () => {
    for (const functionTimeout of ['-1', '10 minutes', '00:61:00', 600]) {
      expect(functionTimeoutFrom(appRoot({ functionTimeout }))).toEqual({
        problem: expect.stringMatching(/^host\.json functionTimeout: must be a bounded TimeSpan/),
      });
    }
  });

  it('stops start-up on a bad functionTimeout, naming it', () => {
    // Act
    const result = validateSettings(
      { AzureWebJobsStorage: 'UseDevelopmentStorage=true' },
      {
        appRoot: appRoot({ functionTimeout: '-1' }),
      },
    );

    // Assess
    expect(result).toEqual({
      ok: false,
      problems: [expect.stringMatching(/^host\.json functionTimeout/)],
    });
  });

  it('makes every claim and run lease outlive the longest invocation', async () => {
    // Prepare: a host whose invocations may run for 20 minutes
    const settings = validateSettings(
      { AzureWebJobsStorage: 'UseDevelopmentStorage=true' },
      {
        appRoot: appRoot({ functionTimeout: '00:20:00' }),
      },
    );
    if (!settings.ok) throw new Error(settings.problems.join('; '));
    const policy = parsePolicy('version: 1\n', 'p.yaml');
    const deps = buildDeps(settings.settings, policy, {
      credential: { getToken: async () => null },
      webhookClient: { sendRequest: async () => Promise.reject(new Error('no network')) },
      clock: systemClock,
      kind: 'test',
    });

    // Act
    await deps.load();
    const { logger: _l, ...secretEvents } = deps.secretEvents({
      debug() {},
      info() {},
      warn() {},
      error() {},
      child() {
        return this;
      },
    });

    // Assess
    expect(settings.settings.functionTimeoutMs).toBe(20 * 60_000);
    expect(secretEvents.claimLeaseMs).toBeGreaterThan(20 * 60_000);
  });
});
