import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/** The workspace packages' export condition for their TypeScript sources: tests never need a build. */
const SOURCE = '@infinitescribe/source';

const TEST_FILES = [
  'apps/*/src/**/*.test.{ts,tsx}',
  'apps/*/test/**/*.test.{ts,tsx}',
  'packages/*/src/**/*.test.{ts,tsx}',
  'packages/*/test/**/*.test.{ts,tsx}',
  'examples/*/test/**/*.test.{ts,tsx}',
];

/**
 * Files that run alone, after the others: browsers, faults timed against real processes (Redis
 * stopped, instances killed, a failover), and heavy installs. A second file beside them on a
 * 2-core machine would stretch the timings they judge; everything else runs two files at a time.
 */
const ALONE = [
  'apps/frontend/test/e2e-*.test.ts',
  'examples/*/test/**/*.test.{ts,tsx}',
  'packages/server/test/chaos.test.ts',
  'packages/server/test/redis-cluster-failover.test.ts',
  'packages/server/test/resilience-*.test.ts',
  'packages/server/test/*-restart.test.ts',
  'packages/server/test/connection-lifecycle.test.ts',
  'packages/server/test/*multi-instance.test.ts',
  'packages/server/test/nginx-proxy.test.ts',
  'packages/server/test/packaging.test.ts',
];

export default defineConfig({
  resolve: { conditions: [SOURCE, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [SOURCE, ...defaultServerConditions] } },
  test: {
    environment: 'node',
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: 'together', include: TEST_FILES, exclude: ALONE, maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      { extends: true, test: { name: 'alone', include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
    coverage: {
      provider: 'v8',
      include: ['apps/backend/src/**/*.ts', 'packages/*/src/**/*.{ts,tsx}'],
      exclude: [
        '**/*.test.{ts,tsx}',
        '**/*.test-d.ts',
        '**/testing/**',
        '**/*.contract.ts',
        'apps/backend/src/main.ts',
      ],
      reporter: ['text-summary', 'json-summary'],
      thresholds: {
        'packages/server/src/services/sse/**': { lines: 85 },
        'packages/protocol/src/**': { lines: 85 },
      },
    },
  },
});
