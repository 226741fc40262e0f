/**
 * Starts Azurite (the storage emulator, from node_modules) in memory for `npm start` when no storage
 * connection is configured: on its default ports 10000-10002 when they are free, else on free ones.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

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
  connectionString: string;
  endpoints: { blob: string; queue: string; table: string };
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

async function choosePorts(preferDefaults: boolean): Promise<StoragePorts> {
  const defaults = await Promise.all([
    tryListen(DEFAULT_PORTS.blob),
    tryListen(DEFAULT_PORTS.queue),
    tryListen(DEFAULT_PORTS.table),
  ]);
  if (preferDefaults && defaults.every((p) => p !== undefined)) return DEFAULT_PORTS;
  const [blob, queue, table] = await Promise.all([tryListen(0), tryListen(0), tryListen(0)]);
  if (!blob || !queue || !table) throw new Error('No free loopback port for Azurite.');
  return { blob, queue, table };
}

/**
 * Starts an in-memory Azurite and waits until it listens (20 s at most): on the default ports
 * 10000-10002 when they are free and `preferDefaultPorts` (the default), on free ones otherwise. Stop it with `stop()`;
 * it also dies with this process.
 */
export async function startAzurite(
  rootDir: string,
  options: { preferDefaultPorts?: boolean } = {},
): Promise<RunningAzurite> {
  const bin = join(rootDir, 'node_modules', 'azurite', 'dist', 'src', 'azurite.js');
  if (!existsSync(bin)) throw new Error(`Azurite is not installed (${bin} is missing): run npm install.`);
  const ports = await choosePorts(options.preferDefaultPorts ?? true);
  const args = [
    bin,
    '--silent',
    '--inMemoryPersistence',
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
  const deadline = Date.now() + 20_000;
  while (!output.includes(`:${ports.table}`) || !output.includes(`:${ports.queue}`)) {
    if (child.exitCode !== null)
      throw new Error(`Azurite exited early (code ${child.exitCode}): ${output.trim()}`);
    if (Date.now() > deadline) {
      child.kill();
      throw new Error(`Azurite did not start within 20 s: ${output.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    connectionString: developmentConnectionString(ports),
    endpoints: endpointsOf(ports, '127.0.0.1'),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
