/**
 * `npm start`: runs the app on the local host.
 *
 * 1. Reads `local.settings.json` (its `Values` go to the environment, like Core Tools; variables
 *    already set win; values are never printed), and the sandbox's scenario (validated first).
 * 2. Builds the bundle into `dist/` (`npm run build`: the policy is validated, esbuild bundles
 *    `src/main.ts`) and runs `dist/main.js`, what is deployed. It builds every time rather than
 *    comparing dates, so what runs is never an older build (about a second or two).
 *    `--source` runs `src/main.ts` through tsx instead; `--entry <module>` runs a module as is.
 * 3. Starts Azurite when `AzureWebJobsStorage` is unset or `UseDevelopmentStorage=true`: in memory,
 *    or on disk with `--persist [dir]`.
 * 4. Starts the app on the local host (`startLocalApp`), on the sandbox unless `--no-sandbox`,
 *    and prints where everything listens; Ctrl-C stops everything and exits 0.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { build } from '../../scripts/build';
import { DEFAULT_SCENARIO, type RunningLocalApp, startLocalApp } from './app';
import { type RunningAzurite, startAzurite } from './host/azurite';
import { consoleHostLogger, type RunningLocalHost } from './host/localHost';
import { nextOccurrence } from './host/ncrontab';
import { timerSchedule } from './host/timer';
import { loadScenario, type Scenario } from './sandbox';

export interface CliOptions {
  /** `-h` / `--help`: print the usage and exit 0. */
  help: boolean;
  port: number;
  /** The app's entry module: `dist/main.js` (built first), `src/main.ts` (`--source`) or `--entry`'s. */
  entry: string;
  /** Build `dist/` before starting: only for the default entry. */
  build: boolean;
  /** `--scenario <file>`: the sandbox's estate instead of `sandbox/default.scenario.yaml`. */
  scenario?: string;
  /** `--persist [dir]`: Azurite keeps its data in this folder. */
  persist?: string;
  sandbox: boolean;
  timers: boolean;
  /** `--require-token`: no default caller; every request to a protected endpoint needs a developer token. */
  requireToken: boolean;
}

export const DEFAULT_ENTRY = 'dist/main.js';
export const SOURCE_ENTRY = 'src/main.ts';
export const DEFAULT_PERSIST_DIR = '.stampkeeper/azurite';

export const USAGE = `Usage: npm start -- [options]

Runs the app on the local Functions host, on the sandbox (no Azure account needed) by default.
Without --source or --entry it first builds the bundle into dist/ (as npm run build does: the policy
is validated, esbuild bundles src/main.ts) and runs dist/main.js, what is deployed.

Options:
  --port <n>         Port of the host, 0 for a free one (default 7071).
  --source           Run the source, src/main.ts through tsx, instead of building and running the bundle.
  --entry <module>   Run this module as is, without building (e.g. a dist/main.js built with
                     npm run build -- --policy <file>); a folder holding host.json is the app's root.
  --scenario <file>  The sandbox's estate: vaults, secrets, Event Grid subscriptions, clock, delivery
                     (default ${DEFAULT_SCENARIO}); validated before anything starts.
  --persist [dir]    Keep the local storage (Azurite) on disk in <dir> (default ${DEFAULT_PERSIST_DIR}),
                     so audit, idempotency keys, leases and runs survive restarts (default: in memory).
                     The sandbox's estate and clock always start again from the scenario.
  --no-sandbox       No sandbox: the app talks to the endpoints its settings name (real Azure, az login).
  --no-timers        Do not run timer triggers on their schedules (POST /admin/functions/<name> runs one).
  --require-token    Built-in authentication as in Azure: a request without a token gets 401 (default:
                     it acts as developer@localhost with the Operations.* roles). Tokens for any
                     name or app and roles: POST /admin/token (see docs/local-host.md).
  -h, --help         Print this help and exit.

Settings come from the environment and local.settings.json's Values (local.settings.sample.json lists them).`;

const SHORT_USAGE = 'Run npm start -- --help for the options.';

/** Parses the command line; throws with a pointer to the usage on anything unknown or contradictory. */
export function parseArgs(argv: string[]): CliOptions {
  const options: CliOptions = {
    help: false,
    port: 7071,
    entry: DEFAULT_ENTRY,
    build: true,
    sandbox: true,
    timers: true,
    requireToken: false,
  };
  if (argv.includes('--help') || argv.includes('-h')) return { ...options, help: true };
  let entryGiven = false;
  let source = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = () => {
      const next = argv[++i];
      if (next === undefined || next.startsWith('-')) throw new Error(`${arg} needs a value. ${SHORT_USAGE}`);
      return next;
    };
    switch (arg) {
      case '--port': {
        const raw = value();
        const port = Number(raw);
        if (!/^\d+$/.test(raw) || port > 65535) throw new Error(`--port must be 0-65535. ${SHORT_USAGE}`);
        options.port = port;
        break;
      }
      case '--entry':
        options.entry = value();
        entryGiven = true;
        break;
      case '--source':
        source = true;
        break;
      case '--scenario':
        options.scenario = value();
        break;
      case '--persist': {
        // The folder is optional: `--persist` alone keeps the data in the default folder.
        const next = argv[i + 1];
        options.persist =
          next !== undefined && !next.startsWith('-') ? (argv[++i] as string) : DEFAULT_PERSIST_DIR;
        break;
      }
      case '--no-sandbox':
        options.sandbox = false;
        break;
      case '--no-timers':
        options.timers = false;
        break;
      case '--require-token':
        options.requireToken = true;
        break;
      default:
        throw new Error(`Unknown argument "${arg}". ${SHORT_USAGE}`);
    }
  }
  if (source && entryGiven) throw new Error(`--source and --entry are exclusive. ${SHORT_USAGE}`);
  if (!options.sandbox && options.scenario !== undefined) {
    throw new Error(`--scenario describes the sandbox: it cannot be used with --no-sandbox. ${SHORT_USAGE}`);
  }
  if (source) options.entry = SOURCE_ENTRY;
  options.build = !source && !entryGiven;
  return options;
}

/**
 * Applies `Values` of `<rootDir>/local.settings.json` to the environment (existing variables win).
 * Returns the names applied. Throws a clear error when the file is not valid.
 */
export function loadLocalSettings(rootDir: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const file = join(rootDir, 'local.settings.json');
  if (!existsSync(file)) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`local.settings.json is not valid JSON: ${(error as Error).message}`);
  }
  const values = (parsed as { Values?: unknown } | null)?.Values;
  if (values === undefined) return [];
  if (!values || typeof values !== 'object' || Array.isArray(values)) {
    throw new Error('local.settings.json "Values" must be an object of setting names to strings.');
  }
  const applied: string[] = [];
  for (const [name, value] of Object.entries(values)) {
    if (typeof value !== 'string') throw new Error(`local.settings.json Values.${name} must be a string.`);
    if (env[name] !== undefined) continue;
    env[name] = value;
    applied.push(name);
  }
  return applied;
}

/** The start-up summary: every function with where (or when) it runs, admin, storage. */
export function describeHost(host: RunningLocalHost, storage: string, extra: string[] = []): string[] {
  const lines = [`Local host listening on ${host.url}`, '', 'Functions:'];
  const prefix = host.hostConfig.routePrefix ? `/${host.hostConfig.routePrefix}` : '';
  for (const fn of host.functions) {
    const type = fn.trigger.type;
    let where: string;
    switch (type.toLowerCase()) {
      case 'httptrigger': {
        const methods = Array.isArray(fn.trigger.methods)
          ? (fn.trigger.methods as string[]).join(',')
          : 'any';
        const route = typeof fn.trigger.route === 'string' ? fn.trigger.route : fn.name;
        where = `[${methods}] ${host.url}${prefix}/${route}`;
        break;
      }
      case 'eventgridtrigger':
        where = `${host.url}/runtime/webhooks/eventgrid?functionName=${encodeURIComponent(fn.name)}`;
        break;
      case 'timertrigger': {
        try {
          const schedule = timerSchedule(fn, process.env);
          where = `schedule "${schedule.expression}", next ${nextOccurrence(schedule, new Date())?.toISOString() ?? 'never'}`;
        } catch (error) {
          where = (error as Error).message;
        }
        break;
      }
      default:
        where = host.notServed.includes(fn.name) ? 'not served locally' : 'listening';
    }
    lines.push(`  ${fn.name} (${type}): ${where}`);
  }
  lines.push(
    '',
    `Admin: ${host.url}/admin/functions, ${host.url}/admin/host/status, POST ${host.url}/admin/functions/<name> to run one now`,
    `Storage: ${storage}`,
    ...extra,
    '',
    'Press Ctrl-C to stop.',
  );
  return lines;
}

/** `path` relative to `rootDir` when it lies inside it, absolute otherwise. */
function displayPath(rootDir: string, path: string): string {
  const inside = relative(rootDir, path);
  return inside && !inside.startsWith('..') && !isAbsolute(inside) ? inside : path;
}

/** Whether `AzureWebJobsStorage` asks for the local emulator (unset, empty or `UseDevelopmentStorage=true`). */
function wantsLocalStorage(configured: string | undefined): boolean {
  return !configured || configured.trim() === '' || /^UseDevelopmentStorage=true$/i.test(configured.trim());
}

/** The app's root as deployed: the entry's folder when it holds a host.json (a build output), else none. */
function deployedRoot(entry: string): string | undefined {
  const folder = dirname(entry);
  return existsSync(join(folder, 'host.json')) ? folder : undefined;
}

async function main(): Promise<void> {
  const logger = consoleHostLogger;
  const options = parseArgs(process.argv.slice(2));
  if (options.help) {
    console.log(USAGE);
    return;
  }
  const rootDir = process.cwd();
  const applied = loadLocalSettings(rootDir);
  if (applied.length > 0) logger.info(`Loaded ${applied.length} setting(s) from local.settings.json.`);

  // Everything the user gave is checked before anything starts or is written.
  let scenario: Scenario | undefined;
  if (options.sandbox) scenario = loadScenario(resolve(rootDir, options.scenario ?? DEFAULT_SCENARIO));
  const localStorage = wantsLocalStorage(process.env.AzureWebJobsStorage);
  if (options.persist !== undefined && !localStorage) {
    throw new Error(
      '--persist keeps the local Azurite on disk, but AzureWebJobsStorage names another storage: unset it or drop --persist.',
    );
  }
  const entry = isAbsolute(options.entry) ? options.entry : resolve(rootDir, options.entry);
  if (options.build) {
    logger.info(`Building ${options.entry} (--source runs src/main.ts without building)...`);
    await build({ rootDir, outDir: dirname(entry), log: (line) => logger.info(`  ${line}`) });
  }
  if (!existsSync(entry))
    throw new Error(`The app entry ${options.entry} does not exist (use --entry <module>).`);

  let azurite: RunningAzurite | undefined;
  let app: RunningLocalApp | undefined;
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await app
      ?.stop()
      .catch((e: unknown) => logger.error(`Host did not stop cleanly: ${(e as Error).message}`));
    await azurite?.stop();
    process.exit(code);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(1); // a second Ctrl-C does not wait
      logger.info(`${signal}: stopping...`);
      void stopAll(0);
    });
  }

  try {
    let storage: string;
    if (localStorage) {
      azurite = await startAzurite(rootDir, { persist: options.persist });
      process.env.AzureWebJobsStorage = azurite.connectionString;
      const e = azurite.endpoints;
      const where = azurite.location ? `on disk in ${displayPath(rootDir, azurite.location)}` : 'in memory';
      storage = `Azurite (${where}) blob ${e.blob}, queue ${e.queue}, table ${e.table}`;
    } else {
      storage = 'AzureWebJobsStorage as configured';
    }
    app = await startLocalApp({
      appEntry: entry,
      appRoot: deployedRoot(entry),
      rootDir,
      port: options.port,
      logger,
      startTimers: options.timers,
      sandbox: scenario ? { scenario } : false,
      auth: options.requireToken ? { defaultCaller: false } : {},
    });
    const kind = options.build
      ? 'the bundle, built now'
      : options.entry === SOURCE_ENTRY
        ? 'source, through tsx'
        : 'as given';
    const estate = app.sandbox
      ? [
          `Sandbox: ${app.url}/sandbox/ (estate, clock, events, notifications); clock at ${app.sandbox.clock.now().toISOString()}`,
          `  scenario ${options.scenario ?? DEFAULT_SCENARIO}; advance the clock: curl -XPOST ${app.url}/sandbox/clock/advance -d '{"days":16}'`,
        ]
      : ['Sandbox: off (--no-sandbox): the app talks to the endpoints its settings name.'];
    const caller = app.host.builtInAuth?.defaultCaller;
    const auth = [
      caller
        ? `Built-in authentication (emulated): a request without a token acts as user:${caller.name} (${caller.roles.join(', ')}); --require-token answers 401 instead, as Azure.`
        : 'Built-in authentication (emulated): a request without a token gets 401, as in Azure.',
      `  a token for another caller: curl -s -XPOST ${app.url}/admin/token -d '{"name":"ops@contoso.com","roles":["Operations.Read"]}' (or "app":"<application id>"), then -H "Authorization: Bearer <token>"`,
    ];
    for (const line of describeHost(app.host, storage, [
      `App: ${displayPath(rootDir, entry)} (${kind})`,
      ...estate,
      ...auth,
    ]))
      logger.info(line);
  } catch (error) {
    logger.error(`Start-up failed: ${(error as Error).message}`);
    await stopAll(1);
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(`Start-up failed: ${(error as Error).message}`);
    process.exit(1);
  });
}
