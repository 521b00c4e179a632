import { defineConfig } from "vitest/config";

// Fault scenarios run real services as processes under load: one file at a time, so they do not
// share the machine's two cores with each other.
export default defineConfig({
  test: {
    include: ["**/*.fault.ts"],
    testTimeout: 240_000,
    hookTimeout: 120_000,
    maxWorkers: 1,
    fileParallelism: false,
    pool: "forks",
  },
});
