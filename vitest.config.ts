import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration suites each start real workers; two cores do not gain from more forks.
    maxWorkers: 2,
    pool: "forks",
  },
});
