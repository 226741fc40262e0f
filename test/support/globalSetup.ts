import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { installHint, locateBicep } from '../../scripts/bicep-cli';
import { build } from '../../scripts/build';
import { startAzurite } from './azurite';

declare module 'vitest' {
  export interface ProvidedContext {
    storageConnectionString: string;
    /** Folder of the app built for this test run (`main.js`, host.json, policy/): what is deployed. */
    appBundleDir: string;
    /**
     * Whether a Bicep CLI is installed (never downloaded by the tests). Without one, the tests that
     * compile infra/ are skipped on a developer's machine, and fail under CI (`CI=true`).
     */
    bicepAvailable: boolean;
  }
}

const ROOT = resolve(__dirname, '../..');

/**
 * Once per test run: builds the app bundle (as `npm run build` does) into a temporary folder, so
 * the end-to-end tests run what is deployed even on a fresh clone with no dist/; and starts one
 * in-memory Azurite (unless STAMPKEEPER_TEST_STORAGE names a running one). Both reach the tests
 * through `inject` (see `test/support/bundle.ts`, `test/support/storage.ts`).
 */
export default async function setup(project: TestProject) {
  const bundleParent = await mkdtemp(join(tmpdir(), 'stampkeeper-bundle-'));
  const teardown: Array<() => Promise<void>> = [() => rm(bundleParent, { recursive: true, force: true })];
  const cleanUp = async () => {
    for (const step of teardown.reverse()) await step();
  };
  try {
    const cli = await locateBicep();
    if (!cli && process.env.CI) {
      throw new Error(`CI must compile infra/ with the real Bicep CLI, and none was found. ${installHint()}`);
    }
    if (!cli) {
      console.warn(`Skipping the tests that compile infra/: no Bicep CLI is installed. ${installHint()}`);
    }
    project.provide('bicepAvailable', cli !== undefined);
    const { outDir } = await build({ rootDir: ROOT, outDir: join(bundleParent, 'app'), log: () => {} });
    project.provide('appBundleDir', outDir);
    const external = process.env.STAMPKEEPER_TEST_STORAGE;
    if (external) {
      project.provide('storageConnectionString', external);
    } else {
      const azurite = await startAzurite(ROOT);
      teardown.push(() => azurite.stop());
      project.provide('storageConnectionString', azurite.connectionString);
    }
  } catch (error) {
    await cleanUp();
    throw error;
  }
  return cleanUp;
}
