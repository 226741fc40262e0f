import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { build } from '../../../scripts/build';
import { ConfigurationError } from '../../../src/lib/core/errors';

const REPO_ROOT = join(__dirname, '..', '..', '..');
const run = promisify(execFile);

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('build', () => {
  it('fails on an invalid policy, listing its problems, before writing anything', async () => {
    // Prepare
    const outDir = join(await mkdtemp(join(tmpdir(), 'sk-build-')), 'dist');
    // Act
    const error = await build({
      rootDir: REPO_ROOT,
      policyPath: 'policy/examples/invalid.policy.yaml',
      outDir,
      log: () => {},
    }).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).problems).toHaveLength(5);
    expect((error as ConfigurationError).problems[0]).toMatch(/^secrets\[1\]\.vault: /);
    expect(await exists(outDir)).toBe(false);
  });

  it('bundles a deployable root: main.js runs from dist/ alone and finds its policy there', async () => {
    // Prepare: a throwaway app root whose entry loads the policy the way the app does (cwd-relative).
    const root = await mkdtemp(join(tmpdir(), 'sk-build-'));
    await cp(join(REPO_ROOT, 'policy'), join(root, 'policy'), { recursive: true });
    await writeFile(join(root, 'host.json'), '{ "version": "2.0" }\n');
    await writeFile(
      join(root, 'package.json'),
      JSON.stringify({ name: 'stampkeeper', version: '9.9.9', engines: { node: '>=20' }, dependencies: {} }),
    );
    await mkdir(join(root, 'src'));
    const configModule = join(REPO_ROOT, 'src', 'lib', 'config', 'index.ts').replace(/\\/g, '/');
    await writeFile(
      join(root, 'src', 'main.ts'),
      `import { defaultPolicyPath, loadPolicySync } from '${configModule}';\n` +
        'const policy = loadPolicySync(defaultPolicyPath());\n' +
        'console.log(policy.secrets.map((s) => s.name).join(","));\n',
    );
    // Act
    const result = await build({ rootDir: root, log: () => {} });
    const { stdout } = await run(process.execPath, ['main.js'], { cwd: result.outDir });
    // Assess
    expect(result.outDir).toBe(join(root, 'dist'));
    expect(stdout.trim()).toBe('cosmos-primary-key,storage-account-key');
    expect((await readdir(result.outDir)).sort()).toEqual([
      'host.json',
      'main.js',
      'main.js.map',
      'package.json',
      'policy',
    ]);
    expect((await readdir(join(result.outDir, 'policy'))).sort()).toEqual([
      'stampkeeper.policy.schema.json',
      'stampkeeper.policy.yaml',
    ]);
    expect(JSON.parse(await readFile(join(result.outDir, 'package.json'), 'utf8'))).toEqual({
      name: 'stampkeeper',
      version: '9.9.9',
      private: true,
      main: 'main.js',
      type: 'commonjs',
      engines: { node: '>=20' },
      dependencies: {},
    });
  });

  it('leaves @azure/functions-core to the host, and the SDK bundle loads under plain node', async () => {
    // Prepare: an entry pulling in SDK packages whose ESM builds use import.meta.url.
    const root = await mkdtemp(join(tmpdir(), 'sk-build-'));
    await cp(join(REPO_ROOT, 'policy'), join(root, 'policy'), { recursive: true });
    await writeFile(join(root, 'host.json'), '{ "version": "2.0" }\n');
    await writeFile(join(root, 'package.json'), JSON.stringify({ name: 'x', version: '1.0.0' }));
    await mkdir(join(root, 'src'));
    await writeFile(
      join(root, 'src', 'main.ts'),
      "import { app } from '@azure/functions';\n" +
        "import { DefaultAzureCredential } from '@azure/identity';\n" +
        "import { QueueClient } from '@azure/storage-queue';\n" +
        "console.log([typeof app.http, typeof DefaultAzureCredential, typeof QueueClient].join(','));\n",
    );
    // esbuild resolves packages from the entry's folder: link the repository's node_modules.
    await symlink(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
    // Act
    const result = await build({ rootDir: root, log: () => {} });
    const bundle = await readFile(join(result.outDir, 'main.js'), 'utf8');
    const { stdout } = await run(process.execPath, ['main.js'], { cwd: result.outDir });
    // Assess
    expect(bundle).toMatch(/require\("@azure\/functions-core"\)/);
    expect(stdout.trim().split('\n').at(-1)).toBe('function,function,function');
  });
});
