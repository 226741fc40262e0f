/**
 * `npm run infra:build [-- --fetch]`: compiles and lints every `.bicep` and `.bicepparam` file under
 * `infra/` with the real Bicep CLI (`bicep build`, `bicep build-params`, `bicep lint`).
 *
 * Fails on any error and on any warning but `use-recent-api-versions` (an API version's age is a
 * chore, not a defect, and grows with the calendar): Bicep reports an unknown resource property
 * (BCP037) or a type it has no schema for (BCP081) as a compiler warning that `bicepconfig.json`
 * cannot raise, so they are failures here. The analyzer rules that matter are errors in
 * `infra/bicepconfig.json`. Compiled templates must use stable (non-preview) API versions.
 *
 * `--fetch` lets it restore the CLI from NuGet when none is installed (what `.ci/run` does); without
 * it nothing is downloaded (see scripts/bicep-cli.ts).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { type BicepCli, BicepNotFoundError, resolveBicep, runBicep } from './bicep-cli';

/** Warnings that do not fail the build (see the header). */
export const TOLERATED_WARNINGS = new Set(['use-recent-api-versions']);

export interface Diagnostic {
  file: string;
  line: number;
  column: number;
  level: 'Error' | 'Warning' | 'Info';
  code: string;
  message: string;
}

export interface InfraBuildResult {
  cli: BicepCli;
  files: string[];
  diagnostics: Diagnostic[];
  /** Diagnostics and checks that fail the build. */
  failures: string[];
}

export interface InfraBuildOptions {
  /** Folder holding the Bicep (default `<repo>/infra`). */
  infraDir?: string;
  fetch?: boolean;
  cli?: BicepCli;
  log?: (line: string) => void;
}

/** Bicep diagnostic lines: `path(line,col) : Level code: message`. */
export function parseDiagnostics(output: string): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  for (const line of output.split(/\r?\n/)) {
    const m = /^(.*)\((\d+),(\d+)\) : (Error|Warning|Info) ([^:]+): (.*)$/.exec(line.trim());
    if (m) {
      diagnostics.push({
        file: m[1]!,
        line: Number(m[2]),
        column: Number(m[3]),
        level: m[4] as Diagnostic['level'],
        code: m[5]!.trim(),
        message: m[6]!,
      });
    }
  }
  return diagnostics;
}

/** Every `apiVersion` of a compiled template (nested module templates included) that is a preview. */
export function previewApiVersions(template: unknown): string[] {
  const found: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      if (typeof record.type === 'string' && typeof record.apiVersion === 'string') {
        if (/preview/i.test(record.apiVersion)) found.push(`${record.type}@${record.apiVersion}`);
      }
      Object.values(record).forEach(walk);
    }
  };
  walk(template);
  return [...new Set(found)].sort();
}

/** All `.bicep` / `.bicepparam` files under `dir`, sorted. */
export async function infraFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (current: string): Promise<void> => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (/\.bicep(param)?$/.test(entry.name)) out.push(path);
    }
  };
  await walk(dir);
  return out.sort();
}

/**
 * Builds and lints every file; never throws for Bicep problems (they are in `failures`). One CLI
 * run per command (`--pattern`): the CLI's start-up dominates, and every file goes through each.
 */
export async function buildInfra(options: InfraBuildOptions = {}): Promise<InfraBuildResult> {
  const infraDir = resolve(options.infraDir ?? join(__dirname, '..', 'infra'));
  const log = options.log ?? (() => undefined);
  const cli = options.cli ?? (await resolveBicep({ fetch: options.fetch, log }));
  log(`bicep ${cli.version} (${cli.source}: ${cli.path})`);
  const files = await infraFiles(infraDir);
  const outDir = await mkdtemp(join(tmpdir(), 'stampkeeper-bicep-'));
  const diagnostics: Diagnostic[] = [];
  const failures: string[] = [];
  const hasTemplates = files.some((f) => f.endsWith('.bicep'));
  const hasParams = files.some((f) => f.endsWith('.bicepparam'));
  try {
    const runs = [
      ...(hasTemplates
        ? [
            ['build', '--pattern', '**/*.bicep', '--outdir', join(outDir, 'templates')],
            ['lint', '--pattern', '**/*.bicep'],
          ]
        : []),
      ...(hasParams
        ? [
            ['build-params', '--pattern', '**/*.bicepparam', '--outdir', join(outDir, 'params')],
            ['lint', '--pattern', '**/*.bicepparam'],
          ]
        : []),
    ];
    for (const args of runs) {
      const result = await runBicep(cli, args, { cwd: infraDir });
      const found = parseDiagnostics(result.stderr);
      diagnostics.push(...found);
      if (result.code !== 0 && !found.some((d) => d.level === 'Error')) {
        failures.push(`bicep ${args[0]} exited ${result.code}: ${(result.stderr || result.stdout).trim()}`);
      }
    }
    for (const file of files.filter((f) => f.endsWith('.bicep'))) {
      const compiled = join(outDir, 'templates', relative(infraDir, file).replace(/\.bicep$/, '.json'));
      let template: unknown;
      try {
        template = JSON.parse(await readFile(compiled, 'utf8'));
      } catch {
        continue; // did not compile: its errors are in the diagnostics
      }
      for (const v of previewApiVersions(template)) {
        failures.push(`${relative(infraDir, file)}: preview API version ${v}: use a stable one`);
      }
    }
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
  const seen = new Set<string>();
  for (const d of diagnostics) {
    const text = `${relative(infraDir, resolve(infraDir, d.file))}(${d.line},${d.column}): ${d.level} ${d.code}: ${d.message}`;
    // build and lint report the same analyzer diagnostics: keep one of each.
    if (seen.has(text)) continue;
    seen.add(text);
    if (d.level === 'Error' || (d.level === 'Warning' && !TOLERATED_WARNINGS.has(d.code)))
      failures.push(text);
    else log(`  (tolerated) ${text}`);
  }
  return { cli, files, diagnostics, failures };
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--fetch');
  if (unknown.length > 0) {
    console.error(`usage: npm run infra:build [-- --fetch]; unexpected ${unknown.join(' ')}`);
    process.exit(2);
  }
  const started = Date.now();
  buildInfra({ fetch: args.includes('--fetch'), log: (line) => console.log(line) })
    .then((result) => {
      for (const failure of result.failures) console.error(`  ${failure}`);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      if (result.failures.length > 0) {
        console.error(
          `infra: ${result.failures.length} problem(s) in ${result.files.length} files (${seconds} s)`,
        );
        process.exitCode = 1;
      } else {
        console.log(`infra: ${result.files.length} files built and linted, no problems (${seconds} s)`);
      }
    })
    .catch((error: unknown) => {
      console.error(error instanceof BicepNotFoundError ? error.message : error);
      process.exitCode = 1;
    });
}
