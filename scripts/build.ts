/**
 * `npm run build`: validates the bundled policy (an invalid policy fails the build, not
 * production), then bundles the app with esbuild into `dist/`, a deployable Functions app root:
 * `main.js` (an ES module, + source map), `chunks/` (what the app loads on first use: the Azure
 * SDKs, the state stores), `host.json`, `policy/` and a `package.json` whose `main` is `main.js`
 * and `type` is `module` (the Functions worker then loads it with `import()`). The policy schema's
 * validator is compiled at build time (`scripts/policyValidator.ts`). Why this layout:
 * docs/decisions/0007-deployment-package.md.
 */
import { cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { build as esbuild, type Metafile } from 'esbuild';
import { loadPolicy } from '../src/lib/config/policy';
import { ConfigurationError } from '../src/lib/core/errors';
import { precompiledPolicyValidator } from './policyValidator';

export interface BuildOptions {
  /** The repository root holding package.json, host.json and policy/. Default: the parent of scripts/. */
  rootDir?: string;
  /** The policy file to validate. Default: `<rootDir>/policy/stampkeeper.policy.yaml`. */
  policyPath?: string;
  /** Entry point. Default: `<rootDir>/src/main.ts`. */
  entry?: string;
  /** Output folder, emptied first. Default: `<rootDir>/dist`. */
  outDir?: string;
  /** Progress lines. Default: console.log. */
  log?: (line: string) => void;
}

export interface BuildResult {
  outDir: string;
  files: string[];
  /** esbuild's metafile: which inputs went to which output, and the outputs' imports. */
  metafile: Metafile;
}

const CREATE_REQUIRE = '__stampkeeperCreateRequire';
/** Packages the Functions host provides at run time: never bundled. */
const HOST_PROVIDED = ['@azure/functions-core'];
/**
 * Runtime dependencies that cannot be bundled (native addons, files read at run time); they go to
 * dist/package.json with the versions of the root package.json. None so far.
 */
const UNBUNDLED_DEPENDENCIES: string[] = [];

/**
 * Builds the deployable app. Throws `ConfigurationError` (listing every problem) when the policy is
 * invalid, before anything is written; other errors when bundling fails.
 */
export async function build(options: BuildOptions = {}): Promise<BuildResult> {
  const rootDir = resolve(options.rootDir ?? join(__dirname, '..'));
  const policyPath = resolve(rootDir, options.policyPath ?? 'policy/stampkeeper.policy.yaml');
  const entry = resolve(rootDir, options.entry ?? 'src/main.ts');
  const outDir = resolve(rootDir, options.outDir ?? 'dist');
  const log = options.log ?? ((line: string) => console.log(line));

  const policy = await loadPolicy(policyPath);
  log(`policy ${relative(rootDir, policyPath)}: valid (${policy.secrets.length} managed secrets)`);

  const hostJson = join(rootDir, 'host.json');
  const policyDir = join(rootDir, 'policy');
  for (const required of [entry, hostJson, policyDir]) {
    if (!(await exists(required))) throw new Error(`build: ${relative(rootDir, required)} not found`);
  }
  const rootPackage = JSON.parse(await readFile(join(rootDir, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    engines?: Record<string, string>;
    dependencies?: Record<string, string>;
  };

  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const result = await esbuild({
    entryPoints: { main: entry },
    outdir: outDir,
    bundle: true,
    platform: 'node',
    target: 'node22',
    // ES modules so that esbuild can split: what the app loads with `import()` on first use (the
    // Azure SDKs, the state stores) goes to chunks/ and is not even read at import.
    format: 'esm',
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    // Less to parse at import. Identifiers are kept: stack traces and class names (error names,
    // `constructor.name`) read as in the sources; the source maps give the lines.
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: true,
    external: [...HOST_PROVIDED, ...UNBUNDLED_DEPENDENCIES],
    // The CommonJS packages inside (@azure/functions, the SDKs' dependencies) call `require`: for
    // Node's built-ins, and for `@azure/functions-core`, which the Functions worker serves through
    // `Module.prototype.require` (and the local host through `Module._load`), never to `import`.
    banner: {
      js: `import { createRequire as ${CREATE_REQUIRE} } from 'node:module';\nconst require = ${CREATE_REQUIRE}(import.meta.url);`,
    },
    plugins: [precompiledPolicyValidator()],
    logLevel: 'warning',
    metafile: true,
  });
  await cp(hostJson, join(outDir, 'host.json'));
  // Examples are documentation and test material, not part of the deployed policy.
  await cp(policyDir, join(outDir, 'policy'), {
    recursive: true,
    dereference: true,
    filter: (source) => relative(policyDir, source).split(/[\\/]/)[0] !== 'examples',
  });
  // A bundled policy given by --policy replaces the default one, so dist/ runs what was validated.
  if (options.policyPath) await cp(policyPath, join(outDir, 'policy', 'stampkeeper.policy.yaml'));

  const dependencies: Record<string, string> = {};
  for (const name of UNBUNDLED_DEPENDENCIES) {
    const version = rootPackage.dependencies?.[name];
    if (!version) throw new Error(`build: ${name} is not a dependency in package.json`);
    dependencies[name] = version;
  }
  await writeFile(
    join(outDir, 'package.json'),
    `${JSON.stringify(
      {
        name: rootPackage.name,
        version: rootPackage.version,
        private: true,
        main: 'main.js',
        type: 'module',
        ...(rootPackage.engines ? { engines: rootPackage.engines } : {}),
        dependencies,
      },
      null,
      2,
    )}\n`,
  );
  const files = Object.keys(result.metafile.outputs).map((f) => relative(outDir, resolve(f)));
  files.push('host.json', 'package.json', 'policy/');
  const chunks = files.filter((f) => /^chunks[\\/].*\.js$/.test(f)).length;
  log(
    `built ${relative(process.cwd(), outDir) || outDir}: main.js and ${chunks} chunks in chunks/ (with their source maps), host.json, package.json, policy/`,
  );
  return { outDir, files, metafile: result.metafile };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function parseArgs(argv: readonly string[]): BuildOptions {
  const options: BuildOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--policy' && value) options.policyPath = resolve(value);
    else if (arg === '--outdir' && value) options.outDir = resolve(value);
    else throw new Error(`usage: npm run build [-- --policy <file>] [--outdir <dir>]; unexpected ${arg}`);
    i++;
  }
  return options;
}

if (require.main === module) {
  Promise.resolve()
    .then(() => build(parseArgs(process.argv.slice(2))))
    .catch((error: unknown) => {
      if (error instanceof ConfigurationError) {
        console.error(`build failed: the policy is invalid (${error.problems.length} problems):`);
        for (const problem of error.problems) console.error(`  ${problem}`);
      } else {
        console.error(`build failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      process.exitCode = 1;
    });
}
