import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "packages/*/src/**/*.spec.ts",
      "packages/*/test/**/*.spec.ts",
      "services/*/test/**/*.spec.ts",
      "test/**/*.spec.ts",
      "deploy/test/**/*.spec.ts",
    ],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: integration suites start real servers and databases, so keep the worker count small.
    maxWorkers: 2,
    pool: "forks",
  },
});
