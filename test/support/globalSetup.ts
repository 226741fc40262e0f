import type { TestProject } from 'vitest/node';
import { startAzurite } from './azurite';

declare module 'vitest' {
  export interface ProvidedContext {
    storageConnectionString: string;
  }
}

/**
 * Starts one in-memory Azurite for the whole test run (unless STAMPKEEPER_TEST_STORAGE names a
 * running one) and hands its connection string to the tests through `inject('storageConnectionString')`.
 */
export default async function setup(project: TestProject) {
  const external = process.env.STAMPKEEPER_TEST_STORAGE;
  if (external) {
    project.provide('storageConnectionString', external);
    return;
  }
  const azurite = await startAzurite();
  project.provide('storageConnectionString', azurite.connectionString);
  return async () => {
    await azurite.stop();
  };
}
