import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = join(__dirname, '..', '..', '..');
const run = promisify(execFile);

async function validate(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('npx', ['tsx', 'src/lib/config/validateCli.ts', ...args], {
      cwd: REPO_ROOT,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('npm run validate', () => {
  it('validates the bundled policy when given no file, with a one-line summary and exit code 0', async () => {
    // Act
    const result = await validate();
    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(
      'OK policy/stampkeeper.policy.yaml: 2 managed secrets, 2 notification channels, 1 dead-letter entity, 2 playbooks',
    );
  });

  it('prints every problem of an invalid file with its path and exits 1', async () => {
    const result = await validate('policy/examples/invalid.policy.yaml');
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines[0]).toBe('INVALID policy/examples/invalid.policy.yaml: 5 problems');
    expect(lines.slice(1).map((l) => l.trim().split(':')[0])).toEqual([
      'secrets[1].vault',
      'secrets[1].notify[0]',
      'secrets[2]',
      'schedules.secretSweep',
      'notifications.channels[1].name',
    ]);
  });

  it('reports YAML syntax errors with their line and a missing file, exiting 1', async () => {
    // Prepare
    const dir = await mkdtemp(join(tmpdir(), 'sk-validate-'));
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, 'version: 1\nsecrets: [\n');
    // Act
    const syntax = await validate(broken);
    const missing = await validate(join(dir, 'missing.yaml'));
    // Assess
    expect(syntax.code).toBe(1);
    expect(syntax.stderr).toMatch(/line \d+, column \d+: YAML syntax error/);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('(file): file not found');
  });
});
