import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/** The workspace packages' export condition for their TypeScript sources: tests never need a build. */
const SOURCE = '@infinitescribe/source';

export default defineConfig({
  resolve: { conditions: [SOURCE, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [SOURCE, ...defaultServerConditions] } },
  test: {
    include: [
      'apps/*/src/**/*.test.{ts,tsx}',
      'apps/*/test/**/*.test.{ts,tsx}',
      'packages/*/src/**/*.test.{ts,tsx}',
      'packages/*/test/**/*.test.{ts,tsx}',
      'examples/*/test/**/*.test.{ts,tsx}',
    ],
    environment: 'node',
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
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
