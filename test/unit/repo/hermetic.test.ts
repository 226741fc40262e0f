import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '../../..');

/** Files git tracks or would track (untracked but not ignored), relative to the root. */
function repositoryFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return out.split('\0').filter((f) => f !== '' && !f.startsWith('test/fixtures/'));
}

describe('the repository is self-contained', () => {
  it('refers to no path outside itself (a user clone has nothing beside it)', () => {
    // Prepare
    const outside = [
      /\.\.\/shared\b/,
      /\/work\/(shared|main)\b/,
      /\.\.[\\/]\.\.[\\/]\.\.[\\/]\.\.[\\/]shared/,
    ];

    // Act
    const offenders: string[] = [];
    for (const file of repositoryFiles()) {
      if (file === 'package-lock.json') continue;
      let text: string;
      try {
        text = readFileSync(join(ROOT, file), 'utf8');
      } catch {
        continue; // deleted in the work tree
      }
      for (const [i, line] of text.split('\n').entries()) {
        if (outside.some((p) => p.test(line)))
          offenders.push(`${file}:${i + 1}: ${line.trim().slice(0, 120)}`);
      }
    }

    // Assess
    expect(offenders).toEqual([]);
  });

  it('keeps the published samples it tests against, with a note of where each comes from', () => {
    // Prepare
    const sources = readFileSync(join(ROOT, 'test/fixtures/SOURCES.md'), 'utf8');
    const samples = execFileSync(
      'git',
      ['ls-files', '--cached', '--others', '--exclude-standard', 'test/fixtures'],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    )
      .split('\n')
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice('test/fixtures/'.length));

    // Assess
    expect(samples.length).toBeGreaterThan(20);
    for (const sample of samples) expect(sources, sample).toContain(`\`${sample}\``);
  });
});
