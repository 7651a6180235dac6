import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    // Checks every response of a local broker against docs/openapi.json.
    setupFiles: ['test/support/contract-setup.ts'],
    // The broker logs every request; the suite keeps warnings and errors only.
    env: { POWERTOOLS_LOG_LEVEL: 'WARN' },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The JSON report is what `.ci/run` reads to print its summary line.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
