/**
 * A cold start pays for importing the deployment package, so the Azure SDKs load on first use, not
 * at import. Checked in fresh `node` processes importing the app as the Functions worker does
 * (without Vite): the unbundled app's import reads no SDK package, the Storage SDKs only once
 * `load()` ran, and Key Vault, Event Grid and identity not even then. The deployment package is
 * split: the SDKs and the state stores are in chunks that only `import()` reaches; its import reads
 * main.js and its static imports, none of those chunks and none of the Node built-ins only the SDKs
 * use; on the local host, the first `/api/health` reads the Storage and Key Vault chunks. No
 * timing here: `npm run bench -- coldStart` measures.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { registerHooks } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltApp,
  buildDeploymentPackage,
  buildUnbundledApp,
  type DeploymentPackage,
  importInChild,
  LAZY_SDKS,
  SDK_ONLY_BUILTINS,
} from '../../bench/coldStart';
import { type RunningLocalApp, startLocalApp } from '../../src/local/app';
import { storageConnectionString, uniquePrefix } from '../support/storage';

/** The package's output files holding code of `pkg` (a node_modules package name). */
function filesWith(deployment: DeploymentPackage, pkg: string): string[] {
  return Object.entries(deployment.metafile.outputs)
    .filter(([, output]) =>
      Object.keys(output.inputs).some((input) => input.includes(`node_modules/${pkg}/`)),
    )
    .map(([file]) => relative(deployment.root, file).replace(/\\/g, '/'));
}

describe('Azure SDKs load on first use', () => {
  let work: string;
  let unbundled: BuiltApp;
  let deployment: DeploymentPackage;

  beforeAll(async () => {
    // `stampkeeper-bundle-` in the path: Vitest leaves it to Node (vitest.config.mts), as the worker loads it.
    work = await mkdtemp(join(tmpdir(), 'stampkeeper-bundle-cold-'));
    unbundled = await buildUnbundledApp(join(work, 'unbundled'));
    deployment = await buildDeploymentPackage(join(work, 'package'));
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('imports the unbundled app without any SDK, loads the Storage SDKs on load(), and Key Vault, Event Grid and identity not before they are used', async () => {
    // Prepare
    const deps = JSON.stringify(join(unbundled.root, 'src/lib/app/deps.js'));

    // Act
    const imported = await importInChild(unbundled, { trace: true });
    const loaded = await importInChild(unbundled, {
      trace: true,
      after: `await require(${deps}).getDeps().load();`,
    });

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

  it('puts the SDKs in deferred chunks of the deployment package, which its import does not read', async () => {
    // Act
    const bundled = await importInChild(deployment, { trace: true });
    const unbundledImport = await importInChild(unbundled);

    // Assess: every SDK is only in chunks that import() reaches...
    expect(deployment.deferred.length).toBeGreaterThan(0);
    for (const sdk of LAZY_SDKS) {
      const files = filesWith(deployment, sdk);
      expect(files.length, sdk).toBeGreaterThan(0);
      expect(
        files.filter((f) => deployment.eager.includes(f)),
        sdk,
      ).toEqual([]);
    }
    // ...and the import reads main.js and its static imports only, nothing from node_modules.
    expect(bundled.registered).toBe(unbundledImport.registered);
    const read = bundled.files.filter((f) => f.endsWith('.js'));
    expect(read).toContain('main.js');
    expect(read.filter((f) => !deployment.eager.includes(f))).toEqual([]);
    expect(bundled.packages).toEqual([]);
    expect(bundled.builtins.filter((m) => SDK_ONLY_BUILTINS.includes(m))).toEqual([]);
  });

  describe('on the local host', () => {
    let app: RunningLocalApp | undefined;
    const read = new Set<string>();
    let hooks: { deregister(): void } | undefined;

    beforeAll(() => {
      // Which of the package's files Node resolves from now on (each is read once, when first imported).
      hooks = registerHooks({
        resolve(specifier, context, nextResolve) {
          const resolved = nextResolve(specifier, context);
          if (resolved.url.startsWith('file:')) {
            const file = relative(deployment.root, fileURLToPath(resolved.url)).replace(/\\/g, '/');
            if (!file.startsWith('..')) read.add(file);
          }
          return resolved;
        },
      });
    });

    afterAll(async () => {
      await app?.stop();
      hooks?.deregister();
    });

    it('reads the Storage and Key Vault chunks on the first /api/health, not when the host loads the app', async () => {
      // Prepare
      const prefix = uniquePrefix('cold');
      app = await startLocalApp({
        appEntry: deployment.entry,
        appRoot: deployment.root,
        port: 0,
        startTimers: false,
        logger: { info: () => {}, warn: () => {}, error: () => {} },
        // Secrets far from expiry: no event reaches the app while the host starts (the default
        // estate raises some at once, and handling them would be the first use).
        sandbox: {
          scenario: {
            keyVault: {
              vaults: [
                {
                  name: 'stampkeeper-sandbox',
                  secrets: [
                    { name: 'cosmos-primary-key', expiresInDays: 365 },
                    { name: 'storage-account-key', expiresInDays: 365 },
                  ],
                },
              ],
            },
          },
        },
        env: {
          AzureWebJobsStorage: storageConnectionString(),
          STAMPKEEPER_TABLE_PREFIX: prefix,
          STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
        },
      });
      const atStart = [...read];

      // Act
      const response = await fetch(`${app.url}/api/health`);
      await response.text();

      // Assess
      expect(response.status).toBe(200);
      expect(atStart).toContain('main.js');
      expect(atStart.filter((f) => deployment.deferred.includes(f))).toEqual([]);
      const onFirstUse = [...read].filter((f) => !atStart.includes(f));
      for (const sdk of ['@azure/data-tables', '@azure/storage-queue', '@azure/keyvault-secrets']) {
        expect(
          filesWith(deployment, sdk).filter((f) => onFirstUse.includes(f)),
          sdk,
        ).not.toEqual([]);
      }
    });
  });
});
