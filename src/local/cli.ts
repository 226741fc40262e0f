/**
 * `npm start`: runs the app on the local host.
 *
 * 1. Reads `local.settings.json` (its `Values` go to the environment, like Core Tools; variables
 *    already set win; values are never printed).
 * 2. Starts Azurite in memory when `AzureWebJobsStorage` is unset or `UseDevelopmentStorage=true`.
 * 3. Starts the app on the local host (`startLocalApp`), on the sandbox unless `--no-sandbox`,
 *    and prints where everything listens; Ctrl-C stops everything and exits 0.
 *
 * Usage: tsx src/local/cli.ts [--port <n>] [--entry <module>] [--no-sandbox] [--no-timers]
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { type RunningLocalApp, startLocalApp } from './app';
import { type RunningAzurite, startAzurite } from './host/azurite';
import { consoleHostLogger, type RunningLocalHost } from './host/localHost';
import { nextOccurrence } from './host/ncrontab';
import { timerSchedule } from './host/timer';

export interface CliOptions {
  port: number;
  entry: string;
  sandbox: boolean;
  timers: boolean;
}

const USAGE = 'Usage: npm start -- [--port <n>] [--entry <module>] [--no-sandbox] [--no-timers]';

/** Parses the command line; throws with the usage on anything unknown. */
export function parseArgs(argv: string[]): CliOptions {
  const options: CliOptions = { port: 7071, entry: 'src/main.ts', sandbox: true, timers: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = () => {
      const next = argv[++i];
      if (next === undefined || next.startsWith('--')) throw new Error(`${arg} needs a value.\n${USAGE}`);
      return next;
    };
    switch (arg) {
      case '--port': {
        const port = Number(value());
        if (!Number.isInteger(port) || port < 0 || port > 65535)
          throw new Error(`--port must be 0-65535.\n${USAGE}`);
        options.port = port;
        break;
      }
      case '--entry':
        options.entry = value();
        break;
      case '--no-sandbox':
        options.sandbox = false;
        break;
      case '--no-timers':
        options.timers = false;
        break;
      default:
        throw new Error(`Unknown argument "${arg}".\n${USAGE}`);
    }
  }
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

async function main(): Promise<void> {
  const logger = consoleHostLogger;
  const options = parseArgs(process.argv.slice(2));
  const rootDir = process.cwd();
  const applied = loadLocalSettings(rootDir);
  if (applied.length > 0) logger.info(`Loaded ${applied.length} setting(s) from local.settings.json.`);

  const entry = isAbsolute(options.entry) ? options.entry : resolve(rootDir, options.entry);
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
    const configured = process.env.AzureWebJobsStorage;
    if (!configured || configured.trim() === '' || /^UseDevelopmentStorage=true$/i.test(configured.trim())) {
      azurite = await startAzurite(rootDir);
      process.env.AzureWebJobsStorage = azurite.connectionString;
      const e = azurite.endpoints;
      storage = `Azurite (in memory) blob ${e.blob}, queue ${e.queue}, table ${e.table}`;
    } else {
      storage = 'AzureWebJobsStorage as configured';
    }
    app = await startLocalApp({
      appEntry: entry,
      rootDir,
      port: options.port,
      logger,
      startTimers: options.timers,
      sandbox: options.sandbox ? {} : false,
    });
    const estate = app.sandbox
      ? [
          `Sandbox: ${app.url}/sandbox/ (estate, clock, events, notifications); clock at ${app.sandbox.clock.now().toISOString()}`,
          `  advance it: curl -XPOST ${app.url}/sandbox/clock/advance -d '{"days":16}'`,
        ]
      : ['Sandbox: off (--no-sandbox): the app talks to the endpoints its settings name.'];
    for (const line of describeHost(app.host, storage, estate)) logger.info(line);
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
