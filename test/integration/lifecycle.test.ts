// The embedded platform's life cycle as a user meets it: `npm start` (server.ts) on a fresh data directory,
// stopped with Ctrl-C at any moment — in the middle of loading, in the middle of starting, once ready — ends with
// exit code 0 promptly, starts nothing after the stop began and prints no stack trace; restarted on the same
// data it answers with the same tasks at once (the view lives in the one embedded database); and a data
// directory of the old layout is refused with a message that says what to do.
import { afterAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServiceBroker } from "moleculer";
import { call, freePort, spawnNode, startBroker, testNatsUrl, unique, waitFor, type NodeProcess } from "../helpers.ts";

// "Promptly": the product's aim is 5 s (measured 2.2–4.5 s on a quiet 2-core machine for a signal during
// start-up, 0.3 s once ready: npm run bench:startup). A signal that comes while Node is still loading is handled
// only when the loading lets go of the event loop, which on a busy machine takes longer — the tests allow that
// (no timing assertion tighter than the machine), and fail a node that hangs until it is killed.
const PROMPTLY_MS = 8000;

const directories: string[] = [];
function dataDirectory(): string {
  const dir = mkdtempSync(join(tmpdir(), "taskpool-lifecycle-"));
  directories.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
});

/** Sends `signal` and returns the exit code and how long the node took to exit. */
async function stopTimed(node: NodeProcess, signal: NodeJS.Signals = "SIGINT"): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  const code = await node.stop(signal, 15_000);
  return { code, ms: Date.now() - started };
}

function afterStop(output: string): string {
  const index = output.search(/SIG(INT|TERM) received/);
  return index < 0 ? "" : output.slice(index);
}

describe("embedded platform life cycle (npm start)", () => {
  it.each([500, 2000])("stops with exit 0 promptly when Ctrl-C comes %i ms after start, starting nothing after it", async (delay) => {
    const node = spawnNode({ DATA_DIR: dataDirectory(), NODE_ID: `early-${delay}`, PORT: "0", APP_PORT: "0" });
    await new Promise((resolve) => setTimeout(resolve, delay));
    const { code, ms } = await stopTimed(node);
    const output = node.output();
    expect(code, output).toBe(0);
    expect(ms).toBeLessThan(PROMPTLY_MS);
    // Services already starting may finish; none begins, and the node never comes up.
    expect(afterStop(output)).not.toMatch(/started successfully|Taskpool node \S+ started/);
    expect(output).not.toMatch(/\n\s+at \S+ \(|Error: |did not stop within/);
  });

  it("stops with exit 0 promptly once ready, and a restart on the same data answers with the same tasks at once", async () => {
    const dataDir = dataDirectory();
    const namespace = unique("lifecycle");
    const port = await freePort();
    const env = { DATA_DIR: dataDir, NODE_ID: "lifecycle-1", NAMESPACE: namespace, TRANSPORTER: testNatsUrl(), PORT: String(port), APP_PORT: "0" };
    let node = spawnNode(env);
    let client: ServiceBroker | undefined;
    try {
      await node.waitForOutput(/Taskpool node lifecycle-1 started/);
      expect(existsSync(join(dataDir, "pglite", "PG_VERSION"))).toBe(true);
      client = await startBroker([], { namespace, transporter: testNatsUrl(), nodeID: "lifecycle-client" });
      await client.waitForServices(["task", "view"], 30_000);
      for (let i = 0; i < 3; i++) {
        await call(client, "task.create", {
          id: `kept-${i}`,
          name: `Kept ${i}`,
          sourceReference: { type: "process", instanceId: "i", executionId: "e", definitionId: "d", definitionKey: "k", name: "Life cycle", applicationName: "lifecycle" },
          taskDefinitionKey: "k",
          candidateUsers: ["kermit"],
        });
      }
      const tasks = async () => {
        const response = await fetch(`http://127.0.0.1:${port}/api/tasks?size=50`, { headers: { "X-Current-User-ID": "kermit" } });
        return response.ok ? ((await response.json()) as { task: { id: string } }[]).map((t) => t.task.id).sort() : null;
      };
      const before = await waitFor(async () => {
        const ids = await tasks();
        return ids && ids.length === 3 ? ids : undefined;
      }, 20_000);
      const stopped = await stopTimed(node);
      expect(stopped.code, node.output()).toBe(0);
      expect(stopped.ms).toBeLessThan(PROMPTLY_MS);
      expect(node.output()).not.toMatch(/\n\s+at \S+ \(|did not stop within/);

      node = spawnNode(env);
      await node.waitForOutput(/Taskpool node lifecycle-1 started/);
      // The view is in the database: the first answer is complete, with no replay to wait for.
      expect(await tasks()).toEqual(before);
      expect(node.output()).toMatch(/View store: the embedded database/);
      const again = await stopTimed(node, "SIGTERM");
      expect(again.code).toBe(0);
      expect(again.ms).toBeLessThan(PROMPTLY_MS);
    } finally {
      await client?.stop();
      await node.kill();
    }
  });

  it("refuses a data directory of the old one-database-per-owner layout, saying what to do", async () => {
    const dataDir = dataDirectory();
    mkdirSync(join(dataDir, "eventstore"), { recursive: true });
    writeFileSync(join(dataDir, "eventstore", "PG_VERSION"), "18\n");
    const node = spawnNode({ DATA_DIR: dataDir, NODE_ID: "legacy", PORT: "0", APP_PORT: "0" });
    await waitFor(() => /cannot start/.test(node.output()), 30_000);
    expect(await node.stop()).toBe(1);
    expect(node.output()).toMatch(/earlier Taskpool layout \(one database per owner: eventstore\).*Move the old folder aside/s);
    expect(existsSync(join(dataDir, "pglite"))).toBe(false);
  });
});

describe("a gateway node stopped while its calls wait on a frozen node (issue 12: stop is prompt)", () => {
  it("answers the waiting requests 503 with Retry-After, exits 0, and waits out no contexts", async () => {
    const namespace = unique("stoppending");
    const port = await freePort();
    const common = { TRANSPORTER: testNatsUrl(), NAMESPACE: namespace };
    const backend = spawnNode({ ...common, NODE_ID: "pending-backend", SERVICES: "eventstore,task,view", DATA_DIR: dataDirectory() });
    const gateway = spawnNode({ ...common, NODE_ID: "pending-gateway", SERVICES: "api", PORT: String(port) });
    try {
      await Promise.all([backend.waitForOutput(/Taskpool node pending-backend started/), gateway.waitForOutput(/Taskpool node pending-gateway started/)]);
      const base = `http://127.0.0.1:${port}`;
      const ask = () => fetch(`${base}/api/tasks`, { headers: { "X-Current-User-ID": "kermit" } });
      await waitFor(async () => (await ask()).status === 200, 30_000, 200);

      // Frozen, not dead: its connection stays open, so nothing tells the gateway that these calls will not return.
      process.kill(backend.pid, "SIGSTOP");
      const pending = Array.from({ length: 5 }, () => ask().then(async (r) => ({ status: r.status, retryAfter: r.headers.get("retry-after"), type: ((await r.json()) as { type: string }).type })));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const stopped = await stopTimed(gateway, "SIGTERM");
      const answers = await Promise.all(pending);
      console.log(`[lifecycle] gateway with 5 calls pending on a frozen node stopped in ${stopped.ms} ms`);
      expect(stopped.code, gateway.output()).toBe(0);
      expect(stopped.ms).toBeLessThan(PROMPTLY_MS);
      for (const answer of answers) expect(answer).toEqual({ status: 503, retryAfter: "1", type: "SERVICE_UNAVAILABLE" });
      expect(afterStop(gateway.output())).not.toMatch(/GracefulStopTimeoutError|running contexts/);
    } finally {
      try {
        process.kill(backend.pid, "SIGCONT");
      } catch {
        // already gone
      }
      await Promise.all([backend.kill(), gateway.kill()]);
    }
  });
});
