import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { build } from '../../../scripts/build';
import { validatePolicy } from '../../../src/lib/config/policy';
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
      type: 'module',
      engines: { node: '>=20' },
      dependencies: {},
    });
  });

  it('leaves @azure/functions-core to the host, splits what import() loads into chunks/, and the SDK chunks load under plain node', async () => {
    // Prepare: an entry importing the Functions library at once and SDK packages (whose ESM builds
    // use import.meta.url) on first use.
    const root = await mkdtemp(join(tmpdir(), 'sk-build-'));
    await cp(join(REPO_ROOT, 'policy'), join(root, 'policy'), { recursive: true });
    await writeFile(join(root, 'host.json'), '{ "version": "2.0" }\n');
    await writeFile(join(root, 'package.json'), JSON.stringify({ name: 'x', version: '1.0.0' }));
    await mkdir(join(root, 'src'));
    await writeFile(
      join(root, 'src', 'main.ts'),
      "import { app } from '@azure/functions';\n" +
        "const [{ DefaultAzureCredential }, { QueueClient }] = await Promise.all([import('@azure/identity'), import('@azure/storage-queue')]);\n" +
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
    const outputsWith = (pkg: string) =>
      Object.entries(result.metafile.outputs)
        .filter(([, o]) => Object.keys(o.inputs).some((input) => input.includes(`node_modules/${pkg}/`)))
        .map(([file]) => relative(result.outDir, file).replace(/\\/g, '/'));
    expect(outputsWith('@azure/functions')).toEqual(['main.js']);
    for (const sdk of ['@azure/identity', '@azure/storage-queue']) {
      expect(outputsWith(sdk).length, sdk).toBeGreaterThan(0);
      expect(
        outputsWith(sdk).every((file) => file.startsWith('chunks/')),
        sdk,
      ).toBe(true);
    }
    expect(stdout.trim().split('\n').at(-1)).toBe('function,function,function');
  });

  it('compiles the policy schema at build time: no Ajv compiler in the package, and an invalid policy gets the problems the sources report', async () => {
    // Prepare: an entry validating a policy file with the app's own policy module.
    const root = await mkdtemp(join(tmpdir(), 'sk-build-'));
    await cp(join(REPO_ROOT, 'policy'), join(root, 'policy'), { recursive: true });
    await writeFile(join(root, 'host.json'), '{ "version": "2.0" }\n');
    await writeFile(join(root, 'package.json'), JSON.stringify({ name: 'x', version: '1.0.0' }));
    await mkdir(join(root, 'src'));
    const policyModule = join(REPO_ROOT, 'src', 'lib', 'config', 'policy.ts').replace(/\\/g, '/');
    await writeFile(
      join(root, 'src', 'main.ts'),
      `import { readFileSync } from 'node:fs';\nimport { validatePolicy } from '${policyModule}';\n` +
        'const result = validatePolicy(readFileSync(process.argv[2], "utf8"), "policy");\n' +
        'console.log(JSON.stringify(result.ok ? result.policy : result.problems));\n',
    );
    const invalid = join(REPO_ROOT, 'policy', 'examples', 'invalid.policy.yaml');
    const full = join(REPO_ROOT, 'policy', 'examples', 'full.policy.yaml');
    // Act
    const result = await build({ rootDir: root, log: () => {} });
    const outputs = await Promise.all(
      [invalid, full].map((file) => run(process.execPath, ['main.js', file], { cwd: result.outDir })),
    );
    // Assess
    const inputs = Object.values(result.metafile.outputs).flatMap((o) => Object.keys(o.inputs));
    expect(inputs.filter((input) => /node_modules\/ajv\/dist\/(core|compile\/)/.test(input))).toEqual([]);
    const fromSources = [invalid, full].map((file) => {
      const validation = validatePolicy(readFileSync(file, 'utf8'), 'policy');
      return validation.ok ? validation.policy : validation.problems;
    });
    expect(JSON.parse(outputs[0]!.stdout)).toEqual(fromSources[0]);
    expect(fromSources[0]).toHaveLength(5);
    expect(JSON.parse(outputs[1]!.stdout)).toEqual(fromSources[1]);
  });
});
