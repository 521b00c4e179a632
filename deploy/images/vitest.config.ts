import { defineConfig } from "vitest/config";

// Builds every service's image with buildah and runs it: slow and disk-heavy, so its own command
// (`pnpm test:images`, run by .ci/run), one file, no parallel work.
export default defineConfig({
  test: {
    include: ["**/*.image.ts"],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    maxWorkers: 1,
    fileParallelism: false,
    pool: "forks",
  },
});
