import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadLocalSettings, parseArgs } from '../../../src/local/cli';
import { storageConnectionString } from '../../support/storage';

const ROOT = resolve(__dirname, '../../..');
const FIXTURE_APP = 'test/integration/host/fixtures/app.ts';

interface Started {
  child: ChildProcess;
  output: () => string;
  url: string;
}

/** Starts `npm start`'s CLI on the fixture app and waits until it prints that it listens. */
async function startCli(env: Record<string, string | undefined>): Promise<Started> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/local/cli.ts',
      '--entry',
      FIXTURE_APP,
      '--port',
      '0',
      '--no-timers',
      '--no-sandbox',
    ],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d) => {
    output += String(d);
  });
  child.stderr?.on('data', (d) => {
    output += String(d);
  });
  const deadline = Date.now() + 30_000;
  while (!output.includes('Press Ctrl-C to stop.')) {
    if (child.exitCode !== null) throw new Error(`CLI exited early (${child.exitCode}): ${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`CLI did not start: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = /Local host listening on (http:\/\/\S+)/.exec(output)?.[1] ?? '';
  return { child, output: () => output, url };
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolveExit) => {
    if (child.exitCode !== null) return resolveExit(child.exitCode);
    child.once('exit', (code) => resolveExit(code));
  });
}

describe('npm start (src/local/cli.ts)', () => {
  it('serves the app, prints where everything listens, and exits 0 on Ctrl-C', async () => {
    // Prepare
    const cli = await startCli({ AzureWebJobsStorage: storageConnectionString() });
    try {
      // Act
      const res = await fetch(`${cli.url}/api/hello?name=cli`);
      const body = await res.text();
      cli.child.kill('SIGINT');
      const code = await exitOf(cli.child);
      // Assess
      expect(body).toBe('Hello, cli');
      expect(cli.output()).toContain(`hello (httpTrigger): [GET] ${cli.url}/api/hello`);
      expect(cli.output()).toContain(
        `onEvent (eventGridTrigger): ${cli.url}/runtime/webhooks/eventgrid?functionName=onEvent`,
      );
      expect(cli.output()).toContain('queued (queueTrigger): listening');
      expect(cli.output()).toContain('Storage: AzureWebJobsStorage as configured');
      expect(cli.output()).not.toContain('AccountKey');
      expect(code).toBe(0);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
  });

  it('starts Azurite itself when no storage is configured, and stops it on SIGTERM', async () => {
    // Prepare
    const cli = await startCli({ AzureWebJobsStorage: '' });
    try {
      const queueEndpoint = /queue (http:\/\/\S+?),/.exec(cli.output())?.[1] ?? '';
      const before = await fetch(`${queueEndpoint}?comp=list`);
      // Act
      cli.child.kill('SIGTERM');
      const code = await exitOf(cli.child);
      // Assess
      expect(cli.output()).toMatch(
        /Storage: Azurite \(in memory\) blob http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1/,
      );
      // Azurite answers an unsigned List Queues with 403 (AuthorizationFailure): it is up and serving.
      expect(before.status).toBe(403);
      expect(code).toBe(0);
      await expect(fetch(`${queueEndpoint}?comp=list`)).rejects.toThrow();
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
  });

  it('exits 1 with a clear message when the app entry does not exist', async () => {
    // Act
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/local/cli.ts', '--entry', 'no/such/app.ts'],
      {
        cwd: ROOT,
        env: { ...process.env, AzureWebJobsStorage: storageConnectionString() },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stderr?.on('data', (d) => {
      output += String(d);
    });
    const code = await exitOf(child);
    // Assess
    expect(code).toBe(1);
    expect(output).toContain('The app entry no/such/app.ts does not exist');
  });
});

describe('CLI arguments and local settings', () => {
  it('parses the options and rejects unknown ones with the usage', () => {
    // Act / Assess
    expect(parseArgs(['--port', '0', '--no-sandbox', '--entry', 'x.ts'])).toEqual({
      port: 0,
      entry: 'x.ts',
      sandbox: false,
      timers: true,
    });
    expect(() => parseArgs(['--bogus'])).toThrow(/Unknown argument "--bogus"[\s\S]*Usage/);
    expect(() => parseArgs(['--port', '99999'])).toThrow(/--port must be 0-65535/);
    expect(() => parseArgs(['--port'])).toThrow(/--port needs a value/);
  });

  it('applies local.settings.json Values without overriding variables already set', async () => {
    // Prepare
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(resolve(tmpdir(), 'stampkeeper-settings-'));
    writeFileSync(
      resolve(dir, 'local.settings.json'),
      JSON.stringify({ Values: { A: 'from-file', B: 'from-file' } }),
    );
    const env: NodeJS.ProcessEnv = { B: 'from-env' };
    // Act
    const applied = loadLocalSettings(dir, env);
    // Assess
    expect(applied).toEqual(['A']);
    expect(env).toEqual({ A: 'from-file', B: 'from-env' });
  });

  it('rejects a malformed local.settings.json clearly', async () => {
    // Prepare
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(resolve(tmpdir(), 'stampkeeper-settings-'));
    writeFileSync(resolve(dir, 'local.settings.json'), JSON.stringify({ Values: { A: 3 } }));
    // Act / Assess
    expect(() => loadLocalSettings(dir, {})).toThrow('local.settings.json Values.A must be a string.');
  });
});
