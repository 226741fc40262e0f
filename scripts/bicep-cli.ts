/**
 * Finds the Bicep CLI, and on CI fetches it. The CLI is a self-contained binary published on NuGet
 * as `Azure.Bicep.CommandLine.linux-x64` (its `tools/bicep`); CI machines have the .NET SDK and
 * NuGet, so `fetchBicep` restores that package with `dotnet restore` into a cache folder outside
 * the repository.
 *
 * On a user's machine nothing is ever downloaded: `locateBicep` only looks at what is installed
 * (`STAMPKEEPER_BICEP`, `bicep` on PATH, the binary `az bicep install` put under ~/.azure/bin, or a
 * copy an earlier `--fetch` left in the cache). Fetching happens only when asked for (`--fetch`,
 * which `.ci/run` passes).
 */
import { execFile } from 'node:child_process';
import { access, chmod, constants, mkdir, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** The NuGet package and version `.ci/run` restores (a version the registry serves). */
export const BICEP_PACKAGE = 'Azure.Bicep.CommandLine.linux-x64';
export const BICEP_VERSION = '0.49.2';
/** Oldest CLI that compiles the templates (`fail()`, `extends`, typed imports). */
export const MIN_BICEP_VERSION = '0.47.0';

export type BicepSource = 'STAMPKEEPER_BICEP' | 'PATH' | 'az' | 'cache';

export interface BicepCli {
  path: string;
  version: string;
  source: BicepSource;
}

export interface BicepRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ResolveOptions {
  /** Restore the pinned CLI from NuGet when none is installed (CI). Default false. */
  fetch?: boolean;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

/** Thrown when no usable CLI is found; the message says how to get one. */
export class BicepNotFoundError extends Error {
  override name = 'BicepNotFoundError';
}

/** Where a fetched CLI is kept: `$STAMPKEEPER_BICEP_CACHE`, else `$XDG_CACHE_HOME/stampkeeper/bicep`. */
export function bicepCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.STAMPKEEPER_BICEP_CACHE?.trim();
  if (explicit) return explicit;
  const cacheHome = env.XDG_CACHE_HOME?.trim() || join(homedir(), '.cache');
  return join(cacheHome, 'stampkeeper', 'bicep');
}

/** The binary inside the restored package (NuGet lower-cases package folder names). */
export function cachedBicepPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(bicepCacheDir(env), 'packages', BICEP_PACKAGE.toLowerCase(), BICEP_VERSION, 'tools', 'bicep');
}

/** How to get a CLI, for error messages. */
export function installHint(env: NodeJS.ProcessEnv = process.env): string {
  return (
    'Install the Bicep CLI (`az bicep install`, or a `bicep` binary on PATH, or set STAMPKEEPER_BICEP to its path), ' +
    `or run \`npm run infra:build -- --fetch\` to restore ${BICEP_PACKAGE} ${BICEP_VERSION} from NuGet ` +
    `(needs the .NET SDK) into ${bicepCacheDir(env)}.`
  );
}

/** `0.49.2` from `Bicep CLI version 0.49.2 (b34271ac51)`. */
export function parseBicepVersion(output: string): string | undefined {
  return /Bicep CLI version (\d+\.\d+\.\d+)/.exec(output)?.[1];
}

/** Numeric comparison of `a.b.c` versions. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The first usable installed CLI, or `undefined`. Never downloads. A candidate that exists but is
 * older than `MIN_BICEP_VERSION` is an error (upgrading is the user's call).
 */
export async function locateBicep(env: NodeJS.ProcessEnv = process.env): Promise<BicepCli | undefined> {
  const candidates: Array<{ path: string; source: BicepSource }> = [];
  const explicit = env.STAMPKEEPER_BICEP?.trim();
  if (explicit) {
    if (!(await isExecutable(explicit))) {
      throw new BicepNotFoundError(
        `STAMPKEEPER_BICEP=${explicit} is not an executable file. ${installHint(env)}`,
      );
    }
    candidates.push({ path: explicit, source: 'STAMPKEEPER_BICEP' });
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir) candidates.push({ path: join(dir, 'bicep'), source: 'PATH' });
  }
  const azureConfigDir = env.AZURE_CONFIG_DIR?.trim() || join(homedir(), '.azure');
  candidates.push({ path: join(azureConfigDir, 'bin', 'bicep'), source: 'az' });
  candidates.push({ path: cachedBicepPath(env), source: 'cache' });

  for (const candidate of candidates) {
    if (!(await isExecutable(candidate.path))) continue;
    const version = await versionOf(candidate.path);
    if (!version) continue;
    if (compareVersions(version, MIN_BICEP_VERSION) < 0) {
      throw new BicepNotFoundError(
        `Bicep CLI ${version} at ${candidate.path} (${candidate.source}) is older than ${MIN_BICEP_VERSION}: ` +
          'upgrade it (`az bicep upgrade`), or point STAMPKEEPER_BICEP at a newer one.',
      );
    }
    return { ...candidate, version };
  }
  return undefined;
}

/**
 * Restores `BICEP_PACKAGE` `BICEP_VERSION` from NuGet with `dotnet restore` (a `PackageDownload`
 * project in the cache folder) and returns the CLI. Linux x64 only, like the package.
 */
export async function fetchBicep(options: ResolveOptions = {}): Promise<BicepCli> {
  const env = options.env ?? process.env;
  const log = options.log ?? (() => undefined);
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new BicepNotFoundError(
      `--fetch restores ${BICEP_PACKAGE}, which runs on linux-x64 only (this is ${process.platform}-${process.arch}). ${installHint(env)}`,
    );
  }
  const target = cachedBicepPath(env);
  if (!(await isFile(target))) {
    const dir = bicepCacheDir(env);
    await mkdir(dir, { recursive: true });
    const sdk = await run('dotnet', ['--version'], { env: dotnetEnv(env) }).catch(() => undefined);
    if (sdk?.code !== 0) {
      throw new BicepNotFoundError(
        `--fetch needs the .NET SDK (\`dotnet\` on PATH) to restore ${BICEP_PACKAGE}.`,
      );
    }
    const major = sdk.stdout.trim().split('.')[0];
    const project = join(dir, 'restore-bicep.csproj');
    // PackageDownload fetches the package as is (no dependency resolution, no build).
    await writeFile(
      project,
      [
        '<Project Sdk="Microsoft.NET.Sdk">',
        '  <PropertyGroup>',
        `    <TargetFramework>net${major}.0</TargetFramework>`,
        '  </PropertyGroup>',
        '  <ItemGroup>',
        `    <PackageDownload Include="${BICEP_PACKAGE}" Version="[${BICEP_VERSION}]" />`,
        '  </ItemGroup>',
        '</Project>',
        '',
      ].join('\n'),
    );
    log(`restoring ${BICEP_PACKAGE} ${BICEP_VERSION} from NuGet into ${dir}`);
    const restore = await run('dotnet', ['restore', project, '--packages', join(dir, 'packages')], {
      env: dotnetEnv(env),
    });
    if (restore.code !== 0 || !(await isFile(target))) {
      throw new BicepNotFoundError(
        `dotnet restore of ${BICEP_PACKAGE} ${BICEP_VERSION} failed (exit ${restore.code}):\n${restore.stdout}${restore.stderr}`,
      );
    }
  }
  // NuGet extracts files without their execute bit.
  await chmod(target, 0o755);
  const version = await versionOf(target);
  if (!version) throw new BicepNotFoundError(`${target} does not run as the Bicep CLI.`);
  return { path: target, version, source: 'cache' };
}

/** An installed CLI, else (only with `fetch`) the restored one, else `BicepNotFoundError`. */
export async function resolveBicep(options: ResolveOptions = {}): Promise<BicepCli> {
  const env = options.env ?? process.env;
  const found = await locateBicep(env);
  if (found) return found;
  if (options.fetch) return fetchBicep(options);
  throw new BicepNotFoundError(`No Bicep CLI found. ${installHint(env)}`);
}

/**
 * Runs the CLI. Settings the parameter files read with `readEnvironmentVariable` (the azd
 * environment) are removed unless given in `env`, so that builds are the same on every machine.
 */
export function runBicep(
  cli: BicepCli,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<BicepRun> {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of AZD_VARIABLES) delete base[name];
  return run(cli.path, args, {
    cwd: options.cwd,
    env: { ...dotnetEnv(base), ...options.env },
  });
}

/** Environment variables the parameter files read (`readEnvironmentVariable`). */
export const AZD_VARIABLES = ['AZURE_ENV_NAME', 'AZURE_LOCATION', 'STAMPKEEPER_WIRE_FUNCTIONS'] as const;

function dotnetEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    ...env,
    DOTNET_CLI_TELEMETRY_OPTOUT: '1',
    DOTNET_NOLOGO: '1',
    DOTNET_SKIP_FIRST_TIME_EXPERIENCE: '1',
  };
}

async function versionOf(path: string): Promise<string | undefined> {
  const result = await run(path, ['--version'], { env: dotnetEnv(process.env) }).catch(() => undefined);
  return result && result.code === 0 ? parseBicepVersion(result.stdout) : undefined;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function isExecutable(path: string): Promise<boolean> {
  if (!(await isFile(path))) return false;
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function run(
  file: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv },
): Promise<BicepRun> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd: options.cwd, env: options.env, maxBuffer: 64 * 1024 * 1024, timeout: 5 * 60_000 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(error);
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}
