/**
 * Starts Azurite (the storage emulator, from node_modules) for `npm start` when no storage
 * connection is configured, in memory or (`persist`) on disk: on its default ports 10000-10002 when
 * they are free, else on free ones (which Azurite binds itself, so parallel test processes never
 * collide).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

/** The well-known development account of Azurite (public, documented by Microsoft; not a secret). */
const DEV_ACCOUNT = 'devstoreaccount1';
const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const DEFAULT_PORTS = { blob: 10000, queue: 10001, table: 10002 };

export interface StoragePorts {
  blob: number;
  queue: number;
  table: number;
}

export interface RunningAzurite {
  /** The Azurite process. */
  pid: number | undefined;
  connectionString: string;
  endpoints: { blob: string; queue: string; table: string };
  /** The folder holding the data when it is kept on disk; `undefined` in memory. */
  location: string | undefined;
  stop(): Promise<void>;
}

/** The connection string of the development account on `host` and `ports`. */
export function developmentConnectionString(ports: StoragePorts, host = '127.0.0.1'): string {
  const e = endpointsOf(ports, host);
  return [
    'DefaultEndpointsProtocol=http',
    `AccountName=${DEV_ACCOUNT}`,
    `AccountKey=${DEV_KEY}`,
    `BlobEndpoint=${e.blob}`,
    `QueueEndpoint=${e.queue}`,
    `TableEndpoint=${e.table}`,
  ].join(';');
}

function endpointsOf(ports: StoragePorts, host: string) {
  return {
    blob: `http://${host}:${ports.blob}/${DEV_ACCOUNT}`,
    queue: `http://${host}:${ports.queue}/${DEV_ACCOUNT}`,
    table: `http://${host}:${ports.table}/${DEV_ACCOUNT}`,
  };
}

/** Whether `port` on 127.0.0.1 is free to listen on; `0` asks for a free one and returns it. */
export function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : undefined;
      server.close(() => resolve(bound));
    });
  });
}

/** Attempts to start Azurite; only an EADDRINUSE (a port taken meanwhile) is retried, on free ports. */
const START_ATTEMPTS = 3;
const START_TIMEOUT_MS = 20_000;
/** How long `stop()` waits after SIGTERM before it sends SIGKILL. */
const STOP_GRACE_MS = 5_000;
/** Port 0: Azurite binds a free port itself and prints it, so nothing can take it in between. */
const FREE_PORTS: StoragePorts = { blob: 0, queue: 0, table: 0 };
const LISTENING = /Azurite (Blob|Queue|Table) service is successfully listening at https?:\/\/[^\s]*:(\d+)/g;

async function defaultPortsFree(): Promise<boolean> {
  const free = await Promise.all([
    tryListen(DEFAULT_PORTS.blob),
    tryListen(DEFAULT_PORTS.queue),
    tryListen(DEFAULT_PORTS.table),
  ]);
  return free.every((p) => p !== undefined);
}

export interface StartAzuriteOptions {
  /** Use 10000-10002 when they are free (default true); free ports otherwise. */
  preferDefaultPorts?: boolean;
  /** Ports of the first attempt (0 = a free one), instead of the defaults / free ports. */
  ports?: StoragePorts;
  /** How long `stop()` waits after SIGTERM before SIGKILL (default 5 s). */
  stopGraceMs?: number;
  /**
   * Keep the data on disk in this folder (relative to `rootDir`; created when missing), so that it
   * survives restarts: Azurite's `--location`. Default: in memory (`--inMemoryPersistence`).
   */
  persist?: string;
}

/**
 * Starts Azurite, in memory unless `persist` names a folder, and waits until it listens (20 s at most): on the default ports
 * 10000-10002 when they are free and `preferDefaultPorts` (the default), on free ones otherwise.
 * Free ports are bound by Azurite itself (port 0) and read from what it prints; when a chosen port
 * is taken before Azurite binds it (EADDRINUSE), it starts again on free ports (3 attempts in all).
 * Stop it with `stop()` (SIGTERM, then SIGKILL after `stopGraceMs`); it also dies with this process.
 */
export async function startAzurite(
  rootDir: string,
  options: StartAzuriteOptions = {},
): Promise<RunningAzurite> {
  const bin = join(rootDir, 'node_modules', 'azurite', 'dist', 'src', 'azurite.js');
  if (!existsSync(bin)) throw new Error(`Azurite is not installed (${bin} is missing): run npm install.`);
  let ports =
    options.ports ??
    ((options.preferDefaultPorts ?? true) && (await defaultPortsFree()) ? DEFAULT_PORTS : FREE_PORTS);
  const location = options.persist === undefined ? undefined : resolve(rootDir, options.persist);
  for (let attempt = 1; ; attempt += 1) {
    const started = await launch(bin, ports, location);
    if ('child' in started) {
      return {
        pid: started.child.pid,
        connectionString: developmentConnectionString(started.ports),
        endpoints: endpointsOf(started.ports, '127.0.0.1'),
        location,
        stop: () => stopChild(started.child, options.stopGraceMs ?? STOP_GRACE_MS),
      };
    }
    if (!started.addressInUse || attempt >= START_ATTEMPTS) throw new Error(started.error);
    ports = FREE_PORTS;
  }
}

type Launch = { child: ChildProcess; ports: StoragePorts } | { error: string; addressInUse: boolean };

async function launch(bin: string, ports: StoragePorts, location: string | undefined): Promise<Launch> {
  const args = [
    bin,
    '--silent',
    // On SIGTERM Azurite closes its stores, which writes them to `location`.
    ...(location === undefined ? ['--inMemoryPersistence'] : ['--location', location]),
    '--skipApiVersionCheck',
    '--disableProductStyleUrl',
    '--disableTelemetry',
    ...['--blobHost', '127.0.0.1', '--queueHost', '127.0.0.1', '--tableHost', '127.0.0.1'],
    ...[
      '--blobPort',
      String(ports.blob),
      '--queuePort',
      String(ports.queue),
      '--tablePort',
      String(ports.table),
    ],
  ];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d) => {
    output += String(d);
  });
  child.stderr?.on('data', (d) => {
    output += String(d);
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const bound = boundPorts(output);
    if (bound) return { child, ports: bound };
    if (child.exitCode !== null || child.signalCode !== null) {
      return {
        error: `Azurite exited early (code ${child.exitCode}): ${output.trim()}`,
        addressInUse: output.includes('EADDRINUSE'),
      };
    }
    if (Date.now() > deadline) {
      await stopChild(child, 0);
      return { error: `Azurite did not start within 20 s: ${output.trim()}`, addressInUse: false };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The ports Azurite says it listens on, once it has said so for all three services. */
function boundPorts(output: string): StoragePorts | undefined {
  const found: Partial<StoragePorts> = {};
  for (const match of output.matchAll(LISTENING)) {
    found[(match[1] as string).toLowerCase() as keyof StoragePorts] = Number(match[2]);
  }
  const { blob, queue, table } = found;
  return blob && queue && table ? { blob, queue, table } : undefined;
}

/** SIGTERM, then SIGKILL when the process has not exited after `graceMs`; resolves on exit. */
function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
