/**
 * The README's walk-through, exactly as written: every `curl` line of its shell blocks, in the order
 * shown, against a running `npm start` (the CLI on the bundle of this test run, on the sandbox),
 * answers 2xx. A README edit that breaks a command fails here.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appBundle } from '../support/bundle';
import { parseCurl, shellBlocks, shellWords } from '../support/curl';
import { storageConnectionString, uniquePrefix } from '../support/storage';

const ROOT = resolve(__dirname, '../..');
const README_HOST = 'localhost:7071';

function readmeCurlLines(): string[] {
  const readme = readFileSync(resolve(ROOT, 'README.md'), 'utf8');
  return shellBlocks(readme)
    .flat()
    .map((line) => line.trim())
    .filter((line) => line.startsWith('curl '));
}

describe("the README's commands", () => {
  let child: ChildProcess;
  let output = '';
  let url = '';

  beforeAll(async () => {
    const prefix = uniquePrefix('r');
    child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/local/cli.ts', '--entry', appBundle().entry, '--port', '0', '--no-timers'],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          AzureWebJobsStorage: storageConnectionString(),
          STAMPKEEPER_TABLE_PREFIX: prefix,
          STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout?.on('data', (d) => {
      output += String(d);
    });
    child.stderr?.on('data', (d) => {
      output += String(d);
    });
    const deadline = Date.now() + 45_000;
    while (!output.includes('Press Ctrl-C to stop.')) {
      if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}): ${output}`);
      if (Date.now() > deadline) throw new Error(`npm start did not start: ${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    url = /Local host listening on http:\/\/(\S+)/.exec(output)?.[1] ?? '';
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
    }
  });

  it('runs the curl walk-through as written, in order, each answering 2xx', async () => {
    // Prepare
    const lines = readmeCurlLines();
    expect(lines.length).toBeGreaterThanOrEqual(7);
    const order = (fragment: string) => lines.findIndex((l) => l.includes(fragment));
    expect(order('/sandbox/clock/advance')).toBeGreaterThanOrEqual(0);
    expect(order('/api/audit')).toBeGreaterThan(order('/sandbox/clock/advance'));
    // Act
    const results: Array<{ line: string; status: number; body: string }> = [];
    for (const line of lines) {
      const request = parseCurl(line);
      expect(request.url, line).toContain(README_HOST);
      const response = await fetch(request.url.replace(README_HOST, url), {
        method: request.method,
        headers: request.headers,
        body: request.body,
      });
      results.push({ line, status: response.status, body: await response.text() });
    }
    // Assess
    const failed = results
      .filter((r) => r.status < 200 || r.status >= 300)
      .map((r) => ({ ...r, body: r.body.slice(0, 500) }));
    expect(failed).toEqual([]);
    const audit = results.find((r) => r.line.includes('/api/audit'))!;
    expect(audit.body).toContain('cosmos-primary-key');
  });

  it('reads the commands as a shell would, and refuses what it cannot run as written', () => {
    // Act / Assess
    expect(
      parseCurl(`curl -s -XPOST localhost:7071/sandbox/clock/advance -d '{"days":16}'   # note`),
    ).toEqual({
      method: 'POST',
      url: 'http://localhost:7071/sandbox/clock/advance',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '{"days":16}',
    });
    expect(shellWords('curl -s "localhost:7071/api/audit?since=2026-01-01T00:00:00Z"')).toEqual([
      'curl',
      '-s',
      'localhost:7071/api/audit?since=2026-01-01T00:00:00Z',
    ]);
    expect(() => shellWords('curl -s localhost:7071/api/audit?since=x')).toThrow(/"\?" is not supported/);
    expect(() => shellWords('curl -s localhost:7071/api/health | jq .')).toThrow(/"\|" is not supported/);
    expect(() => parseCurl('curl -k localhost:7071/api/health')).toThrow(/-k is not supported/);
  });
});
