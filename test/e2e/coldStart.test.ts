/**
 * The Azure SDKs load on first use, not when the app is imported (a cold start pays for the
 * import). Checked in fresh `node` processes, without Vite: the unbundled app's module cache holds
 * no SDK package after the import, the Storage SDKs only once `load()` ran, and Key Vault, Event
 * Grid and identity not even then; the deployment package's import requires none of the Node
 * built-ins only the SDKs use. No timing here: `npm run bench -- coldStart` measures.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltApp,
  buildUnbundledApp,
  importInChild,
  LAZY_SDKS,
  SDK_ONLY_BUILTINS,
} from '../../bench/coldStart';
import { appBundle } from '../support/bundle';

describe('Azure SDKs load on first use', () => {
  let work: string;
  let unbundled: BuiltApp;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'stampkeeper-lazy-'));
    unbundled = await buildUnbundledApp(join(work, 'unbundled'));
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('imports the app without any SDK, loads the Storage SDKs on load(), and Key Vault, Event Grid and identity not before they are used', async () => {
    // Prepare
    const deps = JSON.stringify(join(unbundled.root, 'src/lib/app/deps.js'));

    // Act
    const imported = await importInChild(unbundled);
    const loaded = await importInChild(unbundled, `await require(${deps}).getDeps().load();`);

    // Assess
    expect(imported.registered).toBeGreaterThan(5);
    expect(imported.packages).toContain('@azure/functions');
    expect(imported.packages.filter((p) => LAZY_SDKS.includes(p))).toEqual([]);
    expect(loaded.packages).toEqual(expect.arrayContaining(['@azure/data-tables', '@azure/storage-queue']));
    expect(
      loaded.packages.filter((p) =>
        ['@azure/keyvault-secrets', '@azure/eventgrid', '@azure/identity'].includes(p),
      ),
    ).toEqual([]);
  });

  it('defers the SDKs inside the deployment package too', async () => {
    // Act
    const bundled = await importInChild(appBundle());
    const unbundledImport = await importInChild(unbundled);

    // Assess
    expect(bundled.registered).toBe(unbundledImport.registered);
    expect(bundled.packages).toEqual([]);
    expect(bundled.builtins.filter((m) => SDK_ONLY_BUILTINS.includes(m))).toEqual([]);
  });
});
