import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TableClient, TableServiceClient } from '@azure/data-tables';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { type RunningAzurite, startAzurite } from '../../../src/local/host/azurite';

// The Azurite `npm start` runs when no storage is configured: a real child process each time.

let azurite: RunningAzurite | undefined;
let blocker: Server | undefined;

afterEach(async () => {
  await azurite?.stop();
  azurite = undefined;
  await new Promise((r) => (blocker ? blocker.close(r) : r(undefined)));
  blocker = undefined;
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('local Azurite', () => {
  it('starts again on free ports when a chosen port is taken before Azurite binds it', async () => {
    // Prepare: the port is taken between the check and Azurite's bind.
    blocker = createServer();
    await new Promise<void>((r) => blocker?.listen(0, '127.0.0.1', () => r()));
    const taken = (blocker.address() as AddressInfo).port;
    // Act
    azurite = await startAzurite(process.cwd(), { ports: { blob: taken, queue: taken, table: taken } });
    // Assess
    const ports = Object.values(azurite.endpoints).map((e) => Number(new URL(e).port));
    expect(ports).not.toContain(taken);
    expect(new Set(ports).size).toBe(3);
    const list = await fetch(`${azurite.endpoints.queue}?comp=list`);
    expect(list.status).toBe(403);
  });

  it('stop() kills Azurite when SIGTERM does not end it', async () => {
    // Prepare: a stopped process does not act on SIGTERM; SIGKILL still ends it.
    azurite = await startAzurite(process.cwd(), { preferDefaultPorts: false, stopGraceMs: 100 });
    const pid = azurite.pid as number;
    process.kill(pid, 'SIGSTOP');
    // Act
    await azurite.stop();
    // Assess
    expect(isAlive(pid)).toBe(false);
  });

  it('keeps its data on disk with persist: an entity written before a restart is read after it', async () => {
    // Prepare: a folder that does not exist yet (Azurite creates it).
    const parent = mkdtempSync(join(tmpdir(), 'stampkeeper-azurite-'));
    onTestFinished(() => rmSync(parent, { recursive: true, force: true }));
    const dir = join(parent, 'state');
    const table = (connectionString: string) =>
      TableClient.fromConnectionString(connectionString, 'persisted', { allowInsecureConnection: true });
    azurite = await startAzurite(process.cwd(), { preferDefaultPorts: false, persist: dir });
    await table(azurite.connectionString).createTable();
    await table(azurite.connectionString).createEntity({ partitionKey: 'p', rowKey: 'r', note: 'kept' });
    expect(azurite.location).toBe(dir);
    await azurite.stop();
    // Act
    azurite = await startAzurite(process.cwd(), { preferDefaultPorts: false, persist: dir });
    const entity = await table(azurite.connectionString).getEntity<{ note: string }>('p', 'r');
    // Assess
    expect(entity.note).toBe('kept');
  });

  it('starts in memory by default: nothing is left of a previous run', async () => {
    // Prepare
    azurite = await startAzurite(process.cwd(), { preferDefaultPorts: false });
    expect(azurite.location).toBeUndefined();
    const first = TableClient.fromConnectionString(azurite.connectionString, 'volatile', {
      allowInsecureConnection: true,
    });
    await first.createTable();
    await azurite.stop();
    // Act
    azurite = await startAzurite(process.cwd(), { preferDefaultPorts: false });
    const tables: string[] = [];
    const service = TableServiceClient.fromConnectionString(azurite.connectionString, {
      allowInsecureConnection: true,
    });
    for await (const t of service.listTables()) tables.push(t.name ?? '');
    // Assess
    expect(tables).not.toContain('volatile');
  });
});
