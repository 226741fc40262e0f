/**
 * `npm start` as a person runs it (`tsx src/local/cli.ts`, what the script runs): it builds the
 * bundle into dist/ and runs dist/main.js, the deployed app, on the sandbox, in its own process.
 * And a wrong setting stops start-up with a message that names it (and never prints a value).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appBundle } from '../support/bundle';
import { storageConnectionString, uniquePrefix } from '../support/storage';

const ROOT = resolve(__dirname, '../..');

function startCli(
  env: Record<string, string>,
  args: string[] = [],
): { child: ChildProcess; output: () => string } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/local/cli.ts', '--port', '0', '--no-timers', ...args],
    {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout?.on('data', (d) => {
    output += String(d);
  });
  child.stderr?.on('data', (d) => {
    output += String(d);
  });
  return { child, output: () => output };
}

async function until(condition: () => boolean, what: string, output: () => string): Promise<void> {
  const deadline = Date.now() + 45_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen: ${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((done) => (child.exitCode !== null ? done(child.exitCode) : child.once('exit', done)));
}

describe('npm start', () => {
  it('builds dist/ and runs the bundle on the sandbox: healthy, the estate inspectable, Ctrl-C exits 0', async () => {
    // Prepare
    const startedAt = Date.now();
    const prefix = uniquePrefix('s');
    const cli = startCli({
      AzureWebJobsStorage: storageConnectionString(),
      STAMPKEEPER_TABLE_PREFIX: prefix,
      STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
    });
    try {
      // Act
      await until(() => cli.output().includes('Press Ctrl-C to stop.'), 'start-up', cli.output);
      const url = /Local host listening on (http:\/\/\S+)/.exec(cli.output())?.[1];
      const health = await (await fetch(`${url}/api/health`)).json();
      const estate = await (await fetch(`${url}/sandbox/estate`)).text();
      // Assess: the bundle was built now and is what runs, on the sandbox.
      expect(cli.output()).toContain('Building dist/main.js');
      expect(cli.output()).toContain('App: dist/main.js (the bundle, built now)');
      expect(statSync(resolve(ROOT, 'dist/main.js')).mtimeMs).toBeGreaterThanOrEqual(startedAt - 1000);
      expect(JSON.parse(readFileSync(resolve(ROOT, 'dist/package.json'), 'utf8')).main).toBe('main.js');
      expect(health).toMatchObject({ status: 'healthy', platform: 'sandbox' });
      expect(estate).toContain('cosmos-primary-key');
      expect(cli.output()).toContain(
        `keyVaultEvents (eventGridTrigger): ${url}/runtime/webhooks/eventgrid?functionName=keyVaultEvents`,
      );
      expect(cli.output()).toContain(`Sandbox: ${url}/sandbox/`);
      cli.child.kill('SIGINT');
      expect(await exitOf(cli.child)).toBe(0);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
  });

  it('stops with a message naming a wrong setting, never its value', async () => {
    // The bundle of this test run (no second build of dist/).
    const cli = startCli(
      {
        AzureWebJobsStorage: storageConnectionString(),
        STAMPKEEPER_DRY_RUN: 'perhaps-not-a-boolean',
        STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT: 'ftp://topic.example/with-a-secret-token',
      },
      ['--entry', appBundle().entry],
    );
    const code = await exitOf(cli.child);
    expect(code).toBe(1);
    expect(cli.output()).toMatch(/STAMPKEEPER_DRY_RUN: must be true, false, 1 or 0/);
    expect(cli.output()).toMatch(/STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT/);
    expect(cli.output()).not.toContain('perhaps-not-a-boolean');
    expect(cli.output()).not.toContain('with-a-secret-token');
  });
});
