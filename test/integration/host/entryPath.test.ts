import { describe, expect, it } from 'vitest';
import { startLocalHost } from '../../../src/local/host/localHost';

describe('local host app entry given as a path', () => {
  it('loads the module at appEntry (relative to rootDir) and serves its functions', async () => {
    // Prepare
    const host = await startLocalHost({
      appEntry: 'test/integration/host/fixtures/app.ts',
      port: 0,
      startTimers: false,
      logger: { info: () => {}, warn: () => {}, error: () => {} },
    });
    try {
      // Act
      const res = await fetch(`${host.url}/api/hello?name=path`);
      // Assess
      expect(await res.text()).toBe('Hello, path');
      expect(host.functions.map((f) => f.name)).toContain('onEvent');
    } finally {
      await host.stop();
    }
  });

  it('replays the registrations when a second host loads the same entry in this process', async () => {
    // Prepare
    const host = await startLocalHost({
      appEntry: 'test/integration/host/fixtures/app.ts',
      port: 0,
      startTimers: false,
      logger: { info: () => {}, warn: () => {}, error: () => {} },
    });
    try {
      // Act
      const res = await fetch(`${host.url}/api/hello`);
      // Assess
      expect(res.status).toBe(200);
    } finally {
      await host.stop();
    }
  });

  it('fails start-up clearly when the entry does not exist', async () => {
    // Act / Assess
    await expect(
      startLocalHost({
        appEntry: 'no/such/entry.ts',
        port: 0,
        logger: { info: () => {}, warn: () => {}, error: () => {} },
      }),
    ).rejects.toThrow(/entry\.ts/);
  });
});
