/**
 * Cold start: what importing the app costs, as the Functions Node.js worker imports it when an
 * instance starts, for the deployment package (the esbuild bundle `npm run build` makes, what is
 * deployed to Flex Consumption) and for the same sources unbundled (each `src/` file compiled to
 * CommonJS on its own by esbuild's transform, requiring `node_modules` as usual: what deploying
 * `tsc` output with `node_modules` would import). Both are built in this run from the working tree.
 *
 * Each import runs in a fresh `node` process (empty module cache; the files are in the OS cache
 * after two warm-up runs each), alternating the two, with the settings the sandbox uses and a
 * minimal stand-in for `@azure/functions-core` (the worker's API the app registers with). It
 * prints the median, the quartiles, the ratio (target: 0.35 at most), which `node_modules`
 * packages the unbundled import loaded (the Azure SDKs must not be among them: they load on first
 * use), which Node built-in modules the bundle's import required (none of those only the SDKs use:
 * the bundle defers their initialisation), the bundle's size, and the time to the first response of
 * `GET /api/health` on the local host (`npm start -- --entry <bundle>`, on the sandbox and an
 * in-memory Azurite), from the process start. Figures only, never assertions.
 *
 * Run alone with `npx tsx bench/coldStart.ts`, or `npm run bench -- coldStart`. `BENCH_IMPORTS`
 * sets the number of measured imports of each (default 15).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { build as esbuild } from 'esbuild';
import { build } from '../scripts/build';
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
  /** The app root (host.json, policy/): `AzureWebJobsScriptRoot`. */
  root: string;
}

/** The deployment package, built as `npm run build` builds it. */
export async function buildDeploymentPackage(outDir: string): Promise<BuiltApp> {
  await build({ rootDir: ROOT, outDir, log: () => {} });
  return { entry: join(outDir, 'main.js'), root: outDir };
}

/**
 * The same sources unbundled: every `src/` file but the local tooling (`src/local/`) compiled to
 * CommonJS on its own, with `host.json`, `policy/` and a `node_modules` link beside it, so that
 * every `import` is a `require` resolved in `node_modules`, as in a deployment of `tsc` output.
 */
export async function buildUnbundledApp(outDir: string): Promise<BuiltApp> {
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
  await cp(join(ROOT, 'host.json'), join(outDir, 'host.json'));
  await cp(join(ROOT, 'policy'), join(outDir, 'policy'), { recursive: true });
  await symlink(join(ROOT, 'node_modules'), join(outDir, 'node_modules'), 'dir');
  return { entry: join(outDir, 'src', 'main.js'), root: outDir };
}

export interface ImportResult {
  ms: number;
  /** Functions the app registered with the worker API. */
  registered: number;
  /** `node_modules` packages in the module cache after the import. */
  packages: string[];
  /** Node built-in modules required during the import (without `node:`). */
  builtins: string[];
  /** What the `after` code put in `globalThis.benchExtra`. */
  extra?: unknown;
}

/**
 * Imports `app` in a fresh `node` process and reports how long `require` took. Exported for the
 * test that checks the SDKs are deferred (test/e2e/coldStart.test.ts); `after` runs in the child
 * once the import is timed (e.g. to use the app), before the module cache is read.
 */
export function importInChild(app: BuiltApp, after = ''): Promise<ImportResult> {
  const script = `
const Module = require('node:module');
let registered = 0;
const core = {
  setProgrammingModel() {}, getProgrammingModel() {},
  registerFunction() { registered += 1; return { dispose() {} }; },
  registerHook() { return { dispose() {} }; },
  log() {},
};
const builtins = new Set();
const load = Module._load;
const resolveFilename = Module._resolveFilename;
Module._load = function (request, parent, isMain) {
  if (request === '@azure/functions-core') return core;
  if (Module.isBuiltin(request)) builtins.add(request.replace(/^node:/, ''));
  return load.call(this, request, parent, isMain);
};
Module._resolveFilename = function (request, ...rest) {
  return request === '@azure/functions-core' ? request : resolveFilename.call(this, request, ...rest);
};
const entry = process.argv[1];
const start = process.hrtime.bigint();
require(entry);
const ms = Number(process.hrtime.bigint() - start) / 1e6;
const imported = [...builtins];
(async () => {
  ${after}
  const packages = new Set();
  for (const file of Object.keys(require.cache)) {
    const m = /node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)/.exec(file);
    if (m) packages.add(m[1].replace(/\\\\/g, '/'));
  }
  process.stdout.write(JSON.stringify({ ms, registered, packages: [...packages].sort(), builtins: imported.sort(), extra: globalThis.benchExtra }));
})().catch((error) => { console.error(error); process.exit(1); });
`;
  return new Promise((resolvePromise, reject) => {
    execFile(
      process.execPath,
      ['-e', script, app.entry],
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
        else resolvePromise(JSON.parse(stdout) as ImportResult);
      },
    );
  });
}

export async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'stampkeeper-coldstart-'));
  try {
    const bundled = await buildDeploymentPackage(join(work, 'package'));
    const unbundled = await buildUnbundledApp(join(work, 'unbundled'));
    await benchImports(bundled, unbundled);
    await benchSize(bundled);
    await benchFirstHealth(bundled);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function benchImports(bundled: BuiltApp, unbundled: BuiltApp): Promise<void> {
  for (let i = 0; i < WARM_UP; i++) {
    await importInChild(bundled);
    await importInChild(unbundled);
  }
  const times = { bundled: [] as number[], unbundled: [] as number[] };
  let last: { bundled?: ImportResult; unbundled?: ImportResult } = {};
  for (let i = 0; i < IMPORTS; i++) {
    // Alternating, so that a slower moment of the machine weighs on both.
    const b = await importInChild(bundled);
    const u = await importInChild(unbundled);
    times.bundled.push(b.ms);
    times.unbundled.push(u.ms);
    last = { bundled: b, unbundled: u };
  }
  const b = summary(times.bundled);
  const u = summary(times.unbundled);
  console.log(`import of the app, ${IMPORTS} fresh processes each (median [p25-p75]):`);
  console.log(`  deployment package (bundle)   ${fmt(b)}   ${last.bundled!.registered} functions registered`);
  console.log(
    `  unbundled (CommonJS per file) ${fmt(u)}   ${last.unbundled!.registered} functions registered`,
  );
  console.log(`  ratio bundle / unbundled      ${(b.median / u.median).toFixed(2)} (target <= 0.35)`);
  const deferred: number[] = [];
  for (let i = 0; i < Math.min(IMPORTS, 5); i++) {
    const run = await importInChild(
      unbundled,
      `const t = process.hrtime.bigint(); for (const p of ${JSON.stringify(LAZY_SDKS)}) require(p); globalThis.benchExtra = Number(process.hrtime.bigint() - t) / 1e6;`,
    );
    deferred.push(run.extra as number);
  }
  console.log(
    `  moved out of the import: loading the SDKs (${LAZY_SDKS.join(', ')}) takes ${ms(summary(deferred).median)} more, unbundled, when first used`,
  );
  const eager = last.unbundled!.packages.filter((p) => LAZY_SDKS.includes(p));
  console.log(
    `  unbundled import loaded ${last.unbundled!.packages.length} packages: ${last.unbundled!.packages.join(', ')}`,
  );
  console.log(
    `  SDKs loaded at import: ${eager.length === 0 ? 'none (deferred to first use)' : eager.join(', ')}`,
  );
  const sdkBuiltins = last.bundled!.builtins.filter((m) => SDK_ONLY_BUILTINS.includes(m));
  console.log(
    `  bundle import required built-ins ${last.bundled!.builtins.join(', ')}; of those only the SDKs use (${SDK_ONLY_BUILTINS.join(', ')}): ${sdkBuiltins.length === 0 ? 'none (their initialisation is deferred)' : sdkBuiltins.join(', ')}`,
  );
}

async function benchSize(bundled: BuiltApp): Promise<void> {
  const main = readFileSync(bundled.entry);
  const files = await listFiles(bundled.root);
  let total = 0;
  for (const f of files) total += (await stat(f)).size;
  console.log(
    `deployment package: main.js ${kib(main.length)} (${kib(gzipSync(main).length)} gzipped); all of it, with the source map, host.json and policy/: ${kib(total)} in ${files.length} files`,
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
