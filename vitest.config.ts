import { defineConfig } from "vitest/config";

// Two projects: `unit` needs no server; `integration` talks to the real PostgreSQL, NATS, FerretDB, Operaton and
// Chromium that scripts/services.sh brings up (test/setup/servers.ts starts them when they are not running).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          environment: "node",
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts", "test/e2e/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/setup/servers.ts"],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          // Two cores: files run one after another, so that timings stay sane and servers are not overloaded.
          fileParallelism: false,
        },
      },
    ],
  },
});
