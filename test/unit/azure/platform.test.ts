import { afterEach, describe, expect, it, vi } from 'vitest';
import type * as PlatformNamespace from '../../../src/lib/azure/platform';
import type { Platform } from '../../../src/lib/azure/platform';

type PlatformModule = typeof PlatformNamespace;
const PLATFORM_MODULE = '../../../src/lib/azure/platform';

/** A fresh copy of the platform module, as the bundle carries its own next to the host's. */
async function freshCopy(): Promise<PlatformModule> {
  vi.resetModules();
  return (await import(PLATFORM_MODULE)) as PlatformModule;
}

function fakePlatform(kind: string): Platform {
  const httpClient = { sendRequest: async () => ({}) as never };
  return {
    credential: { getToken: async () => null },
    httpClient,
    webhookClient: httpClient,
    clock: { now: () => new Date(0) },
    kind,
  };
}

let copies: PlatformModule[] = [];
afterEach(() => {
  copies[0]?.setPlatformOverride(undefined);
  copies = [];
});

describe('the platform seam', () => {
  it('is one per process: an override set through one copy of the module is what every copy resolves', async () => {
    // Prepare
    copies = [await freshCopy(), await freshCopy()];
    const [host, app] = copies as [PlatformModule, PlatformModule];
    expect(host.setPlatformOverride).not.toBe(app.setPlatformOverride);
    const sandbox = fakePlatform('sandbox');
    // Act
    host.setPlatformOverride(sandbox);
    const seen = app.resolvePlatform();
    host.setPlatformOverride(undefined);
    const afterClear = app.resolvePlatform();
    // Assess
    expect(seen).toBe(sandbox);
    expect(afterClear.kind).toBe('azure');
  });

  it('tells every copy that the platform changed', async () => {
    // Prepare
    copies = [await freshCopy(), await freshCopy()];
    const [host, app] = copies as [PlatformModule, PlatformModule];
    const before = app.platformGeneration();
    // Act
    host.setPlatformOverride(fakePlatform('sandbox'));
    // Assess
    expect(app.platformGeneration()).not.toBe(before);
    expect(host.platformGeneration()).toBe(app.platformGeneration());
  });

  it('cannot be replaced by assigning the global slot', async () => {
    // Prepare
    copies = [await freshCopy()];
    const [seam] = copies as [PlatformModule];
    const sandbox = fakePlatform('sandbox');
    seam.setPlatformOverride(sandbox);
    const holder = globalThis as unknown as Record<symbol, unknown>;
    // Act / Assess: the slot is read-only (strict mode throws), and the override stays.
    expect(() => {
      holder[Symbol.for('stampkeeper.platform')] = {
        layout: 1,
        override: fakePlatform('intruder'),
        generation: 0,
      };
    }).toThrow(TypeError);
    expect(seam.resolvePlatform()).toBe(sandbox);
  });
});
