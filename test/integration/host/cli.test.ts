import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_PERSIST_DIR, loadLocalSettings, parseArgs } from '../../../src/local/cli';
import { appBundle } from '../../support/bundle';
import { storageConnectionString, uniquePrefix } from '../../support/storage';

const ROOT = resolve(__dirname, '../../..');
const FIXTURE_APP = 'test/integration/host/fixtures/app.ts';

interface Started {
  child: ChildProcess;
  output: () => string;
  url: string;
}

const tempDirs: string[] = [];
/** A new temporary folder, removed after the file's tests. */
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const FIXTURE_ARGS = ['--entry', FIXTURE_APP, '--port', '0', '--no-timers', '--no-sandbox'];

/** Runs `npm start`'s CLI (`tsx src/local/cli.ts`) with `args`, collecting what it prints. */
function spawnCli(args: string[], env: Record<string, string | undefined> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/local/cli.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let output = '';
  child.stdout?.on('data', (d) => {
    stdout += String(d);
    output += String(d);
  });
  child.stderr?.on('data', (d) => {
    output += String(d);
  });
  return { child, stdout: () => stdout, output: () => output };
}

/** Starts the CLI (by default on the fixture app) and waits until it prints that it listens. */
async function startCli(
  env: Record<string, string | undefined>,
  args: string[] = FIXTURE_ARGS,
): Promise<Started> {
  const { child, output } = spawnCli(args, env);
  const deadline = Date.now() + 45_000;
  while (!output().includes('Press Ctrl-C to stop.')) {
    if (child.exitCode !== null) throw new Error(`CLI exited early (${child.exitCode}): ${output()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`CLI did not start: ${output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = /Local host listening on (http:\/\/\S+)/.exec(output())?.[1] ?? '';
  return { child, output, url };
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
    const cli = spawnCli(['--entry', 'no/such/app.ts'], { AzureWebJobsStorage: storageConnectionString() });
    const code = await exitOf(cli.child);
    // Assess
    expect(code).toBe(1);
    expect(cli.output()).toContain('The app entry no/such/app.ts does not exist');
  });

  it('prints the usage, every option explained, and exits 0 on --help and -h', async () => {
    for (const flag of ['--help', '-h']) {
      // Act
      const cli = spawnCli([flag, '--port', '0']);
      const code = await exitOf(cli.child);
      // Assess
      expect(code, flag).toBe(0);
      const usage = cli.stdout();
      expect(usage).toMatch(/^Usage: npm start -- \[options\]/);
      for (const option of [
        '--port <n>',
        '--source',
        '--entry <module>',
        '--scenario <file>',
        '--persist [dir]',
        '--no-sandbox',
        '--no-timers',
        '-h, --help',
      ]) {
        // Each option on its own line, with its explanation after it.
        expect(usage, option).toMatch(new RegExp(`^  ${option.replace(/[[\]]/g, '\\$&')} +\\S`, 'm'));
      }
      expect(usage).not.toContain('Local host listening');
    }
  });

  it('runs the sandbox on the estate of --scenario <file>', async () => {
    // Prepare: a scenario with a vault of its own.
    const dir = tempDir('stampkeeper-scenario-');
    const file = join(dir, 'other.scenario.yaml');
    writeFileSync(
      file,
      [
        'clock:',
        '  start: 2027-03-01T00:00:00Z',
        'keyVault:',
        '  vaults:',
        '    - name: contoso-scenario-kv',
        '      secrets:',
        '        - name: scenario-only-secret',
        '          expiresInDays: 60',
      ].join('\n'),
    );
    const bundle = appBundle();
    const prefix = uniquePrefix('c');
    // Act
    const cli = await startCli(
      {
        AzureWebJobsStorage: storageConnectionString(),
        STAMPKEEPER_TABLE_PREFIX: prefix,
        STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
      },
      ['--entry', bundle.entry, '--port', '0', '--no-timers', '--scenario', file],
    );
    try {
      const estate = (await (await fetch(`${cli.url}/sandbox/estate`)).json()) as {
        now: string;
        keyVault: { vaults: Array<{ name: string }> };
      };
      // Assess
      expect(estate.now).toBe('2027-03-01T00:00:00.000Z');
      expect(estate.keyVault.vaults.map((v) => v.name)).toEqual(['contoso-scenario-kv']);
      expect(JSON.stringify(estate)).toContain('scenario-only-secret');
      expect(cli.output()).toContain(`scenario ${file}`);
    } finally {
      cli.child.kill('SIGINT');
      await exitOf(cli.child);
    }
  });

  it('exits 1 naming the file and every problem when --scenario is not a valid scenario, before starting anything', async () => {
    // Prepare
    const dir = tempDir('stampkeeper-scenario-');
    const bad = join(dir, 'bad.scenario.yaml');
    writeFileSync(
      bad,
      'keyVault:\n  vaults:\n    - name: kv\n      secrets:\n        - name: s\n          expiresInDays: soon\n',
    );
    const missing = join(dir, 'missing.yaml');
    for (const [file, problem] of [
      [bad, /expiresInDays/],
      [missing, /cannot read the scenario file \(ENOENT\)/],
    ] as const) {
      // Act: storage unset, so a started CLI would start Azurite.
      const cli = spawnCli(['--entry', appBundle().entry, '--port', '0', '--scenario', file], {
        AzureWebJobsStorage: '',
      });
      const code = await exitOf(cli.child);
      // Assess
      expect(code, file).toBe(1);
      expect(cli.output()).toContain(file);
      expect(cli.output()).toMatch(problem);
      expect(cli.output()).not.toContain('Storage:');
    }
  });

  it('keeps the storage on disk with --persist <dir>: the audit survives a restart', async () => {
    // Prepare: Azurite started by the CLI itself (no storage configured), on disk.
    const dir = join(tempDir('stampkeeper-persist-'), 'azurite');
    const args = ['--entry', appBundle().entry, '--port', '0', '--no-timers', '--persist', dir];
    // The sandbox clock starts again at the scenario's start: ask for the whole year explicitly.
    const auditIds = async (url: string): Promise<string[]> => {
      const response = await fetch(
        `${url}/api/audit?since=2026-01-01T00:00:00Z&until=2026-12-31T00:00:00Z&limit=1000`,
      );
      expect(response.status).toBe(200);
      return ((await response.json()) as { records: Array<{ id: string }> }).records.map((r) => r.id);
    };
    const first = await startCli({ AzureWebJobsStorage: '' }, args);
    let before: string[];
    try {
      await fetch(`${first.url}/sandbox/clock/advance`, { method: 'POST', body: '{"days":16}' });
      before = await auditIds(first.url);
    } finally {
      first.child.kill('SIGINT');
    }
    expect(await exitOf(first.child)).toBe(0);
    // Act
    const second = await startCli({ AzureWebJobsStorage: '' }, args);
    try {
      const after = await auditIds(second.url);
      // Assess
      expect(before.length).toBeGreaterThanOrEqual(2);
      expect(after).toEqual(expect.arrayContaining(before));
      expect(second.output()).toContain(`Storage: Azurite (on disk in ${dir})`);
      expect(readdirSync(dir).some((f) => f.startsWith('__azurite_db_table'))).toBe(true);
    } finally {
      second.child.kill('SIGINT');
      await exitOf(second.child);
    }
  });

  it('runs src/main.ts through tsx with --source, on the sandbox', async () => {
    // Prepare
    const prefix = uniquePrefix('c');
    // Act
    const cli = await startCli(
      {
        AzureWebJobsStorage: storageConnectionString(),
        STAMPKEEPER_TABLE_PREFIX: prefix,
        STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
      },
      ['--source', '--port', '0', '--no-timers'],
    );
    try {
      const health = await (await fetch(`${cli.url}/api/health`)).json();
      // Assess
      expect(health).toMatchObject({ status: 'healthy', platform: 'sandbox' });
      expect(cli.output()).toContain('App: src/main.ts (source, through tsx)');
      expect(cli.output()).not.toContain('Building');
    } finally {
      cli.child.kill('SIGINT');
      await exitOf(cli.child);
    }
  });
});

describe('CLI arguments and local settings', () => {
  it('parses the options and rejects unknown or contradictory ones, pointing to --help', () => {
    // Act / Assess
    const defaults = { help: false, port: 7071, sandbox: true, timers: true, requireToken: false };
    expect(parseArgs([])).toEqual({ ...defaults, entry: 'dist/main.js', build: true });
    expect(parseArgs(['--port', '0', '--no-sandbox', '--entry', 'x.ts'])).toEqual({
      ...defaults,
      port: 0,
      entry: 'x.ts',
      build: false,
      sandbox: false,
    });
    expect(parseArgs(['--source', '--scenario', 's.yaml'])).toEqual({
      ...defaults,
      entry: 'src/main.ts',
      build: false,
      scenario: 's.yaml',
    });
    expect(parseArgs(['--persist', '--no-timers']).persist).toBe(DEFAULT_PERSIST_DIR);
    expect(parseArgs(['--require-token']).requireToken).toBe(true);
    expect(parseArgs(['--persist']).persist).toBe('.stampkeeper/azurite');
    expect(parseArgs(['--persist', 'state/here']).persist).toBe('state/here');
    expect(parseArgs(['--bogus', '-h']).help).toBe(true);
    expect(() => parseArgs(['--bogus'])).toThrow(/Unknown argument "--bogus"\. Run npm start -- --help/);
    expect(() => parseArgs(['--port', '99999'])).toThrow(/--port must be 0-65535/);
    expect(() => parseArgs(['--port', '1.5'])).toThrow(/--port must be 0-65535/);
    expect(() => parseArgs(['--port'])).toThrow(/--port needs a value/);
    expect(() => parseArgs(['--scenario'])).toThrow(/--scenario needs a value/);
    expect(() => parseArgs(['--source', '--entry', 'x.ts'])).toThrow(/--source and --entry are exclusive/);
    expect(() => parseArgs(['--no-sandbox', '--scenario', 's.yaml'])).toThrow(
      /cannot be used with --no-sandbox/,
    );
  });

  it('applies local.settings.json Values without overriding variables already set', async () => {
    // Prepare
    const dir = tempDir('stampkeeper-settings-');
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
    const dir = tempDir('stampkeeper-settings-');
    writeFileSync(resolve(dir, 'local.settings.json'), JSON.stringify({ Values: { A: 3 } }));
    // Act / Assess
    expect(() => loadLocalSettings(dir, {})).toThrow('local.settings.json Values.A must be a string.');
  });
});
