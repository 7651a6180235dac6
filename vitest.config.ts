import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    // The broker logs at every level, so the leak scan reads every log line the suite reaches; the scan
    // shows only warnings and errors (LEAK_SCAN_SHOW_ALL=1 shows all).
    env: { POWERTOOLS_LOG_LEVEL: 'DEBUG' },
    // Checks every response of a local broker against docs/openapi.json; the leak scan checks every file's
    // output for every credential the suite created.
    setupFiles: ['test/support/contract-setup.ts', 'test/support/leak-scan/setup.ts'],
    // The reliability line adds up what the fault matrices and the chaos run observed, and fails the run
    // when a refresh token was lost without the broker saying so. Teardowns run last to first, and one
    // that throws stops those after it: the reliability check comes first so the leak scan's runs anyway.
    globalSetup: ['test/support/reliability/global.ts', 'test/support/leak-scan/global.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The JSON report is what `.ci/run` reads to print its summary line.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
