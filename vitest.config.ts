import { configDefaults, defineConfig } from "vitest/config";

const startTest = "test/start.spec.ts";
// Times when calls reach a server in the test's own event loop: beside other files on two cores, a held-up
// loop stamps calls that came apart together (CI once saw 2.5 calls a burst where alone it is 1.01).
const loadShapeTest = "test/bench-h2load.spec.ts";

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
          exclude: [...configDefaults.exclude, startTest, loadShapeTest],
          sequence: { groupOrder: 0 },
        },
      },
      {
        // After the suites and alone (one file in its group), so the arrival times are h2load's, not the
        // machine's load.
        extends: true,
        test: { name: "load shape", include: [loadShapeTest], sequence: { groupOrder: 1 } },
      },
      {
        // `pnpm start` takes both cores for ~40 s and the fixed ports: it runs after everything else,
        // alone, so neither it nor the suites beside it time out on a shared machine.
        extends: true,
        test: { name: "pnpm start", include: [startTest], sequence: { groupOrder: 2 } },
      },
    ],
  },
});
