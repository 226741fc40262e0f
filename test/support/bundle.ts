import { join } from 'node:path';
import { inject } from 'vitest';

/** The app as built for this test run (see globalSetup): its entry and its root (host.json, policy/). */
export function appBundle(): { entry: string; root: string } {
  const root = inject('appBundleDir');
  return { entry: join(root, 'main.js'), root };
}
