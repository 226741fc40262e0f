/**
 * Cold start: what importing the app costs, as the Functions Node.js worker imports it when an
 * instance starts, for the deployment package (what `npm run build` makes and is deployed to Flex
 * Consumption: an ES module `main.js` that the worker loads with `import()`, plus `chunks/` the app
 * loads on first use) and for the same sources unbundled (each `src/` file compiled to CommonJS on
 * its own by esbuild's transform, requiring `node_modules` as usual: what deploying `tsc` output
 * with `node_modules` would import, loaded with `require()`). Both are built in this run from the
 * working tree.
 *
 * Each import runs in a fresh `node` process (empty module cache; the files are in the OS cache
 * after two warm-up runs each), alternating, with the settings the sandbox uses and a minimal
 * `@azure/functions-core` served the way the worker serves it (a proxy on
 * `Module.prototype.require`). It prints the median, the quartiles and the ratio (target: 0.35 at
 * most); for comparison only, the unbundled app with the deployment package's precompiled policy
 * validator (what the packaging alone gains); which files and packages each import read (no
 * Azure SDK, no deferred chunk), which Node built-ins (none of those only the SDKs use); the
 * package's size, read at import and deferred; and the time to the first response of
 * `GET /api/health` on the local host (`npm start -- --entry <bundle>`, on the sandbox and an
 * in-memory Azurite), from the process start. Figures only, never assertions.
 *
 * Run alone with `npx tsx bench/coldStart.ts`, or `npm run bench -- coldStart`. `BENCH_IMPORTS`
 * sets the number of measured imports of each (default 15).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { build as esbuild, type Metafile } from 'esbuild';
import { build } from '../scripts/build';
import { policyValidatorCode } from '../scripts/policyValidator';
import { SANDBOX_SETTINGS } from '../src/local/app';
import { startAzurite } from '../test/support/azurite';

const ROOT = resolve(__dirname, '..');
const IMPORTS = Number(process.env.BENCH_IMPORTS ?? 15);
const WARM_UP = 2;
/** Packages that the app needs only once a function runs (loaded with `import()` on first use). */
export const LAZY_SDKS = [
  '@azure/core-rest-pipeline',
  '@azure/data-tables',
  '@azure/storage-queue',
  '@azure/keyvault-secrets',
  '@azure/eventgrid',
  '@azure/identity',
];
/** Node built-ins that only the SDKs' HTTP pipelines and credentials require (never the app itself). */
export const SDK_ONLY_BUILTINS = ['https', 'tls', 'zlib', 'child_process'];

export interface BuiltApp {
  /** The module the worker loads. */
  entry: string;
  /** The app root (host.json, policy/, package.json): `AzureWebJobsScriptRoot`. */
  root: string;
}

/** The deployment package and how esbuild laid it out. */
export interface DeploymentPackage extends BuiltApp {
  /** Its JavaScript files (relative to `root`) that importing `main.js` reads: main.js and its static imports. */
  eager: string[];
  /** Its JavaScript files reached only through `import()`: read on first use, never at import. */
  deferred: string[];
  /** esbuild's metafile of the build (which inputs went to which file). */
  metafile: Metafile;
}

/** The deployment package, built as `npm run build` builds it. */
export async function buildDeploymentPackage(outDir: string): Promise<DeploymentPackage> {
  const { metafile } = await build({ rootDir: ROOT, outDir, log: () => {} });
  return { entry: join(outDir, 'main.js'), root: outDir, metafile, ...packageLayout(metafile, outDir) };
}

/**
 * Splits a build's JavaScript outputs (relative to `outDir`) into those importing `main.js` reads
 * (main.js and, transitively, its static imports) and those reached only through `import()`.
 */
export function packageLayout(metafile: Metafile, outDir: string): { eager: string[]; deferred: string[] } {
  const rel = (file: string) => relative(outDir, resolve(file)).replace(/\\/g, '/');
  const outputs = new Map(Object.entries(metafile.outputs).map(([file, output]) => [rel(file), output]));
  const eager = new Set<string>();
  const pending = ['main.js'];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (eager.has(file)) continue;
    eager.add(file);
    for (const i of outputs.get(file)?.imports ?? []) {
      if (i.kind === 'import-statement' && !i.external) pending.push(rel(i.path));
    }
  }
  const scripts = [...outputs.keys()].filter((f) => f.endsWith('.js'));
  return {
    eager: scripts.filter((f) => eager.has(f)).sort(),
    deferred: scripts.filter((f) => !eager.has(f)).sort(),
  };
}

/**
 * The same sources unbundled: every `src/` file but the local tooling (`src/local/`) compiled to
 * CommonJS on its own, with `host.json`, `policy/` and a `node_modules` link beside it, so that
 * every `import` is a `require` resolved in `node_modules`, as in a deployment of `tsc` output.
 * With `precompiledValidator` (a comparison, not the baseline), the policy schema validator is the
 * one the deployment package carries, compiled at build time, instead of Ajv compiling it at import.
 */
export async function buildUnbundledApp(
  outDir: string,
  options: { precompiledValidator?: boolean } = {},
): Promise<BuiltApp> {
  const sources = (await listFiles(join(ROOT, 'src')))
    .filter((f) => f.endsWith('.ts') && !relative(join(ROOT, 'src'), f).startsWith('local'))
    .sort();
  await esbuild({
    entryPoints: sources,
    outdir: join(outDir, 'src'),
    outbase: join(ROOT, 'src'),
    bundle: false,
    format: 'cjs',
    platform: 'node',
    target: 'node22',
    logLevel: 'warning',
  });
  if (options.precompiledValidator) {
    await writeFile(
      join(outDir, 'src', 'lib', 'config', 'policySchemaValidator.js'),
      policyValidatorCode('cjs'),
    );
  }
  await cp(join(ROOT, 'host.json'), join(outDir, 'host.json'));
  await cp(join(ROOT, 'policy'), join(outDir, 'policy'), { recursive: true });
  await symlink(join(ROOT, 'node_modules'), join(outDir, 'node_modules'), 'dir');
  return { entry: join(outDir, 'src', 'main.js'), root: outDir };
}

/**
 * Whether the worker imports `app` as an ES module (`import()`) or CommonJS (`require()`): by the
 * entry's extension, else the app root's package.json `type`, as the Node.js worker decides
 * (azure-functions-nodejs-worker, src/loadScriptFile.ts, `isESModule`).
 */
export function isEsModule(app: BuiltApp): boolean {
  if (app.entry.endsWith('.mjs')) return true;
  if (app.entry.endsWith('.cjs')) return false;
  try {
    return (
      (JSON.parse(readFileSync(join(app.root, 'package.json'), 'utf8')) as { type?: string }).type ===
      'module'
    );
  } catch {
    return false;
  }
}

export interface ImportResult {
  /** How long the import took (`require()` or `await import()`), in milliseconds. */
  ms: number;
  /** Functions the app registered with the worker API. */
  registered: number;
  /** With `trace`: `node_modules` packages the import read. */
  packages: string[];
  /** With `trace`: the app's own files the import read (relative to its root, outside `node_modules`). */
  files: string[];
  /** With `trace`: Node built-in modules the import required or imported (without `node:`). */
  builtins: string[];
  /** What the `after` code put in `globalThis.benchExtra`. */
  extra?: unknown;
}

export interface ImportOptions {
  /** Code run in the child once the import is timed (e.g. to use the app); the lists include what it loads. */
  after?: string;
  /**
   * Record the files and built-ins loaded (a module resolution hook, `module.registerHooks`):
   * for the checks, not for the timed runs, which it would slow down.
   */
  trace?: boolean;
}

/**
 * Imports `app` in a fresh `node` process as the worker does (`import()` for an ES module, else
 * `require()`) and reports how long it took. Exported for test/e2e/coldStart.test.ts.
 */
export function importInChild(app: BuiltApp, options: ImportOptions = {}): Promise<ImportResult> {
  const script = `
const Module = require('node:module');
const { pathToFileURL, fileURLToPath } = require('node:url');
let registered = 0;
const core = {
  setProgrammingModel() {}, getProgrammingModel() {},
  registerFunction() { registered += 1; return { dispose() {} }; },
  registerHook() { return { dispose() {} }; },
  log() {},
};
// As the worker serves its API (azure-functions-nodejs-worker, src/setupCoreModule.ts).
Module.prototype.require = new Proxy(Module.prototype.require, {
  apply(target, thisArg, args) {
    return args[0] === '@azure/functions-core' ? core : Reflect.apply(target, thisArg, args);
  },
});
const [entry, esm, trace] = process.argv.slice(1);
const builtins = new Set();
const files = new Set();
if (trace === 'trace') {
  Module.registerHooks({
    resolve(specifier, context, nextResolve) {
      const resolved = nextResolve(specifier, context);
      if (resolved.url.startsWith('node:')) builtins.add(resolved.url.slice(5));
      else if (resolved.url.startsWith('file:')) files.add(fileURLToPath(resolved.url));
      return resolved;
    },
  });
}
(async () => {
  const start = process.hrtime.bigint();
  if (esm === 'esm') await import(pathToFileURL(entry).href);
  else require(entry);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  ${options.after ?? ''}
  const imported = { builtins: [...builtins].sort(), files: [...files] };
  const packages = new Set();
  const own = [];
  for (const file of imported.files) {
    const m = /node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)/.exec(file);
    if (m) packages.add(m[1].replace(/\\\\/g, '/'));
    else own.push(file);
  }
  process.stdout.write(JSON.stringify({ ms, registered, packages: [...packages].sort(), files: own.sort(), builtins: imported.builtins, extra: globalThis.benchExtra }));
})().catch((error) => { console.error(error); process.exit(1); });
`;
  return new Promise((resolvePromise, reject) => {
    execFile(
      process.execPath,
      ['-e', script, app.entry, isEsModule(app) ? 'esm' : 'cjs', options.trace ? 'trace' : ''],
      {
        cwd: app.root,
        env: {
          PATH: process.env.PATH,
          AzureWebJobsStorage: 'UseDevelopmentStorage=true',
          AzureWebJobsScriptRoot: app.root,
          ...SANDBOX_SETTINGS,
        },
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`importing ${app.entry} failed: ${stderr || error.message}`));
        else {
          const result = JSON.parse(stdout) as ImportResult;
          const root = resolve(app.root);
          result.files = result.files.map((f) => relative(root, f).replace(/\\/g, '/'));
          resolvePromise(result);
        }
      },
    );
  });
}

export async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'stampkeeper-coldstart-'));
  try {
    const bundled = await buildDeploymentPackage(join(work, 'package'));
    const unbundled = await buildUnbundledApp(join(work, 'unbundled'));
    const precompiled = await buildUnbundledApp(join(work, 'unbundled-precompiled'), {
      precompiledValidator: true,
    });
    await benchImports(bundled, unbundled, precompiled);
    await benchSize(bundled);
    await benchFirstHealth(bundled);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function benchImports(
  bundled: DeploymentPackage,
  unbundled: BuiltApp,
  precompiled: BuiltApp,
): Promise<void> {
  const apps = [bundled, unbundled, precompiled];
  for (let i = 0; i < WARM_UP; i++) for (const app of apps) await importInChild(app);
  const times = apps.map(() => [] as number[]);
  const registered = apps.map(() => 0);
  for (let i = 0; i < IMPORTS; i++) {
    // Alternating, so that a slower moment of the machine weighs on all of them.
    for (const [n, app] of apps.entries()) {
      const result = await importInChild(app);
      times[n]!.push(result.ms);
      registered[n] = result.registered;
    }
  }
  const [b, u, p] = times.map(summary) as [Summary, Summary, Summary];
  console.log(`import of the app, ${IMPORTS} fresh processes each (median [p25-p75]):`);
  console.log(
    `  deployment package (ES module, import())  ${fmt(b)}   ${registered[0]} functions registered`,
  );
  console.log(
    `  unbundled (CommonJS per file, require())  ${fmt(u)}   ${registered[1]} functions registered`,
  );
  console.log(
    `  ratio package / unbundled                 ${(b.median / u.median).toFixed(2)} (target <= 0.35)`,
  );
  console.log(
    `  for comparison only: unbundled with the package's precompiled policy validator ${ms(p.median)}; package / that ${(b.median / p.median).toFixed(2)} (what bundling and splitting alone give; the rest is the schema compiled at build time)`,
  );
  const deferred: number[] = [];
  for (let i = 0; i < Math.min(IMPORTS, 5); i++) {
    const run = await importInChild(unbundled, {
      after: `const t = process.hrtime.bigint(); for (const p of ${JSON.stringify(LAZY_SDKS)}) require(p); globalThis.benchExtra = Number(process.hrtime.bigint() - t) / 1e6;`,
    });
    deferred.push(run.extra as number);
  }
  console.log(
    `  moved out of the import: loading the SDKs (${LAZY_SDKS.join(', ')}) takes ${ms(summary(deferred).median)} more, unbundled, when first used`,
  );
  const tracedUnbundled = await importInChild(unbundled, { trace: true });
  const tracedBundle = await importInChild(bundled, { trace: true });
  const eagerSdks = tracedUnbundled.packages.filter((p) => LAZY_SDKS.includes(p));
  console.log(
    `  unbundled import read ${tracedUnbundled.files.length} app files and ${tracedUnbundled.packages.length} packages: ${tracedUnbundled.packages.join(', ')}`,
  );
  console.log(
    `  SDKs loaded at import: ${eagerSdks.length === 0 ? 'none (deferred to first use)' : eagerSdks.join(', ')}`,
  );
  const readDeferred = tracedBundle.files.filter((f) => bundled.deferred.includes(f));
  console.log(
    `  package import read ${tracedBundle.files.filter((f) => f.endsWith('.js')).join(', ')}; of its ${bundled.deferred.length} deferred chunks: ${readDeferred.length === 0 ? 'none' : readDeferred.join(', ')}`,
  );
  const sdkBuiltins = tracedBundle.builtins.filter((m) => SDK_ONLY_BUILTINS.includes(m));
  console.log(
    `  package import required built-ins ${tracedBundle.builtins.join(', ')}; of those only the SDKs use (${SDK_ONLY_BUILTINS.join(', ')}): ${sdkBuiltins.length === 0 ? 'none (deferred)' : sdkBuiltins.join(', ')}`,
  );
}

async function benchSize(bundled: DeploymentPackage): Promise<void> {
  const size = async (files: string[]) => {
    let bytes = 0;
    let gzipped = 0;
    for (const f of files) {
      const content = readFileSync(join(bundled.root, f));
      bytes += content.length;
      gzipped += gzipSync(content).length;
    }
    return `${kib(bytes)} (${kib(gzipped)} gzipped)`;
  };
  const files = await listFiles(bundled.root);
  let total = 0;
  for (const f of files) total += (await stat(f)).size;
  console.log(
    `deployment package: read at import ${await size(bundled.eager)} in ${bundled.eager.join(', ')}; deferred ${await size(bundled.deferred)} in ${bundled.deferred.length} chunks; all of it, with the source maps, host.json and policy/: ${kib(total)} in ${files.length} files`,
  );
}

/** `npm start -- --entry <bundle>`: process start to the first answer of GET /api/health. */
async function benchFirstHealth(bundled: BuiltApp): Promise<void> {
  const azurite = await startAzurite(ROOT);
  let child: ChildProcess | undefined;
  try {
    const started = performance.now();
    child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/local/cli.ts', '--entry', bundled.entry, '--port', '0', '--no-timers'],
      {
        cwd: ROOT,
        env: { ...process.env, AzureWebJobsStorage: azurite.connectionString },
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
    const deadline = Date.now() + 60_000;
    while (!output.includes('Press Ctrl-C to stop.')) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`npm start did not start: ${output}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const listening = performance.now();
    const url = /Local host listening on (http:\/\/\S+)/.exec(output)?.[1];
    const requested = performance.now();
    const response = await fetch(`${url}/api/health`);
    await response.text();
    const answered = performance.now();
    const second = performance.now();
    await (await fetch(`${url}/api/health`)).text();
    const secondAnswered = performance.now();
    console.log(
      `first GET /api/health on the local host (npm start -- --entry <bundle>, sandbox, Azurite): ${ms(answered - started)} after the process started (listening after ${ms(listening - started)}, local host in TypeScript through tsx included; the first request ${ms(answered - requested)}, status ${response.status}, loading the Storage and Key Vault SDKs; the next one ${ms(secondAnswered - second)})`,
    );
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGINT');
      await exited;
    }
    await azurite.stop();
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await listFiles(path)));
    else if (entry.isFile()) files.push(path);
  }
  return files;
}

interface Summary {
  median: number;
  p25: number;
  p75: number;
}

function summary(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))]!;
  return { median: at(0.5), p25: at(0.25), p75: at(0.75) };
}

function fmt(s: Summary): string {
  return `${ms(s.median).padStart(8)} [${ms(s.p25)}-${ms(s.p75)}]`;
}

function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
