import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the sources. Exact matches, so that `@prserv/core/protocol` is not taken
    // for a file under `@prserv/core`'s entry.
    alias: [
      { find: /^@prserv\/core$/, replacement: here('./packages/core/src/index.ts') },
      { find: /^@prserv\/core\/protocol$/, replacement: here('./packages/core/src/protocol/index.ts') },
      { find: /^@prserv\/client$/, replacement: here('./packages/client/src/index.ts') },
      { find: /^@prserv\/server$/, replacement: here('./packages/server/src/index.ts') },
      { find: /^@prserv\/test-support$/, replacement: here('./test/support/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // The JSON report lets .ci/run print a plain "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: '.tmp/vitest-results.json' }]],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
