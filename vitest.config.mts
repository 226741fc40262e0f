import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    // The app bundle built by the global setup runs as Node loads it (as the Functions worker
    // does), not transformed by Vite.
    server: { deps: { external: [/\/stampkeeper-bundle-[^/]+\//] } },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
