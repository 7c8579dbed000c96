// Global setup of the integration tests: the real backing servers must answer. When they do not,
// scripts/services.sh brings them up (installing and building on a fresh machine), so that `npm test` works
// the same for a newcomer and in CI. Their addresses reach the tests as TEST_* environment variables.
import { execFileSync, spawnSync } from "node:child_process";
import type { TestProject } from "vitest/node";

const script = "scripts/services.sh";

export default function setup(project: TestProject): void {
  const status = spawnSync("bash", [script, "status"], { encoding: "utf8" });
  if (status.status !== 0) {
    console.log("[test setup] backing servers not all up; running scripts/services.sh up (the first run installs and builds)");
    execFileSync("bash", [script, "up"], { stdio: "inherit", timeout: 45 * 60 * 1000 });
  }
  const exports = execFileSync("bash", [script, "env"], { encoding: "utf8" });
  for (const line of exports.split("\n")) {
    const match = /^export (\w+)=(.*)$/.exec(line.trim());
    if (!match) continue;
    const value = match[2]!.replace(/^"(.*)"$/, "$1").replace(/^'(.*)'$/, "$1");
    process.env[match[1]!] ??= value;
    project.provide(match[1]! as never, process.env[match[1]!] as never);
  }
}
