import { configDefaults, defineConfig } from "vitest/config";

const startTest = "test/start.spec.ts";

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: integration suites start real servers and databases, so keep the worker count small.
    maxWorkers: 2,
    pool: "forks",
    projects: [
      {
        extends: true,
        test: {
          name: "dispatch",
          include: [
            "packages/*/src/**/*.spec.ts",
            "packages/*/test/**/*.spec.ts",
            "services/*/test/**/*.spec.ts",
            "test/**/*.spec.ts",
            "deploy/test/**/*.spec.ts",
          ],
          exclude: [...configDefaults.exclude, startTest],
          sequence: { groupOrder: 0 },
        },
      },
      {
        // `pnpm start` takes both cores for ~40 s and the fixed ports: it runs after everything else,
        // alone, so neither it nor the suites beside it time out on a shared machine.
        extends: true,
        test: { name: "pnpm start", include: [startTest], sequence: { groupOrder: 1 } },
      },
    ],
  },
});
