import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { storageConnectionString, uniquePrefix } from '../../support/storage';

// Two local hosts of one app, each in its own process, on one storage account: the timer runs on
// one of them only (its singleton lock), and on the other once the first stops.

const ROOT = resolve(__dirname, '../../..');

interface HostProcess {
  child: ChildProcess;
  lines: string[];
}

function startHostProcess(env: Record<string, string>): HostProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/integration/host/fixtures/timerHost.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let pending = '';
  child.stdout?.on('data', (d) => {
    pending += String(d);
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr?.on('data', (d) => lines.push(`stderr ${String(d).trim()}`));
  return { child, lines };
}

async function until(condition: () => boolean, what: string, hosts: HostProcess[]): Promise<void> {
  const deadline = Date.now() + 45_000;
  while (!condition()) {
    if (Date.now() > deadline)
      throw new Error(`${what} did not happen: ${hosts.map((h) => h.lines.join(' | ')).join(' || ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((done) => (child.exitCode !== null ? done(child.exitCode) : child.once('exit', done)));
}

const running: HostProcess[] = [];
afterEach(() => {
  for (const h of running.splice(0)) if (h.child.exitCode === null) h.child.kill('SIGKILL');
});

describe('two local hosts on one storage account', () => {
  it('run each timer occurrence on one host only, and the other takes over when it stops', async () => {
    // Prepare
    const env = {
      AzureWebJobsStorage: storageConnectionString(),
      AzureFunctionsWebHost__hostid: uniquePrefix('hid'),
    };
    const a = startHostProcess(env);
    const b = startHostProcess(env);
    running.push(a, b);
    const ready = (h: HostProcess) => h.lines.find((l) => l.startsWith('ready'));
    const firedBy = (h: HostProcess) =>
      [...a.lines, ...b.lines].filter((l) => l === `fired ${h.child.pid}`).length;
    await until(() => Boolean(ready(a) && ready(b)), 'both hosts started', [a, b]);
    const holder = ready(a)?.endsWith('holder') ? a : b;
    const standby = holder === a ? b : a;

    // Act
    await until(() => firedBy(holder) >= 3, 'three occurrences on the holder', [a, b]);
    const standbyWhileBothRan = firedBy(standby);
    holder.child.kill('SIGTERM');
    expect(await exited(holder.child)).toBe(0);
    await until(() => firedBy(standby) >= 2, 'two occurrences on the other host', [a, b]);
    standby.child.kill('SIGTERM');
    await exited(standby.child);

    // Assess
    expect([ready(holder)?.split(' ')[2], ready(standby)?.split(' ')[2]]).toEqual(['holder', 'standby']);
    expect(standbyWhileBothRan).toBe(0);
    expect([...a.lines, ...b.lines].filter((l) => l.startsWith('stderr'))).toEqual([]);
  }, 90_000);
});
