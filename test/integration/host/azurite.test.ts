import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
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
});
