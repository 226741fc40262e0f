import { type RunningAzurite, startAzurite as startLocalAzurite } from '../../src/local/host/azurite';

export type { RunningAzurite };

/** Starts an in-memory Azurite on free loopback ports (never the defaults a running `npm start` may hold). */
export function startAzurite(root = process.cwd()): Promise<RunningAzurite> {
  return startLocalAzurite(root, { preferDefaultPorts: false });
}
