/**
 * `npm run build`: validates the bundled policy (an invalid policy fails the build, not
 * production), then bundles the app with esbuild into `dist/`, a deployable Functions app root:
 * `main.js` (+ source map), `host.json`, `policy/` and a `package.json` whose `main` is `main.js`.
 */
import { cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { build as esbuild } from 'esbuild';
import { loadPolicy } from '../src/lib/config/policy';
import { ConfigurationError } from '../src/lib/core/errors';

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
}

const IMPORT_META_URL = '__stampkeeperImportMetaUrl';
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
    entryPoints: [entry],
    outfile: join(outDir, 'main.js'),
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    sourcemap: true,
    external: [...HOST_PROVIDED, ...UNBUNDLED_DEPENDENCIES],
    // Some SDK dependencies ship ESM that derives `require` / `__dirname` from `import.meta.url`
    // (@azure/storage-common's CRC64, `open` under @azure/identity); in a CJS bundle that is
    // empty and loading main.js throws. Give them the bundle's own URL.
    banner: { js: `var ${IMPORT_META_URL} = require('node:url').pathToFileURL(__filename).href;` },
    define: { 'import.meta.url': IMPORT_META_URL },
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
        type: 'commonjs',
        ...(rootPackage.engines ? { engines: rootPackage.engines } : {}),
        dependencies,
      },
      null,
      2,
    )}\n`,
  );
  const files = Object.keys(result.metafile.outputs).map((f) => relative(outDir, resolve(f)));
  files.push('host.json', 'package.json', 'policy/');
  log(`built ${relative(process.cwd(), outDir) || outDir}: ${files.join(', ')}`);
  return { outDir, files };
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
